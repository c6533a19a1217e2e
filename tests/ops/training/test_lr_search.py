"""`--lr auto`: the learning-rate race picks the best rate and resumes exactly after a crash."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from learner_rows import ListSource, learner_config, make_rows

from ops.cli.train import restore_with
from ops.store.database import list_snapshots, open_registry
from ops.store.snapshot_chain import load_serving
from ops.store.snapshots import SnapshotStore, SnapshotStoreConfig
from ops.training.learner import OnlineLearner
from ops.training.lr_search import LearningRateSearch, grid
from ops.training.trainer import Trainer, TrainerConfig

BATCH = 32
N_BATCHES = 40
RATES = (1e-4, 0.05, 50.0)  # too slow to learn, right, diverging
WARMUP = 24 * BATCH  # event seconds: make_rows' label time is the row id


def data() -> tuple[dict[int, list[bytes]], dict[bytes, object]]:
    decoded: dict[bytes, object] = {}
    stream: dict[int, list[bytes]] = {0: []}
    for b in range(N_BATCHES):
        key = f"b{b}".encode()
        decoded[key] = make_rows(b * BATCH, BATCH, seed=4)
        stream[0].append(key)
    end = make_rows(N_BATCHES * BATCH, 0)
    end.end = True
    decoded[b"end"] = end
    stream[0].append(b"end")
    return stream, decoded


class Crash(Exception):
    pass


def run(folder: Path, crash_at: int | None = None) -> Trainer:
    """A trainer of run r with --lr auto over the stream in folder; crash_at: the mini-batch
    at which the process dies (an exception: no snapshot at exit, like SIGKILL)."""
    Session = open_registry(f"sqlite:///{folder / 'registry.db'}")
    store = SnapshotStore(
        SnapshotStoreConfig(directory=folder / "snapshots", keep_snapshots=None),
        Session, run="r", model="mmn", run_config={},
    )  # fmt: skip
    config = learner_config(lr="auto", min_step_rows=1)
    stream, decoded = data()
    trainer = Trainer(
        TrainerConfig(run="r", snapshot_every_examples=4 * BATCH, until_end=True,
                      min_train_examples=0, progress_every_s=60.0),
        new_learner=lambda: OnlineLearner(config),
        restore=restore_with(config),
        store=store, source=ListSource(stream), decode=decoded.__getitem__,
        search=lambda: LearningRateSearch(config, rates=RATES, follow=0.05, warmup_s=WARMUP),
    )  # fmt: skip
    if crash_at is not None:
        inner, steps = trainer._train, []

        def train_then_crash(rows, loss):
            steps.append(1)
            if len(steps) == crash_at:
                raise Crash
            return inner(rows, loss)

        trainer._train = train_then_crash  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        trainer.run()
    store.close()
    return trainer


def final_weights(folder: Path) -> dict[str, torch.Tensor]:
    Session = open_registry(f"sqlite:///{folder / 'registry.db'}")
    with Session() as session:
        last = list_snapshots(session, "r")[-1]
    return load_serving(Session, "r", last.version)["state_dict"]


def test_the_grid_is_the_models_rate_times_each_factor() -> None:
    assert grid(0.01) == (0.0025, 0.005, 0.01, 0.02)


def test_the_race_keeps_the_clearly_best_rate_and_publishes_nothing_before(tmp_path: Path) -> None:
    trainer = run(tmp_path)
    figures = trainer.lr_search
    assert figures is not None and figures["chosen"] == 0.05
    losses = figures["log_loss"]
    assert losses["0.05"] < losses["0.0001"] and losses["0.05"] < losses["50.0"]
    assert trainer.learner.config.lr == 0.05
    Session = open_registry(f"sqlite:///{tmp_path / 'registry.db'}")
    with Session() as session:
        rows = list_snapshots(session, "r")
    # Nothing before the choice (at watermark >= WARMUP), and the choice recorded.
    assert rows and all(r.watermark >= WARMUP for r in rows)
    assert all(r.metrics["lr_search"]["chosen"] == 0.05 for r in rows)
    # The winner went on alone: it has trained every row, as one learner at 0.05 would.
    alone = OnlineLearner(learner_config(lr=0.05, min_step_rows=1))
    for b in range(N_BATCHES):
        alone.step(make_rows(b * BATCH, BATCH, seed=4))
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, trainer.learner.model.state_dict()[name]), name


@pytest.mark.parametrize("crash_at", [5, 30], ids=["during warm-up", "after warm-up"])
def test_a_crash_resumes_exactly(tmp_path: Path, crash_at: int) -> None:
    run(tmp_path / "whole")
    run(tmp_path / "crashed", crash_at=crash_at)
    resumed = run(tmp_path / "crashed")
    assert resumed.lr_search is not None and resumed.lr_search["chosen"] == 0.05
    whole, crashed = final_weights(tmp_path / "whole"), final_weights(tmp_path / "crashed")
    assert whole.keys() == crashed.keys()
    for name in whole:
        assert torch.equal(whole[name], crashed[name]), name
