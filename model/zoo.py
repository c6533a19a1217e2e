"""Imports every model module so that each registers itself (see model.registry)."""

from __future__ import annotations

import model.baselines  # noqa: F401
import model.masked  # noqa: F401
import model.mmn  # noqa: F401
