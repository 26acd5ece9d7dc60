"""The RTSTRUCT fast path (struct walk of the whole file, no pydicom) agrees with pydicom
bit for bit, on our files and the shared ones, and steps aside when it cannot help."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from segio_plugins.rtstruct import reader

import segio
from segio.dicom.walker import FAST_SWITCH
from segio.errors import ReadError
from segio.model import Segmentation
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, synthetic_segmentation

SHARED = [
    "rt-utils/tests/mock_data/rt.dcm",
    "rt-utils/tests/mock_data/invalid_reference_rt.dcm",
    "rt-utils/tests/mock_data/non_existent_reference_rt.dcm",
    "rt-utils/tests/empty/dummy_rt.dcm",
    "pydicom/src/pydicom/data/test_files/rtstruct.dcm",
]


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One of our structure sets (holes, islands, overlaps) and its series."""
    root = tmp_path_factory.mktemp("own")
    geometry = grid("oblique", (9, 44, 36))
    seg = synthetic_segmentation(geometry=geometry, n_segments=8, overlapping=True, seed=3)
    series = reference_series(geometry, root / "ct")
    path = root / "own.rtstruct.dcm"
    segio.write(seg, path, reference=series)
    return path, series


def _explicit(source: Path, target: Path) -> Path:
    """``source`` re-encoded as explicit VR little endian with a file meta (values kept)."""
    ds = pydicom.dcmread(source, force=True)
    ds.ensure_file_meta()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rt-utils' file has an invalid UID; kept as it is
        ds.save_as(target, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return target


def _check_agrees(path: Path) -> None:
    """The fast contours are pydicom's, numbers bit for bit; the header's values too."""
    fast = reader._fast_read(path.read_bytes())
    assert fast is not None
    header, contours = fast
    full = pydicom.dcmread(path, force=True)
    expected = reader._pydicom_contours(full)
    assert len(contours) == len(expected)
    for (number, color, items), (number_, color_, items_) in zip(contours, expected, strict=True):
        assert (number, color) == (number_, color_)
        assert len(items) == len(items_)
        for (kind, points, uid, count), (kind_, points_, uid_, count_) in zip(
            items, items_, strict=True
        ):
            assert (kind, uid, count) == (kind_, uid_, count_)
            assert points.dtype == points_.dtype and points.shape == points_.shape
            assert np.array_equal(points.view(np.int64), points_.view(np.int64))
    assert "ROIContourSequence" not in header
    _same_values(header, full, skip={"ROIContourSequence"})


def _same_values(header: Any, dataset: Any, skip: set[str] = set()) -> None:  # noqa: B006
    """Every public element of ``dataset`` has the same value in the walked ``header``."""
    for element in dataset:
        name = element.keyword
        if not name or name in skip or element.tag.is_private:
            continue
        got, want = header[name], element.value
        if element.VR == "SQ":
            assert len(got) == len(want), name
            for a, b in zip(got, want, strict=True):
                _same_values(a, b)
        elif element.VR in ("DS", "IS") and want not in (None, ""):
            assert np.array_equal(np.ravel(got).astype(float), np.ravel(want).astype(float)), name
        elif isinstance(want, pydicom.multival.MultiValue):
            assert [str(v) for v in got] == [str(v) for v in want], name
        elif isinstance(want, bytes):
            assert got == want, name
        else:
            assert str("" if got is None else got) == str("" if want is None else want), name


def _read_both(
    path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any
) -> tuple[tuple[Segmentation, list[str]], tuple[Segmentation, list[str]]]:
    """The read with the fast path and with pydicom alone, each with its warnings."""
    results = []
    for fast in (True, False):
        with monkeypatch.context() as patch:
            if not fast:
                patch.setenv(FAST_SWITCH, "0")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                seg = segio.read(path, format="rtstruct", **options)
            results.append((seg, [str(w.message) for w in caught]))
    return results[0], results[1]


def _same_contours(a: Segmentation, b: Segmentation) -> None:
    assert [repr(s) for s in a.segments.values()] == [repr(s) for s in b.segments.values()]
    assert a.provenance == b.provenance
    assert a.reference_geometry == b.reference_geometry
    for key in a.contours:
        for ca, cb in zip(a.contours[key], b.contours[key], strict=True):
            assert (ca.kind, ca.image_uid) == (cb.kind, cb.image_uid)
            assert np.array_equal(ca.points, cb.points)


def test_own_file_agrees(own: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path, series = own
    _check_agrees(path)
    (fast, fast_warnings), (slow, slow_warnings) = _read_both(path, monkeypatch)
    assert fast_warnings == slow_warnings
    assert_same_segmentation(fast, slow)
    (fast, _), (slow, _) = _read_both(path, monkeypatch, reference=series)
    assert_same_segmentation(fast, slow)
    (fast, _), (slow, _) = _read_both(path, monkeypatch, keep_contours=True)
    _same_contours(fast, slow)


@pytest.mark.parametrize("name", SHARED)
def test_shared_files_agree(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    source = shared_data / name
    if source.read_bytes()[128:132] != b"DICM":  # no file meta: pydicom reads it
        assert reader._fast_read(source.read_bytes()) is None
    else:  # implicit VR as they are
        _check_agrees(source)
    # Re-encoded as explicit VR, the fast path reads them exactly as pydicom does.
    path = _explicit(source, tmp_path / "explicit.dcm")
    _check_agrees(path)
    (fast, fast_warnings), (slow, slow_warnings) = _read_both(path, monkeypatch)
    assert fast_warnings == slow_warnings
    _same_contours(fast, slow)


def _patched(path: Path, old: bytes, new: bytes, target: Path) -> Path:
    data = path.read_bytes()
    assert old in data
    start = data.index(old)
    target.write_bytes(data[:start] + new + data[start + len(new) :])
    return target


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A multi-valued CS (pydicom gives a MultiValue, str() of which is a list).
        (b"CLOSED_PLANAR ", b"CLOSED\\PLANAR "),
        # A CS pydicom warns about (lower case), read by pydicom so that it still does.
        (b"CLOSED_PLANAR ", b"closed_planar "),
        # The ROI Contour Sequence's length beyond the end of the file.
        (b"\x06\x309\x00SQ\x00\x00", b"\x06\x309\x00SQ\x00\x00\xff\xff\xff\x7f"),
    ],
)
def test_falls_back_on_what_it_does_not_read(
    own: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    old: bytes,
    new: bytes,
) -> None:
    path = _patched(own[0], old, new, tmp_path / "odd.dcm")
    assert reader._fast_read(path.read_bytes()) is None
    try:
        (fast, fast_warnings), (slow, slow_warnings) = _read_both(path, monkeypatch)
    except ReadError:
        return  # pydicom could not read it either
    assert fast_warnings == slow_warnings
    _same_contours(fast, slow)


def test_fallback_on_odd_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own: Any) -> None:
    """IS values pydicom reads differently from int(), or not at all, go to pydicom."""
    ds = pydicom.dcmread(own[0])
    item = ds.ROIContourSequence[0]
    item["ROIDisplayColor"].value = 255  # one number: pydicom's value is not a list
    path = tmp_path / "one-colour.dcm"
    ds.save_as(path)
    assert reader._fast_read(path.read_bytes()) is None
    with pytest.raises(ReadError):
        segio.read(path, format="rtstruct")


