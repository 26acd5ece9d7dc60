"""The mesh formats: STL, OBJ+MTL, PLY, VTK/VTP, glTF/GLB and 3MF.

Round trips per format and option (vertices, triangles, winding, names, colours, opacity,
LPS/RAS tags, units), what the files contain (headers, axes, materials, package parts),
that trimesh loads every file and sees watertight meshes, reference grids for labelmap
targets (oblique, anisotropic), bad input, and atomic writes.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio import Segment, Segmentation
from segio.errors import ReadError, SegioError, WriteError
from segio.representations import Representation
from segio.surfaces import LPS_TO_RAS, Surface
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, surface_segmentation

trimesh = pytest.importorskip("trimesh")

#: (suffix, write options, assert_same_segmentation options) of every way to write.
VARIANTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (".stl", {"merge": True, "ascii": True}, {"check_ids": False, "check_terminology": False,
                                             "check_properties": False, "color_atol": 1.0}),
    (".obj", {}, {}),
    (".obj", {"coordinate_system": "ras"}, {}),
    (".ply", {}, {}),
    (".ply", {"coordinate_system": "ras"}, {}),
    (".vtk", {}, {}),
    (".vtp", {"coordinate_system": "ras"}, {}),
    (".glb", {}, {}),
    (".glb", {"units": "mm"}, {}),
    (".gltf", {"hierarchy": True}, {}),
    (".glb", {"quantize": True}, {"surface_rtol": 2e-5}),  # half a step of 1/65534
    (".3mf", {}, {}),
    (".3mf", {"coordinate_system": "ras"}, {}),
]  # fmt: skip


def primitives() -> Segmentation:
    """An icosphere, a box and a torus (a hole), the torus half transparent."""
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=20.0)
    sphere.apply_translation((-60.0, 10.0, -500.0))
    box = trimesh.creation.box(extents=(30.0, 20.0, 10.0))
    box.apply_translation((50.0, -10.0, -480.0))
    torus = trimesh.creation.torus(major_radius=15.0, minor_radius=5.0)
    torus.apply_translation((0.0, 60.0, -520.0))
    segments, surfaces = [], {}
    for n, (mesh, name, color) in enumerate(
        [
            (sphere, "Liver", (0.8, 0.3, 0.2)),
            (box, "Left kidney", (0.1, 0.7, 0.3)),
            (torus, "Tumour ring", (0.2, 0.3, 0.9)),
        ]
    ):
        segment = Segment(
            f"Segment_{n + 1}",
            name,
            color,
            label_value=n + 1,
            properties={"opacity": "0.5"} if n == 2 else {},
        )
        segments.append(segment)
        surfaces[segment.id] = Surface(mesh.vertices, mesh.faces)
    return Segmentation(
        segments, source_representation=Representation.CLOSED_SURFACE, surfaces=surfaces
    )


def _trimesh_parts(path: Path) -> list[Any]:
    loaded = trimesh.load(path, process=path.suffix == ".stl")
    return list(loaded.geometry.values()) if isinstance(loaded, trimesh.Scene) else [loaded]


@pytest.mark.parametrize(
    ("suffix", "options", "compare"),
    [
        pytest.param(*v, id=v[0][1:] + "-" + ",".join(f"{k}={x}" for k, x in v[1].items()))
        for v in VARIANTS
    ],
)
@pytest.mark.parametrize("build", [primitives, lambda: surface_segmentation(4, unicode_names=True)])
def test_round_trip(
    suffix: str, options: dict[str, Any], compare: dict[str, Any], build: Any, tmp_path: Path
) -> None:
    original = build()
    path = tmp_path / f"scene{suffix}"
    written = segio.write(original, path, **options)
    back = segio.read(path)
    assert back.source_representation is Representation.CLOSED_SURFACE
    assert_same_segmentation(original, back, **compare)
    for n, surface in enumerate(back.surfaces.values()):
        assert surface.volume() > 0, f"segment {n}: inward normals after the round trip"
    if suffix not in (".vtk", ".vtp"):  # trimesh reads no VTK (the interop tests use VTK)
        meshes = _trimesh_parts(written[0])
        # ASCII STL: one solid each; PLY: one mesh with a segment index per face
        assert len(meshes) == (1 if suffix == ".ply" else len(original.segments))
        assert all(m.is_watertight and m.is_winding_consistent for m in meshes)


def test_stl_per_segment_files_are_named_like_slicer(tmp_path: Path) -> None:
    original = primitives()
    written = segio.write(original, tmp_path / "case.stl")
    assert [p.name for p in written] == [
        "case_Liver.stl",
        "case_Left kidney.stl",
        "case_Tumour ring.stl",
    ]
    for path, segment in zip(written, original.segments.values(), strict=True):
        data = path.read_bytes()
        assert data[:80].rstrip(b"\0") == b"3D Slicer output. SPACE=LPS"
        count = struct.unpack_from("<I", data, 80)[0]
        assert count == len(original.surfaces[segment.id].faces)
        assert len(data) == 84 + 50 * count
        back = segio.read(path)
        assert list(back.segments) == ["Segment_1"]
        # Binary STL has no name: the file's, as 3D Slicer names a model it loads.
        assert [s.name for s in back.segments.values()] == [path.name[: -len(".stl")]]
        assert_same_segmentation(
            _only(original, segment.id),
            back,
            check_ids=False,
            check_names=False,
            check_properties=False,
            color_atol=1.0,
        )
        mesh = trimesh.load(path)
        assert mesh.is_watertight and mesh.volume == pytest.approx(
            original.surfaces[segment.id].volume(), rel=1e-5
        )


def _only(segmentation: Segmentation, segment_id: str) -> Segmentation:
    return Segmentation(
        [segmentation.segments[segment_id]],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={segment_id: segmentation.surfaces[segment_id]},
    )


@pytest.mark.parametrize("ascii", [False, True])
def test_stl_space_tag_is_written_and_honoured(ascii: bool, tmp_path: Path) -> None:
    original = _only(primitives(), "Segment_1")
    lps = tmp_path / "lps.stl"
    ras = tmp_path / "ras.stl"
    segio.write(original, lps, merge=True, ascii=ascii)
    segio.write(original, ras, merge=True, ascii=ascii, coordinate_system="ras")
    assert b"SPACE=LPS" in lps.read_bytes()[:200] and b"SPACE=RAS" in ras.read_bytes()[:200]
    raw_lps = trimesh.load(lps).vertices
    raw_ras = trimesh.load(ras).vertices
    # Same points, x and y negated: the file holds RAS coordinates.
    assert np.allclose(np.sort(raw_lps[:, 2]), np.sort(raw_ras[:, 2]))
    assert np.allclose(np.sort(raw_lps[:, 0]), np.sort(-raw_ras[:, 0]), atol=1e-4)
    for path in (lps, ras):
        back = segio.read(path)
        assert back.provenance["coordinate_system"] == path.stem.upper()
        assert_same_segmentation(
            original, back, check_names=ascii, check_properties=False, color_atol=1.0
        )


def test_stl_without_tag_is_lps_and_merged_binary_is_one_body(tmp_path: Path) -> None:
    original = primitives()
    path = tmp_path / "foreign.stl"
    trimesh.util.concatenate(
        [trimesh.Trimesh(s.vertices, s.faces) for s in original.surfaces.values()]
    ).export(path)
    assert path.read_bytes()[:80].strip(b"\0 ") == b""  # trimesh writes no header
    back = segio.read(path)
    assert [s.name for s in back.segments.values()] == ["foreign"]
    surface = back.surfaces["Segment_1"]
    expected = sum(s.volume() for s in original.surfaces.values())
    assert surface.volume() == pytest.approx(expected, rel=1e-5)
    assert back.provenance["coordinate_system"] == "LPS"


def test_stl_solids_without_a_name_take_the_file_name(tmp_path: Path) -> None:
    """Slicer names a loaded model after its file (without ``.stl``); a named solid keeps
    its own name, unnamed ones in a multi-solid file are numbered after the file."""
    box = trimesh.creation.box(extents=(2.0, 3.0, 4.0))
    one = trimesh.exchange.stl.export_stl_ascii(box)  # "solid " with no name
    assert one.splitlines()[0].strip() == "solid"
    path = tmp_path / "Left lung.v2.STL"
    path.write_text(one, encoding="ascii")
    assert [s.name for s in segio.read(path).segments.values()] == ["Left lung.v2"]
    tagged = tmp_path / "tagged.stl"
    tagged.write_text(one.replace("solid", "solid SPACE=RAS", 1), encoding="ascii")
    assert [s.name for s in segio.read(tagged).segments.values()] == ["tagged"]
    named = one.replace("solid", "solid Heart", 1).replace("endsolid", "endsolid Heart")
    several = tmp_path / "scene.stl"
    several.write_text("\n".join([one, named, one]), encoding="ascii")
    names = [s.name for s in segio.read(several).segments.values()]
    assert names == ["scene_1", "Heart", "scene_3"]


def test_obj_names_colours_and_opacity_in_mtl(tmp_path: Path) -> None:
    written = segio.write(primitives(), tmp_path / "scene.obj")
    assert [p.name for p in written] == ["scene.obj", "scene.mtl"]
    text = written[0].read_text(encoding="utf-8")
    assert text.startswith("# 3D Slicer output. SPACE=LPS")
    assert "o Left kidney\n" in text and "mtllib scene.mtl\n" in text
    mtl = written[1].read_text(encoding="utf-8")
    assert "Kd 0.1 0.7 0.3" in mtl and "d 0.5" in mtl and "\nTr" not in mtl
    loaded = trimesh.load(written[0], process=False)
    kidney = next(g for name, g in loaded.geometry.items() if "Left_kidney" in name)
    assert np.allclose(kidney.visual.material.diffuse[:3], [26, 178, 76], atol=1)


def test_obj_from_slicer_layout_without_names(tmp_path: Path) -> None:
    """Slicer's exporter writes ``g grpN`` and ``usemtl mtlN`` only; Tr is its opacity."""
    (tmp_path / "slicer.mtl").write_text(
        "newmtl mtl1\nKa 0 0 0\nKd 0.2 0.4 0.6\nTr 0.75\nillum 3\n", encoding="ascii"
    )
    box = trimesh.creation.box(extents=(2, 3, 4))
    lines = ["#  3D Slicer output. SPACE=RAS", "mtllib slicer.mtl", "g grp1", "usemtl mtl1"]
    lines += [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"f {a + 1}//{a + 1} {b + 1}//{b + 1} {c + 1}//{c + 1}" for a, b, c in box.faces]
    path = tmp_path / "slicer.obj"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    back = segio.read(path)
    (segment,) = back.segments.values()
    assert segment.name == "grp1" and segment.color == (0.2, 0.4, 0.6)
    assert segment.properties["opacity"] == repr(1 - 0.75)
    surface = back.surfaces[segment.id]
    assert np.allclose(np.sort(surface.vertices[:, 0]), np.sort(-box.vertices[:, 0]))  # RAS
    assert surface.volume() == pytest.approx(24.0)


