"""A synthetic conversion log in the exact CriteoSearchData format, with its true probabilities.

The generative model (`simulator.synth_model`) makes MMN's problem real: skewed domain
frequencies (product_category1 holds the conversion type, product_country the display
scenario), per-domain rates fitted to the configured ones, type- and scenario-specific
feature effects over shared structure, type-dependent delays within the 30-day window,
drift, the real file's leak columns and a little timestamp disorder.

Files written to DIR by `write`:

- `CriteoSearchData`: 23 tab-separated columns, no header, exactly the real format:
  32-character uppercase hex hashes, -1 for missing values; product_price != 0 exactly
  when Sale == 1, SalesAmountInEuro > 0 iff a sale (-1 otherwise), time_delay -1 iff no
  sale. Lines are in click order except for the disordered few.
- `truth.tsv`: header `line<TAB>p_sale`; the true probability that line `line` (1-based)
  has Sale == 1.
- `domains.tsv`: header `kind<TAB>domain<TAB>values<TAB>share<TAB>rate<TAB>mean_delay_s`;
  one row per generative type and scenario: its value hashes (comma-separated; the last
  domain of each kind is the tail of rare values a reader maps to "other"), share of
  rows, the sale rate it was fitted to, and (types) the mean conversion delay.
- with `full_funnel`: the log is the clicked subset of a stream of impressions, and
  `impressions.tsv` (header `ts, clicked, p_click, p_sale, line` then the 18 feature
  columns) lists every impression in time order: `line` is its line in CriteoSearchData
  when clicked (0 otherwise), `p_sale` the conversion probability given a click.

>>> log = generate(2_000, seed=1)
>>> len(log.columns["Sale"]), len(log.columns)
(2000, 23)
>>> all(len(v) == 32 for v in log.columns["product_category1"])
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.columns import COLUMNS, FEATURE_FIELDS
from simulator.errors import SourceError
from simulator.synth_model import (
    DAY_S,
    WINDOW_S,
    LatentModel,
    SynthConfig,
    SynthConfigError,
    cardinality,
    domain_probs,
    fit_offsets,
    offset_for_mean,
    scenario_targets,
    sigmoid,
    zipf_probs,
)
from streaming.events import OTHER_DOMAIN

_CHUNK = 100_000
MAX_FUNNEL_IMPRESSIONS = 5_000_000


@dataclass(frozen=True, kw_only=True)
class Funnel:
    """Every impression of the full-funnel variant, in time order."""

    ts: np.ndarray
    clicked: np.ndarray
    p_click: np.ndarray
    p_sale: np.ndarray
    line: np.ndarray
    features: dict[str, list[str]]


@dataclass(frozen=True, kw_only=True)
class SynthLog:
    """A generated log in memory: its 23 text columns, the truth and the domain table."""

    columns: dict[str, list[str]]
    p_sale: np.ndarray
    domains: list[tuple[str, str, str, float, float, float]]
    funnel: Funnel | None = None


def _hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n 32-character uppercase hex strings, like the real file's hashed values."""
    words = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    return np.array([f"{a:016X}{b:016X}" for a, b in words.tolist()], dtype=object)


class _Vocab:
    """The text of every value: index 0 is missing (-1), then one hash per value."""

    def __init__(self, config: SynthConfig, rng: np.random.Generator, rows: int) -> None:
        self.fields: dict[str, np.ndarray] = {}
        for spec in config.fields:
            hashes = _hashes(rng, cardinality(spec, rows))
            self.fields[spec.name] = np.concatenate([np.array(["-1"], dtype=object), hashes])
        self.types = _hashes(rng, len(config.type_rates) - 1 + config.type_tail)
        self.scenarios = _hashes(rng, len(config.scenario_rates) - 1 + config.scenario_tail)
        n_products = len(self.fields["product_id"])
        partners = _hashes(rng, 300)
        self.partner_of_product = partners[rng.choice(300, size=n_products, p=zipf_probs(300, 1.0))]
        tokens = _hashes(rng, 4000)
        lengths = rng.integers(1, 7, size=n_products)
        picks = rng.choice(4000, size=int(lengths.sum()), p=zipf_probs(4000, 1.0))
        words = tokens[picks].tolist()
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        titles = [" ".join(words[a:b]) for a, b in zip(starts, ends, strict=True)]
        self.title_of_product = np.array(titles, dtype=object)
        self.title_of_product[rng.random(n_products) < 0.05] = "-1"


