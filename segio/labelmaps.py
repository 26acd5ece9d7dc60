"""Plain labelmaps (NIfTI, NRRD, ...) and the label tables that name their values.

A labelmap file holds integers; names, colours and terminology come from a label-table
sidecar (``segio.labeltables``). These functions turn labelmap arrays plus a table into a
:class:`Segmentation`, and a Segmentation back into arrays plus a table, for every format
plugin that stores labels this way.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.errors import ReadError, SegioError, ValidationError, WriteError
from segio.files import OutputFiles
from segio.geometry import Geometry
from segio.labeltables import (
    LabelEntry,
    find_sidecar,
    read_label_table,
    sniff_label_table,
    write_label_table,
)
from segio.model import Layer, Segment, Segmentation, label_histogram, unique_id
from segio.representations import ConversionParameter, ConversionParameters

#: Default sidecar: segio's own JSON, the only table that keeps every field exactly.
DEFAULT_SIDECAR = "segio-json"
#: Label tables that describe the segments of one file rather than a shared palette, so
#: a listed label without voxels is an empty segment, not an unused palette entry.
_COMPLETE_TABLES = {"segio-json"}
_SIDECAR_SUFFIX = {
    "segio-json": ".json",
    "slicer-csv": ".labels.csv",
    "slicer-ctbl": ".ctbl",
    "itksnap": ".label",
    "freesurfer": ".txt",
    "json-map": ".json",
}
_UNIQUE_LIMIT = 1 << 20  # beyond this label value, count with np.unique, not a histogram


def storage_dtype(segmentation: Segmentation) -> np.dtype[Any]:
    """The smallest unsigned integer type holding every label value (at least uint8)."""
    top = max((s.label_value for s in segmentation.segments.values()), default=0)
    return np.dtype(np.promote_types(np.uint8, np.min_scalar_type(top)))


def present_labels(array: NDArray[np.integer]) -> list[int]:
    """Sorted non-zero values of a labelmap, in one streaming pass."""
    top = int(array.max(initial=0))
    if top == 0:
        return []
    if top > _UNIQUE_LIMIT:
        values = np.unique(array)
        return [int(v) for v in values if v > 0]
    histogram = label_histogram(array, top)
    return [int(v) for v in np.flatnonzero(histogram[1:]) + 1]


# ---------------------------------------------------------------------------------------
# labelmap + table -> Segmentation


def read_labelmap_segmentation(
    arrays: Sequence[NDArray[np.integer]],
    geometry: Geometry,
    path: Path,
    *,
    labels: str | Path | None = None,
    fallback_entries: Sequence[LabelEntry] = (),
) -> Segmentation:
    """Segments for the labels of ``arrays`` (one per layer), named by a label table.

    The table is ``labels`` if given, else a sidecar found next to ``path``, else
    ``fallback_entries`` (a table the file itself carries). Labels present in the image
    but missing from the table get Slicer's default name ``Segment_<value>``.
    """
    table_path = Path(labels) if labels is not None else find_sidecar(path)
    entries: list[LabelEntry] = list(fallback_entries)
    document: dict[str, Any] = {}
    complete = False
    if table_path is not None:
        if not table_path.exists():
            raise ReadError("the label table does not exist", path=table_path)
        table_format = sniff_label_table(_head(table_path), table_path.name)
        entries = read_label_table(table_path, format=table_format)
        complete = table_format in _COMPLETE_TABLES
        if table_format == "segio-json":
            document = _read_document(table_path)
    geometry = _sidecar_geometry(document, geometry, path)
    layers = [Layer(array, geometry) for array in arrays]
    segments = _segments(layers, entries, complete, path)
    segmentation = Segmentation(
        segments,
        layers,
        reference_geometry=_document_geometry(document.get("reference_geometry")),
        conversion_parameters=_document_parameters(document.get("conversion_parameters")),
        provenance={"source_path": str(path)},
    )
    if table_path is not None:
        segmentation.provenance["label_table"] = str(table_path)
    return segmentation


def _segments(
    layers: list[Layer], entries: list[LabelEntry], complete: bool, path: Path
) -> list[Segment]:
    by_slot = {(e.layer, e.value): e for e in entries}
    present = [
        (n, value) for n, layer in enumerate(layers) for value in present_labels(layer.array)
    ]
    for layer_index, value in by_slot:
        if layer_index >= len(layers):
            raise ReadError(
                f"the label table puts label {value} in layer {layer_index}, but the image "
                f"has {len(layers)} layer(s)",
                path=path,
            )
    slots = [(e.layer, e.value) for e in entries] if complete else []
    slots += [slot for slot in present if slot not in set(slots)]
    if not complete:
        slots.sort()
    segments: list[Segment] = []
    taken: set[str] = set()
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


def sidecar_path(image_path: Path, image_suffix: str, table_format: str) -> Path:
    """``liver.nii.gz`` -> ``liver.json`` (or ``liver.labels.csv``, ...)."""
    if table_format == "nnunet":
        return image_path.with_name("dataset.json")
    stem = image_path.name[: len(image_path.name) - len(image_suffix)]
    try:
        suffix = _SIDECAR_SUFFIX[table_format]
    except KeyError:
        raise ValidationError(
            f"unknown label table format {table_format!r}",
            hint="use one of " + ", ".join([*_SIDECAR_SUFFIX, "nnunet", "none"]),
        ) from None
    return image_path.with_name(stem + suffix)


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
    entries = label_entries(segmentation) if entries is None else entries
    if table_format != "segio-json" and any(e.layer for e in entries):
        raise WriteError(
            f"a {table_format} label table cannot say which layer a label is in",
            path=image_path,
            hint="use sidecar=segio-json, or write one file per layer (layers=split)",
        )
    target = sidecar_path(image_path, image_suffix, table_format)
    staged = files.stage(target)
    if table_format == "nnunet" and target.is_file():
        # dataset.json holds more than labels (channel names, file ending, ...): keep it.
        staged.write_bytes(target.read_bytes())
    write_label_table(staged, entries, format=table_format)
    if table_format == "segio-json":
        _add_document_fields(staged, segmentation)


# The segio JSON sidecar also keeps what a NIfTI header cannot: the float64 grid (NIfTI-1
# stores the affine as float32, about 1e-5 mm at 200 mm), the reference grid and the
# conversion parameters.


def _add_document_fields(path: Path, segmentation: Segmentation) -> None:
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
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise ReadError(f"cannot read the label table: {exc}", path=path) from exc
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
    with path.open("rb") as stream:
        return stream.read(4096)
