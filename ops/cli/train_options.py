"""The options of `mmn train`, and the components' configs they make.

Options are combined here into the components' configs; nothing deeper reads the command
line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from model.config import ModelConfig
from model.features import FeaturizerConfig
from ops.cli.outputs import RegistryUrl
from ops.cli.train_group import MAX_RESTARTS
from ops.options.bootstrap import Bootstrap
from ops.options.daemon import TORCH_THREADS, MetricsPort, Threads
from ops.options.device import DEFAULT_DEVICE, Device
from ops.options.typed import complete, offered, replace
from ops.options.values import Count, CountOrZero
from ops.store.defaults import DEFAULT_URL
from ops.store.snapshot_config import SnapshotStoreConfig
from ops.training.learner_config import LearnerConfig
from ops.training.trainer_config import TrainerConfig
from simulator.criteo_search import CriteoSearchConfig
from streaming.topics import TopicNames

# Learner options a resumed run may change: they take effect on the restored learner.
RECONFIGURABLE = ("lr",)

# Capacities follow the readers' top-K: K values of their own plus the one "other" domain.
_CAPACITIES = CriteoSearchConfig().capacities

Daemon = offered(
    TrainerConfig, skip=("poll_timeout_s",), defaults={"snapshot_every_examples": None}
)
Store = offered(SnapshotStoreConfig)
Learning = offered(LearnerConfig, skip=("model_config", "featurizer"))
Shape = offered(ModelConfig, skip=("n_fields",), defaults=_CAPACITIES)
Features = offered(FeaturizerConfig, only=("fields",))


@dataclass(frozen=True, kw_only=True)
class TrainCommand:
    """The online trainer: learn from the minibatches topic, publish snapshots."""

    bootstrap: Bootstrap = None
    db: RegistryUrl = DEFAULT_URL
    topic: str = TopicNames().minibatches
    """mini-batch topic"""
    snapshots_topic: str = TopicNames().snapshots
    """snapshot announcements topic"""
    metrics_port: MetricsPort = None
    threads: Threads = TORCH_THREADS
    device: Device = DEFAULT_DEVICE
    nproc: Count = 1
    """data-parallel ranks of this run on this host (under torchrun: 1 per process)"""
    max_restarts: CountOrZero = MAX_RESTARTS
    """with --nproc: restarts of the group after a rank fails"""
    reconfigure: bool = False
    """resume the run with new values of --lr (other changed options are refused)"""
    daemon: Annotated[TrainerConfig, Daemon]
    store: Annotated[SnapshotStoreConfig, Store]
    learner: Annotated[dict[str, Any], Learning]
    shape: Annotated[dict[str, Any], Shape]
    features: Annotated[FeaturizerConfig, Features]

    @property
    def run(self) -> str:
        return str(self.daemon.run)

    @property
    def model(self) -> str:
        learning: dict[str, Any] = self.learner
        return str(learning["model"])


def learner_config(command: TrainCommand) -> LearnerConfig:
    """The learner's config from the command line."""
    featurizer: FeaturizerConfig = command.features
    numeric = tuple(f for f in FeaturizerConfig().numeric_fields if f in featurizer.fields)
    shape: dict[str, Any] = command.shape
    model_config = complete(Shape, shape, n_fields=len(featurizer.fields))  # checks --buckets
    featurizer = replace(featurizer, numeric_fields=numeric, buckets=model_config.buckets)
    from model import zoo as models

    models.get(command.model)  # an unknown model name fails before anything starts
    learning: dict[str, Any] = command.learner
    return complete(Learning, learning, model_config=model_config, featurizer=featurizer)


def trainer_config(command: TrainCommand) -> TrainerConfig:
    """The daemon's config; with neither cadence given, the config's default cadence."""
    daemon: TrainerConfig = command.daemon
    if daemon.snapshot_every_examples is None and daemon.snapshot_every_event_s is None:
        default = TrainerConfig(run=daemon.run).snapshot_every_examples
        return replace(daemon, snapshot_every_examples=default)
    return daemon
