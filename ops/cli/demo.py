"""`mmn demo`: the end-to-end demo on a synthetic log with the embedded broker.

The demo is a list of steps over one shared context, run in order and timed: synthesise
a log; replay its first `train_days` days into the broker at full speed; read every
source topic back until its end markers and check the counts against the file; join
labels with the Faust joiner (`mmn join --until-end`); train MMN online from the
mini-batches (`mmn train --until-end`), publishing snapshots to the registry; score the
latest snapshot on the days after the replayed ones with their final labels, per
conversion type and display scenario, next to the oracle AUC of the true probabilities.
The join and train steps run the same code as the user's commands.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from ops.cli import join as join_command
from ops.cli import train as train_command
from ops.cli.bootstrap import add_bootstrap_argument, bootstrap_or_embedded
from ops.cli.replay import replay_to
from ops.errors import DemoError
from ops.evaluation.holdout import domain_report, score, window_rows
from ops.store.database import open_registry, snapshot_at
from ops.store.snapshots import PublishedSnapshot, load_snapshot
from ops.training.learner import OnlineLearner
from simulator.criteo_search import CriteoSearchConfig, SearchLog, load_columns
from simulator.replay import ReplayConfig, ReplaySummary
from simulator.synth import generate, write
from streaming.events import EndOfStream, Heartbeat, decode_event, format_event_time
from streaming.topics import TopicNames

DAY_S = 86_400


@dataclass(kw_only=True)
class DemoContext:
    """What the steps share: settings, then what each step produced."""

    out: Path
    rows: int
    seed: int
    bootstrap: str = ""
    topics: TopicNames = field(default_factory=TopicNames)
    partitions: int = 4
    train_days: int = 75
    log: SearchLog | None = None
    summary: ReplaySummary | None = None
    snapshot: PublishedSnapshot | None = None

    @property
    def window_end(self) -> int:
        """Event time at which the replayed window ends."""
        assert self.log is not None
        return self.log.time_span[0] + self.train_days * DAY_S

    @property
    def db(self) -> str:
        return f"sqlite:///{(self.out / 'registry.db').resolve()}"


def step_synthesise(ctx: DemoContext) -> str:
    # The folder is the demo's own: a run starts from nothing (an old registry would resume).
    shutil.rmtree(ctx.out, ignore_errors=True)
    write(generate(ctx.rows, seed=ctx.seed), ctx.out)
    ctx.log = SearchLog(ctx.out / "CriteoSearchData")
    return f"{ctx.rows:,} rows in {ctx.out}"


def step_replay(ctx: DemoContext) -> str:
    assert ctx.log is not None
    config = ReplayConfig(topics=ctx.topics, heartbeat_every=3600, days=ctx.train_days)
    ctx.summary = replay_to(ctx.bootstrap, ctx.log, config, ctx.partitions, quiet=True)
    return (
        f"days 0-{ctx.train_days}: {ctx.summary.events:,} events "
        f"at {ctx.summary.events_per_s:,.0f} events/s"
    )


def read_counts(bootstrap: str, topics: tuple[str, ...], timeout_s: float = 60.0) -> dict[str, int]:
    """Events per topic (markers excluded), read until every partition's EndOfStream."""
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        parts = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        waiting, counts = set(parts), dict.fromkeys(topics, 0)
        deadline = time.monotonic() + timeout_s
        while waiting:
            if time.monotonic() > deadline:
                raise DemoError(
                    f"no end-of-stream marker within {timeout_s:.0f}s on {sorted(waiting)}"
                )
            for tp, messages in consumer.poll(timeout_ms=500, max_records=10_000).items():
                for message in messages:
                    event = decode_event(message.value)
                    if isinstance(event, EndOfStream):
                        waiting.discard(tp)
                    elif not isinstance(event, Heartbeat):
                        counts[tp.topic] += 1
        consumer.close()
    except KafkaError as exc:
        raise DemoError(f"reading the topics back from {bootstrap} failed: {exc!r}") from exc
    return counts


def step_read_back(ctx: DemoContext) -> str:
    assert ctx.log is not None
    counts = read_counts(ctx.bootstrap, ctx.topics.sources)
    replayed = [r for r in ctx.log.rows() if r.ts < ctx.window_end]
    expected = {
        ctx.topics.impressions: len(replayed),
        ctx.topics.clicks: len(replayed),
        ctx.topics.conversions: sum(r.sale for r in replayed),
    }
    for topic, n in counts.items():
        print(f"      {topic:>12}: {n:>8,} read back, {expected[topic]:>8,} in the file")
    if counts != expected:
        raise DemoError(f"topics hold {counts}, the file gives {expected}")
    return "every topic matches the file"


