"""The streaming protocol of the delayed-feedback literature on a CriteoSearchData-format log.

As in ES-DFM (Yang et al., AAAI 2021) and DEFER (Gu et al., KDD 2021): the clicks of the
first `pretrain_days` days train the model with their final labels, in click order, one
pass. Then, for each following day d, the model learns what the joiner's label logic
(`streaming.labels`, applied by each delayed-feedback method of `ops.training.delayed`,
no broker) emits during day d about the clicks since the pretraining, in label-time order,
in mini-batches of `batch_size`; and before day d + 1 is learnt, its clicks are scored
with their final labels. Every method of a model starts from the same pretrained model
(and, for ES-DFM and DEFER, the same auxiliary delay model pretrained beside it).

Figures per model and method, each a mean over the scored days: exact AUC, PR-AUC
(average precision), log loss, calibration (sum predicted / sum actual) and the mean of
the per-type and per-scenario AUCs; then
RI-AUC = (AUC - AUC_vanilla) / (AUC_oracle - AUC_vanilla), where the `oracle` learns each
click at click time with its final label and `vanilla` learns fake negatives and
duplicated positives without weights; and the same for the log loss (`ri_log_loss`). When
the oracle's AUC is barely above vanilla's, RI-AUC divides by a gap the size of the noise:
so the oracle's lead gets a bootstrap interval over the scored days, and RI-AUC (with its
own interval) is given only where that lead is significant (`relative_improvements`).
Beside them, `frozen`: the pretrained model scoring every day without learning from the
stream, which bounds what any method's handling of delayed labels can change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from model import zoo
from model.config import ModelConfig
from model.features import CRITEO_FEATURE_FIELDS, FeaturizerConfig
from model.scoring import probability
from model.snapshot import CHECKPOINT
from ops.errors import ConfigError
from ops.evaluation.holdout import domain_report, window_rows
from ops.metrics import average_precision, exact_auc
from ops.research.relative_improvement import relative_improvements
from ops.training import delayed
from ops.training.delayed.aux import DelayLearner
from ops.training.learner import LearnerConfig, OnlineLearner
from simulator.criteo_search import SearchColumns
from streaming.labels import RANKS, LabelConfig
from streaming.minibatch import MiniBatch

DAY_S = 86_400


@dataclass(frozen=True, kw_only=True)
class StreamConfig:
    """How the streaming benchmark trains and scores.

    Attributes:
        models: registered model names.
        methods: delayed-feedback methods (`vanilla` and `oracle` among them for the RI-AUC).
        rows: read only the first rows lines of the log (None: all).
        pretrain_days: days learnt with final labels before the stream starts.
        days: streaming days to score (None: every day up to the log's last full day).
        batch_size: rows per mini-batch, in label-time order.
        lr: Adagrad learning rate; none: each model's own (`ModelSpec.lr`).
        observation_window_s: the label logic's observation window (the joiner's default: 1 hour).
        attribution_window_s: the label logic's attribution window (the joiner's default: 30 days).
        buckets: model shape: hash buckets per field.
        hidden: model shape: tower widths.
        embed_dim: model shape: embedding size per field.
        n_types: capacity of the conversion-type vocabulary.
        n_scenarios: capacity of the display-scenario vocabulary.
        seed: initial weights.
    """

    models: tuple[str, ...] = ("esmm", "mmn")
    methods: tuple[str, ...] = delayed.names()
    rows: int | None = None
    pretrain_days: int = 30
    days: int | None = None
    batch_size: int = 1024
    lr: float | None = None
    observation_window_s: int = LabelConfig.observation_window_s
    attribution_window_s: int = LabelConfig.attribution_window_s
    buckets: int = 1 << 17
    hidden: tuple[int, ...] = (512, 256, 128, 128)
    embed_dim: int = 10
    n_types: int = 22
    n_scenarios: int = 18
    seed: int = 0

    def __post_init__(self) -> None:
        for name, known in (("models", zoo.names()), ("methods", delayed.names())):
            given = getattr(self, name)
            unknown = [n for n in given if n not in known]
            if not given or unknown:
                raise ConfigError(
                    f"StreamConfig.{name}: unknown {', '.join(unknown) or '(none given)'}; "
                    f"choose from {', '.join(known)}"
                )
        for name in (
            "pretrain_days",
            "batch_size",
            "buckets",
            "embed_dim",
            "n_types",
            "n_scenarios",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"StreamConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("observation_window_s", "attribution_window_s"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"StreamConfig.{name} must be >= 0 seconds, got {getattr(self, name)}"
                )
        for name in ("rows", "days"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"StreamConfig.{name} must be >= 1, got {getattr(self, name)}")
        if (self.lr is not None and not self.lr > 0) or not self.hidden or min(self.hidden) < 1:
            raise ConfigError(
                f"StreamConfig.lr must be > 0 and StreamConfig.hidden positive widths, got "
                f"{self.lr} and {self.hidden}"
            )
        self.labels()  # the windows' own rules

    def labels(self) -> LabelConfig:
        return LabelConfig(
            observation_window_s=self.observation_window_s,
            attribution_window_s=self.attribution_window_s,
        )

    def learner(self, model: str, method: str) -> LearnerConfig:
        return LearnerConfig(
            model=model,
            model_config=ModelConfig(
                n_fields=len(CRITEO_FEATURE_FIELDS),
                buckets=self.buckets,
                n_types=self.n_types,
                n_scenarios=self.n_scenarios,
                embed_dim=self.embed_dim,
                hidden=self.hidden,
            ),
            featurizer=FeaturizerConfig(buckets=self.buckets),
            lr=self.lr,
            method=method,
            seed=self.seed,
        )


@dataclass(frozen=True)
class Emitted:
    """The decisions one method takes about a set of clicks, in label-time order.

    row: position of the click in the log's columns; label_ts, kind, conversion: the decision.
    """

    row: np.ndarray
    label_ts: np.ndarray
    kind: np.ndarray
    conversion: np.ndarray


def emit(cols: SearchColumns, rows: np.ndarray, method: str, labels: LabelConfig) -> Emitted:
    """What `method`'s label logic decides about the clicks at `rows`, sorted by (time, rank, id)."""
    way = delayed.get(method)
    out_row, out_ts, out_kind, out_conv, out_rank = [], [], [], [], []
    for r in rows.tolist():
        click = int(cols.click_ts[r])
        record: dict = {"i": {"t": click}, "k": click}
        if cols.sale[r]:
            record["c"] = int(cols.conversion_ts[r])
        for d in way.decisions(record, str(cols.impression_id[r]), labels):
            if d.is_example:
                out_row.append(r)
                out_ts.append(d.label_ts)
                out_kind.append(d.name)
                out_conv.append(d.conversion)
                out_rank.append(RANKS[d.name])
    row = np.asarray(out_row, dtype=np.int64)
    label_ts = np.asarray(out_ts, dtype=np.int64)
    order = np.lexsort((cols.impression_id[row], np.asarray(out_rank), label_ts))
    return Emitted(
        row=row[order],
        label_ts=label_ts[order],
        kind=np.asarray(out_kind, dtype=object)[order],
        conversion=np.asarray(out_conv, dtype=np.uint8)[order],
    )


