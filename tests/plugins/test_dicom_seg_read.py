"""DICOM SEG reader: every public SEG we have reads, and agrees with highdicom voxel for voxel.

Small synthetic SEGs built here with pydicom (no shared data needed) pin the rules that
matter most: label value = Segment Number, overlap split into layers, odd frame sizes
whose bits straddle frames, oblique grids, LABELMAP background, fractions, compressed
frames, and a ReadError for every kind of broken file.
"""

from __future__ import annotations

import shutil
import time
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from segio_plugins.dicom_seg.reader import read as read_seg

import segio
from segio.errors import GeometryError, MissingDependencyError, ReadError
from segio.model import Segmentation
from segio.representations import Representation

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"  # Deflated Image Frame Compression (DICOM 2025a)
HD_FILES = "highdicom/data/test_files"
DCMQI = "dcmqi/data/segmentations"

#: Where segio deliberately differs from highdicom 0.28.2 ``get_volume`` (beyond the slice
#: order: highdicom's volumes run k against the slice normal so that (slice, row, column)
#: is right-handed; segio's k ascends along the normal, as ``slice_grid`` and image series
#: readers do, so every comparison flips highdicom's volume first).
DELIBERATE_DIFFERENCES: dict[str, str] = {
    f"{DCMQI}/sparse-labelmap-noppv.dcm": "background: segment #0 'Background' (no Pixel "
    "Padding Value) is a highdicom channel; segio reads number 0 as background, no segment",
    f"{DCMQI}/sparse-labelmap-ppv5.dcm": "background as above (PPV 5 matches no segment), and "
    "highdicom's number_of_segments is off by one (1 for segments [0, 1])",
    f"{HD_FILES}/seg_image_sm_control_labelmap.dcm": "highdicom's number_of_segments is off by "
    "one for LABELMAP (19 for 20 segments); the PPV segment #0 is background in both",
    f"{HD_FILES}/seg_image_sm_control_labelmap_palette_color.dcm": "as the MONOCHROME2 "
    "labelmap: number_of_segments off by one",
    f"{HD_FILES}/seg_image_cr_binary.dcm": "no Frame of Reference: highdicom's get_volume "
    "fails; segio reads one 2D slice on an identity grid (compared with the raw frame)",
}


# -- a tiny SEG builder ---------------------------------------------------------------------


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _round(values: Any) -> list[float]:
    return [round(float(v), 6) for v in np.ravel(values)]


