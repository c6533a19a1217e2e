"""Open a log by the kind of source: the CLI's one place that maps a name to a reader."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TypeVar

from simulator.criteo_attribution import AttributionConfig, AttributionLog
from simulator.criteo_search import CriteoSearchConfig, SearchLog
from simulator.errors import SourceError
from simulator.records import LogSource

SOURCES = ("criteo-search", "criteo-attribution", "synthetic")


def open_source(
    kind: str,
    path: Path,
    *,
    type_field: str | None = None,
    scenario_field: str | None = None,
) -> LogSource:
    """The log at `path` as a time-ordered source.

    criteo-search: a CriteoSearchData file. synthetic: the same format, as written by
    `mmn data synth` (the folder or its CriteoSearchData file). criteo-attribution: the
    impression-level attribution file (.tsv or .tsv.gz). type_field /
    scenario_field: the domain columns (None: the source's defaults).
    """
    path = Path(path)
    if kind not in SOURCES:
        raise SourceError(f"unknown source {kind!r}; choose one of {', '.join(SOURCES)}")
    if kind == "criteo-attribution":
        return AttributionLog(path, _domains(AttributionConfig(), type_field, scenario_field))
    if path.is_dir():
        path = path / "CriteoSearchData"
    return SearchLog(path, _domains(CriteoSearchConfig(), type_field, scenario_field))


ConfigT = TypeVar("ConfigT", AttributionConfig, CriteoSearchConfig)


def _domains(config: ConfigT, type_field: str | None, scenario_field: str | None) -> ConfigT:
    """config with the domain columns that were given (None keeps its default)."""
    return dataclasses.replace(
        config,
        type_field=config.type_field if type_field is None else type_field,
        scenario_field=config.scenario_field if scenario_field is None else scenario_field,
    )
