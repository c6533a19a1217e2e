"""open_source: the CLI's mapping from a source name to a reader."""

from __future__ import annotations

import pytest

from simulator.errors import SourceError
from simulator.sources import open_source
from simulator.synth import generate, write


def test_synthetic_folder_and_custom_domain_columns(tmp_path):
    write(generate(500, seed=1), tmp_path)
    source = open_source(
        "synthetic", tmp_path, type_field="device_type", scenario_field="product_country"
    )
    assert len(source) == 500 and len(source.types) <= 21
    assert next(iter(source.rows())).conv_type in source.types


def test_unknown_source_is_named(tmp_path):
    with pytest.raises(SourceError, match="unknown source 'parquet'"):
        open_source("parquet", tmp_path)
