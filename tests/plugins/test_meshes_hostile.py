"""Mesh readers on crafted files (issue 11, items 1 to 3), with exact expectations.

``tests/test_hostile.py`` runs every case of ``fixtures/hostile/meshes.py`` in limited
workers; these tests pin down what the readers say and do: which reference is refused and
why, that an unreadable MTL is a warning and the geometry still reads, that bombs stop at
their declared size (measured with tracemalloc), and that cycles and counts are refused
before anything is built.
"""

from __future__ import annotations

import os
import re
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile import meshes as crafted

import segio
from segio.errors import LimitError, ReadError

SECRET = b"SEGIO-TEST-SECRET-do-not-read"
_OPENED: list[str] = []


def _audit(event: str, arguments: tuple[Any, ...]) -> None:
    if event == "open" and arguments and isinstance(arguments[0], (str, bytes, os.PathLike)):
        _OPENED.append(os.fsdecode(arguments[0]))


sys.addaudithook(_audit)  # hooks cannot be removed: it only records, into _OPENED


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[Path]:
    """A secret outside the case folder ``tmp_path / "case"``; asserts it is never opened."""
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    (tmp_path / "case").mkdir()
    _OPENED.clear()
    yield path
    assert not [name for name in _OPENED if Path(name).name == "secret.txt"], _OPENED


def _read_quietly(path: Path, **options: Any) -> segio.Segmentation:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return segio.read(path, **options)


# -- references ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("{secret}", "it is an absolute path"),
        ("../outside/secret.txt", "it resolves outside the folder"),
        ("%2e%2e/outside/secret.txt", "it resolves outside the folder"),
        ("%2E%2E%2Foutside%2Fsecret.txt", "it resolves outside the folder"),
        ("file://{secret}", "it is a URL"),
        ("file:///{secret}", "it is a URL"),
        ("https://example.invalid/b.bin", "it is a URL"),
        ("link.bin", "it resolves outside the folder"),
        ("fifo.bin", "FIFO"),
        ("zero.bin", "it resolves outside the folder"),
    ],
)
def test_gltf_buffer_references_stay_in_the_folder(uri: str, why: str, secret: Path) -> None:
    folder = secret.parent.parent / "case"
    (folder / "link.bin").symlink_to(secret)
    (folder / "zero.bin").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.bin")
    uri = uri.format(secret=secret)
    (folder / "a.gltf").write_bytes(crafted.gltf_with_buffer(uri))
    with pytest.raises(ReadError) as caught:
        segio.read(folder / "a.gltf")
    message = str(caught.value)
    assert message.startswith(str(folder / "a.gltf")) and why in message
    assert f"buffer 0 {uri!r}" in message and "\n" not in message


def test_gltf_buffer_in_a_sub_folder_is_read(tmp_path: Path) -> None:
    document, blob = crafted.gltf_parts()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "mesh data.bin").write_bytes(blob + b"trailing bytes are not read")
    (tmp_path / "a.gltf").write_bytes(crafted.gltf(document, uri="bin/mesh%20data.bin"))
    surface = next(iter(_read_quietly(tmp_path / "a.gltf", axes="lps").surfaces.values()))
    np.testing.assert_allclose(np.sort(surface.vertices, axis=0), np.sort(crafted.VERTICES, axis=0))


def test_gltf_buffer_file_shorter_than_declared(tmp_path: Path) -> None:
    document, blob = crafted.gltf_parts()
    (tmp_path / "b.bin").write_bytes(blob[:10])
    (tmp_path / "a.gltf").write_bytes(crafted.gltf(document, uri="b.bin"))
    with pytest.raises(LimitError, match="buffer 0 declares"):
        segio.read(tmp_path / "a.gltf")


def test_gltf_images_are_never_opened(secret: Path) -> None:
    document, blob = crafted.gltf_parts()
    document["images"] = [{"uri": str(secret)}, {"uri": "../outside/secret.txt"}]
    path = secret.parent.parent / "case" / "a.gltf"
    path.write_bytes(crafted.gltf(document, blob))
    assert len(_read_quietly(path).segments) == 1


def test_gltf_data_uri_is_bounded_by_the_byte_length(tmp_path: Path) -> None:
    document, blob = crafted.gltf_parts()
    document["buffers"][0]["byteLength"] = 12
    (tmp_path / "a.gltf").write_bytes(crafted.gltf(document, blob))
    with pytest.raises(ReadError, match="its data URI holds 96 bytes but its byteLength"):
        segio.read(tmp_path / "a.gltf")


