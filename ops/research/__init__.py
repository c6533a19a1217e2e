"""Research protocols, apart from the throughput benchmarks of `ops.benches`: the stream
protocol (`stream_protocol.py`, run by `mmn bench stream`), its significance rule
(`relative_improvement.py`) and the study of MMN as the paper ran it (`study.sh`,
`study_table.py`). The offline experiment of Table 3 is `ops.evaluation.offline`."""
