"""One-file snapshots of a registered model: weights, config, name, vocabularies, featurizer.

The file is a `torch.save`d dict of plain data (tensors, dicts, lists, str, int, float,
bool, None), so it loads with `torch.load(path, weights_only=True)`, which never runs
pickled code. Layout (version 1):

    {"format": "mmn-stream/model", "version": 1, "model": name,
     "config": {ModelConfig fields; hidden as a list},
     "state_dict": {param name: tensor},
     "vocabs": {name: DomainVocab.state()},            e.g. "conv_type", "scenario"
     "featurizer": FeaturizerConfig.state() or None,
     "extra": {...},                                   caller's plain data (offsets,
                                                       watermark, ...), kept as is
     "checkpoint": {...}}                              optional: what only a resume needs
                                                       (optimizer state, gathered rows, ...)

A serving snapshot is the state without its "checkpoint" (`serving_part`): what scoring
needs (weights, vocabularies, featurizer, score rule) and the caller's small facts. The
snapshot store keeps it apart from the checkpoint, the whole state, which is larger
(an Adagrad state doubles the weights) and kept for fewer versions.

`save_model` writes with `write_atomically` (temporary file in the same folder, fsync,
rename, fsync of the folder), so a reader sees the old file or the new one, never half of
one; the snapshot store of ops writes its files with the same function. `load_model`
rebuilds the model from the registry and restores it exactly: identical predictions.
Anything wrong with a file raises model.errors.SnapshotError.

>>> import tempfile, pathlib
>>> from model.config import ModelConfig
>>> from model.zoo import get
>>> config = ModelConfig(n_fields=2, buckets=8, n_types=2, n_scenarios=2, hidden=(4,))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
>>> save_model(path, get("mmn").build(config), name="mmn", config=config, extra={"step": 7})
>>> loaded = load_model(path)
>>> loaded.name, loaded.config == config, loaded.extra
('mmn', True, {'step': 7})
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from model import zoo
from model.config import ModelConfig
from model.errors import ModelError, SnapshotError
from model.features import FeaturizerConfig
from model.scoring import SCORE_RULES, ScoreRule, rule_for
from model.vocab import DomainVocab

FORMAT = "mmn-stream/model"
VERSION = 1
CHECKPOINT = "checkpoint"  # the state's resume-only part, absent from serving files


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    """What a snapshot holds, rebuilt: the model (in eval mode) and what travels with it."""

    name: str
    model: nn.Module
    config: ModelConfig
    vocabs: dict[str, DomainVocab] = field(default_factory=dict)
    featurizer: FeaturizerConfig | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    score: ScoreRule = "ctcvr"  # how the run is scored (`model.scoring`)


def snapshot_state(
    model: nn.Module,
    *,
    name: str,
    config: ModelConfig,
    vocabs: Mapping[str, DomainVocab] | None = None,
    featurizer: FeaturizerConfig | None = None,
    extra: Mapping[str, Any] | None = None,
    score: ScoreRule = "ctcvr",
) -> dict[str, Any]:
    """The plain-data dict a snapshot file holds (for callers that write it themselves).

    score: the rule that scores the model (`model.scoring`: `cvr` for a click-only run).
    """
    zoo.get(name)  # an unknown name fails now, not when the file is loaded
    config_state = dataclasses.asdict(config)
    config_state["hidden"] = list(config.hidden)
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": name,
        "config": config_state,
        # Copied to the CPU: a snapshot of a model trained on a GPU loads on any machine.
        "state_dict": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "vocabs": {k: v.state() for k, v in (vocabs or {}).items()},
        "featurizer": featurizer.state() if featurizer is not None else None,
        "score": score,
        "extra": dict(extra or {}),
    }


def on_cpu(value: Any) -> Any:
    """Plain data with every tensor in it copied to the CPU (an optimizer's state_dict, say).

    >>> on_cpu({"state": {0: {"sum": torch.ones(1)}}, "groups": [1]})
    {'state': {0: {'sum': tensor([1.])}}, 'groups': [1]}
    """
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(on_cpu(v) for v in value)
    return value


def serving_part(state: Mapping[str, Any]) -> dict[str, Any]:
    """The serving snapshot of a state: everything but its resume-only checkpoint part.

    >>> serving_part({"format": FORMAT, "state_dict": {}, CHECKPOINT: {"optimizer": {}}})
    {'format': 'mmn-stream/model', 'state_dict': {}}
    """
    return {k: v for k, v in state.items() if k != CHECKPOINT}


def restore(state: Mapping[str, Any]) -> LoadedModel:
    """Rebuild the model a `snapshot_state` dict describes; SnapshotError if it does not fit."""
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise SnapshotError(
            f"not a {FORMAT} v{VERSION} snapshot (format {state.get('format')!r}, "
            f"version {state.get('version')!r})"
        )
    try:
        config = ModelConfig(**{**state["config"], "hidden": tuple(state["config"]["hidden"])})
        spec = zoo.get(state["model"])
        # Built on the meta device (no memory, no random initialisation), then the loaded
        # tensors become its parameters: the weights are exactly the file's.
        with torch.device("meta"):
            model = spec.build(config)
        model.load_state_dict(state["state_dict"], strict=True, assign=True)
        _check_materialised(model, spec.name)
        vocabs = {k: DomainVocab.from_state(v) for k, v in state["vocabs"].items()}
        featurizer = (
            FeaturizerConfig.from_state(state["featurizer"])
            if state["featurizer"] is not None
            else None
        )
    except (KeyError, TypeError, RuntimeError, ModelError) as exc:
        raise SnapshotError(
            f"snapshot of model {state.get('model')!r} does not restore: {exc}"
        ) from exc
    model.eval()
    return LoadedModel(
        name=spec.name,
        model=model,
        config=config,
        vocabs=vocabs,
        featurizer=featurizer,
        extra=dict(state["extra"]),
        score=_score_rule(state),
    )


def _check_materialised(model: nn.Module, name: str) -> None:
    """Every tensor of a model loaded with assign=True came from the file: none is left on meta."""
    left = [k for k, v in [*model.named_parameters(), *model.named_buffers()] if v.is_meta]
    if left:
        raise SnapshotError(f"snapshot of model {name!r} holds no values for {', '.join(left)}")


def _score_rule(state: Mapping[str, Any]) -> ScoreRule:
    """The snapshot's score rule; older snapshots did not record it: their learner's
    click_only flag decides (a run trained click-only is scored by p_cvr)."""
    rule = state.get("score")
    if rule is None:
        learner = state["extra"].get("learner") or {}
        return rule_for(bool(learner.get("click_only", False)))
    if rule not in SCORE_RULES:
        raise SnapshotError(f"snapshot has an unknown score rule {rule!r}")
    return rule


def save_model(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    name: str,
    config: ModelConfig,
    vocabs: Mapping[str, DomainVocab] | None = None,
    featurizer: FeaturizerConfig | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a snapshot of model to path atomically (extra: plain data only)."""
    state = snapshot_state(
        model, name=name, config=config, vocabs=vocabs, featurizer=featurizer, extra=extra
    )
    write_atomically(path, encode_state(state))


def encode_state(state: Mapping[str, Any]) -> bytes:
    """The bytes a snapshot file holds: `torch.save` of the state as a plain dict."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return buffer.getvalue()


def write_atomically(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path so that a crash leaves the old file or the whole new one, never part.

    The bytes go to a temporary file in the same folder (named `.<name>.*.tmp`), which is
    fsynced and renamed over path; then the folder is fsynced, so the rename survives a crash.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Read a snapshot written by save_model; SnapshotError if it is missing, corrupt or foreign."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError as exc:
        raise SnapshotError(f"no snapshot at {path}") from exc
    except Exception as exc:  # torch raises pickle, zip and runtime errors alike for bad files
        raise SnapshotError(
            f"snapshot {path} cannot be read ({exc}); is it a model snapshot?"
        ) from exc
    if not isinstance(state, dict):
        raise SnapshotError(f"snapshot {path} holds a {type(state).__name__}, not a dict")
    return restore(state)