def test_implicit_vr_is_walked_and_cut_files_go_to_pydicom(
    own: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = pydicom.dcmread(own[0])
    implicit = tmp_path / "implicit.dcm"
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    ds.save_as(implicit)
    _check_agrees(implicit)
    (fast, _), (slow, _) = _read_both(implicit, monkeypatch)
    assert len(fast.segments) == 8
    assert_same_segmentation(fast, slow)
    data = own[0].read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: data.index(b"\x06\x30\x39\x00") + 5000])
    assert reader._fast_read(cut.read_bytes()) is None
    with pytest.raises(ReadError):
        segio.read(cut, format="rtstruct")


@pytest.mark.usefixtures("dicom_fast_path")
def test_reading_needs_no_pydicom(own: tuple[Path, Path]) -> None:
    """The fast path is also the light one: a structure set and its series without pydicom."""
    import subprocess
    import sys

    code = (
        "import sys, warnings, segio; warnings.simplefilter('ignore'); "
        f"seg = segio.read({str(own[0])!r}, format='rtstruct', reference={str(own[1])!r}); "
        "assert len(seg.segments) == 8; print('pydicom' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("where", "value"),
    [("ReferencedSOPInstanceUID", "1.2.03"), ("ReferencedROINumber", "1234567890123")],
)
def test_values_pydicom_warns_about_go_to_pydicom(
    own: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    value: str,
) -> None:
    """An invalid UID, an IS longer than 12: pydicom reads them, warning as it always has."""
    ds = pydicom.dcmread(own[0])
    item = ds.ROIContourSequence[0]
    target = item if where == "ReferencedROINumber" else item.ContourSequence[0]
    if where == "ReferencedSOPInstanceUID":
        target = target.ContourImageSequence[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target[where].value = value
        path = tmp_path / "odd.dcm"
        ds.save_as(path)
    assert reader._fast_read(path.read_bytes()) is None
    (fast, fast_warnings), (slow, slow_warnings) = _read_both(path, monkeypatch)
    assert fast_warnings == slow_warnings
    if where == "ReferencedSOPInstanceUID":
        assert any("Invalid value" in m for m in fast_warnings)
    _same_contours(fast, slow)
