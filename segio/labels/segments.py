"""Plain labelmaps (NIfTI, NRRD, ...) and the label tables that name their values.

A labelmap file holds integers; names, colours and terminology come from a label-table
sidecar (``segio.labels.tables``). These functions turn labelmap arrays plus a table into a
:class:`Segmentation`, and a Segmentation back into arrays plus a table, for every format
plugin that stores labels this way.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.errors import ReadError, SegioError, WriteError
from segio.fileio.inputs import open_input, read_input
from segio.fileio.outputs import OutputFiles
from segio.geometry import Geometry
from segio.labels.tables import (
    find_sidecar,
    label_tables,
    read_label_table,
    sidecar_path,
    sniff_label_table,
    write_label_table,
)
from segio.labels.values import DENSE_LABEL_LIMIT, label_histogram, voxel_slabs
from segio.model import Layer, Segment, Segmentation, unique_id
from segio.representations import ConversionParameter, ConversionParameters

if TYPE_CHECKING:  # the table code is imported when a table is read or written
    from segio.labels.tables.common import LabelEntry

#: Default sidecar: segio's own JSON, the only table that keeps every field exactly (and
#: the one that also carries the document fields below: exact grid, conversion parameters).
DEFAULT_SIDECAR = "segio-json"
_NOT_LABELS = "is this an image or a probability map rather than a segmentation?"


def storage_dtype(segmentation: Segmentation) -> np.dtype[Any]:
    """The smallest unsigned integer type holding every label value (at least uint8)."""
    top = max((s.label_value for s in segmentation.segments.values()), default=0)
    return np.dtype(np.promote_types(np.uint8, np.min_scalar_type(top)))


def present_labels(array: NDArray[np.integer]) -> list[int]:
    """Sorted positive values of a labelmap: a histogram for small values, else np.unique.

    A value such as 4294967295 never sizes a histogram: above
    :data:`~segio.labels.values.DENSE_LABEL_LIMIT` the distinct values are found by sorting.
    """
    top = int(array.max(initial=0))
    if top <= 0:
        return []
    if top > DENSE_LABEL_LIMIT:
        values = np.unique(array)
        return [int(v) for v in values[values > 0]]
    histogram = label_histogram(array, top)
    return [int(v) for v in np.flatnonzero(histogram[1:]) + 1]


def integer_labels(data: NDArray[Any], path: Path) -> NDArray[np.integer]:
    """An image's voxels as labels (integers >= 0), or a :class:`ReadError` saying why not.

    Integer images are returned as they are; negative values are refused. Floating-point
    images are accepted only when every value is a whole number (some tools store labels as
    float) and are then converted to the smallest unsigned type that holds them: a
    fractional value would otherwise be silently truncated into another segment's label.
    Complex and other types are refused.
    """
    kind = data.dtype.kind
    if kind == "b":
        return data.view(np.uint8)
    if kind in "iu":
        if kind == "i" and data.size and int(data.min()) < 0:
            raise ReadError(
                "the image has negative values, which cannot be segment labels",
                path=path,
                hint="is this an image rather than a segmentation?",
            )
        return data
    if kind == "c":
        raise ReadError(
            f"the image has complex values ({data.dtype}); a labelmap holds whole numbers",
            path=path,
            hint=_NOT_LABELS,
        )
    if kind != "f":
        raise ReadError(f"voxel type {data.dtype} cannot hold labels", path=path)
    top = 0.0
    for chunk in voxel_slabs(data):
        with np.errstate(invalid="ignore"):
            if not np.all(np.isfinite(chunk)) or (chunk.size and float(chunk.min()) < 0):
                raise ReadError(
                    "the image has negative or non-finite values, which cannot be labels",
                    path=path,
                    hint=_NOT_LABELS,
                )
            if np.any(chunk != np.floor(chunk)):
                raise ReadError(
                    "the image has fractional values; a labelmap holds whole numbers",
                    path=path,
                    hint=_NOT_LABELS,
                )
        top = max(top, float(chunk.max(initial=0)))
    if top >= 2.0**64:
        raise ReadError(f"label value {top:g} is larger than any integer type", path=path)
    dtype = np.promote_types(np.uint8, np.min_scalar_type(int(top)))
    labels: NDArray[np.integer] = data.astype(dtype)
    return labels


# ---------------------------------------------------------------------------------------
# labelmap + table -> Segmentation


def read_labelmap_segmentation(
    arrays: Sequence[NDArray[np.integer]],
    geometry: Geometry,
    path: Path,
    *,
    labels: str | Path | None = None,
    fallback_entries: Sequence[LabelEntry] = (),
    assumed_layers: str | None = None,
) -> Segmentation:
    """Segments for the labels of ``arrays`` (one per layer), named by a label table.

    The table is ``labels`` if given, else a sidecar found next to ``path``, else
    ``fallback_entries`` (a table the file itself carries). Labels present in the image
    but missing from the table get Slicer's default name ``Segment_<value>``.

    ``assumed_layers`` is the warning for arrays that are layers only by assumption (the
    volumes of a 4D image without segio's marker): given unless the table places labels in
    layers, which says the volumes are layers after all.
    """
    table_path = Path(labels) if labels is not None else find_sidecar(path)
    entries: list[LabelEntry] = list(fallback_entries)
    document: dict[str, Any] = {}
    complete = False
    if table_path is not None:
        table_format = sniff_label_table(_head(table_path), table_path.name)
        entries = read_label_table(table_path, format=table_format)
        complete = table_format is not None and label_tables()[table_format].complete
        if table_format == DEFAULT_SIDECAR:
            document = _read_document(table_path)
    geometry = _sidecar_geometry(document, geometry, path)
    if assumed_layers and len(arrays) > 1 and not any(e.layer for e in entries):
        warnings.warn(assumed_layers, stacklevel=3)
    try:
        layers = [Layer(array, geometry) for array in arrays]
        segments = _segments(layers, entries, complete, path)
        segmentation = Segmentation(
            segments,
            layers,
            reference_geometry=_document_geometry(document.get("reference_geometry")),
            conversion_parameters=_document_parameters(document.get("conversion_parameters")),
            provenance={"source_path": str(path)},
        )
    except SegioError as exc:
        if exc.path is not None:
            raise
        raise ReadError(exc.reason, path=table_path or path, hint=exc.hint) from exc
    if table_path is not None:
        segmentation.provenance["label_table"] = str(table_path)
    return segmentation


def _segments(
    layers: list[Layer], entries: list[LabelEntry], complete: bool, path: Path
) -> list[Segment]:
    """One segment per label slot (layer, value): listed first for a complete table, then
    the labels present in the image; linear in the number of labels (65,535 is common)."""
    by_slot = {(e.layer, e.value): e for e in entries}
    for layer_index, value in by_slot:
        if layer_index >= len(layers):
            raise ReadError(
                f"the label table puts label {value} in layer {layer_index}, but the image "
                f"has {len(layers)} layer(s)",
                path=path,
            )
    present = [
        (n, value) for n, layer in enumerate(layers) for value in present_labels(layer.array)
    ]
    if complete:  # table order, then unlisted labels; dict keeps the first of each slot
        slots = list(dict.fromkeys([*((e.layer, e.value) for e in entries), *present]))
    else:
        slots = sorted(present)
    segments: list[Segment] = []
    taken = {e.id for e in entries if e.id}
    for index, (layer_index, value) in enumerate(slots):
        entry = by_slot.get((layer_index, value))
        if value > np.iinfo(layers[layer_index].array.dtype).max:
            continue  # a listed label the image's type cannot even hold
        name = entry.name if entry is not None and entry.name else _default_name(value, layer_index)
        segment_id = entry.id if entry is not None and entry.id else unique_id(name, taken)
        taken.add(segment_id)
        properties = dict(entry.properties) if entry is not None else {}
        if entry is not None and entry.opacity is not None:
            properties.setdefault("Opacity", repr(entry.opacity))
        segments.append(
            Segment(
                id=segment_id,
                name=name,
                color=(
                    entry.color if entry is not None and entry.color else color_for_index(index)
                ),
                terminology=entry.terminology if entry is not None else None,
                layer=layer_index,
                label_value=value,
                properties=properties,
            )
        )
    return segments


def _default_name(value: int, layer: int) -> str:
    return f"Segment_{value}" if layer == 0 else f"Segment_{layer}_{value}"


# ---------------------------------------------------------------------------------------
# Segmentation -> table


def label_entries(segmentation: Segmentation) -> list[LabelEntry]:
    """One table entry per segment, in segment order."""
    from segio.labels.tables.common import LabelEntry

    return [
        LabelEntry(
            value=s.label_value,
            name=s.name,
            color=s.color,
            terminology=s.terminology,
            layer=s.layer,
            id=s.id,
            properties=dict(s.properties),
        )
        for s in segmentation.segments.values()
    ]


def write_sidecar(
    segmentation: Segmentation,
    image_path: Path,
    image_suffix: str,
    files: OutputFiles,
    table_format: str,
    *,
    entries: list[LabelEntry] | None = None,
) -> None:
    """Stage the label table of ``segmentation`` next to ``image_path`` (unless 'none')."""
    if table_format == "none":
        return
    target = sidecar_path(image_path, image_suffix, table_format)
    spec = label_tables()[table_format]
    entries = label_entries(segmentation) if entries is None else entries
    if not spec.layers and any(e.layer for e in entries):
        raise WriteError(
            f"a {table_format} label table cannot say which layer a label is in",
            path=image_path,
            hint="use sidecar=segio-json, or write one file per layer (layers=split)",
        )
    staged = files.stage(target)
    if spec.folder_file and target.is_file():
        # A shared table (nnU-Net's dataset.json) holds more than labels: the writer updates it.
        staged.write_bytes(target.read_bytes())
    write_label_table(staged, entries, format=table_format)
    if table_format == DEFAULT_SIDECAR:
        _add_document_fields(staged, segmentation)


# The segio JSON sidecar also keeps what a NIfTI header cannot: the float64 grid (NIfTI-1
# stores the affine as float32, about 1e-5 mm at 200 mm), the reference grid and the
# conversion parameters.


def _add_document_fields(path: Path, segmentation: Segmentation) -> None:
    import json  # here and below: a labelmap read without a sidecar needs no JSON

    document = json.loads(path.read_text(encoding="utf-8"))
    if segmentation.geometry is not None:
        document["geometry"] = _geometry_json(segmentation.geometry)
    if segmentation.reference_geometry is not None:
        document["reference_geometry"] = _geometry_json(segmentation.reference_geometry)
    document["conversion_parameters"] = [
        [p.name, p.value, p.description] for p in segmentation.conversion_parameters.values()
    ]
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _read_document(path: Path) -> dict[str, Any]:
    import json

    data = read_input(path, what="the label table")
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except ValueError as exc:
        raise ReadError(f"cannot read the label table: {exc}", path=path) from exc
    except RecursionError:
        document = None  # raised below, outside the handler: no RecursionError behind it
    if document is None:
        raise ReadError("cannot read the label table: it is nested too deeply", path=path)
    return document if isinstance(document, dict) else {}


def _geometry_json(geometry: Geometry) -> dict[str, Any]:
    return {"ijk_to_lps": geometry.ijk_to_lps.tolist(), "shape": list(geometry.shape)}


def _document_geometry(data: Any) -> Geometry | None:
    if not isinstance(data, dict):
        return None
    try:
        return Geometry(data["ijk_to_lps"], data["shape"])
    except (KeyError, TypeError, ValueError, SegioError):
        return None


def _sidecar_geometry(document: dict[str, Any], header: Geometry, path: Path) -> Geometry:
    """The sidecar's exact grid when it agrees with the header's float32 one."""
    exact = _document_geometry(document.get("geometry"))
    if exact is None:
        return header
    if exact.shape == header.shape and exact.is_close(header, atol=1e-3):
        return exact
    warnings.warn(
        f"{path}: the grid in the label table differs from the image header (the image was "
        "changed by another tool?); using the header",
        stacklevel=4,
    )
    return header


def _document_parameters(data: Any) -> ConversionParameters | None:
    if not isinstance(data, list):
        return None
    parameters = []
    for item in data:
        if isinstance(item, list) and len(item) == 3 and all(isinstance(t, str) for t in item):
            parameters.append(ConversionParameter(item[0], item[1], item[2]))
    return ConversionParameters(parameters)


def _head(path: Path) -> bytes:
    """The first 4 KiB of a label table, opened as a regular file only (no FIFO hangs)."""
    with open_input(path, what="the label table") as stream:
        return stream.read(4096)
