"""How a report names domains and numbers: unique short prefixes of hashed values, signed figures.

Domain values of a real log are 32-character hashes: a report shows each as its shortest
prefix of at least `MIN_PREFIX` characters that no other value of its column shares, and
gives the full values in a legend (text), on hover (HTML) and in JSON. The "other" domain
of each column is named with its column, since both columns have one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from streaming.events import OTHER_DOMAIN

MIN_PREFIX = 8
KINDS = (("per_type", "type"), ("per_scenario", "scenario"))


def short_labels(values: Iterable[str], *, longest: int | None = None) -> dict[str, str]:
    """Each value's shortest unique prefix of at least MIN_PREFIX characters.

    A prefix longer than `longest` is cut to it, ending in `#k` (k: the value's place among
    the sorted values) so that it stays unique.

    >>> short_labels(["0310A13CC16ABD51", "0310A13CFFFF0000", "381290EB094C12F6", "t1"])
    {'0310A13CC16ABD51': '0310A13CC', '0310A13CFFFF0000': '0310A13CF', '381290EB094C12F6': '381290EB', 't1': 't1'}
    >>> short_labels(["category-electronics-phones", "category-electronics-tv"], longest=12)
    {'category-electronics-phones': 'category-e#0', 'category-electronics-tv': 'category-e#1'}
    """
    ordered = sorted(set(values))
    out = {}
    for k, value in enumerate(ordered):
        shared = max(
            (len(os.path.commonprefix([value, other])) for other in ordered if other != value),
            default=0,
        )
        label = value[: max(MIN_PREFIX, shared + 1)]
        if longest is not None and len(label) > longest:
            tag = f"#{k}"
            label = value[: longest - len(tag)] + tag
        out[value] = label
    return out


def domain_name(kind: str, value: str, label: str) -> str:
    """A domain's label within its section; "other" says which column's.

    >>> domain_name("type", "other", "other"), domain_name("scenario", "0E98B93A77", "0E98B93A")
    ('other type', '0E98B93A')
    """
    return f"{OTHER_DOMAIN} {kind}" if value == OTHER_DOMAIN else label


def signed(value: float | None, digits: int = 4) -> str:
    """A difference with its sign, or "-" when undefined.

    >>> signed(0.01234), signed(None), signed(float("nan"))
    ('+0.0123', '-', '-')
    """
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.{digits}f}"


def plain(value: float | None, digits: int = 4) -> str:
    """A figure, or "-" when undefined."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def interval(ci: list[float | None] | tuple[float | None, ...], digits: int = 4) -> str:
    """A 95% interval as [lo, hi].

    >>> interval([-0.0282, 0.0191])
    '[-0.0282, +0.0191]'
    """
    lo, hi = ci
    return f"[{signed(lo, digits)}, {signed(hi, digits)}]"


def p_value(p: float | None) -> str:
    """A p- or q-value in at most 7 characters.

    >>> p_value(0.04567), p_value(4.16e-24), p_value(None)
    ('0.046', '4e-24', '-')
    """
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.0e}"
