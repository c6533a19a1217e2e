"""The paper's offline experiment (Sec. 3, Table 3) on any CriteoSearchData-format file.

Rows sorted by click time, the first 70% train and the last 30% test (the paper's
chronological split). Every model is trained with Adagrad (PyTorch's or TensorFlow's, see
model.optimizers) on its own registered loss, in
time order, for `epochs` passes, once per seed; the score is the CVR AUC on the clicked
test rows of each conversion type and of each display scenario, and their average over
all type and scenario columns (a domain whose test rows hold one class only has no AUC
and is left out of the average). Where `truth.tsv` sits beside the data (synthetic logs),
the true probabilities give the oracle (Bayes-optimal) AUC in the same layout.

All rows of the Criteo search log are clicks, so the CTR label is constant there and the
CTR tower is not identified (model.losses): on such a log (`OfflineData.click_only`) every
model runs with `model.losses.click_only`, a constant CTR logit, so the CTR tower is
neither trained nor used and p_cvr is the score. Scores are log(p_ctr * p_cvr), which is
log p_cvr (up to a constant) on click-only logs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from model import zoo
from model.batch import Batch, Logits
from model.config import ModelConfig
from model.features import Featurizer, FeaturizerConfig
from model.optimizers import OPTIMIZERS, make_optimizer
from model.scoring import log_probability, rule_for, scored_logits
from ops.errors import ConfigError
from ops.evaluation.domains import COLUMNS, Masks, average_auc, by_domain
from ops.evaluation.intervals import REPLICATES, paired_intervals
from ops.metrics import exact_auc
from simulator.criteo_search import SearchColumns

REFERENCE = "mmn"  # the model every interval is measured against


@dataclass(frozen=True, kw_only=True)
class OfflineConfig:
    """How the experiment trains and scores.

    Attributes:
        models: registered model names to compare.
        seeds: runs per model (seeds 0..seeds-1 initialise the weights); results are averaged.
        rows: read only the first rows lines of the file (None: all).
        epochs: passes over the training rows, in time order (the paper: 1).
        batch_size: rows per mini-batch.
        optimizer: a name of model.optimizers.OPTIMIZERS (the paper: TensorFlow's Adagrad,
            `adagrad-tf`).
        lr: learning rate of every model when lr_grid is empty. 0.01 was the best of
            0.01/0.02/0.05/0.2/0.5 for both ESMM and MMN at batch 4096 on a validation split (rows
            49k-70k of a 100k-row synthetic log, trained on the first 49k).
        lr_grid: learning rates to choose from, per model, as the paper does (Sec. 3.1: the training
            rows split again 70/30 into an initial training set and a validation set): each model is
            trained with each rate on the first part (seed 0) and keeps the rate with the best
            validation average AUC for its runs on the full training part. The test rows are never
            looked at while choosing.
        validation_fraction: the chronological share of the training rows that validates.
        train_fraction: the chronological train share (the paper: 0.7).
        buckets: the models' hash buckets per field.
        hidden: the models' tower widths.
        replicates: paired bootstrap replicates of each model's interval against `mmn`
            (ops.evaluation.intervals; 0: no intervals).
    """

    models: tuple[str, ...]
    seeds: int = 3
    rows: int | None = None
    epochs: int = 1
    batch_size: int = 4096
    optimizer: str = "adagrad"
    lr: float = 0.01
    lr_grid: tuple[float, ...] = ()
    validation_fraction: float = 0.3
    train_fraction: float = 0.7
    buckets: int = 1 << 17
    hidden: tuple[int, ...] = (512, 256, 128, 128)
    replicates: int = REPLICATES

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"OfflineConfig.optimizer must be one of {', '.join(OPTIMIZERS)}, "
                f"got {self.optimizer!r}"
            )
        if self.replicates < 0:
            raise ConfigError(f"OfflineConfig.replicates must be >= 0, got {self.replicates}")
        unknown = [m for m in self.models if m not in zoo.names()]
        if not self.models or unknown:
            raise ConfigError(
                f"OfflineConfig.models: unknown {', '.join(unknown) or '(none given)'}; "
                f"registered: {', '.join(zoo.names())}"
            )
        for name in ("seeds", "epochs", "batch_size", "buckets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"OfflineConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.rows is not None and self.rows < 1:
            raise ConfigError(f"OfflineConfig.rows must be >= 1, got {self.rows}")
        if not self.lr > 0 or any(not lr > 0 for lr in self.lr_grid):
            raise ConfigError(
                f"OfflineConfig.lr and OfflineConfig.lr_grid must be > 0, got {self.lr} and "
                f"{self.lr_grid}"
            )
        for name in ("validation_fraction", "train_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ConfigError(
                    f"OfflineConfig.{name} must be in (0, 1), got {getattr(self, name)}"
                )
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"OfflineConfig.hidden must be positive widths, got {self.hidden}")


@dataclass(frozen=True, kw_only=True)
class OfflineData:
    """A log as model inputs: the whole file in click order, with domains "other" at index 0;
    its models train and score on `device` (the rows stay on the CPU, moved a batch at a time)."""

    batch: Batch
    type_names: tuple[str, ...]
    scenario_names: tuple[str, ...]
    p_true: np.ndarray | None = field(default=None)
    device: torch.device = field(default=torch.device("cpu"))

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def click_only(self) -> bool:
        """True when the log has no non-clicked row (the CTR tower is then not identified)."""
        return bool((self.batch.click >= 1).all())


def offline_data(
    cols: SearchColumns,
    config: OfflineConfig,
    *,
    p_true: np.ndarray | None = None,
    source: str = "the log",
) -> OfflineData:
    """A loaded log's columns (`simulator.criteo_search.load_columns`) as model inputs, with
    the true probabilities of its rows if known (`simulator.synth.truth_of`).

    source: where the columns were read (the file), for the message of a log too small.
    """
    if len(cols) < 2:
        raise ConfigError(f"{source}: {len(cols)} rows, too few to split into training and test")
    featurizer = Featurizer(FeaturizerConfig(buckets=config.buckets))
    ids = featurizer.columns(cols.features)
    # The reader puts "other" last; the models' vocabularies put it at 0 (model.vocab).
    n_t, n_s = len(cols.types), len(cols.scenarios)
    conv_type = (cols.type_index.astype(np.int64) + 1) % n_t
    scenario = (cols.scenario_index.astype(np.int64) + 1) % n_s
    sale = torch.from_numpy(cols.sale.astype(np.float32))
    batch = Batch.of(
        torch.from_numpy(ids),
        torch.from_numpy(conv_type),
        torch.from_numpy(scenario),
        click=torch.ones(len(sale)),
        conversion=sale,
    )
    return OfflineData(
        batch=batch,
        type_names=(cols.types[-1], *cols.types[:-1]),
        scenario_names=(cols.scenarios[-1], *cols.scenarios[:-1]),
        p_true=p_true,
    )


def table3(scores: np.ndarray, test: Batch, data: OfflineData) -> dict:
    """Per-type and per-scenario CVR AUC of scores on the clicked test rows, and their average."""
    clicked = test.click.numpy() == 1
    z, s = test.conversion.numpy()[clicked], scores[clicked]
    table = by_domain(z, s, _domain_masks(test, data, clicked), exact_auc)
    return {"avg_auc": average_auc(table), "overall_auc": exact_auc(z, s), **table}


def _label(kind: str, i: int) -> str:
    return f"{kind}_other" if i == 0 else f"{kind}{i}"


def fit(
    name: str, data: OfflineData, config: OfflineConfig, seed: int, *, lr: float, train_end: int
) -> torch.nn.Module:
    """Model `name` built with one seed and trained on rows [0, train_end), in eval mode."""
    spec = zoo.get(name)
    model_config = ModelConfig(
        n_fields=data.batch.ids.shape[1],
        buckets=config.buckets,
        n_types=len(data.type_names),
        n_scenarios=len(data.scenario_names),
        hidden=config.hidden,
    )
    torch.manual_seed(seed)
    model = spec.build(model_config).to(data.device)  # initialised on the CPU: same weights
    optimizer = make_optimizer(config.optimizer, model.parameters(), lr=lr)
    model.train()
    for _ in range(config.epochs):
        for start in range(0, train_end, config.batch_size):
            batch = data.batch.slice(start, min(start + config.batch_size, train_end))
            batch = batch.to(data.device)
            optimizer.zero_grad(set_to_none=True)
            spec.loss(forward(model, data, batch), batch).backward()
            optimizer.step()
    return model.eval()


def forward(model: torch.nn.Module, data: OfflineData, batch: Batch) -> Logits:
    """The model's logits on rows of data, with the constant CTR logit on click-only logs."""
    return scored_logits(model(batch), rule_for(data.click_only))


