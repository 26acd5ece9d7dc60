"""trimesh and pyvista adapters: lossless round trips, and agreement with each library's
own reader on the file segio writes (same vertices, same colour, same name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio.errors import ValidationError
from segio.interop.pyvista_meshes import from_pyvista, to_pyvista
from segio.interop.trimesh_meshes import from_trimesh, to_trimesh
from segio.representations import Representation
from segio.testing.compare import assert_same_segmentation
from segio.testing.synthetic import small_segmentation, surface_segmentation

# Colours go through 8 bits in trimesh (face colours), exactly through pyvista's doubles.
TRIMESH_COLOR = 0.5 / 255 + 1e-9


def _ras(points: Any) -> Any:
    return np.asarray(points) * np.array([-1.0, -1.0, 1.0])


@pytest.mark.parametrize("space", ["LPS", "RAS"])
def test_trimesh_round_trip_is_lossless(space: str) -> None:
    seg = surface_segmentation(3)
    scene = to_trimesh(seg, space=space)  # type: ignore[arg-type]
    assert list(scene.geometry) == list(seg.segments)
    for segment in seg.segments.values():
        mesh: Any = scene.geometry[segment.id]
        expected = seg.surfaces[segment.id].vertices
        np.testing.assert_array_equal(mesh.vertices, expected if space == "LPS" else _ras(expected))
        np.testing.assert_array_equal(mesh.faces, seg.surfaces[segment.id].faces)
        assert mesh.metadata["name"] == segment.name
        assert mesh.is_winding_consistent and mesh.volume > 0  # outward in either space
    back = from_trimesh(scene, space=space)  # type: ignore[arg-type]
    assert_same_segmentation(seg, back, atol_mm=1e-9, check_terminology=False)
    # Without segio's metadata (as a file exporter leaves it), colours come from the faces.
    for mesh in scene.geometry.values():
        mesh.metadata.clear()
    plain = from_trimesh(scene, space=space)  # type: ignore[arg-type]
    for ours, theirs in zip(seg.segments.values(), plain.segments.values(), strict=True):
        np.testing.assert_allclose(theirs.color, ours.color, atol=TRIMESH_COLOR)
        assert theirs.name == ours.id  # the scene key
    opacity = plain.segments[list(seg.segments)[2]].properties["opacity"]
    assert opacity == repr(128 / 255)


def _poly(blocks: Any, key: str) -> Any:
    """A block of the MultiBlock (typed as any dataset by pyvista)."""
    return blocks[key]


@pytest.mark.parametrize("space", ["LPS", "RAS"])
def test_pyvista_round_trip_is_lossless(space: str) -> None:
    seg = surface_segmentation(3, unicode_names=True)
    blocks = to_pyvista(seg, space=space)  # type: ignore[arg-type]
    assert blocks.keys() == list(seg.segments)
    for segment in seg.segments.values():
        poly = _poly(blocks, segment.id)
        expected = seg.surfaces[segment.id].vertices
        np.testing.assert_array_equal(poly.points, expected if space == "LPS" else _ras(expected))
        raw = np.asarray(poly.field_data["name"])  # UTF-8 bytes where VTK wants ASCII
        assert (raw.tobytes().decode() if raw.dtype == np.uint8 else str(raw[0])) == segment.name
        np.testing.assert_array_equal(poly.field_data["color"], segment.color)
    back = from_pyvista(blocks, space=space)  # type: ignore[arg-type]
    assert_same_segmentation(seg, back, atol_mm=1e-9, check_terminology=False)


def test_an_oblique_labelmap_converts_like_the_mesh_writer(tmp_path: Path) -> None:
    """A labelmap goes through the closed-surface conversion: the same triangles as the PLY
    segio writes, read by trimesh's own loader, in RAS as the PLY is."""
    import trimesh

    seg = small_segmentation("oblique", n_segments=2)
    path = tmp_path / "seg.ply"
    segio.write(seg, path, coordinate_system="ras")
    scene = to_trimesh(seg, space="RAS")
    loaded: Any = trimesh.load(path, process=False)
    ours: Any = trimesh.util.concatenate(list(scene.geometry.values()))
    np.testing.assert_allclose(
        np.sort(ours.vertices, axis=0), np.sort(loaded.vertices, axis=0), atol=1e-4
    )
    assert len(ours.faces) == len(loaded.faces)


def test_pyvista_reads_the_vtp_segio_writes_at_the_same_points(tmp_path: Path) -> None:
    import pyvista

    seg = surface_segmentation(2)
    path = tmp_path / "seg.vtp"
    segio.write(seg, path)
    read = pyvista.read(path)
    blocks = to_pyvista(seg, space="LPS")
    ours = np.concatenate([_poly(blocks, key).points for key in list(blocks.keys())])
    np.testing.assert_allclose(np.sort(ours, axis=0), np.sort(read.points, axis=0), atol=1e-6)


def test_meshes_from_elsewhere_get_names_colours_and_transforms() -> None:
    """A scene node's transform is applied; names fall back to the scene key; an uncoloured
    mesh gets a palette colour; quads in pyvista are triangulated."""
    import pyvista
    import trimesh

    box = trimesh.creation.box(extents=(10, 20, 30))
    sphere = trimesh.creation.icosphere(subdivisions=1, radius=5.0)
    sphere.visual.face_colors = (255, 0, 0, 255)
    scene = trimesh.Scene()
    shift = np.eye(4)
    shift[:3, 3] = (5.0, 6.0, 7.0)
    scene.add_geometry(box, geom_name="liver", transform=shift)
    scene.add_geometry(sphere, geom_name="tumour")
    seg = from_trimesh(scene, space="RAS")
    assert [s.name for s in seg.segments.values()] == ["liver", "tumour"]
    assert seg.segments["tumour"].color == (1.0, 0.0, 0.0)
    liver = seg.surfaces["liver"]
    np.testing.assert_allclose(
        liver.bounds, np.sort(_ras(box.bounds + np.array([5.0, 6.0, 7.0])), axis=0)
    )
    cube = pyvista.Cube(x_length=2.0)
    from_cube = from_pyvista({"cube": cube}, space="LPS")
    assert from_cube.segments["cube"].name == "cube"
    assert len(from_cube.surfaces["cube"].faces) == 12  # six quads, two triangles each


def test_refusals_are_one_line_and_say_what_to_do() -> None:
    import pyvista
    import trimesh

    seg = surface_segmentation(1)
    with pytest.raises(ValidationError, match="space must be 'LPS' or 'RAS'"):
        to_trimesh(seg, space="lps-ish")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"not a trimesh\.Trimesh"):
        from_trimesh([trimesh.PointCloud(np.zeros((3, 3)))], space="LPS")  # type: ignore[no-untyped-call]
    with pytest.raises(ValidationError, match=r"not a pyvista\.PolyData"):
        from_pyvista([pyvista.ImageData(dimensions=(2, 2, 2))], space="LPS")
    with pytest.raises(ValidationError, match="holds no mesh"):
        from_pyvista([], space="LPS")


def test_source_representation_and_space_are_recorded() -> None:
    seg = from_pyvista(to_pyvista(surface_segmentation(1), space="RAS"), space="RAS")
    assert seg.source_representation is Representation.CLOSED_SURFACE
    assert seg.provenance["coordinate_system"] == "RAS"


def test_the_adapters_are_exported_by_the_interop_package() -> None:
    import segio.interop

    assert segio.interop.to_trimesh is to_trimesh
    assert segio.interop.from_pyvista is from_pyvista
    assert {"from_trimesh", "to_pyvista"} <= set(segio.interop.__all__)