@pytest.mark.parametrize(
    "reference",
    ["{secret}", "../outside/secret.txt", "link.mtl", "fifo.mtl", "zero.mtl", "missing.mtl"],
)
def test_obj_material_library_that_cannot_be_read_is_a_warning(
    reference: str, secret: Path
) -> None:
    """The geometry reads without the colours, as in trimesh and Slicer; one warning."""
    folder = secret.parent.parent / "case"
    (folder / "link.mtl").symlink_to(secret)
    (folder / "zero.mtl").symlink_to("/dev/zero")
    os.mkfifo(folder / "fifo.mtl")
    reference = reference.format(secret=secret)
    extra = "".join(f"mtllib other{n}.mtl\n" for n in range(50))
    path = folder / "a.obj"
    path.write_bytes(crafted.obj(f"mtllib {reference}") + extra.encode())
    with pytest.warns(UserWarning) as caught:
        segmentation = segio.read(path)
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert message.startswith(f"{path}: refused to read the MTL material library {reference!r}")
    assert "and 50 more libraries" in message and "without those colours" in message
    assert len(segmentation.surfaces["Segment_1"].faces) == 4


def test_obj_textures_named_in_the_mtl_are_never_opened(secret: Path) -> None:
    folder = secret.parent.parent / "case"
    (folder / "m.mtl").write_bytes(crafted.MTL + f"map_Kd {secret}\n".encode())
    (folder / "a.obj").write_bytes(crafted.obj("mtllib m.mtl"))
    segment = next(iter(_read_quietly(folder / "a.obj").segments.values()))
    assert segment.color == (1.0, 0.0, 0.0)


# -- bombs ------------------------------------------------------------------------------------


def _peak(read: Callable[[], object]) -> int:
    """Peak bytes traced while ``read`` fails."""
    tracemalloc.start()
    try:
        with pytest.raises(ReadError):
            read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("declared", "appended"), [(48, True), (48, False), (crafted.BOMB, True)])
def test_vtp_zlib_bomb_stops_at_the_declared_size(
    declared: int, appended: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    size = crafted.BOMB if appended else 64 << 20
    path = tmp_path / "a.vtp"
    path.write_bytes(crafted.vtp_zlib_points(declared, crafted.zlib_bomb(size), appended=appended))
    assert _peak(lambda: segio.read(path)) < 40 << 20


def test_vtp_zlib_blocks_inflate_to_their_declared_sizes(tmp_path: Path) -> None:
    path = tmp_path / "a.vtp"
    path.write_bytes(crafted.vtp(compress=True))
    assert len(_read_quietly(path).surfaces["Segment_1"].faces) == 4


@pytest.mark.parametrize("declared", [crafted.BOMB, 4096])
def test_3mf_model_bomb_stops_at_the_limit(
    declared: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared honestly (1 GiB) it is refused before inflating; declared as 4 kB, reading
    stops one byte past that."""
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    stream = crafted.raw_bomb()
    crc = crafted._crc_of_zeros(crafted.BOMB)
    path = tmp_path / "a.3mf"
    path.write_bytes(crafted.zip_package([], [("3D/3dmodel.model", stream, crc, declared)]))
    assert _peak(lambda: segio.read(path)) < 40 << 20


def test_3mf_with_thousands_of_entries_is_refused(tmp_path: Path) -> None:
    one = crafted.model(crafted.mesh_object(1), '<item objectid="1"/>')
    entries = [("3D/3dmodel.model", one)] + [(f"x/{n}", b"") for n in range(2000)]
    (tmp_path / "a.3mf").write_bytes(crafted.zip_package(entries))
    with pytest.raises(ReadError, match="the package has 2001 entries"):
        segio.read(tmp_path / "a.3mf")


@pytest.mark.parametrize("head", [crafted.LAUGHS, '<!DOCTYPE x [<!ENTITY e SYSTEM "x">]>'])
def test_xml_with_a_document_type_is_refused(head: str, tmp_path: Path) -> None:
    (tmp_path / "a.vtp").write_bytes(crafted.vtp(head=head))
    (tmp_path / "a.3mf").write_bytes(
        crafted.threemf(crafted.model(crafted.mesh_object(1), '<item objectid="1"/>', head=head))
    )
    for name, format in (("a.vtp", "vtk"), ("a.3mf", "3mf")):
        with pytest.raises(ReadError, match="entity expansion is refused"):
            segio.read(tmp_path / name, format=format)


# -- structures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        (crafted.assembly(1, [1]), "object 1 contains itself"),
        (crafted.assembly(1, [2]) + crafted.assembly(2, [1]), "contains itself"),
        ("".join(crafted.assembly(n, [n + 1]) for n in range(1, 100)), "nest more than 64"),
    ],
)
def test_3mf_component_cycles_and_depth_are_refused(
    objects: str, message: str, tmp_path: Path
) -> None:
    (tmp_path / "a.3mf").write_bytes(
        crafted.threemf(crafted.model(objects, '<item objectid="1"/>'))
    )
    with pytest.raises(ReadError, match=message):
        segio.read(tmp_path / "a.3mf")


def test_3mf_exponential_instancing_is_refused_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 objects each placing the next twice: 2^39 tetrahedra, refused from the counts."""
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    doubling = "".join(crafted.assembly(n, [n + 1, n + 1]) for n in range(1, 40))
    model = crafted.model(doubling + crafted.mesh_object(40), '<item objectid="1"/>')
    (tmp_path / "a.3mf").write_bytes(crafted.threemf(model))
    with pytest.raises(LimitError, match=r"the meshes the build places would need 105\.6 TB"):
        segio.read(tmp_path / "a.3mf")


def test_3mf_instances_share_one_parsed_mesh(tmp_path: Path) -> None:
    objects = crafted.mesh_object(1) + crafted.assembly(2, [1, 1, 1])
    (tmp_path / "a.3mf").write_bytes(
        crafted.threemf(crafted.model(objects, '<item objectid="2"/>'))
    )
    assert len(_read_quietly(tmp_path / "a.3mf").surfaces["Segment_1"].faces) == 12


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["nodes"][0].update(children=[0]), "node 0 is reached twice"),
        (
            lambda d: d.update(nodes=[{"children": [1, 1]}, {"mesh": 0}]),
            "node 1 is reached twice",
        ),
        (lambda d: d["nodes"][0].update(mesh=-1), r"meshes\[-1\] is out of range"),
        (lambda d: d["accessors"][0].update(count=1 << 40), "declares 1099511627776 elements"),
        (lambda d: d["accessors"][0].update(count=-1), "must be a whole number >= 0"),
        (lambda d: d["bufferViews"][0].update(byteOffset=-12), "must be a whole number >= 0"),
    ],
)
def test_gltf_structure_is_checked(
    change: Callable[[dict[str, Any]], object], message: str, tmp_path: Path
) -> None:
    document, blob = crafted.gltf_parts()
    change(document)
    (tmp_path / "a.gltf").write_bytes(crafted.gltf(document, blob))
    with pytest.raises(ReadError, match=message):
        segio.read(tmp_path / "a.gltf")


