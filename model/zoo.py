"""Imports every model module so that each registers itself (see model.registry)."""

from __future__ import annotations
