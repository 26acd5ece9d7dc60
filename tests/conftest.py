"""Shared test fixtures: paths to bundled fixtures and to the shared real-world data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
#: Real files from public projects, beside the repository (``../shared/data``).
SHARED_DATA = Path(os.environ.get("SEGIO_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The shared real-world data folder; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


# CI must be reproducible: the same examples on every run (random exploration stays for
# developers, whose finds hypothesis replays from its local database).
if os.environ.get("CI"):
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None)
    settings.load_profile("ci")


@pytest.fixture
def dicom_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of the DICOM fast paths themselves: they run even in the second pass of
    the DICOM tests, which ``make test`` makes with ``SEGIO_DICOM_FAST=0``."""
    monkeypatch.delenv("SEGIO_DICOM_FAST", raising=False)