def build_seg(
    path: Path,
    seg_type: str,
    frames: NDArray[Any],
    positions: NDArray[np.float64],
    *,
    segments: Sequence[int],
    frame_segments: Sequence[int] | None = None,
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    spacing: Sequence[float] = (1.0, 1.0),
    between: float | None = None,
    bits: int | None = None,
    ppv: int | None = None,
    max_fraction: int = 255,
    fractional_type: str = "PROBABILITY",
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Path:
    """Write a SEG whose frame n is ``frames[n]`` at ``positions[n]``, of segment n."""
    count, rows, cols = frames.shape
    bits = bits or {"BINARY": 1, "FRACTIONAL": 8}.get(seg_type, 8)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = UID(LABELMAP_STORAGE if seg_type == "LABELMAP" else SEG_STORAGE)
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.Modality, ds.PatientName, ds.PatientID = "SEG", "Test^Patient", "P1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.SeriesDescription, ds.ContentLabel, ds.ContentCreatorName = "synthetic", "TEST", "Doe^J"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, count
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.SegmentationType = seg_type
    if seg_type == "FRACTIONAL":
        ds.SegmentationFractionalType, ds.MaximumFractionalValue = fractional_type, max_fraction
    if ppv is not None:
        ds.PixelPaddingValue = ppv
    items = []
    for number in segments:
        item = Dataset()
        item.SegmentNumber, item.SegmentLabel = number, f"segment {number}"
        item.SegmentAlgorithmType = "MANUAL"
        item.SegmentedPropertyCategoryCodeSequence = [_code("85756007", "SCT", "Tissue")]
        item.SegmentedPropertyTypeCodeSequence = [_code("10200004", "SCT", "Liver")]
        item.RecommendedDisplayCIELabValue = [30000 + number % 1000, 32768, 32768]
        items.append(item)
    ds.SegmentSequence = DicomSequence(items)
    shared = Dataset()
    orient = Dataset()
    orient.ImageOrientationPatient = _round(orientation)
    measures = Dataset()
    measures.PixelSpacing = _round(spacing)
    measures.SliceThickness = between or 1.0
    if between is not None:
        measures.SpacingBetweenSlices = between
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orient], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    pointers = [(0x0020_0032, 0x0020_9113)]  # Image Position (Patient), Plane Position
    if frame_segments is not None:
        pointers.insert(0, (0x0062_000B, 0x0062_000A))  # Referenced Segment Number
    dimensions, organization = [], generate_uid()
    for index, group_pointer in pointers:
        dimension = Dataset()
        dimension.DimensionOrganizationUID = organization
        dimension.DimensionIndexPointer, dimension.FunctionalGroupPointer = index, group_pointer
        dimensions.append(dimension)
    ds.DimensionIndexSequence = dimensions
    order = np.argsort(
        np.asarray(positions, dtype=float) @ np.cross(orientation[:3], orientation[3:])
    )
    rank = np.empty(count, dtype=int)
    rank[order] = np.arange(1, count + 1)
    groups = []
    for n in range(count):
        group, plane, content = Dataset(), Dataset(), Dataset()
        plane.ImagePositionPatient = _round(positions[n])
        group.PlanePositionSequence = [plane]
        values = (
            [int(rank[n])] if frame_segments is None else [int(frame_segments[n]), int(rank[n])]
        )
        content.DimensionIndexValues = values
        group.FrameContentSequence = [content]
        if frame_segments is not None:
            ident = Dataset()
            ident.ReferencedSegmentNumber = int(frame_segments[n])
            group.SegmentIdentificationSequence = [ident]
        groups.append(group)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(groups)
    if transfer_syntax == RLELossless:
        pixels = np.ascontiguousarray(frames, dtype=f"u{bits // 8}")
        ds.compress(RLELossless, pixels[0] if count == 1 else pixels)
    elif transfer_syntax == DEFLATED_FRAMES:  # pydicom 3.0 can neither write nor read it
        from pydicom.encaps import encapsulate

        packed = [np.packbits(f.ravel(), bitorder="little").tobytes() for f in frames]
        ds.PixelData = encapsulate([_raw_deflate(f) for f in packed])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless  # same padded length: patched below
        ds.save_as(path, enforce_file_format=True)
        data = path.read_bytes().replace(
            JPEG2000Lossless.encode(), DEFLATED_FRAMES.encode() + b"\0"
        )
        path.write_bytes(data)
        return path
    else:
        ds.PixelData = _native(frames, bits)
        ds["PixelData"].VR = "OW" if bits == 16 else "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def _raw_deflate(data: bytes) -> bytes:
    squash = zlib.compressobj(9, zlib.DEFLATED, -15)
    return squash.compress(data) + squash.flush()


def _native(frames: NDArray[Any], bits: int) -> bytes:
    if bits == 1:
        raw = np.packbits(frames.astype(bool).ravel(), bitorder="little").tobytes()
    else:
        raw = frames.astype(f"<u{bits // 8}").tobytes()
    return raw + b"\0" * (len(raw) % 2)


