"""Closed surfaces to and from trimesh: one ``trimesh.Trimesh`` per segment.

``to_trimesh`` gives a ``trimesh.Scene`` whose geometry is keyed by segment id (ids are
unique, names need not be); each mesh carries its segment's colour as face colours (RGBA,
8-bit, opacity in alpha, what renderers and exporters use) and ``metadata`` ``name``,
``segment_id``, ``label_value``, ``color`` and ``opacity`` (exact floats, so a round trip
keeps them to the bit), ``space``. ``from_trimesh`` takes a Scene (its transforms
applied), one Trimesh, or a list or mapping of them and reads the same fields back.
Meshes are built with ``process=False``: trimesh would otherwise merge vertices, and the
round trip must give back the vertices and triangles exactly. trimesh is imported only here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    import trimesh

__all__ = ["from_trimesh", "to_trimesh"]


def to_trimesh(segmentation: Segmentation, *, space: Space) -> trimesh.Scene:
    """Each segment's closed surface as a Trimesh in ``space`` ("LPS" or "RAS", mm).

    A labelmap segmentation is converted to closed surfaces first (needs VTK, as
    ``segio convert`` to a mesh format does).
    """
    import trimesh

    space = check_space(space)
    scene = trimesh.Scene()
    for segment, surface in parts_of(segmentation, space):
        rgba = np.round(np.array([*segment.color, opacity_of(segment)]) * 255).astype(np.uint8)
        mesh = trimesh.Trimesh(
            vertices=surface.vertices.copy(),
            faces=surface.faces.copy(),
            face_colors=np.tile(rgba, (len(surface.faces), 1)),
            process=False,
            metadata={
                "name": segment.name,
                "segment_id": segment.id,
                "label_value": segment.label_value,
                "color": segment.color,
                "opacity": opacity_of(segment),
                "space": space,
            },
        )
        scene.add_geometry(mesh, geom_name=segment.id, node_name=segment.id)
    return scene


def from_trimesh(
    meshes: trimesh.Trimesh | trimesh.Scene | Iterable[Any] | Mapping[str, Any],
    *,
    space: Space,
) -> Segmentation:
    """A closed-surface segmentation, one segment per mesh given in ``space`` ("LPS"/"RAS").

    Names come from ``metadata["name"]``, else the Scene's or mapping's key; colours from
    ``metadata["color"]``, else the most common face colour (or a textured mesh's material
    colour); meshes without either get segio's palette.
    """
    import trimesh

    space = check_space(space)
    named: list[tuple[str | None, Any]]
    if isinstance(meshes, trimesh.Scene):
        named = []
        for node in meshes.graph.nodes_geometry:
            transform, key = meshes.graph[node]
            mesh = meshes.geometry[key]
            if not np.allclose(transform, np.eye(4), rtol=0.0, atol=0.0):
                mesh = mesh.copy()
                mesh.apply_transform(transform)
            named.append((str(key), mesh))
    elif isinstance(meshes, trimesh.Trimesh):
        named = [(None, meshes)]
    elif isinstance(meshes, Mapping):
        named = [(str(key), mesh) for key, mesh in meshes.items()]
    else:
        named = [(None, mesh) for mesh in meshes]
    parts = [_part(key, mesh, trimesh) for key, mesh in named]
    return segmentation_of(parts, space, "the trimesh input")


def _part(key: str | None, mesh: Any, trimesh: Any) -> MeshPart:
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValidationError(
            f"mesh {key or '(unnamed)'!r} is a {type(mesh).__name__}, not a trimesh.Trimesh",
            hint="pass triangle meshes (a point cloud or path has no closed surface)",
        )
    metadata = mesh.metadata or {}
    color, opacity = _color(mesh)
    if "color" in metadata:  # exact, where the face colours are 8-bit
        color, _ = rgba_to_color(np.asarray(metadata["color"], dtype=np.float64))
    if "opacity" in metadata:
        opacity = float(np.clip(float(metadata["opacity"]), 0.0, 1.0))
    label = metadata.get("label_value")
    return MeshPart(
        surface=Surface(np.asarray(mesh.vertices), np.asarray(mesh.faces)),
        name=str(metadata.get("name") or key or "") or None,
        color=color,
        opacity=opacity,
        id=str(metadata.get("segment_id") or key or "") or None,
        label_value=int(label) if isinstance(label, (int, np.integer)) and label > 0 else None,
    )


def _color(mesh: Any) -> tuple[tuple[float, float, float] | None, float | None]:
    """The mesh's colour: its most common face colour, or its material's main colour."""
    visual = mesh.visual
    if getattr(visual, "kind", None) in ("face", "vertex"):
        colors = visual.face_colors if visual.kind == "face" else visual.vertex_colors
        if len(colors):
            unique, counts = np.unique(np.asarray(colors), axis=0, return_counts=True)
            return rgba_to_color(unique[int(np.argmax(counts))])
    material = getattr(visual, "material", None)
    main = getattr(material, "main_color", None)
    if main is not None:
        return rgba_to_color(np.asarray(main, dtype=np.uint8))
    return None, None
