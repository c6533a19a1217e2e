"""The ceiling of any Faust joiner: a Faust worker whose agent only counts the source messages.

`mmn bench join` runs it on the same topics as the joiner, in the same run, so the
joiner's rate can be read against what Faust itself delivers to an agent on this machine
and broker (consumer group, fetch thread, per-message conductor), with nothing produced.
Same app settings as the joiner (`streaming.joiner_app.build_app`), same chunked
`take_events` loop; no table, no output.

Run as `python -m ops.benches.faust_floor BOOTSTRAP APP_ID PARTITIONS EXPECTED TOPIC...`:
prints `consumed N` once it has seen EXPECTED messages, then idles until stopped.
"""

from __future__ import annotations

import logging
import sys

import faust


def build_app(
    bootstrap: str, app_id: str, partitions: int, expected: int, topics: list[str]
) -> faust.App:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=partitions,
        processing_guarantee="at_least_once",
        broker_session_timeout=6,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        topic_allow_declare=False,
    )
    sources = app.topic(
        *topics, key_serializer="raw", value_serializer="raw", partitions=partitions
    )
    seen = 0

    @app.agent(sources)
    async def count(stream: faust.Stream) -> None:
        nonlocal seen
        async for events in stream.take_events(2000, within=0.02):
            before, seen = seen, seen + len(events)
            if before < expected <= seen:
                print(f"consumed {seen}", flush=True)

    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    bootstrap, app_id, partitions, expected, *topics = args
    app = build_app(bootstrap, app_id, int(partitions), int(expected), topics)
    logging.getLogger("aiokafka").setLevel(logging.INFO)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
