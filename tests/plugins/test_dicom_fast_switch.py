"""The DICOM fast paths: ``SEGIO_DICOM_FAST=0`` turns them off, their fallbacks are logged.

The fast paths (the struct walker for series headers, the SEG per-frame groups, the
RTSTRUCT contours) step aside silently for what they do not read, so a bug that makes
them step aside too often would only cost time. Hence the switch, with which ``make
test`` runs the DICOM tests on pydicom alone too, and a debug log line per fallback.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from segio_plugins.dicom_seg import fastparse
from segio_plugins.rtstruct import reader as rt_reader

import segio
from segio.dicom import walker
from segio.dicom.series import read_image_series
from segio.dicom.walker import FAST_SWITCH
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A SEG, an RTSTRUCT and the CT series both refer to."""
    segmentation = small_segmentation()
    series = reference_series(segmentation.require_geometry(), tmp_path / "ct")
    seg = segio.write(segmentation, tmp_path / "s.seg.dcm", reference=series)[0]
    rt = segio.write(segmentation, tmp_path / "s.rtstruct.dcm", reference=series)[0]
    return seg, rt, series


def _count_fast_paths(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of the three fast functions, still doing their work."""
    calls: Counter[str] = Counter()
    for owner, name in (
        (walker, "read_part10"),
        (fastparse, "read"),
        (rt_reader, "_fast_read"),
    ):
        original = getattr(owner, name)

        def counted(
            *args: Any, _name: str = name, _original: Callable[..., Any] = original, **kw: Any
        ) -> Any:
            calls[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(owner, name, counted)
    return calls


def _read_all(seg: Path, rt: Path, series: Path) -> list[Any]:
    return [
        segio.read(seg, reference=series),
        segio.read(rt, reference=series),
        read_image_series(series).geometry,
    ]


@pytest.mark.usefixtures("dicom_fast_path")
def test_the_switch_sends_every_dicom_read_through_pydicom(
    files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fast_paths(monkeypatch)
    fast = _read_all(*files)
    assert set(calls) == {"read_part10", "read", "_fast_read"}, "each fast path ran"
    calls.clear()
    monkeypatch.setenv(FAST_SWITCH, "0")
    slow = _read_all(*files)
    assert not calls, f"fast paths ran with {FAST_SWITCH}=0: {dict(calls)}"
    assert_same_segmentation(fast[0], slow[0])
    assert_same_segmentation(fast[1], slow[1])
    assert fast[2] == slow[2]


@pytest.mark.usefixtures("dicom_fast_path")
def test_a_fallback_is_logged_with_its_reason(
    files: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seg, rt, series = files
    implicit = tmp_path / "implicit.seg.dcm"
    dataset = pydicom.dcmread(seg)
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    dataset.save_as(implicit, enforce_file_format=True)
    cyrillic = tmp_path / "cyrillic.rtstruct.dcm"
    dataset = pydicom.dcmread(rt)
    dataset.SpecificCharacterSet = "ISO_IR 144"  # not one of the walker's character sets
    dataset.save_as(cyrillic)
    slice_file = sorted(series.iterdir())[0]
    dataset = pydicom.dcmread(slice_file)
    dataset.SpecificCharacterSet = "ISO_IR 144"
    dataset.save_as(slice_file)
    with caplog.at_level(logging.DEBUG, logger="segio"):
        segio.read(implicit)
        segio.read(cyrillic)
        read_image_series(series)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("segio")]
    assert any(str(implicit) in line and "transfer syntax" in line for line in lines), lines
    assert any(str(cyrillic) in line and "ISO_IR 144" in line for line in lines), lines
    assert any(str(slice_file) in line and "image header" in line for line in lines), lines
