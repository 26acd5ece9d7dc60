"""Read a DICOM SEG (BINARY, FRACTIONAL or LABELMAP) into a Segmentation, fast and whole.

Why a reader of our own rather than highdicom's ``get_volume``: a SEG is a stack of
frames plus a table saying which segment and which plane each frame belongs to. Decoding
every frame in one numpy call (``frames.py``) and placing them with array indexing is many
times faster than highdicom's frame-by-frame path and its SQL frame index, and it lets
segio keep what a volume API drops: segment numbers as label values, empty segments,
overlap without one channel per segment, fractions unscaled.

Rules, as stated in the spec (``dicom-seg-and-rtstruct.md`` §1, §3):

* BINARY: label value = Segment Number (never renumbered); segments share a layer until
  their voxels overlap (first fit, in Segment Sequence order), then go to a new layer.
* FRACTIONAL: one fractional layer per segment, values 0..Maximum Fractional Value.
* LABELMAP: one layer; pixel value = Segment Number. The Pixel Padding Value and segment
  number 0 are background: a segment described with either number is not a segment.
* Geometry: frame positions -> :func:`segio.geometry.slice_grid` (slices ascend along
  the normal, as image series readers do; highdicom's volumes run the other way). With
  ``reference=`` the frames are placed on the full grid of the source series.
* Tiled slide-microscopy SEGs: the total pixel matrix becomes one slice per focal plane
  (slide coordinates stand in for LPS). A SEG without plane positions is read as one 2D
  slice on an identity grid, with a warning.

Every malformed input raises :class:`ReadError`; no pydicom or numpy exception escapes.
The file is untrusted: what its header declares (Rows, Columns, Number of Frames) is
checked against what its Pixel Data holds before anything is decoded, and the grid its
frame positions span against ``SEGIO_MAX_MEMORY`` before anything is allocated.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence as SequenceABC
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.dicom.series import PixelLayout, check_pixel_data, dicom_files, read_dataset
from segio.dicom.walker import fast_path
from segio.errors import GeometryError, ReadError, SegioError, reading
from segio.fileio.inputs import open_input
from segio.fileio.limits import check_grid
from segio.geometry import Geometry, slice_grid
from segio.labels.packing import FirstFitPacker
from segio.labels.segments import present_labels
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation

from . import fastparse
from .bitlayers import binary_layers
from .frames import (
    GRID_TOLERANCE,
    NATIVE_LITTLE_ENDIAN,
    Frames,
    IntArray,
    Placement,
    Reference,
    assemble,
    decode_frames,
    functional,
    reference_placement,
    refine_spacing,
    tiled_placement,
)
from .register import sniff_dicom_seg
from .segments import segment_fields

SEG_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")
_BITS = {"BINARY": (1,), "FRACTIONAL": (8,), "LABELMAP": (8, 16)}
_EXTRAS = (
    "ContentLabel", "ContentDescription", "ContentCreatorName", "SeriesDescription",
    "SeriesNumber", "InstanceNumber", "SegmentationType", "SegmentationFractionalType",
    "MaximumFractionalValue", "SegmentsOverlap", "Manufacturer", "ManufacturerModelName",
    "SoftwareVersions", "DeviceSerialNumber", "ContentDate", "ContentTime", "SeriesDate",
    "SeriesTime", "BodyPartExamined", "ClinicalTrialSeriesID", "ClinicalTrialTimePointID",
    "ClinicalTrialCoordinatingCenterName", "DimensionOrganizationType",
    "PhotometricInterpretation", "PixelPaddingValue",
)  # fmt: skip


def read(path: Path, *, reference: Reference | None = None) -> Segmentation:
    """Read a SEG file, or the one SEG in a folder; ``reference`` = its source series."""
    source = _find_seg(Path(path))
    ds = _load(source)
    # pydicom and numpy raise many kinds on a malformed dataset; the model refuses what
    # the file says with a ValidationError: each becomes a ReadError naming the file.
    with reading(source, "DICOM SEG"):
        return _read_dataset(ds, source, reference)


def _find_seg(path: Path) -> Path:
    if not path.is_dir():
        if not path.is_file():
            raise ReadError("no such file or folder", path=path)
        return path
    found = [f for f in dicom_files(path) if _is_seg_file(f)]
    if not found:
        raise ReadError("no DICOM SEG file in the folder", path=path, hint="pass the SEG file")
    if len(found) > 1:
        names = ", ".join(str(f.relative_to(path)) for f in found)
        raise ReadError(
            f"{len(found)} DICOM SEG files in the folder: {names}", path=path, hint="pass one file"
        )
    return found[0]


def _is_seg_file(file: Path) -> bool:
    try:
        with open_input(file) as stream:
            if not sniff_dicom_seg(stream.read(4096)):
                return False
        dataset = read_dataset(
            file, stop_before_pixels=True, specific_tags=["SOPClassUID"], convert=()
        )
    except SegioError:  # unreadable files are simply not the SEG
        return False
    return str(dataset.get("SOPClassUID", "")) in SEG_CLASSES


def _load(source: Path) -> Any:
    """The dataset: a walker Header (no pydicom at all) when :mod:`fastparse` can read the
    file, else pydicom's."""
    fast = fastparse.read(source) if fast_path() else None
    return _check_sop(fast if fast is not None else read_dataset(source), source)


