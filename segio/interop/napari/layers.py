"""A Segmentation as napari layer data, and napari Labels layers back as a Segmentation.

napari orders world axes as it orders array axes. segio arrays are indexed ``[k, j, i]``,
so the world here is LPS millimetres in reversed order, ``(z, y, x)`` = ``(S, P, L)``:
an axial slice then shows patient left on the right and anterior at the top, the
radiological view, with no flip. Each Labels layer gets ``scale`` = the voxel spacing and
``affine`` = the direction cosines plus the origin, so ``layer.data_to_world((k, j, i))``
is the voxel centre's LPS position (reversed). Surface vertices use the same order, and
their triangles are re-wound (reversing axes is a mirror) so normals stay outward.

Layer data tuples (``(data, meta, kind)``) need no napari object but the Labels colormap;
napari and pandas are imported inside the functions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation, unique_id
from segio.representations import Representation

__all__ = ["LayerData", "from_napari", "to_napari", "world_affine"]

LayerData = tuple[Any, dict[str, Any], str]
#: Layer metadata key holding the segio segments a layer was read with (terminology, ids).
SEGMENTS = "segio_segments"
#: Layer metadata key: label value -> the segment's position in the segmentation (the
#: order segments are written in, across layers).
ORDER = "segio_order"
_REVERSE = np.eye(4)[[2, 1, 0, 3]]  # (x, y, z, 1) <-> (z, y, x, 1); its own inverse


def world_affine(geometry: Geometry) -> NDArray[np.float64]:
    """The 4x4 matrix taking napari data indices ``(k, j, i)`` to world ``(z, y, x)`` LPS mm."""
    matrix: NDArray[np.float64] = _REVERSE @ geometry.ijk_to_lps @ _REVERSE
    return matrix


def to_napari(segmentation: Segmentation, *, name: str = "segmentation") -> list[LayerData]:
    """napari layer data: one Labels layer per labelmap layer, or one Surface layer per
    segment when closed surfaces are the source. Planar contours and fractional labelmaps
    are shown as their binary labelmap (segio's conversion)."""
    if segmentation.source_representation is Representation.CLOSED_SURFACE:
        return [_surface(segment, segmentation) for segment in segmentation.segments.values()]
    labelmap = segmentation
    if segmentation.source_representation is not Representation.BINARY_LABELMAP:
        labelmap = segmentation.representation(Representation.BINARY_LABELMAP)
    geometry = labelmap.require_geometry()
    matrix = world_affine(geometry)
    scale = np.linalg.norm(matrix[:3, :3], axis=0)
    affine = matrix.copy()
    affine[:3, :3] = matrix[:3, :3] / scale
    result = []
    position = {s.id: n for n, s in enumerate(labelmap.segments.values())}
    for index, layer in enumerate(labelmap.layers):
        members = labelmap.segments_in_layer(index)
        label = name if len(labelmap.layers) == 1 else f"{name} [layer {index + 1}]"
        meta = {
            "name": label,
            "scale": tuple(float(s) for s in scale),
            "affine": affine,
            "colormap": _colormap(members),
            "features": _features(members),
            "metadata": {
                SEGMENTS: [copy.deepcopy(s) for s in members],
                ORDER: {s.label_value: position[s.id] for s in members},
            },
        }
        result.append((layer.array, meta, "labels"))
    return result


def _colormap(segments: Sequence[Segment]) -> Any:
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[int | None, Any] = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for segment in segments:
        colors[segment.label_value] = (*segment.color, 1.0)
    return DirectLabelColormap(color_dict=colors)


def _features(segments: Sequence[Segment]) -> Any:
    """One row per segment: ``index`` (the label value, napari's key), name, id, colour."""
    import pandas

    return pandas.DataFrame(
        {
            "index": [s.label_value for s in segments],
            "name": [s.name for s in segments],
            "segment_id": [s.id for s in segments],
            "color": [s.color for s in segments],
        }
    )


def _surface(segment: Segment, segmentation: Segmentation) -> LayerData:
    surface = segmentation.surfaces[segment.id]
    vertices = surface.vertices[:, ::-1].copy()  # (z, y, x), as the Labels world
    faces = surface.faces[:, ::-1].copy()  # mirrored axes: re-wind to keep normals outward
    rgba = np.tile([*segment.color, 1.0], (len(vertices), 1))
    opacity = float(segment.properties.get("opacity", "1"))
    meta = {
        "name": segment.name,
        "vertex_colors": rgba,
        "opacity": opacity,
        "metadata": {SEGMENTS: [copy.deepcopy(segment)]},
    }
    return ((vertices, faces), meta, "surface")


def from_napari(layers: Iterable[LayerData]) -> Segmentation:
    """A labelmap segmentation from napari Labels layer data (``layer.as_layer_data_tuple()``
    or what a napari writer receives), one segio layer per Labels layer on their shared grid.

    Segments come from each layer's ``features`` (``index``, ``name``, ``color``), then
    its colormap, then the segments it was read with (terminology, ids); a label value in
    the array that none of those describes becomes ``Segment_<value>`` with a palette colour.
    """
    labels = [item for item in layers if item[2] == "labels"]
    if not labels:
        raise ValidationError(
            "no Labels layer to write", hint="select one or more Labels layers in napari"
        )
    grids = [_geometry(data, meta) for data, meta, _ in labels]
    for (_, meta, _), grid in zip(labels[1:], grids[1:], strict=True):
        if not grid.is_close(grids[0]):
            raise ValidationError(
                f"Labels layer {meta.get('name')!r} is not on the grid of "
                f"{labels[0][1].get('name')!r} (shape, scale or affine differ)",
                hint="save layers on different grids to separate files",
            )
    segments: list[tuple[float, int, Segment]] = []
    result_layers: list[Layer] = []
    taken: dict[str, None] = {}
    for index, ((data, meta, _), grid) in enumerate(zip(labels, grids, strict=True)):
        array = np.asarray(data)
        if array.dtype.kind not in "iu" or (array.size and array.min() < 0):
            raise ValidationError(
                f"Labels layer {meta.get('name')!r} holds {array.dtype} values below 0 "
                "or not integers",
                hint="labels must be whole numbers from 0 (background)",
            )
        order = meta.get("metadata", {}).get(ORDER, {})
        for segment in _segments(array, meta):
            segment.layer = index
            if segment.id in taken:
                segment.id = unique_id(segment.id, taken)
            taken[segment.id] = None
            segments.append((order.get(segment.label_value, np.inf), len(segments), segment))
        result_layers.append(Layer(array, grid))
    # The order the segments were read in; new labels after them, layer by layer.
    return Segmentation([s for _, _, s in sorted(segments, key=lambda t: t[:2])], result_layers)


def _geometry(data: Any, meta: dict[str, Any]) -> Geometry:
    """The grid from napari's data-to-world transform (affine after scale/rotate/translate)."""
    from napari.utils.transforms import Affine

    shape = np.shape(data)
    if len(shape) != 3:
        raise ValidationError(
            f"Labels layer {meta.get('name')!r} has {len(shape)} dimensions; segio writes 3D",
            hint="add a slice axis (data[np.newaxis]) for a single slice",
        )
    physical = Affine(
        scale=meta.get("scale"),
        translate=meta.get("translate"),
        rotate=meta.get("rotate"),
        shear=meta.get("shear"),
        ndim=3,
    ).affine_matrix
    world = np.asarray(meta.get("affine", np.eye(4)), dtype=np.float64)
    if world.shape != (4, 4):
        raise ValidationError(f"Labels layer {meta.get('name')!r} has a {world.shape} affine")
    return Geometry(_REVERSE @ world @ physical @ _REVERSE, shape)


def _segments(array: NDArray[Any], meta: dict[str, Any]) -> list[Segment]:
    known = {s.label_value: s for s in meta.get("metadata", {}).get(SEGMENTS, [])}
    described: dict[int, Segment] = {
        value: copy.deepcopy(segment) for value, segment in known.items()
    }
    features = meta.get("features")
    if features is not None and len(features) and "index" in features:
        for row in features.to_dict("records"):
            value = int(row["index"])
            segment = described.get(value) or Segment(f"Segment_{value}", "", label_value=value)
            if isinstance(row.get("name"), str) and row["name"]:
                segment.name = row["name"]
            if row.get("color") is not None:
                segment.color = tuple(float(c) for c in row["color"])[:3]  # type: ignore[assignment]
            segment.validate()
            described[value] = segment
    colormap = meta.get("colormap")
    color_dict = getattr(colormap, "color_dict", {}) or {}
    for value in (int(v) for v in np.unique(array) if v != 0):
        if value in described:
            continue
        color = color_dict.get(value)
        rgb = color_for_index(value - 1)
        if color is not None:
            red, green, blue = (float(c) for c in np.asarray(color)[:3])
            rgb = (red, green, blue)
        described[value] = Segment(f"Segment_{value}", f"Segment_{value}", rgb, label_value=value)
    for segment in described.values():
        segment.name = segment.name or segment.id
    return [described[value] for value in sorted(described)]