def _rotation() -> NDArray[np.float64]:
    a, b = np.radians(25.0), np.radians(-15.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rotation: NDArray[np.float64] = rz @ rx
    return rotation


def _oblique_grid(depth: int, step: float = 2.0) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """ijk_to_lps of an oblique, anisotropic grid, and build_seg keywords for it."""
    axes = _rotation()
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = axes[:, 0] * 0.6, axes[:, 1] * 0.8, axes[:, 2]
    matrix[:3, 2] *= step
    matrix[:3, 3] = (-12.5, 40.25, 7.0)
    options = {"orientation": np.concatenate([axes[:, 0], axes[:, 1]]), "spacing": (0.8, 0.6)}
    return matrix, options


def _slice_positions(matrix: NDArray[np.float64], ks: Sequence[int]) -> NDArray[np.float64]:
    return np.asarray([matrix[:3, 3] + k * matrix[:3, 2] for k in ks])


def _by_number(segmentation: Segmentation) -> dict[int, Any]:
    return {int(s.properties["DICOM.SegmentNumber"]): s for s in segmentation.segments.values()}


def _read(path: Path, **options: Any) -> Segmentation:
    return segio.read(path, format="dicom-seg", **options)


# -- synthetic SEGs -------------------------------------------------------------------------


def _overlapping_binary(rng: np.random.Generator) -> dict[int, NDArray[np.bool_]]:
    """Segments 1, 2 and 7 on a 3 x 5 x 7 grid: 2 overlaps 1; 7 overlaps 2 but not 1."""
    volumes = {n: np.zeros((3, 5, 7), dtype=bool) for n in (1, 2, 7)}
    volumes[1][0:2, 0:3, 0:4] = True
    volumes[2][1:3, 2:5, 3:7] = True
    volumes[7][2, 0:2, 0:3] = True
    volumes[7][1, 4, 6] = True  # inside segment 2, outside segment 1
    volumes[1] |= rng.random((3, 5, 7)) < 0.05
    volumes[1] &= ~volumes[7]
    return volumes


def test_binary_overlap_oblique_odd_frames(tmp_path: Path) -> None:
    volumes = _overlapping_binary(np.random.default_rng(7))
    matrix, options = _oblique_grid(3)
    table = [(n, k) for n in (1, 2, 7) for k in range(3) if volumes[n][k].any()]
    order = np.random.default_rng(1).permutation(len(table))  # frames in any order
    table = [table[i] for i in order]
    frames = np.stack([volumes[n][k] for n, k in table])
    path = build_seg(
        tmp_path / "bin.dcm",
        "BINARY",
        frames,
        _slice_positions(matrix, [k for _, k in table]),
        segments=[1, 2, 7],
        frame_segments=[n for n, _ in table],
        **options,
    )
    seg = _read(path)
    assert seg.source_representation is Representation.BINARY_LABELMAP
    assert np.allclose(seg.require_geometry().ijk_to_lps, matrix, atol=1e-5)
    numbers = _by_number(seg)
    # label value = segment number; first fit: 7 joins segment 1 in layer 0, 2 needs layer 1
    assert {n: (s.layer, s.label_value) for n, s in numbers.items()} == {
        1: (0, 1),
        2: (1, 2),
        7: (0, 7),
    }
    for number, volume in volumes.items():
        assert np.array_equal(seg.mask(numbers[number].id), volume), number
    assert [s.name for s in seg.segments.values()] == ["segment 1", "segment 2", "segment 7"]
    assert seg.extras["dicom-seg"]["ContentLabel"] == "TEST"
    assert seg.provenance["frame_of_reference_uid"]


def test_binary_deflated_syntaxes(tmp_path: Path) -> None:
    """Whole-dataset deflate (pydicom inflates) and Deflated Image Frame Compression."""
    volumes = _overlapping_binary(np.random.default_rng(3))
    matrix, options = _oblique_grid(3)
    frames = volumes[1]
    positions = _slice_positions(matrix, range(3))
    for syntax in (DeflatedExplicitVRLittleEndian, DEFLATED_FRAMES):
        path = build_seg(
            tmp_path / f"{syntax}.dcm",
            "BINARY",
            frames,
            positions,
            segments=[1],
            frame_segments=[1, 1, 1],
            transfer_syntax=syntax,
            **options,
        )
        seg = _read(path)
        assert np.array_equal(seg.mask("Segment_1"), volumes[1]), syntax


def test_sparse_frames_use_spacing_between_slices(tmp_path: Path) -> None:
    matrix, options = _oblique_grid(4, step=1.5)
    volume = np.zeros((4, 5, 7), dtype=bool)
    volume[0, 1:3, 1:5] = volume[3, 2:4, 0:6] = True
    path = build_seg(
        tmp_path / "sparse.dcm",
        "BINARY",
        volume[[0, 3]],
        _slice_positions(matrix, [0, 3]),
        segments=[1],
        frame_segments=[1, 1],
        between=0.5,  # the series is on a 0.5 mm step; the two frames are 4.5 mm apart
        **options,
    )
    seg = _read(path)
    grid = seg.require_geometry()
    assert grid.shape == (10, 5, 7)
    assert np.allclose(grid.spacing, (0.6, 0.8, 0.5), atol=1e-5)
    assert np.array_equal(np.flatnonzero(seg.mask("Segment_1").any(axis=(1, 2))), [0, 9])


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless])
def test_labelmap_16_bit_with_background(tmp_path: Path, syntax: str) -> None:
    rng = np.random.default_rng(11)
    labels = rng.choice(np.array([0, 1, 300, 65535], dtype=np.uint16), size=(3, 6, 9))
    matrix, options = _oblique_grid(3)
    path = build_seg(
        tmp_path / "labelmap.dcm",
        "LABELMAP",
        labels,
        _slice_positions(matrix, range(3)),
        segments=[0, 1, 300, 65535],
        bits=16,
        ppv=0,
        transfer_syntax=syntax,
        **options,
    )
    seg = _read(path)
    numbers = _by_number(seg)
    assert sorted(numbers) == [1, 300, 65535]  # segment #0 is the background
    assert len(seg.layers) == 1
    assert seg.layers[0].array.dtype == np.uint16
    assert np.array_equal(seg.layers[0].array, labels)
    assert all(s.label_value == n for n, s in numbers.items())


