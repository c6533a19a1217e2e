"""The store's defaults that a command's `--help` shows: importable without SQLAlchemy or torch."""

from __future__ import annotations

DEFAULT_URL = "sqlite:///runs/registry.db"
