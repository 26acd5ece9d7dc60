"""Tests of the streaming NRRD codec (segio_plugins.nrrd.nrrdfile and nrrddata)."""

from __future__ import annotations

import bz2
import gzip
import zlib
from pathlib import Path

import nrrd
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segio_plugins.nrrd import nrrddata as nd
from segio_plugins.nrrd import nrrdfile as nf

from segio.errors import ReadError, WriteError

GEOMETRY = {
    "space": "left-posterior-superior",
    "space directions": "(0.5,0,0) (0,0.75,0) (0,0,2)",
    "kinds": "domain domain domain",
    "space origin": "(-10,20.5,3)",
}


def blobs(shape: tuple[int, ...], dtype: str = "uint8", seed: int = 0) -> np.ndarray:
    """A labelmap-like array: a few labelled balls on a background, plus some noise."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(np.float32)
    out = np.zeros(shape, dtype)
    for label in range(1, 6):
        centre = rng.uniform(0, shape, size=len(shape)).reshape(-1, *([1] * len(shape)))
        out[((grid - centre) ** 2).sum(axis=0) < (min(shape) / 3) ** 2] = label
    out.flat[rng.integers(0, out.size, 50)] = 7
    return out


def roundtrip(
    tmp_path: Path,
    array: np.ndarray,
    fields: dict[str, str] = GEOMETRY,
    key_values: dict[str, str] | None = None,
    encoding: str = "gzip",
) -> tuple[nf.NrrdHeader, np.ndarray]:
    """Write with nrrdfile.write (2 threads), read back with read_header + read_data."""
    path = tmp_path / "a.nrrd"
    nf.write(path, array, fields=fields, key_values=key_values or {}, encoding=encoding, threads=2)
    header = nf.read_header(path)
    return header, nd.read_data(path, header)


def make(tmp_path: Path, text: str, payload: bytes = b"", name: str = "h.nrrd") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") + payload)
    return path


def read(path: Path) -> np.ndarray:
    return nd.read_data(path, nf.read_header(path))


DIRS = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 10]]).T  # columns = axis vectors
RAS, LAS = np.array([-1.0, -1, 1]), np.array([1.0, -1, 1])
HEAD = "NRRD0004\ntype: {type}\ndimension: 3\nsizes: 4 3 2\nencoding: {enc}\n{extra}\n\n"


@pytest.mark.parametrize("encoding", ["raw", "gzip", "bzip2"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", ">i2", "uint16", "float32"])
def test_roundtrip(tmp_path: Path, encoding: str, dtype: str) -> None:
    array = blobs((9, 20, 31), dtype)
    header, back = roundtrip(tmp_path, array, encoding=encoding)
    assert header.encoding == encoding and header.sizes == (31, 20, 9)
    assert back.dtype == array.dtype.newbyteorder("=") and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    assert header.fields["space directions"] == GEOMETRY["space directions"]


def test_fortran_order_and_views_are_written_in_c_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nf, "_BLOCK", 1000)  # forces the slab-copy path to split rows
    array = np.asfortranarray(blobs((5, 40, 60), "int16"))[:, ::2, 1:]
    np.testing.assert_array_equal(roundtrip(tmp_path, array)[1], array)


def test_header_order_and_escaping(tmp_path: Path) -> None:
    path = tmp_path / "o.nrrd"
    fields = {"space origin": "(0,0,0)", "Kinds": "domain domain", "space": "RAS", "x-custom": "1"}
    fields |= {"space directions": "(1,0,0) (0,1,0)", "sizes": "ignored", "spaceunits": "mm mm mm"}
    nf.write(
        path, np.zeros((2, 3), "<u2"), fields=fields, key_values={"S:n": "a\nb\\c", "Ω": "é ✓"}
    )
    text = path.read_bytes().split(b"\n\n")[0].decode("utf-8").split("\n")
    assert text == [
        "NRRD0004",
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        "type: unsigned short",
        "dimension: 2",
        "space: RAS",
        "sizes: 3 2",
        "space directions: (1,0,0) (0,1,0)",
        "kinds: domain domain",
        "endian: little",
        "encoding: gzip",
        "space units: mm mm mm",
        "space origin: (0,0,0)",
        "x-custom: 1",
        "S:n:=a\\nb\\\\c",
        "Ω:=é ✓",
    ]
    assert nf.read_header(path).key_values == {"S:n": "a\nb\\c", "Ω": "é ✓"}


def test_utf8_keys_values_and_literal_escapes(tmp_path: Path) -> None:
    kv = {"Segment0_Name": "Léber ✓", "multi": "line1\nline2\\", "empty": ""}
    assert roundtrip(tmp_path, blobs((2, 3, 4)), key_values=kv)[0].key_values == kv
    text = HEAD.format(type="uint8", enc="raw", extra="note:=a\\nb\\\\n\\t c\ncontent: x:=y")
    header = nf.read_header(make(tmp_path, text, bytes(24)))
    assert header.key_values == {"note": "a\nb\\n\\t c"}  # only \n and \\ are escapes
    assert header.fields["content"] == "x:=y"  # ": " before ":=" makes a field


@pytest.mark.parametrize(("key", "value"), [("a:=b", "1"), ("a\nb", "1"), ("a: b", "1"), ("", "x")])
def test_bad_keys_and_fields_raise_write_error(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(WriteError):
        nf.write(tmp_path / "x.nrrd", np.zeros(3, "u1"), fields={}, key_values={key: value})
    with pytest.raises(WriteError):
        nf.write(tmp_path / "x.nrrd", np.zeros(3, "u1"), fields={"content": "a\nb"}, key_values={})
    with pytest.raises(WriteError):
        nf.write(tmp_path / "x.nrrd", np.zeros(3, bool), fields={}, key_values={})


def test_4d_list_axis_slicer_layout(tmp_path: Path) -> None:
    array = blobs((6, 7, 8, 3))  # C order [k, j, i, layer]
    fields = {"space": "left-posterior-superior", "kinds": "list domain domain domain"}
    fields |= {"space directions": "none (1,0,0) (0,2,0) (0,0,3)", "space origin": "(1,2,3)"}
    header, back = roundtrip(tmp_path, array, fields=fields)
    assert header.sizes == (3, 8, 7, 6) and back.shape == (6, 7, 8, 3)
    np.testing.assert_array_equal(back, array)
    affine, others = nf.ijk_to_lps(header)
    assert others == [0]
    np.testing.assert_array_equal(affine[:3, :3], np.diag([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(affine[:3, 3], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("endian", ["big", "little"])
def test_int16_endian_files(tmp_path: Path, endian: str) -> None:
    values = np.arange(-12, 12, dtype=np.int16).reshape(2, 3, 4) * 1000
    order = ">" if endian == "big" else "<"
    path = make(tmp_path, HEAD.format(type="short", enc="raw", extra=f"endian: {endian}"))
    path.write_bytes(path.read_bytes() + values.astype(order + "i2").tobytes())
    back = read(path)
    assert back.dtype == np.dtype("=i2")
    np.testing.assert_array_equal(back, values)


def test_ascii_crlf_comments_and_aliases(tmp_path: Path) -> None:
    text = "NRRD0005\r\n# a comment: with:=colons\r\ntype: float\r\nDimension: 2\r\nsizes: 3 2\r\n"
    text += "encoding: text\r\nlineskip: 1\r\nAXISMINS: 1 2\r\nspacings: 2 3\r\nk:=v\r\n\r\n"
    path = make(tmp_path, text, b"skip me\n1.5 2 -3\n4e1,5\t6\n")
    header = nf.read_header(path)
    assert header.key_values == {"k": "v"} and header.fields["axis mins"] == "1 2"
    np.testing.assert_array_equal(read(path), [[1.5, 2, -3], [40, 5, 6]])
    affine, others = nf.ijk_to_lps(header)
    assert others == []
    np.testing.assert_array_equal(affine[:3, :3], [[2, 0, 0], [0, 3, 0], [0, 0, 1]])
    np.testing.assert_array_equal(affine[:3, 3], [1, 2, 0])


def test_detached_header_and_skips(tmp_path: Path) -> None:
    data = np.arange(24, dtype="<u2")
    (tmp_path / "d.raw").write_bytes(b"junk line\nXYZ" + data.tobytes())
    text = HEAD.format(
        type="uint16", enc="raw", extra="datafile: d.raw\nline skip: 1\nbyte skip: 3"
    )
    path = make(tmp_path, text.rstrip("\n"), name="h.nhdr")  # no blank line at EOF: allowed
    header = nf.read_header(path)
    assert header.data_offset == -1 and header.fields["data file"] == "d.raw"
    np.testing.assert_array_equal(read(path), data.reshape(2, 3, 4))
    tail = make(tmp_path, HEAD.format(type="uint16", enc="raw", extra="byte skip: -1"), b"?" * 7)
    tail.write_bytes(tail.read_bytes() + data.tobytes())
    np.testing.assert_array_equal(read(tail), data.reshape(2, 3, 4))
    packed = gzip.compress(b"HEAD" + data.tobytes())  # compressed: skip counts decompressed bytes
    zipped = make(tmp_path, HEAD.format(type="uint16", enc="gz", extra="byte skip: 4"), packed)
    np.testing.assert_array_equal(read(zipped), data.reshape(2, 3, 4))


def test_pynrrd_reads_our_multiblock_gzip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nf, "_BLOCK", 1 << 16)
    array = blobs((20, 64, 96), "int16")  # 245 KiB -> 4 blocks, compressed in parallel
    path = tmp_path / "m.nrrd"
    nf.write(path, array, fields=GEOMETRY, key_values={"Name": "Léber ✓"}, level=6, threads=3)
    data, header = nrrd.read(str(path), index_order="C")
    np.testing.assert_array_equal(data, array)
    np.testing.assert_allclose(header["space directions"], np.diag([0.5, 0.75, 2.0]))
    payload = path.read_bytes()[nf.read_header(path).data_offset :]
    inflater = zlib.decompressobj(31)  # exactly one gzip member, nothing after it
    assert inflater.decompress(payload) == array.tobytes() and inflater.eof
    assert not inflater.unused_data
    serial = len(zlib.compress(array.tobytes(), 6))  # primed blocks: only ~30 B per boundary
    assert len(payload) <= serial + 18 + 3 * 40


@pytest.mark.parametrize("encoding", ["gzip", "raw", "bzip2"])
def test_we_read_pynrrd_output(tmp_path: Path, encoding: str) -> None:
    array = blobs((4, 10, 12), "float32")
    path = str(tmp_path / "p.nrrd")
    rows = np.array([[1.0, 0.5, 0], [0, 2, 0], [0, 0, 3]])  # pynrrd: one vector per row
    geometry = {"space": "RAS", "space directions": rows, "space origin": np.array([1.0, 2, 3])}
    nrrd.write(path, array, {**geometry, "encoding": encoding}, index_order="C")
    header = nf.read_header(path)
    np.testing.assert_array_equal(nd.read_data(path, header), array)
    affine, _ = nf.ijk_to_lps(header)
    np.testing.assert_array_equal(affine[:3, :3], rows.T * RAS[:, None])
    np.testing.assert_array_equal(affine[:3, 3], [-1.0, -2, 3])


SPACES = [
    ("space: right-anterior-superior", RAS),
    ("space: RAS", RAS),
    ("space: left-anterior-superior", LAS),
    ("space: LAS", LAS),
    ("space: left-posterior-superior", 1.0),
    ("space: LPS", 1.0),
    ("space: scanner-xyz", 1.0),
    ("space: 3D-right-handed", 1.0),
    ("space: 3D-left-handed", 1.0),
    ("space dimension: 3", 1.0),
]


@pytest.mark.parametrize(("line", "sign"), SPACES)
def test_every_space_maps_to_lps(tmp_path: Path, line: str, sign: float | np.ndarray) -> None:
    extra = f"{line}\nspace directions: (1,2,3) (4,5,6) (7,8,10)\nspace origin: (1,-2,3)"
    header = nf.read_header(make(tmp_path, HEAD.format(type="uint8", enc="raw", extra=extra)))
    affine, others = nf.ijk_to_lps(header)
    assert others == []
    np.testing.assert_array_equal(affine[:3, :3], DIRS * np.asarray(sign).reshape(-1, 1))
    np.testing.assert_array_equal(affine[:3, 3], np.array([1.0, -2, 3]) * sign)
    np.testing.assert_array_equal(affine[3], [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("space", "sign"),
    [
        ("RAST", RAS),
        ("left-anterior-superior-time", LAS),
        ("LPST", 1.0),
        ("scanner-xyz-time", 1.0),
        ("3D-right-handed-time", 1.0),
        ("3D-left-handed-time", 1.0),
    ],
)
def test_time_spaces_drop_the_time_axis(
    tmp_path: Path, space: str, sign: float | np.ndarray
) -> None:
    extra = f"space: {space}\nspace directions: (1,2,3,0) (4,5,6,0) (7,8,10,0)"
    extra += "\nspace origin: (1,-2,3,9)"
    text = HEAD.format(type="uint8", enc="raw", extra=extra).replace(
        "sizes: 4 3 2", "sizes: 4 3 2 5"
    )
    text = text.replace("dimension: 3", "dimension: 4").replace(
        "(7,8,10,0)", "(7,8,10,0) (0,0,0,1)"
    )
    affine, others = nf.ijk_to_lps(nf.read_header(make(tmp_path, text)))
    assert others == [3]
    np.testing.assert_array_equal(affine[:3, :3], DIRS * np.asarray(sign).reshape(-1, 1))


def test_2d_third_axis_is_unit_normal(tmp_path: Path) -> None:
    text = "NRRD0004\ntype: uint8\ndimension: 2\nsizes: 2 2\nencoding: raw\nspace: RAS\n"
    text += "space directions: (2,0,0) (0,3,0)\n\n"
    affine, others = nf.ijk_to_lps(nf.read_header(make(tmp_path, text, bytes(4))))
    np.testing.assert_array_equal(affine[:3, :3], [[-2, 0, 0], [0, -3, 0], [0, 0, 1]])
    assert others == [] and affine[:3, 3].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "directions",
    [
        "(1,0,0) (2,0,0) (0,0,1)",
        "(nan,0,0) (0,1,0) (0,0,1)",
        "(1,0,0) (0,1,0)",
        "(1,0) (0,1) (1,1)x",
    ],
)
def test_bad_geometry_raises(tmp_path: Path, directions: str) -> None:
    extra = f"space: LPS\nspace directions: {directions}"
    header = nf.read_header(make(tmp_path, HEAD.format(type="uint8", enc="raw", extra=extra)))
    with pytest.raises(ReadError):
        nf.ijk_to_lps(header)


GOOD = HEAD.format(type="int16", enc="gzip", extra="endian: little")
PAYLOAD = gzip.compress(np.arange(24, dtype="<i2").tobytes())


@pytest.mark.parametrize(
    ("text", "payload", "message"),
    [
        (GOOD, PAYLOAD[:-9], "truncated"),
        (GOOD, PAYLOAD + b"garbage", "garbage"),
        (GOOD, PAYLOAD[:10] + b"\xff" * 30, "invalid"),
        (GOOD.replace("int16", "uint8"), PAYLOAD, "longer"),
        (GOOD.replace("int16", "int32"), PAYLOAD, "need"),
        (GOOD.replace("gzip", "raw"), bytes(47), "declares 48 bytes"),
        (GOOD.replace("gzip", "raw"), bytes(49), "more bytes"),
        (GOOD.replace("gzip", "bz2"), bz2.compress(bytes(48))[:-5], "truncated"),
        (GOOD.replace("NRRD0004", "NRRD0009"), PAYLOAD, "magic"),
        ("GIF89a" + GOOD, PAYLOAD, "not a NRRD"),
        (GOOD.replace("4 3 2", "4 0 2"), PAYLOAD, "positive"),
        (GOOD.replace("4 3 2", "4 -3 2"), PAYLOAD, "positive"),
        (GOOD.replace("4 3 2", "4 3"), PAYLOAD, "does not match"),
        (GOOD.replace("4 3 2", "4 x 2"), PAYLOAD, "int"),
        (GOOD.replace("4 3 2", "1000 1000 1000"), PAYLOAD, "compressed bytes hold at most"),
        (GOOD.replace("4 3 2", "99999999 99999999 9999"), PAYLOAD, "1 TiB"),
        (GOOD.replace("int16", "block"), PAYLOAD, "type"),
        (GOOD.replace("gzip", "hex"), PAYLOAD, "encoding"),
        (GOOD.replace("\n\n", "\n"), b"", "blank line"),
        (GOOD.replace("type: int16\n", ""), PAYLOAD, "missing"),
        (GOOD.replace("endian: little", "endian little"), PAYLOAD, "line 6"),
        (GOOD.replace("endian: little", "byte skip: -1"), PAYLOAD, "raw"),
        (GOOD.replace("endian: little", "data file: LIST"), b"", "names 0 data file"),
        (GOOD.replace("endian: little", "data file: missing.raw"), b"", "No such file"),
        (GOOD.replace("gzip", "ascii"), b"1 2 3" + b" " * 60, "has 3 values"),
        (GOOD.replace("gzip", "ascii"), b"1 2 3", "cannot hold"),
        (GOOD.replace("gzip", "ascii"), b"1 2 x" + b" 0" * 21, "invalid"),
        (GOOD.replace("gzip", "ascii"), b" 70000" * 24, "range"),
    ],
)
def test_malformed_inputs_raise_read_error(
    tmp_path: Path, text: str, payload: bytes, message: str
) -> None:
    path = make(tmp_path, text, payload)
    with pytest.raises(ReadError, match=message) as info:
        read(path)
    assert info.value.path == str(path) and info.value.hint


def test_good_reference_file_reads(tmp_path: Path) -> None:
    np.testing.assert_array_equal(read(make(tmp_path, GOOD, PAYLOAD)).ravel(), np.arange(24))


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "f.nrrd"


def _parse_only_read_errors(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        header = nf.read_header(path)
        nd.read_data(path, header)
        nf.ijk_to_lps(header)
    except ReadError:
        pass


VALID = (
    GOOD.replace("\n\n", "\nspace: RAS\nspace directions: (1,0,0) (0,1,0) (0,0,1)\nk:=v\n\n")
).encode()
VALID_FILES = [
    VALID + PAYLOAD,
    VALID.replace(b"gzip", b"raw") + bytes(48),
    VALID.replace(b"gzip", b"bzip2") + bz2.compress(bytes(48)),
]
EDITS = ["set", "ins", "del", "cut"]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from([*VALID_FILES, b"", b"NRRD0004\n"]),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 255), st.sampled_from(EDITS)),
        max_size=4,
    ),
    noise=st.binary(max_size=200),
    raw=st.booleans(),
)
def test_fuzz_only_read_error_escapes(
    fuzz_file: Path, base: bytes, edits: list[tuple[float, int, str]], noise: bytes, raw: bool
) -> None:
    data = bytearray(base + noise if raw else base)
    for where, byte, op in edits:
        at = int(where * len(data))
        if op == "set" and at < len(data):
            data[at] = byte
        elif op == "ins":
            data[at:at] = bytes([byte]) * (1 + byte % 8)
        elif op == "del":
            del data[at : at + 1 + byte % 16]
        elif op == "cut":
            del data[at:]
    _parse_only_read_errors(fuzz_file, bytes(data))
