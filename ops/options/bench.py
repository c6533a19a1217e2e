"""What every benchmark of `mmn bench` takes: `--json FILE` for its figures."""

from __future__ import annotations

from dataclasses import dataclass

from ops.options.values import OutputFile


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    """The options of one benchmark: a subclass adds its own (`mmn bench` writes `json`)."""

    json: OutputFile = None
    """also write the figures here"""
