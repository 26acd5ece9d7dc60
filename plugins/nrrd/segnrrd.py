"""3D Slicer ``.seg.nrrd``: read every variant Slicer ever wrote, write what Slicer writes now.

The format (spec: ``shared/specs/seg-nrrd-and-model.md`` §1) is an NRRD labelmap, 3D for
one layer or 4D with a leading ``list`` axis for several, plus ``SegmentN_*`` and
``Segmentation_*`` key/value fields. Reading is lenient (missing ``Layer`` → N, missing
``LabelValue`` → 1, old RAS files, old axis kinds, legacy ``DefaultColor`` and absolute
``Segmentation_Extent``, SRT terminology codes; SlicerRT's keys and the RAS numbers of
files without a ``space`` field: :mod:`.seglayouts`); writing is strict and complete (all nine
per-segment keys, indices without gaps, trailing separators, the extent offset with its
origin compensation). Keys we do not know are kept and written back.

A plain NRRD without segment fields is read as a labelmap: every label becomes a
segment, named from a label-table sidecar when there is one.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import segio.slicermeta as slicermeta
from segio.errors import ReadError, reading
from segio.fileio.outputs import OutputFiles
from segio.geometry import LPS_TO_RAS, Geometry
from segio.labels.segments import integer_labels, read_labelmap_segmentation, storage_dtype
from segio.model import Layer, Segment, Segmentation
from segio.representations import ConversionParameters, Representation

from . import nrrddata, nrrdfile, seglayouts

FORMAT = "seg-nrrd"
#: Per-segment keys segio computes on write; any other ``SegmentN_<key>`` is kept.
_SEGMENT_KEYS = ("Color", "DefaultColor", "Extent", "ID", "LabelValue", "Layer", "Name", "Tags")
_SEGMENT_KEY = re.compile(r"Segment(\d+)_(\w+)\Z")


# ---------------------------------------------------------------------------------------
# reading


def read(path: Path, *, labels: str | Path | None = None) -> Segmentation:
    """Read a ``.seg.nrrd`` (or any NRRD labelmap) into a Segmentation.

    Everything the header says is checked (geometry, axes, voxel type) before the data is
    read, so a file refused for its header costs no payload read.
    """
    header = nrrdfile.read_header(path)
    layout = seglayouts.identify(header)
    matrix, list_axes = nrrdfile.ijk_to_lps(header)
    if layout.ras:
        matrix = LPS_TO_RAS @ matrix  # the same flip both ways
    _check_axes(header.sizes, list_axes, path)
    data = nrrddata.read_data(path, header)
    array_layers = _split_layers(data, header.sizes, list_axes, path)
    shape = array_layers[0].shape
    geometry = _geometry(matrix, shape, layout.key_values, path)
    if layout.note:
        warnings.warn(layout.note, stacklevel=3)
    if not _has_segment_fields(layout.key_values):
        return read_labelmap_segmentation(array_layers, geometry, path, labels=labels)
    with reading(path, "seg.nrrd", catch=()):
        return _segmentation(array_layers, geometry, layout.key_values, path)


def read_grid(path: Path) -> Geometry:
    """The grid of any NRRD image, its voxels unread: an image that is no labelmap (a CT
    in short or float) still serves as a reference (:mod:`segio.reference`)."""
    header = nrrdfile.read_header(path)
    layout = seglayouts.identify(header)
    matrix, list_axes = nrrdfile.ijk_to_lps(header)
    if layout.ras:
        matrix = LPS_TO_RAS @ matrix
    _check_axes(header.sizes, list_axes, path)
    spatial = [n for axis, n in enumerate(header.sizes) if axis not in list_axes]
    shape = (1,) * (3 - len(spatial)) + tuple(reversed(spatial))  # NRRD lists i first
    return _geometry(matrix, shape, layout.key_values, path)


def _has_segment_fields(key_values: Mapping[str, str]) -> bool:
    """Any ``SegmentN_*`` key makes a segmentation (a segment may lack its ``_ID``)."""
    return "Segment0_ID" in key_values or any(_SEGMENT_KEY.match(key) for key in key_values)


def _check_axes(sizes: tuple[int, ...], list_axes: list[int], path: Path) -> None:
    """A labelmap has 2 or 3 spatial axes and at most one list (layer) axis.

    (NRRD has no complex voxel type; the axis kind ``complex`` is how Slicer 2016 marked
    the layer axis, so it is a list axis like any range kind.)
    """
    if len(list_axes) > 1 or len(sizes) - len(list_axes) not in (2, 3):
        raise ReadError(
            f"expected 3 spatial axes and at most one list axis, got sizes {sizes}",
            path=path,
        )


def _split_layers(
    data: NDArray[np.generic], sizes: tuple[int, ...], list_axes: list[int], path: Path
) -> list[NDArray[np.integer]]:
    """The ``[k, j, i]`` labelmap of each layer, as views where possible (no copy)."""
    data = integer_labels(data, path)
    if list_axes:
        array_axis = data.ndim - 1 - list_axes[0]
        layers = [data[(slice(None),) * array_axis + (n,)] for n in range(data.shape[array_axis])]
    else:
        layers = [data]
    # A 2D file is one slice: give it a k axis of length 1.
    return [layer.reshape((1,) * (3 - layer.ndim) + layer.shape) for layer in layers]


def _geometry(
    matrix: NDArray[np.float64],
    shape: tuple[int, ...],
    key_values: Mapping[str, str],
    path: Path,
) -> Geometry:
    """The grid of the stored array; applies the legacy absolute ``Segmentation_Extent``."""
    matrix = matrix.copy()
    legacy_extent = key_values.get("Segmentation_Extent")
    if legacy_extent is not None:
        # 2016 files: the origin is that of the reference image, the array starts at the
        # extent's lower corner (no origin compensation yet).
        start = _ints(legacy_extent, 6, "Segmentation_Extent", path)[0::2]
        matrix[:3, 3] += matrix[:3, :3] @ np.asarray(start, dtype=np.float64)
    with reading(path, "NRRD", catch=()):
        return Geometry(matrix, shape)


def _segmentation(
    array_layers: list[NDArray[np.integer]],
    geometry: Geometry,
    key_values: Mapping[str, str],
    path: Path,
) -> Segmentation:
    fields: dict[int, dict[str, str]] = {}
    extras: dict[str, str] = {}
    for key, value in key_values.items():
        match = _SEGMENT_KEY.match(key)
        if match:
            fields.setdefault(int(match[1]), {})[match[2]] = value
        elif not key.startswith("Segmentation_"):
            extras[key] = value
    indices = sorted(fields)
    notes = slicermeta.Notes(path)
    if indices != list(range(len(indices))):
        gap = next(n for n in range(len(indices) + 1) if n not in fields)
        notes.add(
            f"segment indices have gaps (the first: no Segment{gap}_*); 3D Slicer would stop "
            "there, segio reads them all"
        )
    _name_missing_ids(fields, indices, notes)
    segments = [_segment(n, fields[n], len(array_layers), path, notes) for n in indices]
    layers = [Layer(array, geometry) for array in array_layers]
    parameters = slicermeta.parse_conversion_parameters(
        key_values.get("Segmentation_ConversionParameters", ""), path
    )
    reference = _reference_geometry(parameters, key_values, geometry, path)
    for key, value in key_values.items():
        if (
            key.startswith("Segmentation_")
            and key[len("Segmentation_") :] not in _SEGMENTATION_KEYS
        ):
            extras[key] = value
    _check_source(key_values, path)
    notes.emit()
    return Segmentation(
        segments,
        layers,
        conversion_parameters=parameters,
        reference_geometry=reference,
        contained_representations=slicermeta.parse_representations(
            key_values.get("Segmentation_ContainedRepresentationNames", ""), path, stacklevel=4
        ),
        provenance={"source_path": str(path), "format": FORMAT},
        extras={FORMAT: extras} if extras else {},
    )


def _name_missing_ids(
    fields: dict[int, dict[str, str]], indices: list[int], notes: slicermeta.Notes
) -> None:
    """Give each segment without ``SegmentN_ID`` a free id ``Segment_k``, as Slicer names
    new segments, so its name, colour and terminology are kept rather than dropped."""
    taken = {f["ID"] for f in fields.values() if "ID" in f}
    number = 0
    for index in indices:
        if "ID" in fields[index]:
            continue
        number += 1
        while f"Segment_{number}" in taken:
            number += 1
        fields[index]["ID"] = f"Segment_{number}"
        taken.add(f"Segment_{number}")
        notes.add("have no SegmentN_ID; given generated ids", f"Segment{index}")


_SEGMENTATION_KEYS = {
    "MasterRepresentation",
    "SourceRepresentation",
    "ContainedRepresentationNames",
    "ConversionParameters",
    "ReferenceImageExtentOffset",
    "Extent",
}


def _segment(
    index: int, fields: Mapping[str, str], n_layers: int, path: Path, notes: slicermeta.Notes
) -> Segment:
    segment_id = fields["ID"]
    name = fields.get("Name")
    if name is None:
        notes.add("have no name; using their ids", repr(segment_id))
        name = segment_id
    color_text = fields.get("Color", fields.get("DefaultColor"))
    color = _color(color_text) if color_text is not None else (0.5, 0.5, 0.5)
    layer = _int(fields.get("Layer"), index, f"Segment{index}_Layer", path)
    if layer >= n_layers:
        raise ReadError(
            f"Segment{index}_Layer is {layer} but the file has {n_layers} layer(s)", path=path
        )
    label = _int(fields.get("LabelValue"), 1, f"Segment{index}_LabelValue", path)
    terminology, properties, problem = slicermeta.parse_tags(fields.get("Tags", ""))
    if problem is not None:
        notes.add("have an unreadable terminology, kept as a tag", f"Segment{index}: {problem}")
    properties.update(
        slicermeta.field_properties({k: v for k, v in fields.items() if k not in _SEGMENT_KEYS})
    )
    return Segment(
        id=segment_id,
        name=name,
        color=color,
        terminology=terminology,
        layer=layer,
        label_value=label,
        properties=properties,
    )


def _color(text: str) -> tuple[float, float, float]:
    """Slicer's rule: anything that is not three numbers in 0..1 is the invalid grey."""
    try:
        rgb = [float(v) for v in text.split()]
    except ValueError:
        rgb = []
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        return (0.5, 0.5, 0.5)
    return (rgb[0], rgb[1], rgb[2])