def _check_sop(ds: Any, source: Path) -> Any:
    sop = str(ds.get("SOPClassUID", ""))
    if sop not in SEG_CLASSES:
        from pydicom.uid import UID

        kind = UID(sop).name if sop else "no SOP Class UID"
        raise ReadError(
            f"not a DICOM SEG ({kind})", path=source, hint="pass a SEG file or a folder with one"
        )
    return ds


def _read_dataset(ds: Any, path: Path, reference: Reference | None) -> Segmentation:
    seg_type = str(ds.get("SegmentationType", "")).upper()
    if seg_type not in _BITS:
        raise ReadError(f"unknown Segmentation Type {seg_type!r}", path=path)
    bits = int(ds.get("BitsAllocated", 0))
    if bits not in _BITS[seg_type]:
        raise ReadError(f"unsupported Bits Allocated {bits} for a {seg_type} SEG", path=path)
    items = _segment_items(ds, path)
    if seg_type != "LABELMAP" and 0 in items:
        raise ReadError("segment number 0 is only valid as a LABELMAP background", path=path)
    background: set[int] = set()
    if seg_type == "LABELMAP":
        background = {0} if ds.get("PixelPaddingValue") is None else {0, int(ds.PixelPaddingValue)}
    layout = check_pixel_data(ds, path)  # before the frame count or size is used
    placement = _placement(ds, path, seg_type, sorted(items), reference, layout)
    grid = placement.geometry
    described = [n for n in items if n not in background]
    layers: list[Layer]
    where: dict[int, tuple[int, int]] = {}
    direct = _direct_binary(ds, layout, placement, described) if seg_type == "BINARY" else None
    if direct is not None:
        layers, where = direct
    else:
        frames = decode_frames(ds, path, layout)
        planes, segment, k = assemble(frames, placement, seg_type, path)
        if seg_type == "LABELMAP":
            layers = [_labelmap(planes.dense(), k, grid, background, set(described), path)]
        elif seg_type == "FRACTIONAL":
            layers, where = _fractional(ds, planes.dense(), segment, k, grid, described, path)
        else:
            layers, where = _binary(planes, segment, k, grid, described)
    palette = _palette(ds, described)
    segments, used = [], set()
    for number in described:
        item = items[number]
        try:
            fields = segment_fields(item)
        except SegioError as exc:
            raise ReadError(f"segment {number}: {exc.reason}", path=path) from exc
        if item.get("RecommendedDisplayCIELabValue") is None and number in palette:
            fields["color"] = palette[number]
        uid = str(item.get("TrackingUID") or "")
        segment_id = uid if uid and uid not in used else f"Segment_{number}"
        used.add(segment_id)
        layer, label = where.get(number, (0, number))
        segments.append(Segment(id=segment_id, layer=layer, label_value=label, **fields))
    return Segmentation(
        segments,
        layers,
        source_representation=Representation.FRACTIONAL_LABELMAP
        if seg_type == "FRACTIONAL"
        else Representation.BINARY_LABELMAP,
        reference_geometry=placement.reference,
        provenance=_provenance(ds),
        extras={"dicom-seg": _extras(ds)},
    )


