"""The Faust joiner worker: impressions, clicks and conversions in; examples and mini-batches out.

Faust has no stream-stream join, so one agent reads the three co-partitioned source
topics (keyed by impression id) and drives a `PartitionJoiner` per partition whose state
is the Table `pending` (impression id -> facts, plus one progress entry per partition).
Tables change only inside stream iteration, so every write, and the watermark sweep,
happens while handling a source message; the table's changelog partition is that
message's partition, which keeps each partition's state on its own changelog partition
and lets a restarted worker (or another worker after a rebalance) recover it.

Delivery (at-least-once; the embedded broker cannot run Faust's transactions): a
segment's examples and orphan dead letters are sent and awaited, then its mini-batch,
then `commit` writes the progress entry. Immediate dead letters are flushed by Faust
before it commits the consumer offset. After a crash, the output repeats only exact copies:
consumers drop examples by (impression_id, kind), mini-batches by (partition, seq) and
dead letters by (topic, partition, offset).

Crash-only: Faust logs an exception that escapes an agent and keeps the worker running
without it, consuming nothing and never ending. Here any exception escaping the agent
ends the worker process at once with `AGENT_CRASHED` (traceback in its log), so that its
supervisor restarts it and it resumes from its committed offsets and table changelog,
exactly as after a SIGKILL. No input can cause that: an input whose outputs could not be
sent is a dead letter before it is joined (`streaming.partition_joiner`).

Run one worker with `python -m streaming.joiner_app CONFIG_JSON` (what `mmn join` does);
its web server is off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn, cast

import faust
from faust.types import EventT, StreamT, TableT

from streaming.errors import StreamingError
from streaming.example import encode_deadletter, encode_example
from streaming.health import quiet_repeats
from streaming.labels import LabelConfig
from streaming.minibatch import MiniBatch, encode_minibatch
from streaming.partition_joiner import PartitionJoiner, meta_key
from streaming.segments import BatchConfig, Segment
from streaming.topics import TopicNames

TABLE = "pending"
# The exit code of a worker whose agent raised (EX_SOFTWARE).
AGENT_CRASHED = 70


@dataclass(frozen=True, kw_only=True)
class JoinerConfig:
    """One joiner deployment.

    Attributes:
        bootstrap: Kafka bootstrap address.
        app_id: Faust app id (consumer group, changelog prefix).
        partitions: partition count of every source topic (and of the changelog).
        chunk: most source messages handled per agent step (throughput only; no effect on output).
    """

    bootstrap: str
    app_id: str = "mmn-joiner"
    partitions: int = 4
    chunk: int = 2000
    topics: TopicNames = field(default_factory=TopicNames)
    labels: LabelConfig = field(default_factory=LabelConfig)
    batches: BatchConfig = field(default_factory=BatchConfig)

    def __post_init__(self) -> None:
        for name in ("partitions", "chunk"):
            if getattr(self, name) < 1:
                raise StreamingError(f"JoinerConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def changelog_topic(self) -> str:
        return f"{self.app_id}-{TABLE}-changelog"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JoinerConfig:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            **{k: v for k, v in raw.items() if k not in ("topics", "labels", "batches")},
            topics=TopicNames(**raw["topics"]),
            labels=LabelConfig(**raw["labels"]),
            batches=BatchConfig(**raw["batches"]),
        )


class ChangelogStore(MutableMapping[str, Any]):
    """One partition's view of the Faust table, writing its own changelog messages.

    Faust's `table[key] = value` sends one changelog message per write through a
    one-at-a-time buffer and takes the partition from the current event; handling a chunk
    of events at once, we write the table's data directly and send the changelog messages
    (the JSON Faust's recovery reads) to this partition explicitly, once per chunk.

    Within a chunk, a key set again keeps its place and sends only its last value: facts
    carry their source offsets, so a fact landing early is recognized on redelivery. The
    progress entry and deletions move to the end instead: they must never land before
    the writes they vouch for.
    """

    def __init__(
        self,
        table: TableT,
        partition: int,
        send: Callable[[str, int, bytes, bytes | None], Awaitable[Any]],
    ) -> None:
        self.data = table.data
        self.topic = table.changelog_topic.get_topic_name()
        self.partition = partition
        self.progress_key = meta_key(partition)
        self.send = send
        self.writes: dict[str, Any] = {}  # key -> value, None to delete; in send order

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        if key == self.progress_key or self.writes.get(key, value) is None:
            self.writes.pop(key, None)
        self.writes[key] = value

    def __delitem__(self, key: str) -> None:
        del self.data[key]
        self.writes.pop(key, None)
        self.writes[key] = None

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    async def flush(self) -> None:
        """Send the pending changelog writes in order and wait until they are delivered.

        The last write goes alone, once the others are delivered. The embedded broker
        (Tansu 0.6) reports a partition's end offset as the base offset of its last record
        batch + 1, and Faust's recovery reads a changelog only up to that end: with several
        records in the last batch, a restarted worker would miss all but its first. A last
        batch of one record makes the reported end the true one.
        """
        writes, self.writes = list(self.writes.items()), {}
        if not writes:
            return
        delivered = [await self._send(key, value) for key, value in writes[:-1]]
        await asyncio.gather(*delivered)
        await (await self._send(*writes[-1]))

    async def _send(self, key: str, value: Any) -> Awaitable[Any]:
        encoded = None if value is None else json.dumps(value).encode()
        return await self.send(self.topic, self.partition, json.dumps(key).encode(), encoded)


def new_app(
    app_id: str,
    bootstrap: str,
    partitions: int,
    *,
    max_message_bytes: int = BatchConfig().max_message_bytes,
) -> faust.App:
    """A Faust app configured for the embedded broker's quirks (short session timeouts, at-least-once).

    max_message_bytes: the producer's largest message (`BatchConfig.max_message_bytes`).
    """
    return faust.App(
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
        # Bigger, slightly lingering producer batches: ~1.5 output messages per input.
        producer_max_batch_size=262_144,
        producer_linger=0.002,
        producer_max_request_size=max_message_bytes,
    )


def crash(exc: BaseException) -> NoReturn:
    """End this worker process now, with `AGENT_CRASHED`, its traceback and one line in its log.

    No offsets are committed on the way out: the restarted worker resumes where the last
    delivered chunk left off, as after a SIGKILL.
    """
    traceback.print_exception(exc)
    print(
        f"joiner worker: the agent raised {exc!r}; exiting with code {AGENT_CRASHED} "
        "so that the supervisor restarts this worker",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(AGENT_CRASHED)


def event_chunks(stream: StreamT, size: int) -> AsyncIterator[Sequence[EventT]]:
    """An agent's events in chunks of up to size, each as soon as 20 ms pass without more."""
    # Agents receive a faust.Stream; its StreamT interface lacks take_events.
    return cast(faust.Stream, stream).take_events(size, within=0.02)


def run_worker(app: faust.App) -> None:
    """Run a worker of app in this process until SIGTERM/SIGINT; its web server is off."""
    # aiokafka logs every send at DEBUG; building those records costs more than the send.
    logging.getLogger("aiokafka").setLevel(logging.INFO)
    quiet_repeats(("aiokafka", "faust", "mode", "kafka"))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # a terminal spinner writes escape codes into the log file
    worker.execute_from_commandline()


class _Partitions:
    """The PartitionJoiner and ChangelogStore of each partition this worker holds."""

    def __init__(self, config: JoinerConfig, app: faust.App, table: TableT) -> None:
        self.config, self.app, self.table = config, app, table
        self.joiners: dict[int, tuple[PartitionJoiner, ChangelogStore]] = {}

    def get(self, partition: int) -> tuple[PartitionJoiner, ChangelogStore]:
        if partition not in self.joiners:
            store = ChangelogStore(self.table, partition, self._changelog)
            joiner = PartitionJoiner(
                partition=partition,
                store=store,
                labels=self.config.labels,
                batches=self.config.batches,
                topics=self.config.topics.sources,
            )
            self.joiners[partition] = (joiner, store)
        return self.joiners[partition]

    async def forget(self, app: faust.App, *args: Any, **kwargs: Any) -> None:
        """Drop revoked partitions (the signal's argument): one may come back after another
        worker changed it, and is then rebuilt from the table."""
        for tp in args[0]:
            self.joiners.pop(tp.partition, None)

    async def _changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> Any:
        return await self.app.producer.send(topic, key, value, partition, None, None)


async def _publish(app: faust.App, config: JoinerConfig, segment: Segment) -> list[Awaitable[Any]]:
    """Hand a segment's messages to the producer; the futures resolve on delivery."""
    send, topics, labels = app.producer.send, config.topics, config.labels
    pending = [
        await send(topics.examples, ex.impression_id.encode(), encode_example(ex), None, None, None)
        for ex in segment.examples
    ]
    pending += [
        await send(topics.deadletter, None, encode_deadletter(d), None, None, None)
        for d in segment.deadletters
    ]
    if segment.seq is not None:
        batch = MiniBatch.from_examples(
            segment.examples,
            partition=segment.partition,
            seq=segment.seq,
            watermark=segment.watermark,
            end=segment.end,
            label_windows=(labels.observation_window_s, labels.attribution_window_s),
        )
        key = str(segment.partition).encode()
        value = encode_minibatch(batch)
        pending.append(await send(topics.minibatches, key, value, segment.partition, None, None))
    return pending


def build_app(config: JoinerConfig) -> faust.App:
    """The Faust app with its table and agent, configured for the embedded broker's quirks."""
    app = new_app(
        config.app_id,
        config.bootstrap,
        config.partitions,
        max_message_bytes=config.batches.max_message_bytes,
    )
    sources = app.topic(
        *config.topics.sources,
        key_serializer="raw",
        value_serializer="raw",
        partitions=config.partitions,
    )
    table = app.Table(
        TABLE,
        partitions=config.partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )
    source_of = {name: index for index, name in enumerate(config.topics.sources)}
    partitions = _Partitions(config, app, table)
    # mode types `connect` so that no handler type-checks (its SignalHandlerT is unbound).
    app.on_partitions_revoked.connect(partitions.forget)  # type: ignore[arg-type]

    @app.agent(sources)
    async def join(stream: StreamT) -> None:
        try:
            await join_chunks(stream)
        except Exception as exc:  # whatever it is, a worker without its agent must not live
            crash(exc)

    async def join_chunks(stream: StreamT) -> None:
        # Chunks only save per-event overhead: batch boundaries come from the joiner's
        # event-time rules, never from this wall-clock `within`.
        async for events in event_chunks(stream, config.chunk):
            cut: list[tuple[Segment, PartitionJoiner]] = []
            pending: list[Awaitable[Any]] = []
            for event in events:
                message = event.message
                joiner, _ = partitions.get(message.partition)
                step = joiner.process(source_of[message.topic], message.offset, message.value)
                for letter in step.deadletters:
                    await app.producer.send(
                        config.topics.deadletter, None, encode_deadletter(letter), None, None, None
                    )
                for segment in step.segments:
                    pending += await _publish(app, config, segment)
                    cut.append((segment, joiner))
            # One delivery wait per chunk; only then may the progress entries say so.
            await asyncio.gather(*pending)
            for segment, joiner in cut:
                joiner.commit(segment)
            # Changelog writes in order (facts, progress, forgetting), before Faust
            # acknowledges the chunk and may commit its offsets.
            for joiner, store in list(partitions.joiners.values()):
                joiner.checkpoint()
                await store.flush()

    return app


def main(argv: list[str] | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT."""
    args = sys.argv[1:] if argv is None else argv
    run_worker(build_app(JoinerConfig.from_json(args[0])))


if __name__ == "__main__":
    main()
