"""What the demo runs: its config, its run folder, and each component's `mmn` command line.

The command lines are the ones a user would type to run the same pipeline as separate
processes (README, "Running the daemons"); the flags that must agree between them (the
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

    out: the run folder (logs, registry, snapshots, report).
    data: a Criteo search log to replay; None synthesises `rows` rows with `seed`.
    rows / seed: size and seed of the synthetic log (seed also seeds the models).
    arms: registered model names, one trainer each; the first is the A/B control.
    partitions: partitions of every topic the components share.
    buckets: hash buckets per feature field of every arm's model.
    snapshot_every_s: event time between the trainers' snapshots.
    timeout_s: wall-clock limit of the whole run.
    """

    out: Path = Path("out/demo")
    data: Path | None = None
    rows: int = 60_000
    seed: int = 0
    arms: tuple[str, ...] = ("mmn", "esmm")
    partitions: int = 4
    buckets: int = 1 << 14
    snapshot_every_s: int = 10 * DAY_S
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if self.rows < 1 or self.partitions < 1 or self.buckets < 1:
            raise ConfigError(
                f"--rows ({self.rows}), partitions ({self.partitions}) and buckets "
                f"({self.buckets}) must be at least 1"
            )
        if not self.arms or len(set(self.arms)) != len(self.arms):
            raise ConfigError(f"--arms must name distinct models, got {','.join(self.arms)!r}")
        for arm in self.arms:
            try:
                models.get(arm)
            except ModelError as exc:
                raise ConfigError(f"--arms: {exc}") from exc


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
    return [
        "train", "--run", run_name(arm), "--model", arm, "--bootstrap", bootstrap,
        "--db", folder.db, "--snapshot-dir", str(folder.snapshots),
        "--snapshot-every-event-time", str(config.snapshot_every_s),
        "--buckets", str(config.buckets), "--seed", str(config.seed), "--threads", "1",
        "--until-end", "--progress-every", "1",
    ]  # fmt: skip


def replay_args(config: DemoConfig, bootstrap: str, data: Path) -> list[str]:
    return [
        "replay", "--data", str(data), "--bootstrap", bootstrap, "--max-speed",
        "--partitions", str(config.partitions), "--heartbeat-every", "3600",
    ]  # fmt: skip
