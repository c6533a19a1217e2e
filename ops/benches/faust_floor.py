"""The ceiling of any Faust joiner: a Faust worker whose agent only counts the source messages.

`mmn bench join` runs it on the same topics as the joiner, in the same run, so the
joiner's rate can be read against what Faust itself delivers to an agent on this machine
and broker (consumer group, fetch thread, per-message conductor), with nothing produced.
Same app settings as the joiner (`streaming.joiner_app.new_app`), same chunked
`take_events` loop; no table, no output.

Run as `python -m ops.benches.faust_floor BOOTSTRAP APP_ID PARTITIONS EXPECTED TOPIC...`:
prints `consumed N` once it has seen EXPECTED messages, then idles until stopped.
"""

from __future__ import annotations

import sys

import faust
from faust.types import StreamT

from streaming.joiner_app import JoinerConfig, event_chunks, new_app, run_worker


def build_app(
    bootstrap: str, app_id: str, partitions: int, expected: int, topics: list[str]
) -> faust.App:
    app = new_app(app_id, bootstrap, partitions)
    sources = app.topic(
        *topics, key_serializer="raw", value_serializer="raw", partitions=partitions
    )
    seen = 0

    @app.agent(sources)
    async def count(stream: StreamT) -> None:
        nonlocal seen
        async for events in event_chunks(stream, JoinerConfig.chunk):
            before, seen = seen, seen + len(events)
            if before < expected <= seen:
                print(f"consumed {seen}", flush=True)

    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    bootstrap, app_id, partitions, expected, *topics = args
    run_worker(build_app(bootstrap, app_id, int(partitions), int(expected), topics))


if __name__ == "__main__":
    main()