def _reference_geometry(
    parameters: ConversionParameters,
    key_values: Mapping[str, str],
    geometry: Geometry,
    path: Path,
) -> Geometry | None:
    """Slicer's reference grid: from the conversion parameter, else from the offset."""
    text = parameters.value(slicermeta.REFERENCE_GEOMETRY)
    if text:
        reference = slicermeta.parse_slicer_geometry(text)
        if reference is None:
            warnings.warn(
                f"{path}: unreadable {slicermeta.REFERENCE_GEOMETRY!r} ignored", stacklevel=4
            )
        return reference
    offset_text = key_values.get("Segmentation_ReferenceImageExtentOffset")
    if offset_text is None:
        return None
    oi, oj, ok = _ints(offset_text, 3, "Segmentation_ReferenceImageExtentOffset", path)
    if (oi, oj, ok) == (0, 0, 0):
        return None
    k, j, i = geometry.shape
    return geometry.cropped((-ok, -oj, -oi), (k + ok, j + oj, i + oi))


def _check_source(key_values: Mapping[str, str], path: Path) -> None:
    source = key_values.get(
        "Segmentation_MasterRepresentation", key_values.get("Segmentation_SourceRepresentation")
    )
    if source and source != Representation.BINARY_LABELMAP.value:
        warnings.warn(
            f"{path}: source representation {source!r} is not stored in a .seg.nrrd; "
            "the binary labelmap is read as the source, as 3D Slicer does",
            stacklevel=4,
        )