@pytest.mark.parametrize(
    "name", ["gltf-deep-json", "obj-deep-json", "ply-deep-json", "vtk-deep-json", "3mf-deep-json"]
)
def test_deep_json_is_a_plain_read_error(name: str, tmp_path: Path) -> None:
    """JSON (a glTF, segio's metadata in the other formats) nested 100,000 deep."""
    if name == "gltf-deep-json":
        data = b'{"asset": ' + crafted.DEEP_JSON.encode() + b"}"
        files = {"a.gltf": data}
    else:
        (case,) = [c for c in crafted._deep_metadata() if c.name == name]
        files = case.files
    for file, data in files.items():
        (tmp_path / file).write_bytes(data)
    with pytest.raises(ReadError, match="nests too deep") as caught:
        segio.read(tmp_path / next(iter(files)))
    chain: BaseException | None = caught.value
    while chain is not None:
        assert not isinstance(chain, RecursionError)
        chain = chain.__cause__ or chain.__context__


def test_gltf_instances_count_against_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "64MiB")
    (tmp_path / "a.glb").write_bytes(crafted._instanced(2000))
    with pytest.raises(LimitError, match="the meshes the nodes place"):
        segio.read(tmp_path / "a.glb")


# -- counts the file cannot hold ----------------------------------------------------------------

HUGE_COUNTS = {
    "stl": ("a.stl", lambda: crafted.stl_binary(count=0xFFFFFFFF), "has 214748364834 bytes"),
    "ply": ("a.ply", lambda: crafted.ply_binary(n_vertices=4_000_000_000), "element (4000000000"),
    "ply-faces": (
        "a.ply",
        lambda: crafted.ply_binary(counts=[3, 3, 3, 250], n_faces=2_000_000_000),
        "face element (2000000000 rows) declares",
    ),
    "ply-ascii": ("a.ply", lambda: crafted.ply_ascii(n_vertices=4_000_000_000), "cut short"),
    "vtk": ("a.vtk", lambda: crafted.vtk_legacy(n_points=4_000_000_000), "POINTS declares"),
    "vtk-ascii": (
        "a.vtk",
        lambda: crafted.vtk_legacy(n_points=4 << 30, ascii=True),
        "POINTS declares 12884901888 numbers",
    ),
}