def train_and_score(
    name: str,
    data: OfflineData,
    config: OfflineConfig,
    seed: int,
    *,
    lr: float | None = None,
    rows: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """Train model `name` with one seed; log(p_ctr * p_cvr) of the rows after the training rows.

    lr: the learning rate (None: config.lr). rows: (train_end, score_start, score_end)
    (None: the train part, then the test part).
    """
    n_train = int(len(data) * config.train_fraction)
    train_end, score_start, score_end = rows or (n_train, n_train, len(data))
    rate = config.lr if lr is None else lr
    model = fit(name, data, config, seed, lr=rate, train_end=train_end)
    out = []
    with torch.no_grad():
        for start in range(score_start, score_end, 16384):
            chunk = data.batch.slice(start, min(start + 16384, score_end)).to(data.device)
            out.append(log_probability(forward(model, data, chunk), rule_for(data.click_only)))
    return torch.cat(out).cpu().numpy()


def tune_lr(
    name: str, data: OfflineData, config: OfflineConfig, log: Callable[[str], None] = print
) -> tuple[float, dict[str, float]]:
    """The rate of config.lr_grid with the best validation average AUC, and every rate's AUC.

    Trains on the first (1 - validation_fraction) of the training rows and scores the rest
    of them, seed 0; the test rows are not touched. Ties keep the earlier rate.
    """
    n_train = int(len(data) * config.train_fraction)
    n_fit = int(n_train * (1 - config.validation_fraction))
    validation = data.batch.slice(n_fit, n_train)
    scores: dict[str, float] = {}
    for lr in config.lr_grid:
        started = time.perf_counter()
        result = table3(
            train_and_score(name, data, config, 0, lr=lr, rows=(n_fit, n_fit, n_train)),
            validation,
            data,
        )
        scores[repr(lr)] = result["avg_auc"]
        log(
            f"{name} lr {lr:g}: validation avg AUC {result['avg_auc']:.4f} "
            f"({time.perf_counter() - started:.0f}s)"
        )
    defined = [lr for lr in config.lr_grid if not math.isnan(scores[repr(lr)])]
    if not defined:
        return config.lr, scores
    return max(defined, key=lambda lr: scores[repr(lr)]), scores  # max keeps the first of ties


def run_offline(
    data: OfflineData,
    config: OfflineConfig,
    log: Callable[[str], None] = print,
    on_model: Callable[[dict], None] | None = None,
) -> dict:
    """Every model x seed; means (and standard deviations over seeds) in the JSON layout.

    on_model: called with the result so far after each model (long runs keep partial results).
    """
    n_train = int(len(data) * config.train_fraction)
    test = data.batch.slice(n_train, len(data))
    model_config = ModelConfig(
        n_fields=data.batch.ids.shape[1],
        n_types=len(data.type_names),
        n_scenarios=len(data.scenario_names),
    )
    result = _header(data, config, n_train)
    if data.p_true is not None:
        result["oracle"] = table3(data.p_true[n_train:], test, data)
    test_scores: dict[str, list[np.ndarray]] = {}
    for name in config.models:
        spec = zoo.get(name)
        lr, tuning = tune_lr(name, data, config, log) if config.lr_grid else (config.lr, {})
        runs = []
        test_scores[name] = []
        for seed in range(config.seeds):
            started = time.perf_counter()
            test_scores[name].append(train_and_score(name, data, config, seed, lr=lr))
            runs.append(table3(test_scores[name][-1], test, data))
            log(
                f"{name} seed {seed} (lr {lr:g}): avg AUC {runs[-1]['avg_auc']:.4f} "
                f"({time.perf_counter() - started:.0f}s)"
            )
        result["models"][name] = {
            **_mean_of(runs),
            "avg_auc_std": float(np.std([r["avg_auc"] for r in runs])),
            "lr": lr,
            "validation_avg_auc": tuning,
            "param_sets": spec.param_sets(model_config),
            "datasets": spec.datasets(model_config),
        }
        if on_model is not None:
            on_model(result)
    if REFERENCE in test_scores and config.replicates > 0:
        started = time.perf_counter()
        for name, figures in _intervals(test, data, test_scores, config.replicates).items():
            result["models"][name].update(figures)
        log(f"intervals vs {REFERENCE}: {time.perf_counter() - started:.0f}s")
    return result


def _header(data: OfflineData, config: OfflineConfig, n_train: int) -> dict:
    """The result's layout before any model: sizes, settings and domain names."""
    return {
        "models": {},
        "rows": len(data),
        "train_rows": n_train,
        "config": {
            "seeds": config.seeds,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "optimizer": config.optimizer,
            "lr": config.lr,
            "lr_grid": list(config.lr_grid),
            "validation_fraction": config.validation_fraction,
            "buckets": config.buckets,
            "hidden": list(config.hidden),
            "replicates": config.replicates,
        },
        "domains": {
            "types": {_label("t", i): v for i, v in enumerate(data.type_names)},
            "scenarios": {_label("s", i): v for i, v in enumerate(data.scenario_names)},
        },
    }


def _intervals(
    test: Batch, data: OfflineData, test_scores: dict[str, list[np.ndarray]], replicates: int
) -> dict[str, dict]:
    """Each model's difference to REFERENCE and its interval, on the clicked test rows."""
    clicked = test.click.numpy() == 1
    return paired_intervals(
        test.conversion.numpy()[clicked],
        {name: [s[clicked] for s in runs] for name, runs in test_scores.items()},
        [m for key in COLUMNS for m in _domain_masks(test, data, clicked)[key].values()],
        REFERENCE,
        replicates=replicates,
    )


def _domain_masks(test: Batch, data: OfflineData, clicked: np.ndarray) -> Masks:
    """Row masks (over the clicked test rows) of Table 3's type and scenario columns, every
    domain of the log named `_label` (one the test rows lack has an empty mask)."""
    t_idx, s_idx = test.conv_type.numpy()[clicked], test.scenario.numpy()[clicked]
    return {
        "per_type": {_label("t", i): t_idx == i for i in range(len(data.type_names))},
        "per_scenario": {_label("s", i): s_idx == i for i in range(len(data.scenario_names))},
    }


def _mean_of(runs: list[dict]) -> dict:
    return {
        "avg_auc": float(np.mean([r["avg_auc"] for r in runs])),
        "overall_auc": float(np.mean([r["overall_auc"] for r in runs])),
        "per_type": {
            k: float(np.mean([r["per_type"][k] for r in runs])) for k in runs[0]["per_type"]
        },
        "per_scenario": {
            k: float(np.mean([r["per_scenario"][k] for r in runs])) for k in runs[0]["per_scenario"]
        },
    }