@dataclass(frozen=True, kw_only=True)
class _Items:
    """Drawn impressions as index arrays: domain values, feature values, nb_clicks_1week."""

    type_value: np.ndarray
    scenario_value: np.ndarray
    values: dict[str, np.ndarray]
    nb_clicks: np.ndarray

    def take(self, keep: np.ndarray | slice) -> _Items:
        return _Items(
            type_value=self.type_value[keep],
            scenario_value=self.scenario_value[keep],
            values={k: v[keep] for k, v in self.values.items()},
            nb_clicks=self.nb_clicks[keep],
        )


def _draw_items(config: SynthConfig, rng: np.random.Generator, rows: int, n: int) -> _Items:
    """Domains and feature values of n impressions."""
    n_types, n_scen = len(config.type_rates), len(config.scenario_rates)
    t_probs = domain_probs(n_types - 1, config.type_tail, config.type_zipf, config.tail_weight)
    s_probs = domain_probs(
        n_scen - 1, config.scenario_tail, config.scenario_zipf, config.tail_weight
    )
    type_value = rng.choice(len(t_probs), size=n, p=t_probs)
    scenario_value = rng.choice(len(s_probs), size=n, p=s_probs)
    values = {}
    for spec in config.fields:
        card = cardinality(spec, rows)
        drawn = rng.choice(card, size=n, p=zipf_probs(card, spec.zipf)) + 1
        if spec.missing > 0:
            drawn[rng.random(n) < spec.missing] = 0
        values[spec.name] = drawn
    nb_clicks = rng.geometric(0.15, size=n) - 1
    nb_clicks[rng.random(n) < 0.2] = -1
    return _Items(
        type_value=type_value, scenario_value=scenario_value, values=values, nb_clicks=nb_clicks
    )


def _funnel_items(
    config: SynthConfig, rng: np.random.Generator, rows: int, model: LatentModel
) -> tuple[_Items, np.ndarray, np.ndarray]:
    """Impressions up to the rows-th click: items, clicked mask, p_click."""
    pool = math.ceil(rows / config.ctr * 1.3) + 100
    while True:
        items = _draw_items(config, rng, rows, pool)
        s = np.minimum(items.scenario_value, len(config.scenario_rates) - 1)
        score = model.ctr_score(items.values, s)
        p_click = sigmoid(score + offset_for_mean(score, config.ctr))
        clicked = rng.random(pool) < p_click
        cum = np.cumsum(clicked)
        if cum[-1] >= rows:
            # Impressions are i.i.d., so stopping at the rows-th click biases nothing.
            keep = int(np.searchsorted(cum, rows)) + 1
            return items.take(slice(0, keep)), clicked[:keep], p_click[:keep]
        pool *= 2


def generate(
    rows: int, *, seed: int, config: SynthConfig | None = None, full_funnel: bool = False
) -> SynthLog:
    """Draw a log of `rows` clicks from the generative model; deterministic for a seed."""
    config = config or SynthConfig()
    _check_size(rows, config, full_funnel)
    rng = np.random.default_rng(seed)
    model = LatentModel(config, rng, rows)
    vocab = _Vocab(config, rng, rows)
    if full_funnel:
        items, clicked, p_click = _funnel_items(config, rng, rows, model)
    else:
        items = _draw_items(config, rng, rows, rows)
        clicked, p_click = np.ones(rows, dtype=bool), np.ones(rows)
    n = len(clicked)
    n_types, n_scen = len(config.type_rates), len(config.scenario_rates)
    t = np.minimum(items.type_value, n_types - 1)
    s = np.minimum(items.scenario_value, n_scen - 1)
    span = config.days * DAY_S
    ts = config.start_ts + np.sort(rng.integers(0, span, size=n))
    phase = config.drift_angle * (ts - config.start_ts) / span
    score = model.cvr_score(items.values, t, s, phase, items.nb_clicks)
    delay_mean = np.asarray(config.delay_days) * DAY_S
    window = 1.0 - np.exp(-WINDOW_S / delay_mean)
    rows_idx = np.flatnonzero(clicked)
    targets = scenario_targets(config, t[rows_idx], s[rows_idx])
    a, b = fit_offsets(
        score[rows_idx], t[rows_idx], s[rows_idx], window, np.asarray(config.type_rates), targets
    )
    p_sale = sigmoid(score + a[t] + b[s]) * window[t]
    moved = rng.random(n) < config.disorder_share
    ts[moved] += rng.integers(-config.disorder_s, config.disorder_s + 1, size=int(moved.sum()))

    row_items = items.take(rows_idx)
    rt = t[rows_idx]
    sale, delay, price, amount = _sales(rng, p_sale[rows_idx], delay_mean[rt], window[rt])

    features = _feature_text(vocab, row_items)
    columns = {
        "Sale": np.where(sale, "1", "0").tolist(),
        "SalesAmountInEuro": _where_sale(sale, amount, "-1"),
        "time_delay_for_conversion": _where_sale(sale, delay, "-1"),
        "click_timestamp": ts[rows_idx].astype(str).tolist(),
        "product_price": _where_sale(sale, price, "0"),
        **features,
    }
    funnel = None
    if full_funnel:
        line = np.zeros(n, dtype=np.int64)
        line[rows_idx] = np.arange(1, rows + 1)  # the click's line in CriteoSearchData
        funnel = Funnel(
            ts=ts, clicked=clicked, p_click=p_click, p_sale=p_sale, line=line,
            features=_feature_text(vocab, items),
        )  # fmt: skip
    return SynthLog(
        columns={name: columns[name] for name in COLUMNS},
        p_sale=p_sale[rows_idx],
        domains=_domain_table(config, vocab, rt, s[rows_idx], targets),
        funnel=funnel,
    )


