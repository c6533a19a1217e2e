"""Data-parallel steps: two ranks (gloo on 127.0.0.1) end where one process trained step by
step on the union of the same mini-batches ends, for mmn and esmm with sparse embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from learner_rows import Rows, learner_config, make_rows

from ops.errors import ConfigError
from ops.training.data_parallel import ParallelLearner, check_parallel
from ops.training.learner import OnlineLearner

WORLD = 2
PARTITIONS = 4  # rank r consumes partitions r and r + 2


def partition_stream(partition: int) -> list[Rows]:
    """Mini-batches of one partition: uneven counts and sizes, the last flagged end."""
    count = 3 + 2 * partition  # partitions 0..3: 3, 5, 7, 9 mini-batches
    out = []
    for b in range(count):
        rows = make_rows(10_000 * partition + 100 * b, 20 + 7 * ((b + partition) % 3))
        # Event time interleaves the partitions; a rank merges its two by watermark.
        rows.watermark = 50 * b + 13 * partition
        rows.end = b == count - 1
        out.append(rows)
    return out


def rank_stream(rank: int) -> list[Rows]:
    """A rank's mini-batches in event-time order (its partitions merged by watermark)."""
    mine = [r for p in range(rank, PARTITIONS, WORLD) for r in partition_stream(p)]
    return sorted(mine, key=lambda r: r.watermark)


def union(parts: list[Rows | None]) -> Rows:
    """The rows of a global step as one process gets them: the ranks' rows in rank order."""
    present = [p for p in parts if p is not None]
    fields = ("impression_ids", "kinds", "conv_types", "scenarios", "click", "conversion")
    joined = {f: [v for p in present for v in getattr(p, f)] for f in fields}
    return Rows(
        **joined,
        features={k: [v for p in present for v in p.features[k]] for k in present[0].features},
        label_ts=[v for p in present for v in p.label_ts],
        watermark=max(p.watermark for p in present),
        end=any(p.end for p in present),
    )


def _rank_main(rank: int, init: str, overrides: dict, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)
    try:
        learner = ParallelLearner(OnlineLearner(learner_config(**overrides)))
        stream = rank_stream(rank)
        steps = max(len(rank_stream(r)) for r in range(WORLD))
        for t in range(steps):
            learner.step(stream[t] if t < len(stream) else None)
        torch.save(
            {
                "params": {
                    k: v.detach().clone() for k, v in learner.learner.model.state_dict().items()
                },
                "trained": learner.learner.examples_trained,
                "seen": learner.learner.examples_seen,
                "batches": learner.learner.batches,
                "types": learner.learner.featurize.types.values,
                "watermark": learner.learner.watermark,
            },
            Path(out) / f"rank{rank}.pt",
        )
        # Both ranks leave together: a rank that tore its group down while the other was
        # still connected died once in a full run with "terminate called without an active
        # exception" (SIGABRT, gloo).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def reference(overrides: dict) -> OnlineLearner:
    """One process stepping on the union of the ranks' mini-batches, step by step."""
    learner = OnlineLearner(learner_config(**overrides))
    streams = [rank_stream(r) for r in range(WORLD)]
    for t in range(max(map(len, streams))):
        learner.step(union([s[t] if t < len(s) else None for s in streams]))
    return learner


CASES = {
    "mmn, a step per global step": {"model": "mmn", "sparse": True, "min_step_rows": 1},
    "mmn, steps of >= 100 rows": {"model": "mmn", "sparse": True, "min_step_rows": 100},
    "esmm, a step per global step": {"model": "esmm", "sparse": True, "min_step_rows": 1},
    "esmm, adam, steps of >= 100 rows": {
        "model": "esmm", "sparse": True, "min_step_rows": 100, "optimizer": "adam"
    },
}  # fmt: skip


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_two_ranks_equal_one_process_on_the_union(overrides, tmp_path: Path) -> None:
    init = f"file://{tmp_path / 'rendezvous'}"  # no free port to race for
    mp.spawn(_rank_main, args=(init, overrides, str(tmp_path)), nprocs=WORLD, join=True)
    expected = reference(overrides)
    steps = sum(len(partition_stream(p)) for p in range(PARTITIONS))
    assert expected.examples_seen == sum(len(r.impression_ids) for p in range(PARTITIONS)
                                         for r in partition_stream(p)), steps  # fmt: skip
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert got["trained"] == expected.examples_trained
        assert got["seen"] == expected.examples_seen
        assert got["batches"] == expected.batches
        assert got["types"] == expected.featurize.types.values
        assert got["watermark"] == expected.watermark
        for name, want in expected.model.state_dict().items():
            diff = (got["params"][name] - want).abs().max().item()
            assert diff <= 1e-5, (rank, name, diff)
    # The model did learn: parameters moved away from their initialisation.
    initial = OnlineLearner(learner_config(**overrides)).model.state_dict()
    moved = max((expected.model.state_dict()[k] - v).abs().max().item() for k, v in initial.items())
    assert moved > 1e-3


def test_methods_with_a_delay_model_and_lr_auto_are_refused() -> None:
    with pytest.raises(ConfigError, match="--nproc: the delayed-feedback method 'es-dfm'"):
        check_parallel(learner_config(method="es-dfm"))
    with pytest.raises(ConfigError, match="--lr auto"):
        check_parallel(learner_config(lr="auto"))
    check_parallel(learner_config(method="fnw"))


def test_streams_cover_every_partition_once() -> None:
    ids = [i for r in range(WORLD) for rows in rank_stream(r) for i in rows.impression_ids]
    assert len(ids) == len(set(ids))
    assert np.all(np.diff([rows.watermark for rows in rank_stream(0)]) >= 0)


@pytest.mark.parametrize(
    ("options", "told"),
    [(["--method", "es-dfm"], "'es-dfm' steps an auxiliary"), (["--lr", "auto"], "--lr auto")],
)
def test_mmn_train_nproc_refuses_what_ranks_cannot_share_in_one_line(
    options, told, tmp_path: Path, capsys
) -> None:
    from ops.cli.main import main

    argv = ["train", "--run", "r", "--bootstrap", "127.0.0.1:1", "--nproc", "2",
            "--db", f"sqlite:///{tmp_path / 'r.db'}", "--snapshot-dir", str(tmp_path), *options]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and told in err[0], err
