"""The fast SEG read (walker header, bits straight into the layers) against pydicom's path.

Every file is read twice, with ``SEGIO_DICOM_FAST`` on and off, and the two results must be
the same value by value: layers (values, dtype, grid), segments (every field), terminology,
provenance, extras, warnings; or the same error. Crafted files check that the fast path
steps aside (``fastparse.read`` gives None) or refuses as the plain path does.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from segio_plugins.dicom_seg import bitlayers, fastparse, reader

import segio
from segio.errors import SegioError
from segio.labels.packing import FirstFitPacker
from segio.model import Segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, synthetic_segmentation

FAST = "SEGIO_DICOM_FAST"
SEG_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")


def _write(segmentation: Segmentation, path: Path, **options: Any) -> Path:
    series = reference_series(segmentation.require_geometry(), path.parent / "series")
    return segio.write(segmentation, path, reference=series, **options)[0]


def _read(path: Path, monkeypatch: pytest.MonkeyPatch, switch: str) -> tuple[Any, list[str]]:
    monkeypatch.setenv(FAST, switch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: Any = segio.read(path)
        except SegioError as exc:
            result = exc
    return result, [str(w.message) for w in caught]


def _same(a: Segmentation, b: Segmentation) -> None:
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers, strict=True):
        assert x.array.dtype == y.array.dtype and np.array_equal(x.array, y.array)
        assert np.array_equal(x.geometry.ijk_to_lps, y.geometry.ijk_to_lps)
        assert x.geometry.shape == y.geometry.shape and x.max_fraction == y.max_fraction
    assert list(a.segments) == list(b.segments)
    for key in a.segments:
        for field in dataclasses.fields(a.segments[key]):
            mine, theirs = (
                getattr(a.segments[key], field.name),
                getattr(b.segments[key], field.name),
            )
            assert type(mine) is type(theirs) and repr(mine) == repr(theirs), field.name
    assert a.source_representation == b.source_representation
    assert dict(a.provenance) == dict(b.provenance)
    assert {k: dict(v) for k, v in a.extras.items()} == {k: dict(v) for k, v in b.extras.items()}
    for value in (*a.provenance.values(), *a.extras["dicom-seg"].values()):
        assert type(value) is str
    if a.reference_geometry is None or b.reference_geometry is None:
        assert a.reference_geometry is b.reference_geometry
    else:
        assert np.array_equal(a.reference_geometry.ijk_to_lps, b.reference_geometry.ijk_to_lps)


def check_both(
    path: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool | None = True, quiet: bool = False
) -> Segmentation | SegioError:
    """Read ``path`` both ways; equal results (or errors). ``fast``: whether fastparse
    must read the header (True), must step aside (False), or either (None)."""
    if fast is not None:
        assert (fastparse.read(path) is not None) is fast
    mine, mine_warned = _read(path, monkeypatch, "1")
    theirs, their_warned = _read(path, monkeypatch, "0")
    if not quiet:
        assert mine_warned == their_warned
    if isinstance(theirs, SegioError):
        assert type(mine) is type(theirs) and str(mine) == str(theirs)
        return theirs
    assert isinstance(mine, Segmentation), mine
    _same(mine, theirs)
    return mine


# -- files segio writes ------------------------------------------------------------------


@pytest.mark.parametrize("seg_type", ["binary", "labelmap", "fractional"])
@pytest.mark.parametrize(
    ("kind", "shape"),
    [("oblique", None), ("anisotropic", None), ("oblique", (5, 8, 24)), ("axial", (4, 16, 8))],
)
def test_our_files_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seg_type: str, kind: str, shape: Any
) -> None:
    """Odd frame sizes (bits across frames) and byte-aligned ones (straight into layers)."""
    segmentation = synthetic_segmentation(
        n_segments=6,
        geometry=grid(kind, shape),
        overlapping=seg_type != "labelmap",
        empty_segments=1,
        seed=3,
    )
    path = _write(segmentation, tmp_path / "s.dcm", seg_type=seg_type)
    direct: list[Any] = []

    def spy(*args: Any) -> Any:
        direct.append(bitlayers.binary_layers(*args))
        return direct[-1]

    monkeypatch.setattr(reader, "binary_layers", spy)
    found = check_both(path, monkeypatch)
    assert isinstance(found, Segmentation)
    if seg_type == "binary" and shape is not None:  # frames start on a byte
        assert len(direct) == 1 and direct[0] is not None
        assert len(found.layers) > 1  # the overlap was split across layers on both paths
    else:
        assert all(found is None for found in direct)


@pytest.mark.parametrize("undefined", [False, True])
def test_frames_missing_and_out_of_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, undefined: bool
) -> None:
    """Frames of a segment not consecutive in the file, and slices with no frame; the
    per-frame groups of defined length (segio, highdicom) or undefined (dcmqi, DCMTK)."""
    segmentation = synthetic_segmentation(
        n_segments=4, geometry=grid("oblique", (6, 8, 16)), overlapping=True, seed=5
    )
    path = _write(segmentation, tmp_path / "s.dcm", seg_type="binary")
    ds = pydicom.dcmread(path)
    count, size = int(ds.NumberOfFrames), int(ds.Rows) * int(ds.Columns) // 8
    keep = [n for n in range(count) if n % 5 != 2][::-1]  # drop some, reverse the rest
    frames = [ds.PixelData[n * size : (n + 1) * size] for n in keep]
    groups = [ds.PerFrameFunctionalGroupsSequence[n] for n in keep]
    ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(groups)
    ds.NumberOfFrames, ds.PixelData = len(keep), b"".join(frames)
    if undefined:
        ds["PerFrameFunctionalGroupsSequence"].is_undefined_length = True
        for group in groups:
            group.is_undefined_length_sequence_item = True
            for element in group:
                element.is_undefined_length = True
                for item in element.value:
                    item.is_undefined_length_sequence_item = True
    ds.save_as(tmp_path / "sparse.dcm")
    delimiters = (tmp_path / "sparse.dcm").read_bytes().count(b"\xfe\xff\xdd\xe0")
    assert (delimiters > len(keep)) is undefined
    assert isinstance(check_both(tmp_path / "sparse.dcm", monkeypatch), Segmentation)


def test_text_read_as_pydicom_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leading spaces kept, multi-valued text joined, UTF-8 names, IS as written."""
    segmentation = synthetic_segmentation(n_segments=3, geometry=grid("axial", (3, 8, 8)))
    path = _write(segmentation, tmp_path / "s.dcm", seg_type="binary")
    ds = pydicom.dcmread(path)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SegmentSequence[0].SegmentLabel = "  Leber \u00e9"
    ds.SegmentSequence[1].SegmentDescription = "d\u00e9j\u00e0 vu"
    ds.SoftwareVersions = ["1.0", "beta"]
    ds.SeriesNumber = "0"
    ds.save_as(tmp_path / "text.dcm")
    found = check_both(tmp_path / "text.dcm", monkeypatch)
    assert isinstance(found, Segmentation)
    assert found.extras["dicom-seg"]["SoftwareVersions"] == "1.0\\beta"
    assert next(s.name for s in found.segments.values()) == "  Leber \u00e9"