def _int(text: str | None, default: int, key: str, path: Path) -> int:
    if text is None or not text.strip():
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise ReadError(f"{key} should be an integer, got {text!r}", path=path) from None


def _ints(text: str, count: int, key: str, path: Path) -> list[int]:
    try:
        values = [int(v) for v in text.split()]
    except ValueError:
        values = []
    if len(values) != count:
        raise ReadError(f"{key} should be {count} integers, got {text!r}", path=path)
    return values


# ---------------------------------------------------------------------------------------
# writing


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    encoding: str = "gzip",
    level: int | None = None,
) -> None:
    """Write what current 3D Slicer writes: LPS, 3D or 4D ``list``, nine keys per segment."""
    arrays, geometry = _arrays_to_write(segmentation)
    dtype = storage_dtype(segmentation)
    if len(arrays) == 1:
        data = arrays[0].astype(dtype, copy=False)
    else:
        data = np.stack([a.astype(dtype, copy=False) for a in arrays], axis=-1)
    fields = nrrd_geometry_fields(geometry, list_axis=len(arrays) > 1)
    key_values = segment_fields(segmentation, arrays)
    key_values.update(segmentation_fields(segmentation, geometry))
    for key, value in segmentation.extras.get(FORMAT, {}).items():
        key_values.setdefault(key, value)
    options: dict[str, int] = {} if level is None else {"level": int(level)}
    nrrdfile.write(
        files.stage(path), data, fields=fields, key_values=key_values, encoding=encoding, **options
    )