def test_labelmap_padding_value_is_background(tmp_path: Path) -> None:
    labels = np.array([[[0, 1, 5], [5, 2, 0]]], dtype=np.uint8)
    path = build_seg(
        tmp_path / "ppv.dcm",
        "LABELMAP",
        labels,
        np.zeros((1, 3)),
        segments=[1, 2, 5],  # segment 5 is described, but 5 is the padding value
        ppv=5,
    )
    seg = _read(path)
    assert sorted(_by_number(seg)) == [1, 2]
    assert np.array_equal(seg.layers[0].array, np.where(labels == 5, 0, labels))


def test_fractional(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    fractions = {n: rng.integers(0, 201, size=(2, 5, 7), dtype=np.uint8) for n in (1, 4)}
    fractions[4][1] = 0  # an empty frame is omitted
    table = [(1, 0), (1, 1), (4, 0)]
    path = build_seg(
        tmp_path / "fractional.dcm",
        "FRACTIONAL",
        np.stack([fractions[n][k] for n, k in table]),
        np.asarray([[0.0, 0.0, 2.0 * k] for _, k in table]),
        segments=[1, 4],
        frame_segments=[n for n, _ in table],
        between=2.0,
        max_fraction=200,
        fractional_type="OCCUPANCY",
    )
    seg = _read(path)
    assert seg.source_representation is Representation.FRACTIONAL_LABELMAP
    assert seg.extras["dicom-seg"]["SegmentationFractionalType"] == "OCCUPANCY"
    numbers = _by_number(seg)
    for number, expected in fractions.items():
        layer = seg.layers[numbers[number].layer]
        assert layer.max_fraction == 200 and numbers[number].label_value == 1
        assert np.array_equal(layer.array, expected)


# -- broken files ---------------------------------------------------------------------------


def _valid(tmp_path: Path, name: str = "valid.dcm") -> Path:
    frames = np.zeros((3, 5, 7), dtype=bool)
    frames[:, 1:4, 2:6] = True
    return build_seg(
        tmp_path / name,
        "BINARY",
        frames,
        np.asarray([[0.0, 0.0, float(k)] for k in range(3)]),
        segments=[1, 2],
        frame_segments=[1, 2, 1],
    )


def _modified(tmp_path: Path, change: Any, name: str) -> Path:
    ds = pydicom.dcmread(_valid(tmp_path))
    change(ds)
    target = tmp_path / name
    ds.save_as(target)
    return target


BROKEN = {
    "pixel data cut short": lambda ds: setattr(ds, "PixelData", ds.PixelData[:4]),
    "no pixel data": lambda ds: ds.__delitem__("PixelData"),
    "frame count mismatch": lambda ds: setattr(ds, "NumberOfFrames", 4),
    "more frames than groups": lambda ds: setattr(ds, "NumberOfFrames", 2),
    "undescribed segment": lambda ds: setattr(
        ds.PerFrameFunctionalGroupsSequence[1].SegmentIdentificationSequence[0],
        "ReferencedSegmentNumber",
        9,
    ),
    "12 bits allocated": lambda ds: setattr(ds, "BitsAllocated", 12),
    "unknown type": lambda ds: setattr(ds, "SegmentationType", "SPARKLY"),
    "no segments": lambda ds: setattr(ds, "SegmentSequence", DicomSequence([])),
    "duplicate numbers": lambda ds: setattr(ds.SegmentSequence[1], "SegmentNumber", 1),
    "bad position": lambda ds: setattr(
        ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0],
        "ImagePositionPatient",
        [0, 0],
    ),
}