@pytest.mark.parametrize("case", sorted(HUGE_COUNTS))
def test_declared_counts_are_compared_with_the_file_before_allocating(
    case: str, tmp_path: Path
) -> None:
    name, build, message = HUGE_COUNTS[case]
    (tmp_path / name).write_bytes(build())
    assert _peak(lambda: segio.read(tmp_path / name)) < 8 << 20
    with pytest.raises(ReadError, match=re.escape(message)):
        segio.read(tmp_path / name)


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("a.ply", lambda: crafted.ply_binary(count_type="char", counts=[3, 3, -1, 3])),
        ("a.ply", lambda: crafted.ply_ascii(faces=["-2 0 1 2"])),
        ("a.ply", lambda: crafted.ply_ascii(faces=["255 0 1 2"])),
        ("a.vtp", lambda: crafted.vtp(points=crafted._points("appended", offset=-60))),
        ("a.obj", lambda: crafted.obj(faces=[[1, 2, 10**30]])),
        ("a.vtk", lambda: crafted.vtk_legacy(polygons=(4, -16))),
    ],
)
def test_negative_and_overflowing_counts_are_read_errors(
    name: str, build: Callable[[], bytes], tmp_path: Path
) -> None:
    (tmp_path / name).write_bytes(build())
    with pytest.raises(ReadError) as caught:
        segio.read(tmp_path / name)
    chain: BaseException | None = caught.value
    while chain is not None:
        assert not isinstance(chain, (OverflowError, MemoryError)), repr(chain)
        chain = chain.__cause__ or chain.__context__


FACES_OUT = [
    ("a.obj", crafted.obj(faces=[[1, 2, 99]])),
    ("a.ply", crafted.ply_binary(faces=crafted.FACES + 10)),
    ("a.vtk", crafted.vtk_legacy(faces=crafted.FACES + 7)),
    ("a.vtp", crafted.vtp(faces=crafted.FACES + 9)),
    (
        "a.3mf",
        crafted.threemf(
            crafted.model(crafted.mesh_object(1), '<item objectid="1"/>').replace(
                b'v3="1"/>', b'v3="99"/>', 1
            )
        ),
    ),
]
NAN = [
    ("a.stl", crafted.stl_binary(crafted._nan())),
    ("a.obj", crafted.obj(vertices=crafted._nan())),
    ("a.ply", crafted.ply_binary(crafted._nan())),
    ("a.vtk", crafted.vtk_legacy(crafted._nan())),
    ("a.vtp", crafted.vtp(crafted._nan())),
    (
        "a.3mf",
        crafted.threemf(
            crafted.model(crafted.mesh_object(1, crafted._nan()), '<item objectid="1"/>')
        ),
    ),
]


@pytest.mark.parametrize(("name", "data"), FACES_OUT, ids=[n for n, _ in FACES_OUT])
def test_face_indices_out_of_range_are_refused(name: str, data: bytes, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ReadError, match=r"outside [01]\.\."):
        segio.read(tmp_path / name)


@pytest.mark.parametrize(("name", "data"), NAN, ids=[n for n, _ in NAN])
def test_non_finite_vertices_are_refused(name: str, data: bytes, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ReadError, match="NaN or infinite vertex coordinates"):
        segio.read(tmp_path / name)


def test_ply_rows_of_mixed_sizes_are_read_in_one_pass(tmp_path: Path) -> None:
    """Two megabytes of one-byte empty faces: about a second (per-row arrays took 9 s)."""
    (tmp_path / "a.ply").write_bytes(crafted.ply_many_empty_faces(2_000_000))
    start = time.monotonic()
    segmentation = _read_quietly(tmp_path / "a.ply")
    assert time.monotonic() - start < 5
    assert len(segmentation.surfaces["Segment_1"].faces) == 4


def test_ply_ascii_float_lists_are_read(tmp_path: Path) -> None:
    data = crafted.ply_ascii().replace(
        b"property list uchar int vertex_indices\n",
        b"property list uchar int vertex_indices\nproperty list uchar float texcoord\n",
    )
    lines = data.split(b"\n")
    lines = [line + b" 2 0.5 0.25" if line.startswith(b"3 ") else line for line in lines]
    (tmp_path / "a.ply").write_bytes(b"\n".join(lines))
    assert len(_read_quietly(tmp_path / "a.ply").surfaces["Segment_1"].faces) == 4