def rows_of(cols: SearchColumns, emitted: Emitted, start: int, stop: int) -> MiniBatch:
    """Decisions [start, stop) as the mini-batch the joiner would send."""
    pick = emitted.row[start:stop]
    return MiniBatch(
        partition=0,
        seq=0,
        watermark=int(emitted.label_ts[stop - 1]),
        end=False,
        impression_ids=[str(i) for i in cols.impression_id[pick]],
        user_ids=["-"] * len(pick),
        ts=cols.click_ts[pick].astype(np.int64),
        label_ts=emitted.label_ts[start:stop],
        click=np.ones(len(pick), dtype=np.uint8),
        conversion=emitted.conversion[start:stop],
        kinds=list(emitted.kind[start:stop]),
        conv_types=[cols.types[i] for i in cols.type_index[pick]],
        scenarios=[cols.scenarios[i] for i in cols.scenario_index[pick]],
        features={name: list(values[pick]) for name, values in cols.features.items()},
    )


def day_figures(learner: OnlineLearner, day: MiniBatch) -> dict[str, float]:
    """AUC, PR-AUC, log loss, calibration and mean domain AUC of the run's score on one day.

    Also `cvr_only_auc` and `ctr_only_auc`, the AUCs of p_cvr alone and of p_ctr alone: on
    click-only logs the CTR label is constant, the loss pins only p_ctr * p_cvr, and which
    tower holds the conversion signal is not identified (`ops.evaluation.offline`): either
    alone can rank conversions worse than the product, even backwards.
    """
    learner.model.eval()
    with torch.no_grad():
        logits = learner.model(learner.batch(day).to(learner.device))
        logits = type(logits)(logits.ctr.cpu(), logits.cvr.cpu())
        p = probability(logits, learner.score_rule).numpy()
    learner.model.train()
    labels = np.asarray(day.conversion, dtype=np.float64)
    report = domain_report(labels, p, day.conv_types, day.scenarios)
    overall = report["overall"]
    return {
        "auc": overall["auc"],
        "pr_auc": average_precision(labels, p),
        "log_loss": overall["logloss"],
        "calibration": overall["calibration"],
        "avg_domain_auc": report["avg_domain_auc"],
        "cvr_only_auc": exact_auc(labels, logits.cvr.numpy()),
        "ctr_only_auc": exact_auc(labels, logits.ctr.numpy()),
    }


