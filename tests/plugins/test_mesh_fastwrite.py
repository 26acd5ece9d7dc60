"""The fast mesh writers against the plain ones: 3MF text formatted by numpy, deflated in
threads.

``numtext.rows`` must give ``'%.17g'`` and ``'%d'`` byte for byte (the plain formatter the
3MF writer used before, and still uses for the values outside its fast range), at every
block boundary, for every kind of double (powers of ten, carries, ties, zeros, tiny and huge
values); the 3MF written from pieces deflated in parallel must be one valid zip whose
vertex and triangle text is that text, read back value for value by segio and by lib3mf.
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from segio_plugins.meshes import numtext, threemf, zipstream
from segio_plugins.meshes.gltfparse import LPS_TO_GLTF

import segio
from segio import Segment, Segmentation
from segio.errors import WriteError
from segio.representations import Representation
from segio.surfaces import Surface, face_normals, vertex_normals
from segio.testing.synthetic import surface_segmentation

VERTEX = (b'<vertex x="', b'" y="', b'" z="', b'"/>\n')
TRIANGLE = (b'<triangle v1="', b'" v2="', b'" v3="', b'"/>\n')


def plain(pieces: tuple[bytes, ...], table: np.ndarray, code: bytes) -> bytes:
    """The plain formatter: ``pattern % row`` for every row."""
    pattern = code.join(pieces)
    return b"".join(pattern % tuple(row) for row in table.tolist())


def fast(pieces: tuple[bytes, ...], table: np.ndarray, *, floats: bool, block: int) -> bytes:
    return b"".join(numtext.rows(pieces, table, floats=floats, block=block))


def awkward_doubles() -> np.ndarray:
    """Doubles where a formatter goes wrong if it can: the edges of the fast range, powers
    of ten and their neighbours, roundings that carry into a new digit, exact ties of the
    17th digit, short decimals with trailing zeros, zeros, tiny and huge values."""
    values = [0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1 / 3, 2 / 3, 12.25, 100.0, 123.456, 5e-324]
    values += [1e-300, 1e300, 1.7976931348623157e308, 1e15, 1e16, 1e17, 1e22, 1e-5]
    for k in range(-6, 18):
        ten = 10.0**k
        values += [ten, np.nextafter(ten, 0), np.nextafter(ten, np.inf), 9.5 * ten]
        values += [float("0." + "9" * 20) * ten]  # rounds up to the next power of ten
    for bits in range(1, 30):  # x * 10**f an exact half: rounding ties
        values += [1 + 2.0**-bits, 100 + 2.0**-bits, 999 + 2.0**-bits, 2.0**bits + 0.5]
    values += [999.99999999999999, 9999.9999999999999, 99999.999999999999]
    values += [np.nextafter(999.5, 0), 999.5, 1000.0 - 2**-40]
    array = np.array(values)
    return np.concatenate([array, -array])


@pytest.mark.parametrize("block", [1, 7, 64, numtext.BLOCK])
def test_doubles_are_printf_17g_byte_for_byte(block: int) -> None:
    rng = np.random.default_rng(7)
    spread = rng.standard_normal(6000) * 10.0 ** rng.integers(-8, 20, 6000)
    coordinates = rng.uniform(-600, 600, 6000)
    values = np.concatenate([awkward_doubles(), spread, coordinates])
    values = values[: len(values) // 3 * 3].reshape(-1, 3)
    text = fast(VERTEX, values, floats=True, block=block)
    assert text == plain(VERTEX, values, b"%.17g")
    numbers = re.findall(rb'"([^"]*)"', text)
    assert np.array_equal(np.array([float(n) for n in numbers]), values.ravel())


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
        elements=st.floats(allow_nan=False, allow_infinity=False),
    ),
    st.integers(1, 50),
)
def test_any_finite_doubles_are_printf_17g(values: np.ndarray, block: int) -> None:
    pieces = (b"<v a='", *(b"' b='" for _ in range(values.shape[1] - 1)), b"'/>\n")
    assert fast(pieces, values, floats=True, block=block) == plain(pieces, values, b"%.17g")


@pytest.mark.parametrize("block", [1, 5, numtext.BLOCK])
def test_integers_are_printf_d_byte_for_byte(block: int) -> None:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 10**6, (3000, 3))
    edges = np.array([[0, 9, 10], [99, 100, 999], [9999, 10**4, 10**4 + 1], [999999, 0, 1]])
    assert fast(TRIANGLE, np.vstack([edges, small]), floats=False, block=block) == plain(
        TRIANGLE, np.vstack([edges, small]), b"%d"
    )
    powers = [10**k + d for k in range(19) for d in (-1, 0, 1) if 0 <= 10**k + d < 10**18]
    large = np.array(powers + [10**18 - 1] * 2)[: len(powers) // 3 * 3].reshape(-1, 3)
    assert fast(TRIANGLE, large, floats=False, block=block) == plain(TRIANGLE, large, b"%d")
    # Literals of other lengths, ending differently in each column.
    pieces = (b"", b"<", b' k="', b"\n")
    assert fast(pieces, small, floats=False, block=block) == plain(pieces, small, b"%d")


def test_rows_refuse_what_they_cannot_write() -> None:
    with pytest.raises(ValueError, match=r"0 \.\. 10"):
        list(numtext.rows(TRIANGLE, np.array([[0, -1, 2]]), floats=False))
    with pytest.raises(ValueError, match="NUL"):
        list(numtext.rows((b"a\0", b"b"), np.zeros((1, 1)), floats=True))
    with pytest.raises(ValueError, match="pieces"):
        list(numtext.rows(VERTEX, np.zeros((2, 2)), floats=True))
    with pytest.raises(ValueError, match="pieces"):
        list(numtext.rows((b"",), np.zeros((2, 0)), floats=True))
    with pytest.raises(ValueError, match="integer table"):
        list(numtext.rows(TRIANGLE, np.zeros((2, 3)), floats=False))


def segmentation(
    rng: np.random.Generator, sizes: list[int], *, awkward: bool = True
) -> Segmentation:
    """Segments of random triangles over random vertices (the text does not care about
    closed meshes), coordinates spread like a CT scan's in millimetres, plus awkward ones
    (which lib3mf refuses beyond its coordinate range)."""
    segments, surfaces = [], {}
    for n, size in enumerate(sizes):
        vertices = rng.uniform(-400, 400, (size, 3))
        if awkward:
            vertices[: min(size, 30)] = awkward_doubles()[: min(size, 30) * 3].reshape(-1, 3)
        faces = rng.integers(0, size, (2 * size, 3))
        segment = Segment(f"S{n}", f'Part <{n}> & "{n}"', (0.1 * n, 0.5, 0.9), label_value=n + 1)
        segments.append(segment)
        surfaces[segment.id] = Surface(vertices, faces)
    return Segmentation(
        segments, source_representation=Representation.CLOSED_SURFACE, surfaces=surfaces
    )


def mesh_text(model: bytes, tag: bytes) -> list[bytes]:
    return re.findall(b"<%s>\n(.*?)\n</%s>" % (tag, tag), model, re.DOTALL)


@pytest.mark.parametrize("small", [False, True])
def test_3mf_mesh_text_is_the_plain_text(
    small: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each object's vertices and triangles are the plain ``%.17g`` / ``%d`` rows, read
    back as the very same numbers; with tiny jobs, blocks and deflate pieces every
    boundary is crossed many times (and the zip is ZIP64), and the package stays valid."""
    if small:
        monkeypatch.setattr(threemf, "ROWS", 37)
        monkeypatch.setattr(numtext, "BLOCK", 5)
        monkeypatch.setattr(zipstream, "PIECE", 300)
        monkeypatch.setattr(threemf, "ZIP64_FROM", 0)
    original = segmentation(np.random.default_rng(5), [500, 3, 1200])
    path = tmp_path / "print.3mf"
    segio.write(original, path)
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        model = package.read(threemf.MODEL)
    surfaces = list(original.surfaces.values())
    assert mesh_text(model, b"vertices") == [plain(VERTEX, s.vertices, b"%.17g") for s in surfaces]
    assert mesh_text(model, b"triangles") == [plain(TRIANGLE, s.faces, b"%d") for s in surfaces]
    back = segio.read(path)
    for surface, again in zip(surfaces, back.surfaces.values(), strict=True):
        assert np.array_equal(again.vertices, surface.vertices)
        assert np.array_equal(again.faces, surface.faces)
    assert [s.name for s in back.segments.values()] == [s.name for s in original.segments.values()]