def _check_size(rows: int, config: SynthConfig, full_funnel: bool) -> None:
    if rows < 1:
        raise SynthConfigError(f"rows must be at least 1, got {rows}")
    if full_funnel and rows / config.ctr > MAX_FUNNEL_IMPRESSIONS:
        raise SynthConfigError(
            f"a full funnel of {rows:,} clicks at a {config.ctr:.0%} click rate needs about "
            f"{rows / config.ctr:,.0f} impressions in memory (limit {MAX_FUNNEL_IMPRESSIONS:,}); "
            "use fewer rows or a higher ctr"
        )


def _sales(
    rng: np.random.Generator, p_sale: np.ndarray, delay_mean: np.ndarray, window: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per click: sale, delay (s), price and amount; p_sale, delay_mean and window per click."""
    rows = len(p_sale)
    sale = rng.random(rows) < p_sale
    # The delay given a conversion within the window: an exponential truncated at 30 days.
    u = rng.random(rows)
    delay = np.ceil(-delay_mean * np.log1p(-u * window)).astype(np.int64)
    delay = np.clip(delay, 1, WINDOW_S)
    price = np.maximum(np.round(np.exp(rng.normal(3.0, 0.9, size=rows)), 2), 0.5)
    amount = np.round(price * rng.geometric(0.6, size=rows), 2)
    return sale, delay, price, amount


def _where_sale(sale: np.ndarray, values: np.ndarray, otherwise: str) -> list[str]:
    out = [otherwise] * len(sale)
    for i, v in zip(np.flatnonzero(sale).tolist(), values[sale].tolist(), strict=True):
        out[i] = str(v)
    return out


def _feature_text(vocab: _Vocab, items: _Items) -> dict[str, list[str]]:
    """The 18 feature columns of the items as the real file writes them."""
    values = items.values
    product = values["product_id"]
    text = {name: vocab.fields[name][idx].tolist() for name, idx in values.items()}
    text["nb_clicks_1week"] = items.nb_clicks.astype(str).tolist()
    text["product_category1"] = vocab.types[items.type_value].tolist()
    text["product_country"] = vocab.scenarios[items.scenario_value].tolist()
    text["product_title"] = vocab.title_of_product[product].tolist()
    text["partner_id"] = vocab.partner_of_product[product].tolist()
    return {name: text[name] for name in FEATURE_FIELDS}


def _domain_table(
    config: SynthConfig, vocab: _Vocab, t: np.ndarray, s: np.ndarray, scen_targets: np.ndarray
) -> list[tuple[str, str, str, float, float, float]]:
    table = []
    n_types, n_scen = len(config.type_rates), len(config.scenario_rates)
    for kind, idx, n_dom, names, rates in (
        ("type", t, n_types, vocab.types, config.type_rates),
        ("scenario", s, n_scen, vocab.scenarios, scen_targets),
    ):
        share = np.bincount(idx, minlength=n_dom) / len(idx)
        for d in range(n_dom):
            hashes = names[d:] if d == n_dom - 1 else names[d : d + 1]
            delay = config.delay_days[d] * DAY_S if kind == "type" else 0.0
            label = OTHER_DOMAIN if d == n_dom - 1 else str(d)
            table.append((kind, label, ",".join(hashes), float(share[d]), float(rates[d]), delay))
    return table


def write(log: SynthLog, out_dir: Path) -> list[Path]:
    """Write the log, its truth, its domain table (and the funnel) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data, truth, domains = (
        out_dir / "CriteoSearchData",
        out_dir / "truth.tsv",
        out_dir / "domains.tsv",
    )
    cols = [log.columns[name] for name in COLUMNS]
    _write_rows(data, cols, header=None)
    ids = [str(i) for i in range(1, len(log.p_sale) + 1)]
    _write_rows(truth, [ids, _floats(log.p_sale)], header=TRUTH_HEADER)
    with domains.open("w") as f:
        f.write("kind\tdomain\tvalues\tshare\trate\tmean_delay_s\n")
        for kind, label, values, share, rate, delay in log.domains:
            f.write(f"{kind}\t{label}\t{values}\t{share:.6f}\t{rate:.6f}\t{delay:.0f}\n")
    paths = [data, truth, domains]
    if log.funnel is not None:
        funnel = log.funnel
        path = out_dir / "impressions.tsv"
        cols = [
            funnel.ts.astype(str).tolist(),
            funnel.clicked.astype(int).astype(str).tolist(),
            _floats(funnel.p_click),
            _floats(funnel.p_sale),
            funnel.line.astype(str).tolist(),
            *(funnel.features[name] for name in FEATURE_FIELDS),
        ]
        _write_rows(
            path, cols, header=["ts", "clicked", "p_click", "p_sale", "line", *FEATURE_FIELDS]
        )
        paths.append(path)
    return paths


def _floats(values: np.ndarray) -> list[str]:
    return np.char.mod("%.6g", values).tolist()


def _write_rows(path: Path, cols: list[list[str]], header: list[str] | None) -> None:
    n = len(cols[0])
    with path.open("w", newline="\n") as f:
        if header is not None:
            f.write("\t".join(header) + "\n")
        for start in range(0, n, _CHUNK):
            part = [c[start : start + _CHUNK] for c in cols]
            f.write("\n".join(map("\t".join, zip(*part, strict=True))) + "\n")


TRUTH_HEADER = ["line", "p_sale"]


def read_truth(path: Path) -> np.ndarray:
    """The true sale probability by line number (index 0 unused, NaN) from a `truth.tsv`.

    A file of another layout (a foreign `truth.tsv` beside a data file) is a SourceError
    naming the file and what was expected.
    """
    try:
        with open(path) as handle:
            header = handle.readline().rstrip("\n").split("\t")
            if header != TRUTH_HEADER:
                raise SourceError(
                    f"{path}: line 1 is {header!r}, expected the header {TRUTH_HEADER!r} of the "
                    "synthetic generator's truth file; move the file away or regenerate it"
                )
            table = np.loadtxt(handle, delimiter="\t", ndmin=2)
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: not a truth file of two columns (line, p_sale): {exc}") from exc
    if table.size == 0:
        return np.full(1, np.nan)
    lines = table[:, 0]
    if table.shape[1] != 2 or lines.min() < 1 or not np.all(lines == np.floor(lines)):
        raise SourceError(f"{path}: expected two columns (line >= 1, p_sale) in every row")
    by_line = np.full(int(lines.max()) + 1, np.nan)
    by_line[lines.astype(np.int64)] = table[:, 1]
    return by_line


def truth_of(log: Path, impression_ids: np.ndarray) -> np.ndarray | None:
    """The true sale probability of each of impression_ids (line numbers of the log file),
    from the `truth.tsv` beside the log (a synthetic one); None where there is no such file.

    A truth file with fewer lines than the log belongs to another log: a SourceError.
    """
    truth = Path(log).parent / "truth.tsv"
    if not truth.exists():
        return None
    by_line = read_truth(truth)
    if int(impression_ids.max(initial=0)) >= len(by_line):
        raise SourceError(
            f"{truth} holds {len(by_line) - 1:,} lines, fewer than {log}: it belongs to "
            "another data file; move it away or regenerate both"
        )
    return by_line[impression_ids]
