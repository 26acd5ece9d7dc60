"""The fast per-frame parser agrees with pydicom, and steps aside when it cannot help."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from segio_plugins.dicom_seg import fastparse

import segio
from segio.model import Segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation


def _write(segmentation: Segmentation, path: Path, **options: Any) -> Path:
    series = reference_series(segmentation.require_geometry(), path.parent / "series")
    return segio.write(segmentation, path, reference=series, **options)[0]


def _plain(value: Any) -> Any:
    """pydicom values as plain Python, to compare with the fast parser's dicts."""
    if isinstance(value, pydicom.Sequence):
        return [_item(item) for item in value]
    if isinstance(value, pydicom.multival.MultiValue | list):
        return [_plain(v) for v in value]
    if isinstance(value, float | int):
        return value
    return str(value)


def _item(dataset: Any) -> dict[str, Any]:
    return {element.keyword: _plain(element.value) for element in dataset}


def _check_agrees(path: Path) -> None:
    fast = fastparse.read(path)
    assert fast is not None, path
    dataset, groups = fast
    full = pydicom.dcmread(path)
    assert groups == [_item(g) for g in full.PerFrameFunctionalGroupsSequence]
    assert dataset.PixelData == full.PixelData
    assert "PerFrameFunctionalGroupsSequence" not in dataset
    assert dataset.SOPInstanceUID == full.SOPInstanceUID


@pytest.mark.parametrize("seg_type", ["binary", "labelmap", "fractional"])
def test_fast_groups_equal_pydicom_on_our_files(tmp_path: Path, seg_type: str) -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=seg_type != "labelmap")
    _write(segmentation, tmp_path / "s.dcm", seg_type=seg_type)
    _check_agrees(tmp_path / "s.dcm")


def test_fast_groups_equal_pydicom_on_shared_files(shared_data: Path) -> None:
    checked = 0
    for path in sorted(shared_data.rglob("*")):
        if not path.is_file() or path.suffix not in (".dcm", ".seg"):
            continue
        head = path.read_bytes()[:4096]
        if b"1.2.840.10008.5.1.4.1.1.66" not in head:
            continue
        if fastparse.read(path) is None:
            continue  # implicit VR, compressed, or no per-frame groups: pydicom reads it
        _check_agrees(path)
        checked += 1
    assert checked >= 5


def test_implicit_vr_falls_back_to_pydicom(tmp_path: Path) -> None:
    _write(small_segmentation(), tmp_path / "s.dcm")
    dataset = pydicom.dcmread(tmp_path / "s.dcm")
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    dataset.save_as(tmp_path / "implicit.dcm", enforce_file_format=True)
    assert fastparse.read(tmp_path / "implicit.dcm") is None
    a, b = segio.read(tmp_path / "s.dcm"), segio.read(tmp_path / "implicit.dcm")
    for key in a.segments:
        assert np.array_equal(a.mask(key), b.mask(key))


def test_damaged_sequence_falls_back(tmp_path: Path) -> None:
    _write(small_segmentation(), tmp_path / "s.dcm")
    data = bytearray((tmp_path / "s.dcm").read_bytes())
    start = data.find(b"\x00\x52\x30\x92SQ\x00\x00")
    data[start + 12 : start + 16] = b"\x01\x02\x03\x04"  # not an item tag
    (tmp_path / "bad.dcm").write_bytes(bytes(data))
    assert fastparse.read(tmp_path / "bad.dcm") is None
    with contextlib.suppress(segio.SegioError):  # pydicom reads it now; no other error
        segio.read(tmp_path / "bad.dcm")