def test_lib3mf_reads_the_pieced_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib3mf = pytest.importorskip("lib3mf")
    monkeypatch.setattr(threemf, "ROWS", 50)
    monkeypatch.setattr(zipstream, "PIECE", 1000)
    monkeypatch.setattr(threemf, "ZIP64_FROM", 0)
    original = surface_segmentation(4, unicode_names=True)
    path = tmp_path / "print.3mf"
    segio.write(original, path)
    model = lib3mf.get_wrapper().CreateModel()
    reader = model.QueryReader("3mf")
    reader.ReadFromFile(str(path))
    objects = model.GetMeshObjects()
    for surface in original.surfaces.values():
        assert objects.MoveNext()
        mesh = objects.GetCurrentMeshObject()
        points = np.array([v.Coordinates[0:3] for v in mesh.GetVertices()])
        triangles = np.array([t.Indices[0:3] for t in mesh.GetTriangleIndices()])
        assert np.array_equal(points, surface.vertices.astype(np.float32))  # lib3mf: float32
        assert np.array_equal(triangles, surface.faces)


@pytest.mark.parametrize("engine", ["isal", "zlib"])
def test_parallel_deflate_is_one_stream(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine == "zlib":
        monkeypatch.setattr(zipstream, "_deflater", lambda: (zlib, zipstream.LEVEL))
    else:
        pytest.importorskip("isal")
    monkeypatch.setattr(zipstream, "PIECE", 1 << 12)
    rng = np.random.default_rng(1)
    data = [
        rng.integers(48, 58, int(n), dtype=np.uint8).tobytes() for n in rng.integers(0, 9000, 60)
    ]
    deflate = zipstream.ParallelDeflate(3)
    out = [deflate.compress(piece) for piece in data]
    out.append(deflate.flush())
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(b"".join(out)) == b"".join(data)
    assert inflater.eof and not inflater.unused_data


def test_a_stored_entry_keeps_zipfiles_own_path(tmp_path: Path) -> None:
    """Without a compressor to replace (a stored entry), zipfile writes the entry alone."""
    with (
        zipfile.ZipFile(tmp_path / "a.zip", "w", zipfile.ZIP_STORED) as package,
        zipstream.deflated_entry(package, "a.txt") as stream,
    ):
        stream.write(b"abc" * 1000)
    with zipfile.ZipFile(tmp_path / "a.zip") as package:
        assert package.getinfo("a.txt").compress_type == zipfile.ZIP_STORED
        assert package.read("a.txt") == b"abc" * 1000


def test_in_order_keeps_order_and_stops_on_an_error() -> None:
    started: list[int] = []

    def job(n: int) -> bytes:
        started.append(n)
        if n == 5:
            raise RuntimeError("job 5 failed")
        return b"%d," % n

    assert b"".join(zipstream.in_order(lambda n=n: job(n) for n in range(5))) == b"0,1,2,3,4,"
    started.clear()
    with pytest.raises(RuntimeError, match="job 5"):
        list(zipstream.in_order((lambda n=n: job(n) for n in range(1000)), 2))
    assert len(started) < 20  # the jobs after the failure were not all run


def test_a_failing_3mf_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("out of memory while formatting")

    monkeypatch.setattr(numtext, "rows", broken)
    with pytest.raises(WriteError, match="not enough memory"):
        segio.write(segmentation(np.random.default_rng(2), [50]), tmp_path / "print.3mf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("given", [True, False])
def test_glb_arrays_are_the_plain_products(given: bool, tmp_path: Path) -> None:
    """Positions and normals written column by column are the matrix products the plain
    writer computed (``vertices @ (LPS_TO_GLTF * 0.001).T``, normals turned and made unit
    in float64), value for value, with their accessors' exact bounds."""
    rng = np.random.default_rng(4)
    vertices = rng.uniform(-300, 300, (500, 3))
    vertices[:4] = [[0.0, -0.0, 5.0], [-0.0, 0.0, -0.0], [1e-9, -1e9, 3.0], [7.0, 7.0, 7.0]]
    faces = rng.integers(0, 500, (900, 3))
    normals = rng.standard_normal((500, 3)) if given else None
    if normals is not None:
        normals[0] = 0.0  # no direction: glTF wants a unit vector, +Y is written
    segment = Segment("S", "S", (0.2, 0.4, 0.6), label_value=1)
    original = Segmentation(
        [segment],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={"S": Surface(vertices, faces, normals)},
    )
    path = tmp_path / "a.glb"
    segio.write(original, path)
    data = path.read_bytes()
    (size,) = struct.unpack_from("<I", data, 12)
    document = json.loads(data[20 : 20 + size])
    blob = data[20 + size + 8 :]

    def accessor(n: int) -> tuple[np.ndarray, dict[str, Any]]:
        info = document["accessors"][n]
        view = document["bufferViews"][info["bufferView"]]
        raw = blob[view["byteOffset"] : view["byteOffset"] + view["byteLength"]]
        return np.frombuffer(raw, "<f4").reshape(-1, 3), info

    primitive = document["meshes"][0]["primitives"][0]["attributes"]
    points, info = accessor(primitive["POSITION"])
    expected = (vertices @ (LPS_TO_GLTF * 0.001).T).astype(np.float32)
    assert np.array_equal(points, expected)
    assert info["min"] == expected.min(axis=0).tolist()
    assert info["max"] == expected.max(axis=0).tolist()
    unit, info = accessor(primitive["NORMAL"])
    source = original.surfaces["S"].normals
    if source is None:
        source = vertex_normals(vertices, faces)
    turned = source.astype(np.float64) @ LPS_TO_GLTF.T
    length = np.linalg.norm(turned, axis=1, keepdims=True)
    plain = np.where(length > 0, turned / np.where(length > 0, length, 1.0), [0, 1, 0])
    assert np.array_equal(unit, plain.astype(np.float32))
    assert info["min"] == unit.min(axis=0).tolist() and info["max"] == unit.max(axis=0).tolist()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normals_are_the_plain_cross_products_and_sums(dtype: type) -> None:
    """face_normals is ``np.cross`` of the edges and vertex_normals the ``np.add.at`` sums
    of the face normals, normalised, value for value: degenerate triangles (zero normals),
    vertices no triangle uses (+z), repeated corners."""
    rng = np.random.default_rng(11)
    vertices = rng.uniform(-200, 200, (300, 3)).astype(dtype)
    faces = rng.integers(0, 250, (700, 3))  # vertices 250.. unused
    faces[:20, 1] = faces[:20, 0]  # two corners alike: degenerate
    vertices[260:270] = vertices[0]  # unused duplicates
    faces[20:30] = [[1, 2, 3]] * 10  # one triangle many times
    a, b, c = (vertices[faces[:, n]] for n in range(3))
    plain = np.cross(b - a, c - a)
    normals = face_normals(vertices, faces)
    assert normals.dtype == plain.dtype and np.array_equal(normals, plain)
    assert np.array_equal(normals[:20], np.zeros((20, 3), dtype))
    length = np.linalg.norm(plain, axis=1, keepdims=True)
    unit = np.where(length > 0, plain / np.where(length > 0, length, 1.0), 0.0)
    assert np.array_equal(face_normals(vertices, faces, unit=True), unit)
    sums = np.zeros((len(vertices), 3))
    np.add.at(sums, faces.ravel(), np.repeat(plain.astype(np.float64), 3, axis=0))
    length = np.linalg.norm(sums, axis=1, keepdims=True)
    expected = np.where(length > 0, sums / np.where(length > 0, length, 1.0), [0.0, 0.0, 1.0])
    found = vertex_normals(vertices.astype(np.float64), faces)
    if dtype is np.float64:
        assert np.array_equal(found, expected.astype(np.float32))
    assert np.array_equal(found[250:], np.tile(np.float32([0, 0, 1]), (50, 1)))