def _command(*argv: str) -> argparse.Namespace:
    # Imported here: ops.cli imports this module to register it.
    from ops.cli import build_parser

    return build_parser().parse_args(list(argv))


def step_join(ctx: DemoContext) -> str:
    args = _command(
        "join", "--bootstrap", ctx.bootstrap, "--partitions", str(ctx.partitions),
        "--until-end", "--timeout", "15m", "--batch-span", "1d",
        "--log-dir", str(ctx.out / "join-logs"),
    )  # fmt: skip
    join_command.run(args)
    return "examples on `examples`, mini-batches on `minibatches`"


def step_train(ctx: DemoContext) -> str:
    args = _command(
        "train", "--run", "demo-mmn", "--model", "mmn", "--bootstrap", ctx.bootstrap,
        "--db", ctx.db, "--snapshot-dir", str(ctx.out / "snapshots"),
        "--snapshot-every-event-time", "10d", "--until-end", "--idle-timeout", "120",
        "--buckets", str(1 << 14), "--threads", "1",
    )  # fmt: skip
    outcome = train_command.train(args)
    with open_registry(ctx.db).begin() as session:
        serving = snapshot_at(session, "demo-mmn", ctx.window_end)
        if serving is None:
            raise DemoError(f"the trainer stopped ({outcome.reason}) without a snapshot")
        ctx.snapshot = PublishedSnapshot.of("demo-mmn", serving)
    return (
        f"{outcome.batches:,} mini-batches, {outcome.examples_seen:,} examples; "
        f"serving snapshot v{ctx.snapshot.version} (watermark {format_event_time(ctx.snapshot.watermark)}, "
        f"the newest before the held-out days)"
    )


def step_score(ctx: DemoContext) -> str:
    assert ctx.log is not None and ctx.snapshot is not None
    learner = OnlineLearner.from_state(load_snapshot(ctx.snapshot.path, ctx.snapshot.sha256))
    cols = load_columns(ctx.out / "CriteoSearchData", CriteoSearchConfig())
    rows = window_rows(cols, ctx.window_end, ctx.log.time_span[1] + 1)
    labels = rows.conversion.astype(np.float64)
    truth = np.loadtxt(ctx.out / "truth.tsv", delimiter="\t", skiprows=1)[:, 1]
    oracle = truth[np.array(rows.impression_ids, dtype=np.int64) - 1]
    report = domain_report(labels, score(learner, rows), rows.conv_types, rows.scenarios)
    best = domain_report(labels, oracle, rows.conv_types, rows.scenarios)
    overall = report["overall"]
    print(
        f"      held-out days {ctx.train_days}-90: {overall['n']:,} clicks, "
        f"{overall['positives']:,} conversions (synthetic data)"
    )
    print(f"      {'':>22} {'AUC':>7} {'log loss':>9} {'calibration':>12}")
    for name, figs in (
        (f"MMN (online, v{ctx.snapshot.version})", overall),
        ("oracle (true p)", best["overall"]),
    ):
        print(
            f"      {name:>22} {figs['auc']:>7.4f} {figs['logloss']:>9.4f} "
            f"{figs['calibration']:>12.3f}"
        )
    print(
        f"      mean AUC over {len(report['per_type'])} types and "
        f"{len(report['per_scenario'])} scenarios: MMN {report['avg_domain_auc']:.4f}, "
        f"oracle {best['avg_domain_auc']:.4f}"
    )
    return f"AUC {overall['auc']:.4f} against the oracle's {best['overall']['auc']:.4f}"


STEPS: tuple[tuple[str, Callable[[DemoContext], str]], ...] = (
    ("synthesise a log", step_synthesise),
    ("replay it into the broker", step_replay),
    ("read every topic back", step_read_back),
    ("join labels in event time (Faust)", step_join),
    ("train MMN online from the mini-batches", step_train),
    ("score the serving snapshot on the held-out days", step_score),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="the end-to-end demo on a synthetic log")
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the synthetic log")
    parser.add_argument(
        "--train-days", type=int, default=75, help="days replayed; the rest of the 90 are held out"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic log")
    parser.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="working folder (emptied first)"
    )
    add_bootstrap_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = DemoContext(out=args.out, rows=args.rows, seed=args.seed, train_days=args.train_days)
    started = time.perf_counter()
    with bootstrap_or_embedded(args.bootstrap) as bootstrap:
        ctx.bootstrap = bootstrap
        print(f"broker at {bootstrap}")
        for i, (title, step) in enumerate(STEPS, start=1):
            step_started = time.perf_counter()
            print(f"[{i}/{len(STEPS)}] {title} ...", flush=True)
            result = step(ctx)
            print(f"      {result} ({time.perf_counter() - step_started:.1f}s)", flush=True)
    print(f"demo finished in {time.perf_counter() - started:.1f}s")
    return 0
