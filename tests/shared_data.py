"""Where the tests find the real datasets of ``../shared/data``, and what happens without them.

``require_shared_data("camvid", "trainannot")`` returns ``<repo>/../shared/data/camvid`` when
it (and the listed entries inside it) exist. When they do not, the test is skipped with the
missing path as reason, except under ``CI=true`` (any of ``1``, ``true``, ``yes``), where the
data is always provided: there the test fails with the same message. ``SHARED_DATA`` in the
environment replaces ``<repo>/../shared/data``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``$SHARED_DATA``, or ``<repo>/../shared/data``."""
    return Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_shared_data(name: str, *entries: str) -> Path:
    """The dataset folder ``name`` of the shared data, or skip (fail under CI) without it."""
    root = shared_data_root() / name
    missing = [p for p in [root] + [root / e for e in entries] if not p.exists()]
    if missing:
        message = f"{name} data not found at {missing[0]} (set SHARED_DATA to its parent folder)"
        if in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    return root