def learn(
    learner: OnlineLearner, cols: SearchColumns, emitted: Emitted, lo: int, hi: int, batch_size: int
) -> None:
    """Step the learner through decisions [lo, hi) in mini-batches of batch_size."""
    for start in range(lo, hi, batch_size):
        learner.step(rows_of(cols, emitted, start, min(start + batch_size, hi)))


def pretrain(
    cols: SearchColumns,
    rows: np.ndarray,
    model: str,
    config: StreamConfig,
    device: torch.device | str = "cpu",
) -> tuple[OnlineLearner, dict | None]:
    """The model trained on device on rows' final labels in click order; and the auxiliary
    delay model's state trained on their delays (None if no method of config needs it)."""
    labels = config.labels()
    learner = OnlineLearner(config.learner(model, "oracle"), device)
    final = emit(cols, rows, "oracle", labels)
    learn(learner, cols, final, 0, len(final.row), config.batch_size)
    if not any(delayed.get(m).uses_aux for m in config.methods):
        return learner, None
    shape = learner.config.model_config
    aux = DelayLearner(
        shape.n_fields,
        shape.buckets,
        nominal_rows=learner.config.nominal_rows,
        optimizer=learner.config.optimizer,  # type: ignore[arg-type]  # resolved by LearnerConfig
        lr=learner.config.lr,  # type: ignore[arg-type]  # resolved by LearnerConfig
    )
    copies = emit(cols, rows, "es-dfm", labels)
    for start in range(0, len(copies.row), config.batch_size):
        stop = min(start + config.batch_size, len(copies.row))
        batch = rows_of(cols, copies, start, stop)
        ids = torch.from_numpy(learner.featurize.featurizer.columns(batch.features))
        aux.learn(ids, copies.kind[start:stop], copies.conversion[start:stop])
    return learner, aux.state()


def fork(pretrained: OnlineLearner, method: str, aux: dict | None) -> OnlineLearner:
    """A learner of `method` continuing from the pretrained one (through its snapshot state)."""
    state = pretrained.state()
    extra = state["extra"]
    state["extra"] = {**extra, "learner": {**extra["learner"], "method": method}}
    state[CHECKPOINT] = {**state[CHECKPOINT], "aux": aux}
    return OnlineLearner.from_state(state, pretrained.device)


