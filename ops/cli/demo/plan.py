"""What the demo runs: its config, its run folder, and each component's `mmn` command line.

The command lines are the ones a user would type to run the same pipeline as separate
processes (docs/operations.md); the flags that must agree between them (the
bootstrap address, the partition count, the registry URL, the snapshot folder, the run
names) come from one place here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model import zoo as models
from model.errors import ModelError
from ops.errors import ConfigError

DAY_S = 86_400


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """The demo's settings.

    Attributes:
        out: the run folder: logs, registry, snapshots, report.
        data: a Criteo search log to replay instead of a synthetic one.
        rows: rows of the synthetic log (90 days).
        seed: seed of the synthetic log and of every arm's model.
        arms: registered models, one trainer each; the others are compared against the last.
        partitions: partitions of every topic the components share.
        buckets: hash buckets per feature field of every arm's model.
        snapshot_every_s: event time between the trainers' snapshots.
        timeout_s: wall-clock limit of the whole run.
        force: use an `out` folder that holds files no demo made (nothing in it is deleted).
    """

    out: Path = Path("out/demo")
    data: Path | None = None
    rows: int = 150_000
    seed: int = 0
    arms: tuple[str, ...] = ("mmn_dw_clip", "esmm")
    partitions: int = 4
    buckets: int = 1 << 14
    snapshot_every_s: int = DAY_S
    timeout_s: int = 900
    force: bool = False

    def __post_init__(self) -> None:
        for name in ("rows", "partitions", "buckets", "snapshot_every_s", "timeout_s"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"DemoConfig.{name} must be at least 1, got {getattr(self, name)}"
                )
        if self.seed < 0:
            raise ConfigError(f"DemoConfig.seed must be >= 0, got {self.seed}")
        if len(self.arms) < 2 or len(set(self.arms)) != len(self.arms):
            raise ConfigError(
                f"DemoConfig.arms must name two or more distinct models, got {','.join(self.arms)!r}"
            )
        for arm in self.arms:
            try:
                models.get(arm)
            except ModelError as exc:
                raise ConfigError(f"DemoConfig.arms: {exc}") from exc

    @property
    def control(self) -> str:
        """The arm the others are compared against."""
        return self.arms[-1]


@dataclass(frozen=True)
class RunFolder:
    """Where everything of one demo run lives, under `root`."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def db(self) -> str:
        return f"sqlite:///{(self.root / 'registry.db').resolve()}"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"


EXPERIMENT = "demo"


def run_name(arm: str) -> str:
    """The registry run of an arm's trainer."""
    return f"demo-{arm}"


def broker_args(port: int) -> list[str]:
    return ["broker", "--port", str(port)]


def join_args(config: DemoConfig, bootstrap: str, folder: RunFolder) -> list[str]:
    # Day-long mini-batches: the synthetic log is sparse (a few hundred clicks a day), and
    # hour-long ones would be tiny batches whose domains hardly repeat.
    return [
        "join", "--bootstrap", bootstrap, "--partitions", str(config.partitions),
        "--batch-span", "1d", "--until-end", "--log-dir", str(folder.logs / "join-workers"),
    ]  # fmt: skip


def train_args(config: DemoConfig, arm: str, bootstrap: str, folder: RunFolder) -> list[str]:
    # One torch thread each: the arms, the joiner and the evaluator share the machine.
    # The trainer's default waits for a partition with nothing buffered (every one ends with
    # its end batch): the training order follows event time across partitions however slow
    # the joiner is, so the same seed trains the same models.
    return [
        "train", "--run", run_name(arm), "--model", arm, "--bootstrap", bootstrap,
        "--db", folder.db, "--snapshot-dir", str(folder.snapshots),
        "--snapshot-every-event-time", str(config.snapshot_every_s),
        "--buckets", str(config.buckets), "--seed", str(config.seed), "--threads", "1",
        "--until-end", "--progress-every", "1",
    ]  # fmt: skip


def replay_args(config: DemoConfig, bootstrap: str, data: Path) -> list[str]:
    # A heartbeat round every 6 hours of event time: each partition of this log sees an event
    # about every ten minutes, so hourly rounds (12 markers each) would only add joiner work.
    return [
        "replay", "--data", str(data), "--bootstrap", bootstrap, "--max-speed",
        "--partitions", str(config.partitions), "--heartbeat-every", "21600",
    ]  # fmt: skip


def evaluate_args(config: DemoConfig, bootstrap: str, folder: RunFolder) -> list[str]:
    # Shadow mode: every arm scores every click, so the arms compare on the same clicks. The
    # label windows are the joiner's defaults, which `join_args` keeps.
    arms = [f"--arm={arm}={run_name(arm)}" for arm in config.arms]
    return [
        "evaluate", "--experiment", EXPERIMENT, *arms, "--control", config.control, "--shadow",
        "--bootstrap", bootstrap, "--db", folder.db, "--until-end", "--progress-every", "1",
        "--wait-for-runs", str(config.timeout_s),  # it starts beside the trainers
    ]  # fmt: skip


def prune_args(arm: str, folder: RunFolder) -> list[str]:
    """Retention once the experiment is over: the newest snapshots and those that served."""
    return ["snapshots", "prune", run_name(arm), "--db", folder.db]


def report_args(folder: RunFolder) -> list[str]:
    return ["report", "show", EXPERIMENT, "--db", folder.db, "--html", str(folder.report_html)]