def _arrays_to_write(
    segmentation: Segmentation,
) -> tuple[list[NDArray[np.integer]], Geometry]:
    if segmentation.layers:
        return [layer.array for layer in segmentation.layers], segmentation.require_geometry()
    # Slicer writes an empty segmentation as one background voxel.
    grid = segmentation.reference_geometry or Geometry(np.eye(4), (1, 1, 1))
    return [np.zeros((1, 1, 1), np.uint8)], grid.cropped((0, 0, 0), (1, 1, 1))


def nrrd_geometry_fields(geometry: Geometry, *, list_axis: bool) -> dict[str, str]:
    """``space``, ``space directions``, ``kinds`` and ``space origin`` in LPS."""
    directions = " ".join(
        "(" + ",".join(slicermeta.number_text(v) for v in geometry.ijk_to_lps[:3, axis]) + ")"
        for axis in range(3)
    )
    origin = "(" + ",".join(slicermeta.number_text(v) for v in geometry.origin) + ")"
    return {
        "space": "left-posterior-superior",
        "space directions": ("none " if list_axis else "") + directions,
        "kinds": ("list " if list_axis else "") + "domain domain domain",
        "space origin": origin,
    }


def segment_fields(segmentation: Segmentation, arrays: list[NDArray[np.integer]]) -> dict[str, str]:
    """The nine ``SegmentN_*`` keys of every segment, plus kept unknown ones."""
    layer_extent = [_extent_text(array) for array in arrays]
    counts = segmentation.voxel_counts()
    key_values: dict[str, str] = {}
    for n, segment in enumerate(segmentation.segments.values()):
        prefix = f"Segment{n}_"
        extra_fields = slicermeta.segment_fields(segment)
        values = {
            "Color": " ".join(slicermeta.number_text(c) for c in segment.color),
            "ColorAutoGenerated": extra_fields.pop("ColorAutoGenerated"),
            "Extent": layer_extent[segment.layer] if counts[segment.id] else "0 -1 0 -1 0 -1",
            "ID": segment.id,
            "LabelValue": str(segment.label_value),
            "Layer": str(segment.layer),
            "Name": segment.name,
            "NameAutoGenerated": extra_fields.pop("NameAutoGenerated"),
            "Tags": slicermeta.tags_text(segment),
        }
        for key, value in extra_fields.items():
            if key not in _SEGMENT_KEYS:
                values.setdefault(key, value)
        for key in sorted(values):
            key_values[prefix + key] = values[key]
    return key_values


def _extent_text(array: NDArray[np.integer]) -> str:
    """Inclusive ``i0 i1 j0 j1 k0 k1`` of the non-zero voxels of a layer."""
    bounds = []
    for axis in (2, 1, 0):  # i, j, k
        others = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(np.any(array, axis=others))
        if hit.size == 0:
            return "0 -1 0 -1 0 -1"
        bounds += [int(hit[0]), int(hit[-1])]
    return " ".join(str(b) for b in bounds)


def segmentation_fields(segmentation: Segmentation, geometry: Geometry) -> dict[str, str]:
    """The ``Segmentation_*`` keys, with trailing separators as old Slicer requires."""
    reference = segmentation.reference_geometry or geometry
    offset = geometry.offset_in(reference)
    oi, oj, ok = (0, 0, 0) if offset is None else (offset[2], offset[1], offset[0])
    return {
        "Segmentation_ContainedRepresentationNames": slicermeta.representations_text(
            Representation.BINARY_LABELMAP, segmentation.contained_representations
        ),
        "Segmentation_ConversionParameters": slicermeta.conversion_parameters_text(
            segmentation.conversion_parameters, reference
        ),
        "Segmentation_MasterRepresentation": Representation.BINARY_LABELMAP.value,
        "Segmentation_ReferenceImageExtentOffset": f"{oi} {oj} {ok}",
    }