def run_stream(
    cols: SearchColumns,
    config: StreamConfig,
    log: Callable[[str], None] = print,
    on_model: Callable[[dict], None] | None = None,
    device: torch.device | str = "cpu",
) -> dict:
    """Every model x method through the protocol, trained on device; figures averaged over
    the scored days.

    on_model: called with the result so far after each model (long runs keep partial results).
    """
    first = int(cols.click_ts.min())
    n_days = int((int(cols.click_ts.max()) - first) // DAY_S)  # full days only
    scored = n_days - config.pretrain_days - 1
    if config.days is not None:
        scored = min(scored, config.days)
    if scored < 1:
        raise ConfigError(
            f"the log spans {n_days} full days: too few for {config.pretrain_days} days of "
            "pretraining, a day of stream and a day to score"
        )
    edges = first + DAY_S * np.arange(config.pretrain_days, config.pretrain_days + scored + 2)
    order = np.argsort(cols.click_ts, kind="stable")
    split = int(np.searchsorted(cols.click_ts[order], edges[0]))
    stream_rows = order[split:][cols.click_ts[order[split:]] < edges[-1]]
    days = [window_rows(cols, int(a), int(b)) for a, b in zip(edges[1:-1], edges[2:], strict=True)]
    labels = config.labels()
    started = time.perf_counter()
    emitted = {m: emit(cols, stream_rows, m, labels) for m in config.methods}
    log(f"label logic: {len(stream_rows):,} stream clicks, {time.perf_counter() - started:.0f}s")
    result: dict = {"models": {}, "days_scored": scored, "config": _config_dict(config)}
    for model in config.models:
        started = time.perf_counter()
        pretrained, aux = pretrain(cols, order[:split], model, config, device)
        log(f"{model}: pretrained on {split:,} clicks in {time.perf_counter() - started:.0f}s")
        frozen = frozen_figures(pretrained, days)
        log(f"{model} frozen (no stream learning): AUC {frozen['auc']:.4f}")
        methods = {}
        for method in config.methods:
            started = time.perf_counter()
            methods[method] = _stream_one(
                fork(pretrained, method, aux), cols, emitted[method], edges, days, config
            )
            log(
                f"{model} {method}: AUC {methods[method]['auc']:.4f} "
                f"({time.perf_counter() - started:.0f}s)"
            )
        methods, lead = relative_improvements(methods)
        result["models"][model] = {
            "lr": pretrained.config.lr,
            "frozen": frozen,
            "oracle_lead": lead,
            "methods": methods,
        }
        if on_model is not None:
            on_model(result)
    return result


def frozen_figures(pretrained: OnlineLearner, days: list[MiniBatch]) -> dict:
    """The pretrained model scoring every day without learning from the stream: how much of
    any method's figure the stream itself adds."""
    per_day = [day_figures(pretrained, day) for day in days]
    return {
        "auc": float(np.nanmean([d["auc"] for d in per_day])),
        "log_loss": float(np.nanmean([d["log_loss"] for d in per_day])),
        "per_day_auc": [d["auc"] for d in per_day],
    }


def _stream_one(
    learner: OnlineLearner,
    cols: SearchColumns,
    emitted: Emitted,
    edges: np.ndarray,
    days: list[MiniBatch],
    config: StreamConfig,
) -> dict:
    cuts = np.searchsorted(emitted.label_ts, edges)
    before = learner.examples_seen
    per_day = []
    for k, day in enumerate(days):
        learn(learner, cols, emitted, int(cuts[k]), int(cuts[k + 1]), config.batch_size)
        per_day.append(day_figures(learner, day))
    mean = {key: float(np.nanmean([d[key] for d in per_day])) for key in per_day[0]}
    return {
        **mean,
        "trained_rows": learner.examples_seen - before,
        "per_day_auc": [d["auc"] for d in per_day],
        "per_day_log_loss": [d["log_loss"] for d in per_day],
    }


def _config_dict(config: StreamConfig) -> dict:
    return {
        "pretrain_days": config.pretrain_days,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "observation_window_s": config.observation_window_s,
        "attribution_window_s": config.attribution_window_s,
        "buckets": config.buckets,
        "hidden": list(config.hidden),
    }