def _segment_items(ds: Any, path: Path) -> dict[int, Any]:
    items: dict[int, Any] = {}
    for item in ds.get("SegmentSequence") or []:
        if item.get("SegmentNumber") is None:
            raise ReadError("a Segment Sequence item has no Segment Number", path=path)
        number = int(item.SegmentNumber)
        if not 0 <= number <= 65535:  # US; a wrong VR can say anything
            raise ReadError(
                f"Segment Number {number} is not in 0..65535 (an unsigned short)", path=path
            )
        if number in items:
            raise ReadError(f"two segments are numbered {number}", path=path)
        items[number] = item
    if not items:
        raise ReadError("the SEG describes no segment (empty Segment Sequence)", path=path)
    return items


# -- where each frame goes ---------------------------------------------------------------


def _placement(
    ds: Any,
    path: Path,
    seg_type: str,
    numbers: list[int],
    reference: Reference | None,
    layout: PixelLayout,
) -> Placement:
    count = layout.frames
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    shared = (list(ds.get("SharedFunctionalGroupsSequence") or []) or [None])[0]
    tiled_full = str(ds.get("DimensionOrganizationType", "")).upper() == "TILED_FULL"
    if per_frame and len(per_frame) != count:
        raise ReadError(
            f"Number of Frames is {count} but there are {len(per_frame)} per-frame "
            "functional groups",
            path=path,
        )
    if not per_frame and count > 1 and not tiled_full:
        raise ReadError(f"{count} frames but no Per-frame Functional Groups", path=path)
    groups = per_frame or [None] * count
    segment = _frame_segments(groups, shared, seg_type, numbers, tiled_full, path)

    def measure(keyword: str) -> float | None:
        value = functional(groups[0], shared, "PixelMeasuresSequence", keyword)
        value = ds.get(keyword) if value is None else value
        return float(value) if value else None

    given = functional(groups[0], shared, "PixelMeasuresSequence", "PixelSpacing")
    given = given or ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing") or (1.0, 1.0)
    spacing = [float(v) for v in given]
    between = measure("SpacingBetweenSlices")
    thickness = between or measure("SliceThickness") or 1.0
    if "ImageOrientationSlide" in ds or tiled_full:
        if reference is not None:
            raise ReadError("reference= is for SEGs of image series, not tiled slides", path=path)
        return tiled_placement(ds, groups, shared, segment, spacing, between or 1.0, tiled_full)
    positions = [
        functional(g, shared, "PlanePositionSequence", "ImagePositionPatient") for g in groups
    ]
    rows, cols = layout.rows, layout.columns
    if all(p is None for p in positions):
        if reference is not None:
            raise ReadError("the SEG frames have no position: reference= cannot apply", path=path)
        warnings.warn(
            f"{path}: the SEG has no plane positions (no place in space); read as one 2D "
            "slice on an identity grid",
            stacklevel=4,
        )
        grid = Geometry.from_spacing((1, rows, cols), (spacing[1], spacing[0], thickness))
        return Placement(grid, segment, np.zeros(count, dtype=np.intp))
    if any(p is None for p in positions):
        raise ReadError("some frames have a Plane Position and others none", path=path)
    points = np.asarray([[float(v) for v in p] for p in positions], dtype=np.float64)
    orientations = [
        functional(g, shared, "PlaneOrientationSequence", "ImageOrientationPatient") for g in groups
    ]
    if any(o is None for o in orientations):
        raise ReadError("a frame has a position but no Plane Orientation", path=path)
    iop = np.asarray([[float(v) for v in o] for o in orientations], dtype=np.float64)
    if not np.allclose(iop, iop[0], atol=1e-4):
        raise GeometryError("the SEG frames have different orientations", path=path)
    if reference is not None:
        return reference_placement(ds, points, iop[0], spacing, (rows, cols), segment, reference)
    grid, k = slice_grid(points, iop[0], spacing, (rows, cols), default_spacing=thickness)
    grid, k = refine_spacing(grid, k, between)
    predicted = grid.ijk_to_points(np.column_stack([np.zeros((len(k), 2)), k]))
    if np.any(np.linalg.norm(points - predicted, axis=1) > GRID_TOLERANCE * grid.spacing.min()):
        raise GeometryError("the SEG frames are not on one grid (shifted in plane)", path=path)
    return Placement(grid, segment, k)


