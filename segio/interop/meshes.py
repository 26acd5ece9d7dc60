"""What the trimesh and pyvista adapters share: one mesh per segment, in a named space.

A mesh library holds vertices, triangles, a colour and (in metadata or field data) a name;
it has no idea of LPS or RAS. So both adapters take ``space=`` as a required keyword and
convert here, in one place: segio's surfaces are LPS millimetres, and RAS (3D Slicer's
model files, most mesh tools in neuroimaging) differs by negating x and y, a rotation that
keeps every triangle's winding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from segio.colors import color_for_index
from segio.errors import ValidationError
from segio.model import Segment, Segmentation, unique_id
from segio.representations import Representation
from segio.surfaces import LPS_TO_RAS, OPACITY, Surface, parse_opacity

__all__ = ["OPACITY", "MeshPart", "Space", "check_space", "parts_of", "segmentation_of"]

Space = Literal["LPS", "RAS"]
#: Segment property holding the display opacity (0..1), as the mesh file formats keep it.


@dataclass
class MeshPart:
    """One segment as a mesh library sees it: a surface in LPS mm plus what describes it."""

    surface: Surface
    name: str | None = None
    color: tuple[float, float, float] | None = None
    opacity: float | None = None
    id: str | None = None
    label_value: int | None = None


def check_space(space: object) -> Space:
    """``space`` as "LPS" or "RAS"; anything else is refused (never guessed)."""
    text = str(space).upper() if isinstance(space, str) else ""
    if text not in ("LPS", "RAS"):
        raise ValidationError(
            f"space must be 'LPS' or 'RAS', got {space!r}",
            hint="name the coordinate system the meshes are (or should be) in",
        )
    return "LPS" if text == "LPS" else "RAS"


def to_space(surface: Surface, space: Space) -> Surface:
    """An LPS surface expressed in ``space`` (the same flip both ways)."""
    return surface if space == "LPS" else surface.transformed(LPS_TO_RAS)


def parts_of(segmentation: Segmentation, space: Space) -> list[tuple[Segment, Surface]]:
    """Every segment with its closed surface in ``space``; derived (through VTK) when the
    segmentation's source is a labelmap, so a labelmap converts as Slicer would show it."""
    source = segmentation
    if segmentation.source_representation is not Representation.CLOSED_SURFACE:
        source = segmentation.representation(Representation.CLOSED_SURFACE)
    return [
        (segment, to_space(source.surfaces[segment.id], space))
        for segment in segmentation.segments.values()
    ]


def opacity_of(segment: Segment) -> float:
    """The segment's display opacity (1 when it has none), checked as the writers do."""
    return parse_opacity(segment.properties.get(OPACITY), segment.id)


def segmentation_of(parts: Iterable[MeshPart], space: Space, what: str) -> Segmentation:
    """A closed-surface segmentation from mesh parts given in ``space``.

    Ids come from the parts (made unique), else ``Segment_<n>``; names default to the id and
    colours to segio's palette, so meshes without either still make a valid segmentation.
    """
    segments: list[Segment] = []
    surfaces: dict[str, Surface] = {}
    taken: dict[str, None] = {}
    values: set[int] = set()
    listed = list(parts)
    if not listed:
        raise ValidationError(f"{what} holds no mesh", hint="pass at least one triangle mesh")
    for n, part in enumerate(listed):
        wanted = part.id or f"Segment_{n + 1}"
        segment_id = wanted if wanted not in taken else unique_id(wanted, taken)
        taken[segment_id] = None
        label = part.label_value if part.label_value and part.label_value not in values else None
        label = label or max(values | {n}) + 1
        values.add(label)
        properties = {}
        if part.opacity is not None and part.opacity != 1.0:
            properties[OPACITY] = repr(float(part.opacity))
        segments.append(
            Segment(
                id=segment_id,
                name=part.name or segment_id,
                color=part.color if part.color is not None else color_for_index(n),
                label_value=label,
                properties=properties,
            )
        )
        surfaces[segment_id] = to_space(part.surface, space)
    return Segmentation(
        segments,
        source_representation=Representation.CLOSED_SURFACE,
        surfaces=surfaces,
        provenance={"coordinate_system": space},
    )


def rgba_to_color(rgba: object) -> tuple[tuple[float, float, float], float]:
    """RGB in 0..1 and opacity from 8-bit (0..255) or float (0..1) RGB(A) values."""
    values = np.asarray(rgba, dtype=np.float64).ravel()
    if values.size not in (3, 4) or not np.all(np.isfinite(values)):
        raise ValidationError(f"a mesh colour must be 3 or 4 numbers, got {rgba!r}")
    if np.asarray(rgba).dtype.kind in "ui" or values.max() > 1.0:
        values = values / 255.0
    values = np.clip(values, 0.0, 1.0)
    alpha = float(values[3]) if values.size == 4 else 1.0
    return (float(values[0]), float(values[1]), float(values[2])), alpha