@pytest.mark.parametrize("what", sorted(BROKEN))
def test_broken_seg_is_a_read_error(tmp_path: Path, what: str) -> None:
    path = _modified(tmp_path, BROKEN[what], "broken.dcm")
    with pytest.raises(ReadError) as caught:
        _read(path)
    assert caught.value.path == str(path)


def test_frame_shifted_in_plane_is_a_geometry_error(tmp_path: Path) -> None:
    """Segment 2's frame sits on slice 0 but half a pixel off: no grid holds both."""
    path = build_seg(
        tmp_path / "shifted.dcm",
        "BINARY",
        np.ones((3, 5, 7), dtype=bool),
        np.asarray([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 1.0]]),
        segments=[1, 2],
        frame_segments=[1, 2, 1],
    )
    with pytest.raises(GeometryError, match="not on one grid"):
        _read(path)


def test_truncated_file_and_garbage_are_read_errors(tmp_path: Path) -> None:
    data = _valid(tmp_path).read_bytes()
    noise = np.random.default_rng(2).bytes(3000)
    samples = [data[:cut] for cut in (0, 16, 200, len(data) // 2, len(data) - 3)]
    samples += [noise, data[:300] + noise]  # random bytes; a SEG header, then random bytes
    for n, sample in enumerate(samples):
        target = tmp_path / f"bad{n}.dcm"
        target.write_bytes(sample)
        with pytest.raises(ReadError):
            _read(target)


def test_not_a_seg_is_a_read_error(tmp_path: Path) -> None:
    ds = pydicom.dcmread(_valid(tmp_path))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    ds.save_as(tmp_path / "ct.dcm")
    with pytest.raises(ReadError, match="not a DICOM SEG"):
        _read(tmp_path / "ct.dcm")


def test_missing_decoder_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = np.ones((1, 4, 4), dtype=np.uint8)
    path = build_seg(
        tmp_path / "rle.dcm", "LABELMAP", labels, np.zeros((1, 3)), segments=[1],
        transfer_syntax=RLELossless,
    )  # fmt: skip

    class Unavailable:
        is_available = False
        missing_dependencies = ("pylibjpeg-rle",)

    import pydicom.pixels.decoders.base as decoders

    monkeypatch.setattr(decoders, "get_decoder", lambda uid: Unavailable())
    with pytest.raises(MissingDependencyError, match=r"segio\[dicom\]"):
        read_seg(path)


def test_folder_holding_two_segs_is_a_read_error(tmp_path: Path) -> None:
    _valid(tmp_path, "a.dcm")
    _valid(tmp_path, "b.dcm")
    with pytest.raises(ReadError, match="2 DICOM SEG files") as caught:
        read_seg(tmp_path)
    assert "a.dcm" in str(caught.value) and "pass one file" in str(caught.value)


# -- shared real-world files ----------------------------------------------------------------


def _shared_segs(root: Path) -> list[Path]:
    found = []
    for file in sorted(root.rglob("*")):
        if file.suffix not in (".dcm", ".seg"):
            continue
        head = pydicom.dcmread(file, stop_before_pixels=True, force=True)
        if str(head.get("SOPClassUID", "")) in (SEG_STORAGE, LABELMAP_STORAGE):
            found.append(file)
    return found


def _read_quietly(path: Path, **options: Any) -> Segmentation:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _read(path, **options)


def _as_segio_order(volume: Any) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """highdicom Volume -> (ijk_to_lps, array (k, j, i, channel)) with k along the normal."""
    matrix = np.array(volume.affine)[:, [2, 1, 0, 3]]
    array = np.asarray(volume.array)
    normal = np.cross(matrix[:3, 0], matrix[:3, 1])
    if np.dot(matrix[:3, 2], normal) < 0:
        matrix[:3, 3] += (array.shape[0] - 1) * matrix[:3, 2]
        matrix[:3, 2] *= -1
        array = array[::-1]
    return matrix, array


def test_every_shared_seg_matches_highdicom(shared_data: Path) -> None:
    hd = pytest.importorskip("highdicom")
    files = _shared_segs(shared_data)
    assert len(files) >= 17
    assert set(DELIBERATE_DIFFERENCES) <= {f.relative_to(shared_data).as_posix() for f in files}
    compared = []
    for file in files:
        name = file.relative_to(shared_data).as_posix()
        ours = _read_quietly(file)
        numbers = _by_number(ours)
        theirs = hd.seg.segread(file)
        if name == f"{HD_FILES}/seg_image_cr_binary.dcm":
            continue  # no Frame of Reference: test_seg_without_position
        assert [n for n in theirs.segment_numbers if n != 0] == list(numbers), name
        for number, segment in numbers.items():
            described = theirs.get_segment_description(number)
            assert segment.name == described.segment_label, name
        fractional = theirs.segmentation_type.value == "FRACTIONAL"
        options = {"rescale_fractional": False, "dtype": np.uint8} if fractional else {}
        volume = theirs.get_volume(combine_segments=False, segment_numbers=list(numbers), **options)
        matrix, array = _as_segio_order(volume)
        assert np.allclose(ours.require_geometry().ijk_to_lps, matrix, atol=1e-4), name
        for channel, (number, segment) in enumerate(numbers.items()):
            layer = ours.layers[segment.layer]
            mine = layer.array if layer.is_fractional else layer.array == segment.label_value
            assert np.array_equal(mine.astype(np.uint8), array[..., channel]), (name, number)
        compared.append(name)
    assert len(compared) == len(files) - 1


def test_labelmap_background_differences_are_exactly_these(shared_data: Path) -> None:
    hd = pytest.importorskip("highdicom")
    for name in ("sparse-labelmap-noppv.dcm", "sparse-labelmap-ppv5.dcm"):
        path = shared_data / DCMQI / name
        assert path.relative_to(shared_data).as_posix() in DELIBERATE_DIFFERENCES
        ours, theirs = _read_quietly(path), hd.seg.segread(path)
        assert theirs.segment_numbers == [0, 1] and list(_by_number(ours)) == [1]
        _, array = _as_segio_order(theirs.get_volume(combine_segments=False))
        # highdicom's background channel is our "no segment", missing middle slice included
        assert np.array_equal(array[..., 0].astype(bool), ours.layers[0].array == 0)
        assert ours.require_geometry().shape == (3, 38, 24)
    assert hd.seg.segread(shared_data / DCMQI / "sparse-labelmap-ppv5.dcm").number_of_segments == 1
    for name in (
        "seg_image_sm_control_labelmap.dcm",
        "seg_image_sm_control_labelmap_palette_color.dcm",
    ):
        path = shared_data / HD_FILES / name
        ours, theirs = _read_quietly(path), hd.seg.segread(path)
        assert len(ours.segments) == 20 and theirs.number_of_segments == 19


def test_palette_colours(shared_data: Path) -> None:
    from pydicom.pixels.processing import apply_color_lut

    path = shared_data / HD_FILES / "seg_image_sm_control_labelmap_palette_color.dcm"
    ours = _read_quietly(path)
    rgb = apply_color_lut(np.arange(21, dtype=np.uint8), pydicom.dcmread(path)) / 255.0
    for number, segment in _by_number(ours).items():
        assert np.allclose(segment.color, rgb[number]), number


def test_seg_without_position(shared_data: Path) -> None:
    path = shared_data / HD_FILES / "seg_image_cr_binary.dcm"
    with pytest.warns(UserWarning, match="no plane positions"):
        ours = _read(path)
    grid = ours.require_geometry()
    assert grid.shape == (1, 16, 16) and np.allclose(grid.ijk_to_lps, np.eye(4))
    raw = pydicom.dcmread(path).pixel_array.reshape(1, 16, 16)
    assert np.array_equal(ours.mask(next(iter(ours.segments))), raw == 1)


def test_bits_straddling_frames_match_dcmqi_nrrd(shared_data: Path) -> None:
    ours = _read(shared_data / DCMQI / "23x38x3/seg/label.seg")
    theirs = segio.read(shared_data / DCMQI / "23x38x3/nrrd/label.nrrd")
    assert ours.require_geometry().is_close(theirs.require_geometry(), atol=1e-4)
    mine = {s.name: ours.mask(s.id) for s in ours.segments.values()}
    assert list(mine) == ["Liver"]
    nrrd_labels = theirs.layers[0].array
    assert np.array_equal(mine["Liver"], nrrd_labels == 1)
    assert np.count_nonzero(mine["Liver"]) == 322


@pytest.mark.parametrize("name", ["partial_overlaps.dcm", "liver.dcm"])
def test_reference_grid_is_the_source_series(shared_data: Path, name: str) -> None:
    series = shared_data / DCMQI / "ct-3slice"
    plain = _read(shared_data / DCMQI / name)
    placed = _read(shared_data / DCMQI / name, reference=series)
    assert placed.reference_geometry is not None
    assert placed.require_geometry().is_close(placed.reference_geometry)
    assert placed.require_geometry().shape == (3, 512, 512)
    assert plain.provenance["referenced_series_instance_uid"] == str(
        pydicom.dcmread(next(series.iterdir()), stop_before_pixels=True).SeriesInstanceUID
    )
    for segment in plain.segments.values():
        assert np.array_equal(plain.mask(segment.id), placed.mask(segment.id))


def test_reference_fills_omitted_slices(shared_data: Path) -> None:
    ct2 = shared_data / "pydicom/src/pydicom/data/test_files/dicomdirtests/77654033/CT2"
    seg = _read(shared_data / HD_FILES / "seg_image_ct_binary.dcm", reference=ct2)
    assert seg.require_geometry().shape == (165, 16, 16)  # −99.48 ... 105.52 on 1.25 mm
    plain = _read(shared_data / HD_FILES / "seg_image_ct_binary.dcm")
    offset = plain.require_geometry().offset_in(seg.require_geometry())
    assert offset == (162, 0, 0)
    assert np.array_equal(seg.mask("first segment")[162:], plain.mask("first segment"))
    assert not seg.mask("first segment")[:162].any()


def test_reference_that_does_not_fit_is_a_geometry_error(shared_data: Path) -> None:
    ct2 = shared_data / "pydicom/src/pydicom/data/test_files/dicomdirtests/77654033/CT2"
    with pytest.raises(GeometryError):
        _read(shared_data / DCMQI / "liver.dcm", reference=ct2)


def test_folder_with_series_and_one_seg(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    shutil.copytree(shared_data / DCMQI / "24x38x3/image", folder / "ct")
    shutil.copy(shared_data / DCMQI / "sparse-labelmap-ppv5.dcm", folder / "seg.dcm")
    seg = read_seg(folder)
    assert seg.provenance["sop_instance_uid"] == str(
        pydicom.dcmread(folder / "seg.dcm", stop_before_pixels=True).SOPInstanceUID
    )
    shutil.copy(shared_data / DCMQI / "sparse-labelmap-noppv.dcm", folder / "ct" / "seg2.dcm")
    with pytest.raises(ReadError, match="2 DICOM SEG files"):
        read_seg(folder)


def test_shared_metadata(shared_data: Path) -> None:
    seg = _read(shared_data / DCMQI / "liver.dcm")
    liver = next(iter(seg.segments.values()))
    assert liver.terminology is not None
    assert liver.terminology.category.key == ("SCT", "85756007")  # SRT T-D0050
    assert liver.terminology.type.key == ("SCT", "10200004")  # SRT T-62000
    extras = seg.extras["dicom-seg"]
    assert extras["SegmentationType"] == "BINARY"
    assert extras["ContentLabel"] == "QIICR QIN IOWA" and extras["SoftwareVersions"] == "0d533f1"
    for key in ("study_instance_uid", "series_instance_uid", "frame_of_reference_uid"):
        assert seg.provenance[key]


def test_faster_than_highdicom(shared_data: Path) -> None:
    """Not a benchmark, a guard: on the biggest fixtures we must not be the slow one."""
    hd = pytest.importorskip("highdicom")
    for path in (shared_data / DCMQI / "partial_overlaps.dcm",
                 shared_data / HD_FILES / "seg_image_sm_dots_tiled_full.dcm"):  # fmt: skip
        read_seg(path)
        hd.seg.segread(path).get_volume(combine_segments=False)  # warm both up
        start = time.perf_counter()
        read_seg(path)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        hd.seg.segread(path).get_volume(combine_segments=False)
        theirs = time.perf_counter() - start
        assert ours < theirs, (path.name, ours, theirs)