def _frame_segments(
    groups: list[Any], shared: Any, seg_type: str, numbers: list[int], full: bool, path: Path
) -> IntArray:
    """The segment number of every frame (0 for LABELMAP frames, which hold several)."""
    if seg_type == "LABELMAP":
        return np.zeros(len(groups), dtype=np.intp)
    if full:  # TILED_FULL: all tiles of segment 1, then of segment 2, ...
        if len(groups) % len(numbers):
            raise ReadError(f"TILED_FULL: {len(groups)} frames for {len(numbers)} segments")
        return np.repeat(np.asarray(numbers, dtype=np.intp), len(groups) // len(numbers))
    found = [
        functional(g, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber")
        for g in groups
    ]
    if any(n is None for n in found) and len(numbers) != 1:
        raise ReadError("a frame does not say which segment it belongs to", path=path)
    segment = np.asarray([numbers[0] if n is None else int(n) for n in found], dtype=np.intp)
    unknown = sorted(set(segment.tolist()) - set(numbers))
    if unknown:
        raise ReadError(
            f"frames refer to segment(s) {unknown} that the Segment Sequence does not describe",
            path=path,
        )
    return segment


# -- voxels ------------------------------------------------------------------------------


def _direct_binary(
    ds: Any, layout: PixelLayout, placement: Placement, numbers: list[int]
) -> tuple[list[Layer], dict[int, tuple[int, int]]] | None:
    """BINARY frames unpacked straight into the layers (:mod:`bitlayers`), or None where
    that path does not apply: the plain pydicom path (``SEGIO_DICOM_FAST=0``), encoded or
    big-endian Pixel Data, tiles, a plane given twice, odd frame sizes, many layers."""
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    pixels = ds.get("PixelData")
    if (
        not fast_path()
        or syntax not in NATIVE_LITTLE_ENDIAN
        or layout.bits != 1
        or layout.samples != 1
        or placement.tiles is not None
        or not isinstance(pixels, (bytes, bytearray, memoryview))
    ):
        return None
    grid = placement.geometry
    depth = grid.shape[0]
    keys = np.sort(placement.segment * depth + placement.k)
    if np.any(keys[1:] == keys[:-1]):  # repeated planes are merged by assemble()
        return None
    dtype = np.uint8 if max(numbers, default=0) <= 255 else np.uint16
    check_grid(grid.shape, np.dtype(dtype).itemsize, "the labelmap")
    packed = np.frombuffer(pixels, dtype=np.uint8, count=layout.native_bytes)
    frame_shape = (layout.rows, layout.columns)
    found = binary_layers(
        packed, frame_shape, placement.segment, placement.k, grid.shape, numbers, dtype
    )
    if found is None:
        return None
    arrays, where = found
    return [Layer(array, grid) for array in arrays], where


def _binary(
    planes: Frames, segment: IntArray, k: IntArray, grid: Geometry, numbers: list[int]
) -> tuple[list[Layer], dict[int, tuple[int, int]]]:
    """Segments into layers by first fit, working on each segment's voxel indices only."""
    dtype = np.uint8 if max(numbers, default=0) <= 255 else np.uint16
    check_grid(grid.shape, np.dtype(dtype).itemsize, "the labelmap")
    layers = FirstFitPacker(grid.shape, dtype)
    size = grid.shape[1] * grid.shape[2]
    order = np.argsort(segment, kind="stable")  # each segment's frames, in frame order
    lows = np.searchsorted(segment[order], numbers, side="left")
    highs = np.searchsorted(segment[order], numbers, side="right")
    where: dict[int, tuple[int, int]] = {}
    for number, low, high in zip(numbers, lows, highs, strict=True):
        chosen = order[low:high]  # one pass per segment; its voxels as whole arrays
        target = 0
        if chosen.size:
            found, slices = planes.set_pixels(chosen), k[chosen]
            if np.all(np.diff(slices) == 1):  # consecutive slices: the stack is the volume
                voxels = found + int(slices[0]) * size
            else:
                frame, pixel = np.divmod(found, size)
                voxels = slices[frame] * size + pixel
            target = layers.place_voxels(voxels, number)
        where[number] = (target, number)
    arrays = layers.layers or [np.zeros(grid.shape, dtype=dtype)]
    return [Layer(arr, grid) for arr in arrays], where


def _fractional(
    ds: Any,
    planes: NDArray[Any],
    segment: IntArray,
    k: IntArray,
    grid: Geometry,
    numbers: list[int],
    path: Path,
) -> tuple[list[Layer], dict[int, tuple[int, int]]]:
    top = int(ds.get("MaximumFractionalValue") or 0)
    if not 0 < top <= 255:
        raise ReadError(f"Maximum Fractional Value {top} is not in 1..255", path=path)
    check_grid(grid.shape, len(numbers), f"{len(numbers)} fractional layers", path=path)
    layers, where = [], {}
    for index, number in enumerate(numbers):
        array = np.zeros(grid.shape, dtype=np.uint8)
        chosen = np.flatnonzero(segment == number)
        array[k[chosen]] = planes[chosen]
        layers.append(Layer(array, grid, max_fraction=top))
        where[number] = (index, 1)
    return layers, where


def _labelmap(
    planes: NDArray[Any],
    k: IntArray,
    grid: Geometry,
    background: set[int],
    described: set[int],
    path: Path,
) -> Layer:
    wide = max(described, default=0) > np.iinfo(planes.dtype).max  # described, never used
    dtype = np.dtype(np.uint16 if wide else planes.dtype)
    check_grid(grid.shape, dtype.itemsize, "the labelmap", path=path)
    whole = planes.shape == grid.shape and np.array_equal(k, np.arange(grid.shape[0]))
    if whole and planes.dtype == dtype and planes.flags.writeable and planes.flags.c_contiguous:
        array = planes  # every slice in order, in a buffer of this read's own: no copy
    else:
        array = np.zeros(grid.shape, dtype=dtype)
        array[k] = planes
    for value in background - {0}:
        array[array == value] = 0
    top = int(array.max(initial=0))
    if top <= len(described) and set(range(1, top + 1)) <= described:
        return Layer(array, grid)  # every value up to the largest is a segment: nothing stray
    stray = sorted(set(present_labels(array)) - described)  # never sized by a huge value
    if stray:
        raise ReadError(
            f"LABELMAP pixel value(s) {stray[:10]} are not described segments", path=path
        )
    return Layer(array, grid)


# -- metadata ----------------------------------------------------------------------------


def _palette(ds: Any, numbers: list[int]) -> dict[int, tuple[float, float, float]]:
    """Colours of a PALETTE COLOR LABELMAP, for segments that give no CIELab value."""
    if str(ds.get("PhotometricInterpretation", "")) != "PALETTE COLOR" or not numbers:
        return {}
    from pydicom.pixels.processing import apply_color_lut

    try:
        index = np.asarray(numbers, dtype=np.uint8 if ds.BitsAllocated == 8 else np.uint16)
        rgb = np.asarray(apply_color_lut(index, ds), dtype=np.float64)
        top = float((1 << int(ds.RedPaletteColorLookupTableDescriptor[2])) - 1)
    except Exception as exc:  # a broken palette costs the colours, not the voxels
        warnings.warn(f"unreadable palette colour lookup table: {exc}", stacklevel=4)
        return {}
    rgb = np.clip(rgb / top, 0.0, 1.0)
    return {n: (float(c[0]), float(c[1]), float(c[2])) for n, c in zip(numbers, rgb, strict=True)}


def _extras(ds: Any) -> dict[str, str]:
    """Series-level text a writer needs to write the SEG back (multiple values joined by \\)."""
    extras = {}
    for key in _EXTRAS:
        value = ds.get(key)
        if value not in (None, ""):
            # pydicom's MultiValue, or the walker's list (pydicom is not imported for it)
            many = isinstance(value, SequenceABC) and not isinstance(value, (str, bytes))
            extras[key] = "\\".join(str(v) for v in value) if many else str(value)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        extras["TransferSyntaxUID"] = str(meta.TransferSyntaxUID)
    return extras


def _provenance(ds: Any) -> dict[str, str]:
    referenced = [
        str(item.SeriesInstanceUID)
        for item in ds.get("ReferencedSeriesSequence") or []
        if item.get("SeriesInstanceUID")
    ]
    values = {
        "study_instance_uid": ds.get("StudyInstanceUID"),
        "series_instance_uid": ds.get("SeriesInstanceUID"),
        "sop_instance_uid": ds.get("SOPInstanceUID"),
        "sop_class_uid": ds.get("SOPClassUID"),
        "frame_of_reference_uid": ds.get("FrameOfReferenceUID"),
        "referenced_series_instance_uid": "\\".join(referenced),
    }
    return {key: str(value) for key, value in values.items() if value}