def test_real_files_read_the_same(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = 0
    for path in sorted(shared_data.rglob("*")):
        if not path.is_file() or path.suffix not in (".dcm", ".seg"):
            continue
        head = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        if str(head.get("SOPClassUID", "")) not in SEG_CLASSES:
            continue
        check_both(path, monkeypatch, fast=None, quiet=True)
        fast += fastparse.read(path) is not None
    assert fast >= 5


# -- files the fast path must not read, or must refuse as pydicom's path does --------------


def _valid(tmp_path: Path) -> tuple[Path, bytes]:
    segmentation = synthetic_segmentation(n_segments=3, geometry=grid("oblique", (4, 8, 16)))
    path = _write(segmentation, tmp_path / "s.dcm", seg_type="binary")
    return path, path.read_bytes()


def _pixel_element(data: bytes) -> int:
    return data.rfind(b"\xe0\x7f\x10\x00OB")


def test_truncated_pixel_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = _valid(tmp_path)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - 20])
    assert isinstance(check_both(cut, monkeypatch, fast=False), SegioError)


def test_pixel_length_past_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = _valid(tmp_path)
    at = _pixel_element(data)
    longer = bytearray(data)
    longer[at + 8 : at + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    (tmp_path / "long.dcm").write_bytes(bytes(longer))
    assert isinstance(check_both(tmp_path / "long.dcm", monkeypatch, fast=False), SegioError)


@pytest.mark.parametrize(
    "change",
    [
        {"NumberOfFrames": 40},  # more frames than the bits hold
        {"Rows": 65535, "Columns": 65535},  # a huge frame: refused, nothing that size allocated
        {"Rows": 4},  # fewer bits than Pixel Data: frames misplaced, same on both paths
    ],
)
def test_declared_sizes_against_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, int]
) -> None:
    path, _ = _valid(tmp_path)
    ds = pydicom.dcmread(path)
    for keyword, value in change.items():
        setattr(ds, keyword, value)
    ds.save_as(tmp_path / "sizes.dcm")
    check_both(tmp_path / "sizes.dcm", monkeypatch)


