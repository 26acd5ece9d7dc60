"""The fast header parser agrees with pydicom, and steps aside when it cannot help."""

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


#: VRs whose values the fast parser leaves as the walker reads them (the reader uses none).
_SKIPPED_VRS = {"AT", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ", "UR"}


def _agree(fast: dict[str, Any], full: Any) -> int:
    """Every value of ``full`` that the fast parser converts is equal in ``fast``; returns
    how many were compared."""
    compared = 0
    for element in full:
        if not element.keyword or element.keyword in (
            "PixelData",
            "PerFrameFunctionalGroupsSequence",
        ):
            continue
        assert element.keyword in fast, element.keyword
        if element.VR == "SQ":
            assert len(fast[element.keyword]) == len(element.value)
            for mine, theirs in zip(fast[element.keyword], element.value, strict=True):
                compared += _agree(mine, theirs)
        elif element.VR not in _SKIPPED_VRS:
            value = (
                None
                if element.value in (None, "") and element.VR in ("DS", "IS")
                else element.value
            )
            assert fast[element.keyword] == _plain(value), element.keyword
            compared += 1
    return compared


def _check_agrees(path: Path) -> None:
    fast = fastparse.read(path)
    assert fast is not None, path
    full = pydicom.dcmread(path)
    groups = fast.get("PerFrameFunctionalGroupsSequence", [])
    kept = fastparse.KEPT_GROUPS
    every = full.get("PerFrameFunctionalGroupsSequence") or []
    expected = [{k: v for k, v in _item(g).items() if k in kept} for g in every]
    assert groups == expected
    assert bytes(fast.PixelData) == full.PixelData
    assert fast.file_meta.TransferSyntaxUID == full.file_meta.TransferSyntaxUID
    assert _agree(fast, full) > 10


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