def test_ply_layout(tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    segio.write(primitives(), path)
    data = path.read_bytes()
    header = data[: data.index(b"end_header")].decode("ascii")
    assert "format binary_little_endian 1.0" in header
    assert "property int segment" in header and "property uchar red" in header
    mesh = trimesh.load(path, process=False)
    colors = {tuple(c) for c in mesh.visual.vertex_colors[:, :3]}
    assert {(204, 76, 51), (26, 178, 76), (51, 76, 230)} == colors


def _glb_json(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    assert data[:4] == b"glTF" and struct.unpack_from("<I", data, 8)[0] == len(data)
    length = struct.unpack_from("<I", data, 12)[0]
    document: dict[str, Any] = json.loads(data[20 : 20 + length])
    return document


@pytest.mark.parametrize("units", ["m", "mm"])
def test_gltf_axes_and_units(units: str, tmp_path: Path) -> None:
    original = primitives()
    path = tmp_path / "scene.glb"
    segio.write(original, path, units=units)
    document = _glb_json(path)
    assert document["asset"]["extras"]["segio"]["units"] == units
    scale = 0.001 if units == "m" else 1.0
    loaded = trimesh.load(path)
    for node, segment in zip(document["nodes"], original.segments.values(), strict=True):
        assert node["name"] == segment.name and node["extras"]["segment_id"] == segment.id
        mesh = document["meshes"][node["mesh"]]
        position = document["accessors"][mesh["primitives"][0]["attributes"]["POSITION"]]
        lps = original.surfaces[segment.id].bounds
        # glTF X = L, Y = S, Z = A = -P
        expected_min = np.array([lps[0, 0], lps[0, 2], -lps[1, 1]]) * scale
        expected_max = np.array([lps[1, 0], lps[1, 2], -lps[0, 1]]) * scale
        assert np.allclose(position["min"], expected_min, rtol=1e-6, atol=1e-9)
        assert np.allclose(position["max"], expected_max, rtol=1e-6, atol=1e-9)
        material = document["materials"][mesh["primitives"][0]["material"]]
        factor = material["pbrMetallicRoughness"]["baseColorFactor"]
        opacity = float(segment.properties.get("opacity", 1.0))
        assert factor == [*segment.color, opacity]
        assert material.get("alphaMode", "OPAQUE") == ("BLEND" if opacity < 1 else "OPAQUE")
        geometry = loaded.geometry[segment.name]
        assert geometry.is_watertight and geometry.volume == pytest.approx(
            original.surfaces[segment.id].volume() * scale**3, rel=1e-4
        )


def test_gltf_hierarchy_from_terminology(tmp_path: Path) -> None:
    original = surface_segmentation(3)
    path = tmp_path / "tree.gltf"
    segio.write(original, path, hierarchy=True)
    document = json.loads(path.read_text(encoding="utf-8"))
    nodes = document["nodes"]
    roots = document["scenes"][0]["nodes"]
    assert all("mesh" not in nodes[r] for r in roots)  # folders at the top
    categories = {nodes[r]["name"] for r in roots}
    expected = {s.terminology.category.meaning for s in original.segments.values() if s.terminology}
    assert categories == expected
    assert_same_segmentation(original, segio.read(path))


def test_gltf_keeps_an_empty_segment_as_a_node(tmp_path: Path) -> None:
    original = primitives()
    original.surfaces["Segment_2"] = Surface(np.zeros((0, 3)), np.zeros((0, 3)))
    path = tmp_path / "empty.glb"
    segio.write(original, path)
    assert "mesh" not in _glb_json(path)["nodes"][1]
    back = segio.read(path)
    assert back.surfaces["Segment_2"].is_empty
    assert_same_segmentation(original, back)


@pytest.mark.parametrize("suffix", [".gltf", ".glb"])
def test_gltf_with_every_segment_empty(suffix: str, tmp_path: Path) -> None:
    """No triangle at all: nodes without meshes, no buffer; reading says so clearly."""
    original = primitives()
    for segment_id in original.segments:
        original.surfaces[segment_id] = Surface(np.zeros((0, 3)), np.zeros((0, 3)))
    path = tmp_path / f"empty{suffix}"
    segio.write(original, path)
    document = _glb_json(path) if suffix == ".glb" else json.loads(path.read_text("utf-8"))
    assert "buffers" not in document and "meshes" not in document
    assert [n["name"] for n in document["nodes"]] == [s.name for s in original.segments.values()]
    with pytest.raises(ReadError, match="holds no triangle") as info:
        segio.read(path)
    assert str(path) in str(info.value)


def test_quantized_glb_has_a_uniform_scale(tmp_path: Path) -> None:
    """One step on every axis (a non-uniform scale would bend the shading normals), and the
    decoded positions are within one step of the originals."""
    original = primitives()
    path = tmp_path / "quantized.glb"
    segio.write(original, path, quantize=True, units="mm")
    document = _glb_json(path)
    blob = path.read_bytes()[28 + struct.unpack_from("<I", path.read_bytes(), 12)[0] :]
    for node, segment in zip(document["nodes"], original.segments.values(), strict=True):
        scale = node["scale"]
        assert scale[0] == scale[1] == scale[2] > 0
        accessor = document["accessors"][
            document["meshes"][node["mesh"]]["primitives"][0]["attributes"]["POSITION"]
        ]
        view = document["bufferViews"][accessor["bufferView"]]
        rows = np.frombuffer(
            blob, np.int16, accessor["count"] * view["byteStride"] // 2, view["byteOffset"]
        ).reshape(accessor["count"], -1)[:, :3]
        decoded = rows * scale[0] + np.array(node["translation"])
        surface = original.surfaces[segment.id]
        # glTF (X, Y, Z) = (L, S, -P): the inverse of that rotation is its transpose.
        lps = decoded @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
        assert np.abs(lps - surface.vertices).max() <= scale[0]
        extent = (surface.bounds[1] - surface.bounds[0]).max()
        assert scale[0] == pytest.approx(extent / 65534)


def test_gltf_written_by_trimesh_is_read_in_gltf_convention(tmp_path: Path) -> None:
    """A foreign file: metres, Y up, names from nodes; the root transform is applied."""
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.02)
    scene = trimesh.Scene()
    scene.add_geometry(sphere, node_name="Heart", geom_name="heart-mesh")
    scene.graph.update("Heart", matrix=trimesh.transformations.translation_matrix([0.1, 0.2, 0.3]))
    path = tmp_path / "foreign.glb"
    scene.export(path)
    back = segio.read(path)
    (segment,) = back.segments.values()
    assert segment.name == "Heart"
    centre = back.surfaces[segment.id].vertices.mean(axis=0)
    assert np.allclose(centre, [100.0, -300.0, 200.0], atol=1e-3)  # L, P = -A, S in mm
    assert back.surfaces[segment.id].volume() == pytest.approx(sphere.volume * 1e9, rel=1e-4)
    mm = segio.read(path, units="mm", axes="lps")
    assert np.allclose(mm.surfaces[segment.id].vertices.mean(axis=0), [0.1, 0.2, 0.3], atol=1e-6)


def test_3mf_package(tmp_path: Path) -> None:
    original = primitives()
    path = tmp_path / "print.3mf"
    segio.write(original, path)
    with zipfile.ZipFile(path) as package:
        assert {"[Content_Types].xml", "_rels/.rels", "3D/3dmodel.model"} <= set(package.namelist())
        model = package.read("3D/3dmodel.model").decode("utf-8")
    assert 'unit="millimeter"' in model
    assert model.count('<object id="') == 3 and model.count("<item objectid=") == 3
    assert 'name="Left kidney"' in model and 'displaycolor="#1AB24C"' in model
    assert 'displaycolor="#334CE680"' in model  # the half-transparent torus
    loaded = trimesh.load(path)
    assert sorted(loaded.geometry) == sorted(s.name for s in original.segments.values())
    assert all(g.is_watertight and g.volume > 0 for g in loaded.geometry.values())


@pytest.mark.parametrize("suffix", [".stl", ".3mf"])
def test_formats_without_empty_meshes_warn(suffix: str, tmp_path: Path) -> None:
    original = primitives()
    original.surfaces["Segment_3"] = Surface(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.warns(UserWarning, match="Tumour ring"):
        written = segio.write(original, tmp_path / f"out{suffix}")
    back = [segio.read(p) for p in written]
    assert sum(len(b.segments) for b in back) == 2


@pytest.mark.parametrize("kind", ["oblique", "anisotropic"])
def test_reference_series_gives_the_grid(kind: str, tmp_path: Path) -> None:
    geometry = grid(kind)
    folder = reference_series(geometry, tmp_path / "ct")
    path = tmp_path / "scene.ply"
    segio.write(primitives(), path)
    back = segio.read(path, reference=folder)
    assert back.reference_geometry is not None
    assert back.reference_geometry.is_close(geometry, 1e-5)
    with pytest.raises(ReadError, match="does not exist"):
        segio.read(path, reference=tmp_path / "missing")


def _valid(suffix: str, tmp_path: Path) -> bytes:
    path = tmp_path / f"valid{suffix}"
    options: dict[str, Any] = {"merge": True} if suffix == ".stl" else {}
    segio.write(primitives(), path, **options)
    return path.read_bytes()


@pytest.mark.parametrize(
    "suffix", [".stl", ".obj", ".ply", ".vtk", ".vtp", ".glb", ".gltf", ".3mf"]
)
def test_truncated_and_corrupt_files_raise_read_error(suffix: str, tmp_path: Path) -> None:
    valid = _valid(suffix, tmp_path)
    samples = {
        "empty": b"",
        "garbage": np.random.default_rng(7).bytes(3000),
        **{f"cut{n}": valid[: len(valid) * n // 10] for n in (1, 3, 5, 7, 9)},
        "one byte short": valid[:-1],
    }
    for label, payload in samples.items():
        path = tmp_path / f"{label}{suffix}"
        path.write_bytes(payload)
        with pytest.raises(SegioError) as info:
            segio.read(path, format=None)
        assert str(path) in str(info.value), f"{label}: the error names the file"


@pytest.mark.parametrize(
    ("suffix", "content"),
    [
        (".stl", b"3D Slicer output. SPACE=LPS".ljust(80, b"\0") + b"\0\0\0\0"),
        (".obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
        (".ply", b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                 b"property float z\nelement face 0\nproperty list uchar int vertex_indices\n"
                 b"end_header\n0 0 0\n"),
    ],
)  # fmt: skip
def test_file_without_triangles_is_a_clear_error(
    suffix: str, content: bytes, tmp_path: Path
) -> None:
    path = tmp_path / f"points{suffix}"
    path.write_bytes(content)
    with pytest.raises(ReadError, match="holds no triangle"):
        segio.read(path)


@pytest.mark.parametrize("suffix", [".vtk", ".vtp"])
def test_vtk_without_segments_is_an_empty_mesh(suffix: str, tmp_path: Path) -> None:
    """As PLY and glTF: the file is written, and reading it says it holds no triangle."""
    nothing = Segmentation([], source_representation=Representation.CLOSED_SURFACE)
    path = tmp_path / f"nothing{suffix}"
    segio.write(nothing, path)
    assert path.stat().st_size > 0
    with pytest.raises(ReadError, match="holds no triangle"):
        segio.read(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [("opacity", '"abc"'), ("opacity", "[1]"), ("opacity", "5"), ("opacity", "-0.5"),
     ("id", "7"), ("id", "[]")],
)  # fmt: skip
def test_bad_ply_metadata_is_a_read_error(key: str, value: str, tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    segio.write(primitives(), path)
    data = path.read_bytes()
    end = data.index(b"end_header")
    pattern = rb'"%s": ("[^"]*"|[^,}]*)' % key.encode()
    header = re.sub(pattern, b'"%s": %s' % (key.encode(), value.encode()), data[:end], count=1)
    assert header != data[:end]
    path.write_bytes(header + data[end:])
    with pytest.raises(ReadError, match=key) as info:
        segio.read(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("key", "value"), [("opacity", "abc"), ("segment_id", 7)])
def test_bad_gltf_extras_are_a_read_error(key: str, value: object, tmp_path: Path) -> None:
    path = tmp_path / "scene.gltf"
    segio.write(primitives(), path)
    document = json.loads(path.read_text("utf-8"))
    document["nodes"][0]["extras"][key] = value
    path.write_text(json.dumps(document), "utf-8")
    with pytest.raises(ReadError, match=r"opacity|segment id") as info:
        segio.read(path)
    assert str(path) in str(info.value)


def test_ply_index_overflow_is_a_write_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segio_plugins.meshes import ply

    monkeypatch.setattr(ply, "MAX_INDEX", 10)  # 2**31 vertices would not fit in a test
    with pytest.raises(WriteError, match="int32"):
        segio.write(primitives(), tmp_path / "big.ply")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """Per-segment STL: the third file exists already, so none of the three is written."""
    (tmp_path / "case_Tumour ring.stl").write_bytes(b"keep")
    with pytest.raises(WriteError, match="exists already"):
        segio.write(primitives(), tmp_path / "case.stl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_Tumour ring.stl"]
    assert (tmp_path / "case_Tumour ring.stl").read_bytes() == b"keep"


def test_obj_and_mtl_are_written_together_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "scene.mtl").write_text("mine", encoding="utf-8")
    with pytest.raises(WriteError):
        segio.write(primitives(), tmp_path / "scene.obj")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.mtl"]


def test_bad_options_are_validation_errors(tmp_path: Path) -> None:
    with pytest.raises(SegioError, match="coordinate_system"):
        segio.write(primitives(), tmp_path / "a.ply", coordinate_system="xyz")
    with pytest.raises(SegioError, match="units"):
        segio.write(primitives(), tmp_path / "a.glb", units="inch")
    with pytest.raises(SegioError, match="merge"):
        segio.write(primitives(), tmp_path / "a.stl", merge="maybe")
    assert list(tmp_path.iterdir()) == []


def test_ras_space_is_a_proper_rotation() -> None:
    """LPS <-> RAS negates x and y: a rotation (determinant +1), so the faces keep their
    winding and volumes stay positive."""
    surface = primitives().surfaces["Segment_1"]
    ras = surface.transformed(LPS_TO_RAS)
    assert np.array_equal(ras.faces, surface.faces)
    assert np.array_equal(ras.vertices, surface.vertices * [-1.0, -1.0, 1.0])
    assert ras.volume() == pytest.approx(surface.volume()) and ras.volume() > 0


# -- end to end with the surface converters ------------------------------------------------------


@pytest.fixture
def labelmap_case(tmp_path: Path) -> tuple[Path, Path, Segmentation]:
    """A labelmap .seg.nrrd on an oblique, anisotropic grid and its CT series."""
    from segio.testing.synthetic import synthetic_segmentation

    original = synthetic_segmentation(n_segments=4, geometry=grid("oblique", (20, 30, 28)), seed=3)
    source = tmp_path / "seg.seg.nrrd"
    segio.write(original, source)
    return source, reference_series(original.require_geometry(), tmp_path / "ct"), original


def _cli(*args: str | Path) -> str:
    from click.testing import CliRunner

    from segio.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def test_convert_labelmap_to_glb(labelmap_case: tuple[Path, Path, Segmentation]) -> None:
    source, _, original = labelmap_case
    target = source.with_name("out.glb")
    _cli("convert", source, target)
    back = segio.read(target)
    assert [s.name for s in back.segments.values()] == [s.name for s in original.segments.values()]
    assert [s.color for s in back.segments.values()] == [
        s.color for s in original.segments.values()
    ]
    voxel = original.require_geometry().voxel_volume
    for segment, count in zip(
        back.segments.values(), original.voxel_counts().values(), strict=True
    ):
        mesh = trimesh.Trimesh(back.surfaces[segment.id].vertices, back.surfaces[segment.id].faces)
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume == pytest.approx(count * voxel, rel=0.2)


def test_convert_stl_to_labelmap_on_reference(
    labelmap_case: tuple[Path, Path, Segmentation],
) -> None:
    """``segio convert out.stl seg.nrrd --reference ct/``: the voxels land on the CT grid."""
    from segio.analysis.overlap import dice

    source, ct, original = labelmap_case
    written = segio.write(segio.read(source), source.with_name("out.stl"))
    first = next(iter(original.segments.values()))
    stl = source.with_name(f"out_{first.name}.stl")
    assert stl in written
    target = source.with_name("back.seg.nrrd")
    _cli("convert", stl, target, "--reference", ct)
    back = segio.read(target)
    assert back.require_geometry().is_close(original.require_geometry(), 1e-4)
    (segment,) = back.segments.values()
    assert dice(back.mask(segment.id), original.mask(first.id)) > 0.85


def test_reference_image_file_gives_the_grid(tmp_path: Path) -> None:
    """A CT volume in NIfTI (float, not a segmentation) as reference: its oblique grid."""
    nibabel = pytest.importorskip("nibabel")
    geometry = grid("oblique")
    image = nibabel.Nifti1Image(
        np.zeros(geometry.shape[::-1], np.float32), geometry.ijk_to_ras
    )  # nibabel indexes (i, j, k)
    nibabel.save(image, tmp_path / "ct.nii.gz")
    path = tmp_path / "scene.glb"
    segio.write(primitives(), path)
    back = segio.read(path, reference=tmp_path / "ct.nii.gz")
    assert back.reference_geometry is not None
    assert back.reference_geometry.is_close(geometry, 1e-4)


def test_obj_quads_negative_indices_and_extra_numbers(tmp_path: Path) -> None:
    """A cube of quads, relative (negative) indices, vertex colours after x y z, tabs."""
    corners = [(x, y, z) for x in (0, 2) for y in (0, 2) for z in (0, 2)]
    quads = [(1, 2, 4, 3), (5, 7, 8, 6), (1, 5, 6, 2), (3, 4, 8, 7), (1, 3, 7, 5), (2, 6, 8, 4)]
    lines = ["o cube"] + [f"v {x} {y} {z} 0.5 0.5 0.5" for x, y, z in corners]
    lines += ["f\t" + " ".join(f"{v - 9}/{v}" for v in quad) for quad in quads]  # -8..-1
    path = tmp_path / "cube.obj"
    path.write_text("\n".join(lines), encoding="ascii")
    back = segio.read(path)
    surface = back.surfaces["Segment_1"]
    assert back.segments["Segment_1"].name == "cube"
    assert len(surface.faces) == 12 and surface.volume() == pytest.approx(8.0)
    assert trimesh.Trimesh(surface.vertices, surface.faces).is_watertight
    path.write_text("\n".join([*lines[:9], "f 1 2"]), encoding="ascii")
    with pytest.raises(ReadError, match="fewer than three"):
        segio.read(path)


def test_polygon_triangles_fans_and_strips() -> None:
    """The shared triangulation against the per-polygon definition (fans, strips)."""
    from segio_plugins.meshes.common import polygon_triangles

    counts = np.array([3, 5, 4, 0, 6])
    ids = np.arange(counts.sum()) * 10
    fans, strips = [], []
    at = 0
    for n in counts:
        cell = ids[at : at + n]
        for k in range(n - 2):
            fans.append((cell[0], cell[k + 1], cell[k + 2]))
            a, b = (cell[k], cell[k + 1]) if k % 2 == 0 else (cell[k + 1], cell[k])
            strips.append((a, b, cell[k + 2]))
        at += n
    triangles, owner = polygon_triangles(counts, ids)
    assert triangles.tolist() == [list(t) for t in fans]
    assert owner.tolist() == [0, 1, 1, 1, 2, 2, 4, 4, 4, 4]
    assert polygon_triangles(counts, ids, strips=True)[0].tolist() == [list(t) for t in strips]
    with pytest.raises(ValueError, match="disagree"):
        polygon_triangles(counts, ids[:-1])


def test_ply_and_vtk_with_mixed_polygons(tmp_path: Path) -> None:
    """A cube as quads plus one face split in two triangles (mixed sizes, no fast path)."""
    corners = [(x, y, z) for x in (0, 2) for y in (0, 2) for z in (0, 2)]
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (1, 5, 7, 3)]
    cells = [*quads, (0, 2, 6), (0, 6, 4)]
    ply = tmp_path / "cube.ply"
    ply.write_text(
        "ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\n"
        "property float z\nelement face 7\nproperty list uchar int vertex_indices\n"
        "end_header\n"
        + "".join(f"{x} {y} {z}\n" for x, y, z in corners)
        + "".join(f"{len(c)} {' '.join(map(str, c))}\n" for c in cells),
        encoding="ascii",
    )
    vtk = tmp_path / "cube.vtk"
    vtk.write_text(
        "# vtk DataFile Version 3.0\ncube\nASCII\nDATASET POLYDATA\nPOINTS 8 float\n"
        + "".join(f"{x} {y} {z}\n" for x, y, z in corners)
        + f"POLYGONS 7 {sum(len(c) + 1 for c in cells)}\n"
        + "".join(f"{len(c)} {' '.join(map(str, c))}\n" for c in cells),
        encoding="ascii",
    )
    for path in (ply, vtk):
        surface = segio.read(path).surfaces["Segment_1"]
        assert len(surface.faces) == 12, path.name
        assert surface.volume() == pytest.approx(8.0), path.name
        assert trimesh.Trimesh(surface.vertices, surface.faces).is_watertight, path.name


def test_sniffers_recognise_foreign_files_and_reject_noise(tmp_path: Path) -> None:
    from segio.registry import default_registry

    mesh = trimesh.creation.icosphere(subdivisions=1, radius=5.0)
    foreign = {
        "stl": mesh.export(file_type="stl"),  # binary, zero header: known by its records
        "ply": mesh.export(file_type="ply"),
        "obj": mesh.export(file_type="obj").encode(),
        "gltf": mesh.export(file_type="glb"),
    }
    registry = default_registry()
    for name, data in foreign.items():
        path = tmp_path / f"{name}_noext"
        path.write_bytes(data)
        assert registry.reader_for(path).name == name
        assert len(segio.read(path).surfaces) == 1
    noise = np.random.default_rng(3).bytes(4096)
    mesh_formats = ("stl", "obj", "ply", "vtk", "gltf", "3mf")
    sniffers = {n: registry.format(n).sniff for n in mesh_formats}
    claimed = [n for n, sniff in sniffers.items() if sniff is not None and sniff(noise)]
    assert claimed == []


def test_3mf_from_other_writers(tmp_path: Path) -> None:
    """Attributes in another order (the general XML path) and trimesh's 3MF export."""
    import re

    original = primitives()
    path = tmp_path / "ours.3mf"
    segio.write(original, path)
    with zipfile.ZipFile(path) as package:
        parts = {name: package.read(name) for name in package.namelist()}
    parts["3D/3dmodel.model"] = re.sub(
        rb'<vertex x="([^"]*)" y="([^"]*)" z="([^"]*)"/>',
        rb'<vertex z="\3" y="\2" x="\1"/>',
        parts["3D/3dmodel.model"],
    )
    shuffled = tmp_path / "shuffled.3mf"
    with zipfile.ZipFile(shuffled, "w") as package:
        for name, data in parts.items():
            package.writestr(name, data)
    assert_same_segmentation(original, segio.read(shuffled))
    foreign = tmp_path / "trimesh.3mf"
    scene = trimesh.Scene()
    shift = np.array([15.0, -7.0, 30.0])
    expected = {}
    for n, segment in enumerate(original.segments.values()):
        surface = original.surfaces[segment.id]
        mesh = trimesh.Trimesh(surface.vertices, surface.faces)
        moved = n == 1  # trimesh writes a node's transform on its build item
        transform = trimesh.transformations.translation_matrix(shift) if moved else None
        scene.add_geometry(
            mesh, node_name=segment.name, geom_name=segment.name, transform=transform
        )
        expected[segment.name] = surface.vertices + (shift if moved else 0.0)
    scene.export(foreign)
    back = segio.read(foreign)
    assert sorted(s.name for s in back.segments.values()) == sorted(expected)
    for segment in back.segments.values():
        surface = back.surfaces[segment.id]
        want = expected[segment.name]
        assert surface.vertices.mean(axis=0) == pytest.approx(want.mean(axis=0), abs=1e-6)
        assert np.allclose(np.sort(surface.vertices, axis=0), np.sort(want, axis=0), atol=1e-6)
        assert surface.volume() == pytest.approx(
            trimesh.Trimesh(want, original.surfaces[_id(original, segment.name)].faces).volume
        )


def _id(segmentation: Segmentation, name: str) -> str:
    return next(s.id for s in segmentation.segments.values() if s.name == name)


def test_3mf_item_and_component_transforms(tmp_path: Path) -> None:
    """Build-item transforms (translation, a mirror) and a components-only assembly."""
    original = primitives()
    path = tmp_path / "ours.3mf"
    segio.write(original, path)
    with zipfile.ZipFile(path) as package:
        parts = {name: package.read(name) for name in package.namelist()}
    model = parts["3D/3dmodel.model"]
    # Segment 1 moved, segment 2 mirrored in x and moved, segment 3 an assembly (object 9)
    # holding object 4 scaled by 2 in z, itself placed by its item.
    model = model.replace(
        b'<item objectid="2"/>', b'<item objectid="2" transform="1 0 0 0 1 0 0 0 1 10 20 30"/>'
    )
    model = model.replace(
        b'<item objectid="3"/>', b'<item objectid="3" transform="-1 0 0 0 1 0 0 0 1 5 0 0"/>'
    )
    model = model.replace(
        b'<item objectid="4"/>', b'<item objectid="9" transform="1 0 0 0 1 0 0 0 1 0 0 -1"/>'
    )
    model = model.replace(
        b"</resources>",
        b'<object id="9" type="model" name="Assembly"><components>'
        b'<component objectid="4" transform="1 0 0 0 1 0 0 0 2 0 0 0"/>'
        b"</components></object></resources>",
    )  # fmt: skip
    parts["3D/3dmodel.model"] = model
    edited = tmp_path / "edited.3mf"
    with zipfile.ZipFile(edited, "w") as package:
        for name, data in parts.items():
            package.writestr(name, data)
    back = segio.read(edited)
    surfaces = [back.surfaces[s] for s in back.segments]
    sphere, box, torus = (original.surfaces[f"Segment_{n}"] for n in (1, 2, 3))
    assert np.allclose(surfaces[0].vertices, sphere.vertices + np.array([10.0, 20.0, 30.0]))
    assert np.allclose(
        surfaces[1].vertices, box.vertices * np.array([-1.0, 1.0, 1.0]) + np.array([5.0, 0.0, 0.0])
    )
    assert np.array_equal(surfaces[1].faces, box.faces[:, ::-1])  # mirror: winding flipped
    assert surfaces[1].volume() == pytest.approx(box.volume())
    assert np.allclose(
        surfaces[2].vertices,
        torus.vertices * np.array([1.0, 1.0, 2.0]) + np.array([0.0, 0.0, -1.0]),
    )
    assert surfaces[2].volume() == pytest.approx(2 * torus.volume())
    assert back.segments[list(back.segments)[2]].color == pytest.approx(
        original.segments["Segment_3"].color, abs=1 / 255
    )


@pytest.mark.parametrize(("space", "x"), [("RAS", -10.0), ("LPS", 10.0), (None, 10.0)])
def test_a_slicer_model_vtp_space_field_is_honoured(
    space: str | None, x: float, tmp_path: Path
) -> None:
    """3D Slicer saves a model ``.vtp`` with a ``SPACE`` string field (LPS since 4.11, RAS
    in older scenes); without it, LPS, as Slicer assumes for a new file."""
    vtk = pytest.importorskip("vtk")
    source = vtk.vtkSphereSource()
    source.SetCenter(10.0, 0.0, 0.0)
    source.Update()
    poly = source.GetOutput()
    if space is not None:
        field = vtk.vtkStringArray()
        field.SetName("SPACE")
        field.InsertNextValue(space)
        poly.GetFieldData().AddArray(field)
    writer = vtk.vtkXMLPolyDataWriter()
    writer.SetInputData(poly)
    writer.SetFileName(str(tmp_path / "model.vtp"))
    writer.Write()
    back = segio.read(tmp_path / "model.vtp")
    center = next(iter(back.surfaces.values())).vertices.mean(axis=0)
    np.testing.assert_allclose(center, [x, 0.0, 0.0], atol=1e-6)