@pytest.mark.parametrize(
    "change",
    [
        lambda ds: setattr(ds, "SoftwareVersions", ["1.0 ", "2"]),  # space before a backslash
        lambda ds: setattr(ds.SegmentSequence[0], "SegmentLabel", "caf\u00e9"),  # no charset
        lambda ds: setattr(ds, "SeriesNumber", "+7"),  # an IS pydicom keeps as written
        lambda ds: setattr(ds, "PhotometricInterpretation", "PALETTE COLOR"),
        lambda ds: ds.file_meta.__setattr__(
            "TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian
        ),
    ],
)
def test_values_left_to_pydicom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Any
) -> None:
    path, _ = _valid(tmp_path)
    ds = pydicom.dcmread(path)
    change(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(tmp_path / "odd.dcm")
    check_both(tmp_path / "odd.dcm", monkeypatch, fast=False, quiet=True)


def test_text_of_another_vr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dictionary text element written as UN: pydicom reads it by the dictionary's VR."""
    _, data = _valid(tmp_path)
    at = data.find(b"\x08\x00\x70\x00LO")  # Manufacturer
    assert at > 0
    length = int.from_bytes(data[at + 6 : at + 8], "little")
    element = b"\x08\x00\x70\x00UN\x00\x00" + length.to_bytes(4, "little")
    changed = data[:at] + element + data[at + 8 :]
    (tmp_path / "un.dcm").write_bytes(changed)
    check_both(tmp_path / "un.dcm", monkeypatch, fast=False, quiet=True)


def test_delimiter_inside_a_defined_length_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sequence delimiter (then an empty item) before the end of a functional group of
    defined length: the group ends where its length says, or pydicom reads the file."""
    _, data = _valid(tmp_path)
    groups = data.find(b"\x00\x52\x30\x92SQ\x00\x00")
    plane = data.find(b"\x20\x00\x13\x91SQ\x00\x00", groups)
    end = plane + 12 + int.from_bytes(data[plane + 8 : plane + 12], "little")
    inserted = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00" + b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
    changed = bytearray(data[:end] + inserted + data[end:])
    for at in (groups + 8, groups + 16, plane + 8):  # the lengths that hold the group
        length = int.from_bytes(changed[at : at + 4], "little")
        changed[at : at + 4] = (length + len(inserted)).to_bytes(4, "little")
    (tmp_path / "delimiter.dcm").write_bytes(bytes(changed))
    check_both(tmp_path / "delimiter.dcm", monkeypatch, fast=False, quiet=True)


def test_damaged_frame_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = _valid(tmp_path)
    position = data.find(b"\x20\x00\x13\x91SQ")  # a Plane Position Sequence in a frame
    broken = bytearray(data)
    broken[position + 4 : position + 6] = b"UN"  # now a value, not a sequence
    (tmp_path / "bad.dcm").write_bytes(bytes(broken))
    check_both(tmp_path / "bad.dcm", monkeypatch, fast=False, quiet=True)


# -- bits straight into layers against the packer ------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_bit_layers_equal_first_fit_packing(dtype: type[np.unsignedinteger[Any]]) -> None:
    rng = np.random.default_rng(7)
    depth, rows, cols = 9, 8, 24
    numbers = [3, 1, 300, 7] if dtype == np.uint16 else [3, 1, 200, 7]
    frames, segment, k = [], [], []
    for number in numbers:
        slices = rng.choice(depth, size=5, replace=False)  # out of order, with gaps
        for slice_ in slices:
            frames.append(rng.random((rows, cols)) < 0.3)
            segment.append(number)
            k.append(int(slice_))
    order = rng.permutation(len(frames))  # frames of a segment interleaved with others
    stack = np.asarray(frames)[order]
    segment_array, k_array = np.asarray(segment)[order], np.asarray(k)[order]
    packed = np.packbits(stack.ravel(), bitorder="little")
    found = bitlayers.binary_layers(
        packed, (rows, cols), segment_array, k_array, (depth, rows, cols), numbers, dtype
    )
    assert found is not None
    layers, where = found
    packer = FirstFitPacker((depth, rows, cols), dtype)
    expected = {}
    for number in numbers:
        mask = np.zeros((depth, rows, cols), dtype=bool)
        chosen = np.flatnonzero(segment_array == number)
        mask[k_array[chosen]] = stack[chosen]
        expected[number] = (packer.place_voxels(np.flatnonzero(mask), number), number)
    assert where == expected and len(layers) == len(packer.layers) > 1
    for mine, theirs in zip(layers, packer.layers, strict=True):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


def test_bit_layers_step_aside() -> None:
    one = np.ones(1, dtype=np.intp)
    packed = np.zeros(10, dtype=np.uint8)
    assert bitlayers.binary_layers(packed, (3, 5), one, one, (2, 3, 5), [1], np.uint8) is None
    count = bitlayers.MAX_LAYERS + 1  # every segment covers the same voxel
    packed = np.full(count * 2, 1, dtype=np.uint8)
    segment = np.arange(1, count + 1, dtype=np.intp)
    found = bitlayers.binary_layers(
        packed, (4, 4), segment, np.zeros(count, dtype=np.intp), (1, 4, 4), list(segment), np.uint8
    )
    assert found is None
