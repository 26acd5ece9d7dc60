"""Closed surfaces to and from pyvista: one ``pyvista.PolyData`` per segment.

``to_pyvista`` gives a ``pyvista.MultiBlock`` keyed by segment id (ids are unique, names
need not be); each PolyData carries field data ``name``, ``segment_id``, ``label_value``,
``color`` (RGB 0..1), ``opacity`` and ``space``, the arrays a VTK pipeline keeps through
filters and files. VTK string arrays hold ASCII only, so a name or id with other
characters is stored as its UTF-8 bytes (a uint8 array) and decoded back.
``from_pyvista`` takes a MultiBlock (nested blocks flattened), one PolyData, or a list or
mapping of them; polygons and strips are triangulated (the same surface), anything without
triangles is refused. pyvista is imported only here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from segio.errors import ValidationError
from segio.interop.meshes import (
    MeshPart,
    Space,
    check_space,
    opacity_of,
    parts_of,
    rgba_to_color,
    segmentation_of,
)
from segio.model import Segmentation
from segio.surfaces import Surface

if TYPE_CHECKING:
    import pyvista

__all__ = ["from_pyvista", "to_pyvista"]


def to_pyvista(segmentation: Segmentation, *, space: Space) -> pyvista.MultiBlock:
    """Each segment's closed surface as a PolyData in ``space`` ("LPS" or "RAS", mm).

    A labelmap segmentation is converted to closed surfaces first (VTK, Slicer's method).
    """
    import pyvista

    space = check_space(space)
    blocks = pyvista.MultiBlock()
    for segment, surface in parts_of(segmentation, space):
        faces = np.empty((len(surface.faces), 4), dtype=np.int64)
        faces[:, 0] = 3
        faces[:, 1:] = surface.faces
        poly = pyvista.PolyData(surface.vertices.copy(), faces.ravel())
        poly.field_data["name"] = _stored(segment.name)
        poly.field_data["segment_id"] = _stored(segment.id)
        poly.field_data["label_value"] = np.array([segment.label_value], dtype=np.int64)
        poly.field_data["color"] = np.array(segment.color, dtype=np.float64)
        poly.field_data["opacity"] = np.array([opacity_of(segment)], dtype=np.float64)
        poly.field_data["space"] = [space]
        blocks.append(poly, segment.id)
    return blocks


def from_pyvista(
    meshes: pyvista.PolyData | pyvista.MultiBlock | Iterable[Any] | Mapping[str, Any],
    *,
    space: Space,
) -> Segmentation:
    """A closed-surface segmentation, one segment per PolyData given in ``space``.

    Names come from field data ``name``, else the block's or mapping's key; colours from
    field data ``color`` (0..1 or 0..255, optional alpha); without them, segio's palette.
    """
    import pyvista

    space = check_space(space)
    if isinstance(meshes, (pyvista.MultiBlock, pyvista.DataSet)):
        named = list(_flatten(None, meshes, pyvista))
    elif isinstance(meshes, Mapping):
        named = [item for key, mesh in meshes.items() for item in _flatten(str(key), mesh, pyvista)]
    else:
        named = [item for mesh in meshes for item in _flatten(None, mesh, pyvista)]
    return segmentation_of([_part(key, mesh) for key, mesh in named], space, "the pyvista input")


def _flatten(key: str | None, data: Any, pyvista: Any) -> Iterator[tuple[str | None, Any]]:
    """(name, PolyData) for every leaf; other datasets are refused by name."""
    if isinstance(data, pyvista.MultiBlock):
        for index in range(data.n_blocks):
            block = data[index]
            if block is not None:
                yield from _flatten(data.get_block_name(index), block, pyvista)
        return
    if not isinstance(data, pyvista.PolyData):
        raise ValidationError(
            f"mesh {key or '(unnamed)'!r} is a {type(data).__name__}, not a pyvista.PolyData",
            hint="extract its surface first (dataset.extract_surface())",
        )
    yield key, data


def _part(key: str | None, poly: Any) -> MeshPart:
    if not poly.is_all_triangles:
        poly = poly.triangulate()
    if poly.n_cells and not poly.is_all_triangles:
        raise ValidationError(
            f"mesh {key or '(unnamed)'!r} has lines or vertices besides triangles",
            hint="pass surface meshes (extract_surface(), then triangulate())",
        )
    faces = np.asarray(poly.faces, dtype=np.int64).reshape(-1, 4)[:, 1:]
    fields = poly.field_data
    color, opacity = (None, None)
    if "color" in fields:
        color, alpha = rgba_to_color(np.asarray(fields["color"]))
        opacity = alpha
    if "opacity" in fields:
        opacity = float(np.clip(np.asarray(fields["opacity"], dtype=np.float64).ravel()[0], 0, 1))
    label = int(np.asarray(fields["label_value"]).ravel()[0]) if "label_value" in fields else None
    return MeshPart(
        surface=Surface(np.asarray(poly.points, dtype=np.float64), faces),
        name=_text(fields, "name") or key,
        color=color,
        opacity=opacity,
        id=_text(fields, "segment_id") or key,
        label_value=label if label and label > 0 else None,
    )


def _stored(text: str) -> Any:
    """Text as VTK can hold it: a string when ASCII, else its UTF-8 bytes."""
    if text.isascii():
        return [text]
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def _text(fields: Any, name: str) -> str | None:
    if name not in fields:
        return None
    values = np.asarray(fields[name]).ravel()
    if values.dtype == np.uint8:
        return values.tobytes().decode("utf-8", errors="replace") or None
    return str(values[0]) if values.size else None
