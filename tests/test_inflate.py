"""The fast inflate engines (zlib-ng, ISA-L) against zlib, value by value and error by error.

Every engine installed here inflates the same streams (random bytes, a real labelmap,
sizes around the readers' 1 MiB pieces, several gzip members) to exactly zlib's bytes; a
corrupt, truncated or overlong stream gets exactly the message zlib's path gives, since
zlib decides whenever a fast engine fails; a bomb is bounded as before; and a seg.nrrd
reads the same with the fast engine on and off (``SEGIO_INFLATE``).
"""

from __future__ import annotations

import gzip
import itertools
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from segio_plugins.nrrd import nrrddata

import segio
from segio.errors import ReadError, SegioError, ValidationError
from segio.fileio import fastinflate
from segio.fileio.deflate import GZIP, RAW, ZLIB, inflate
from segio.testing.synthetic import synthetic_segmentation

CHUNK = nrrddata._CHUNK
FAST = [name for name in fastinflate.ENGINES if name != "zlib" and fastinflate.load(name)]
ALL = [*FAST, "zlib"]


@pytest.fixture(params=ALL)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each installed engine in turn, chosen through ``SEGIO_INFLATE``."""
    monkeypatch.setenv(fastinflate.VARIABLE, request.param)
    return str(request.param)


def _labelmap_bytes() -> bytes:
    """A real labelmap: segments with holes and islands, long runs and edges."""
    seg = synthetic_segmentation(shape=(24, 96, 96), n_segments=7, seed=3, terminology=False)
    return seg.layers[0].array.astype(np.uint8).tobytes()


def _random_bytes(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _compress(data: bytes, wbits: int, level: int = 6) -> bytes:
    engine = zlib.compressobj(level, zlib.DEFLATED, wbits)
    return engine.compress(data) + engine.flush()


def test_zlib_ng_is_a_dependency_and_auto_chooses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyproject.toml makes zlib-ng a dependency; without a setting it is the engine."""
    assert "zlib-ng" in FAST
    monkeypatch.delenv(fastinflate.VARIABLE, raising=False)
    assert fastinflate.engine().name == "zlib-ng"
    monkeypatch.setenv(fastinflate.VARIABLE, "ZLIB")
    assert fastinflate.engine() is fastinflate.ZLIB


def test_an_unknown_setting_is_refused_and_a_missing_library_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(fastinflate.VARIABLE, "pigz")
    with pytest.raises(ValidationError, match="SEGIO_INFLATE='pigz' is not an inflate engine"):
        fastinflate.engine()

    def missing() -> fastinflate.Engine:
        raise ImportError("no module named isal")

    monkeypatch.setitem(fastinflate.ENGINES, "isal", missing)
    fastinflate.load.cache_clear()
    try:
        monkeypatch.setenv(fastinflate.VARIABLE, "isal")
        assert fastinflate.engine() is fastinflate.ZLIB
    finally:
        fastinflate.load.cache_clear()


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("kind", ["random", "labelmap", "empty", "one byte"])
@pytest.mark.parametrize("wbits", [ZLIB, GZIP, RAW])
def test_each_engine_inflates_exactly_zlibs_bytes(name: str, kind: str, wbits: int) -> None:
    data = {
        "random": _random_bytes(3 * CHUNK + 17),
        "labelmap": _labelmap_bytes(),
        "empty": b"",
        "one byte": b"\x07",
    }[kind]
    stream = _compress(data, wbits)
    fast = fastinflate.load(name)
    assert fast is not None
    for step in (4093, CHUNK - 1, CHUNK, CHUNK + 1):  # output chunk boundaries
        engine, plain = fast.decompressobj(wbits), zlib.decompressobj(wbits)
        ours, theirs, tail_ours, tail_theirs = [], [], stream, stream
        while True:
            ours.append(engine.decompress(tail_ours, step))
            theirs.append(plain.decompress(tail_theirs, step))
            assert ours[-1] == theirs[-1]
            # ISA-L takes more input at once: only the output has to agree.
            tail_ours, tail_theirs = engine.unconsumed_tail, plain.unconsumed_tail
            if plain.eof or not theirs[-1]:
                break
        assert b"".join(ours) == data and engine.eof


def test_inflate_gives_the_same_bytes_with_every_engine(engine: str) -> None:
    data = _labelmap_bytes() + _random_bytes(5000)
    for wbits in (ZLIB, GZIP, RAW):
        assert inflate(_compress(data, wbits), len(data), wbits=wbits) == data


def _damaged() -> dict[str, tuple[bytes, int]]:
    """Streams each reader must refuse: (stream, the size it should hold)."""
    data = _random_bytes(70_000, seed=5)
    good = _compress(data, ZLIB)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x5A
    checksum = bytearray(good)
    checksum[-2] ^= 0xFF
    return {
        "bad header": (b"\x00\x01" + good[2:], len(data)),
        "flipped bits": (bytes(flipped), len(data)),
        "bad checksum": (bytes(checksum), len(data)),
        "truncated": (good[: len(good) // 3], len(data)),
        "no end marker": (good[:-4], len(data)),
        "longer than declared": (good, len(data) - 1),
        "shorter than declared": (good, len(data) + 1),
        "bomb": (_compress(bytes(32 << 20), ZLIB, 9), 1000),
        "garbage": (b"not a deflate stream at all", 10),
    }


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("case", list(_damaged()))
def test_a_damaged_stream_gets_zlibs_verdict_whatever_the_engine(
    case: str, exact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused with one message; or, not ``exact``, the same bytes (a short stream)."""
    stream, size = _damaged()[case]
    outcomes: set[bytes | str] = set()
    for name in ALL:
        monkeypatch.setenv(fastinflate.VARIABLE, name)
        try:
            outcomes.add(inflate(stream, size, what="the frame", path="x.dcm", exact=exact))
        except ReadError as exc:
            outcomes.add(str(exc))
    assert len(outcomes) == 1, outcomes
    (outcome,) = outcomes
    if exact or case in ("bomb", "longer than declared", "bad header", "garbage"):
        assert isinstance(outcome, str)
        assert "\n" not in outcome and outcome.startswith("x.dcm: the frame")


def test_the_fast_engine_does_the_work_and_zlib_only_judges_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With zlib made unusable, a good stream still inflates (the fast engine did it) and
    a bad one fails in zlib (which was asked to decide)."""
    data = _labelmap_bytes()

    def broken(wbits: int) -> Any:
        raise AssertionError("zlib was asked")

    monkeypatch.setenv(fastinflate.VARIABLE, "zlib-ng")
    monkeypatch.setattr(fastinflate, "ZLIB", fastinflate.Engine("zlib", broken, (zlib.error,)))
    assert inflate(_compress(data, GZIP), len(data), wbits=GZIP) == data
    with pytest.raises(AssertionError, match="zlib was asked"):
        inflate(_compress(data, GZIP), len(data) - 1, wbits=GZIP)


# -- NRRD: the streamed reader ------------------------------------------------------------------


def _nrrd(path: Path, payload: bytes, sizes: tuple[int, ...], encoding: str = "gzip") -> Path:
    head = [
        "NRRD0004",
        "type: uint8",
        f"dimension: {len(sizes)}",
        "sizes: " + " ".join(map(str, sizes)),
        f"encoding: {encoding}",
    ]
    path.write_bytes(("\n".join(head) + "\n\n").encode() + payload)
    return path


def _read_all_engines(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``segio.read(path)`` with each engine: its array, or its error's message."""
    for name in ALL:
        monkeypatch.setenv(fastinflate.VARIABLE, name)
        try:
            yield segio.read(path).layers[0].array
        except SegioError as exc:
            yield str(exc)


@pytest.mark.parametrize("extra", [-1, 0, 1, CHUNK - 1, CHUNK + 1])
def test_nrrd_arrays_around_the_piece_size_read_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: int
) -> None:
    count = 3 * CHUNK + extra
    data = np.frombuffer(_random_bytes(count, seed=count) + b"", np.uint8) % 5
    path = _nrrd(tmp_path / "a.nrrd", gzip.compress(data.tobytes()), (count, 1, 1))
    for array in _read_all_engines(path, monkeypatch):
        assert isinstance(array, np.ndarray)
        np.testing.assert_array_equal(array.ravel(), data)


def test_multi_member_gzip_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _labelmap_bytes()
    cuts = [0, 1000, 70_000, len(data) // 2, len(data)]
    payload = b"".join(gzip.compress(data[a:b]) for a, b in itertools.pairwise(cuts))
    path = _nrrd(tmp_path / "m.nrrd", payload, (96, 96, 24))
    for array in _read_all_engines(path, monkeypatch):
        assert isinstance(array, np.ndarray)
        assert array.tobytes() == data


_DATA = bytes(range(256)) * 300


@pytest.mark.parametrize(
    "payload",
    [
        gzip.compress(_DATA)[: len(gzip.compress(_DATA)) // 2],  # truncated
        gzip.compress(_DATA)[:-5],  # no trailer
        gzip.compress(_DATA)[:-8] + b"\x00" * 8,  # wrong CRC and size
        gzip.compress(_DATA) + b"trailing garbage",
        gzip.compress(_DATA) + gzip.compress(b"\x01"),  # one byte too many
        gzip.compress(_DATA[:-1]),  # one byte short
        b"\x1f\x8b\x08\x00" + bytes(20),  # a gzip header, then nonsense
    ],
    ids=["truncated", "no trailer", "bad crc", "garbage after", "too long", "too short", "junk"],
)
def test_a_damaged_nrrd_gets_the_same_error_whatever_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: bytes
) -> None:
    path = _nrrd(tmp_path / "bad.nrrd", payload, (256, 300))
    results = list(_read_all_engines(path, monkeypatch))
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1, results
    assert "\n" not in results[0] and "bad.nrrd" in results[0]


def test_a_bomb_is_bounded_with_the_fast_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast engine stops one piece past the array; zlib, asked again, does the same."""
    path = _nrrd(tmp_path / "bomb.nrrd", gzip.compress(bytes(64 << 20), 9), (10, 10, 10))
    monkeypatch.setenv(fastinflate.VARIABLE, "zlib-ng")
    tracemalloc.start()
    try:
        with pytest.raises(ReadError, match="longer than sizes"):
            segio.read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_seg_nrrd_reads_identically_with_the_fast_engine_on_and_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seg = synthetic_segmentation(shape=(30, 80, 70), n_segments=9, seed=2, terminology=False)
    path = segio.write(seg, tmp_path / "s.seg.nrrd")[0]
    reads: dict[str, segio.Segmentation] = {}
    for name in ALL:
        monkeypatch.setenv(fastinflate.VARIABLE, name)
        reads[name] = segio.read(path)
    plain = reads.pop("zlib")
    for other in reads.values():
        np.testing.assert_array_equal(other.layers[0].array, plain.layers[0].array)
        assert other.layers[0].array.dtype == plain.layers[0].array.dtype
        assert [_fields(s) for s in other.segments.values()] == [
            _fields(s) for s in plain.segments.values()
        ]
        assert other.require_geometry() == plain.require_geometry()


def _fields(segment: segio.Segment) -> tuple[Any, ...]:
    return (segment.id, segment.name, segment.color, segment.layer, segment.label_value)


def _spy_on_engines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record which engine each decompressor comes from."""
    used: list[str] = []
    for name in ALL:
        loaded = fastinflate.load(name)
        assert loaded is not None

        def make(wbits: int, loaded: fastinflate.Engine = loaded) -> Any:
            used.append(loaded.name)
            return loaded.decompressobj(wbits)

        spied = fastinflate.Engine(loaded.name, make, loaded.errors)
        monkeypatch.setattr(fastinflate, "load", _fixed(name, spied, fastinflate.load))
        if name == "zlib":
            monkeypatch.setattr(fastinflate, "ZLIB", spied)
    return used


def _fixed(
    name: str, engine: fastinflate.Engine, load: Callable[[str], fastinflate.Engine | None]
) -> Callable[[str], fastinflate.Engine | None]:
    return lambda asked: engine if asked == name else load(asked)


def test_a_good_seg_nrrd_is_inflated_by_the_fast_engine_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seg = synthetic_segmentation(shape=(10, 40, 40), n_segments=3, seed=1, terminology=False)
    path = segio.write(seg, tmp_path / "s.seg.nrrd")[0]
    used = _spy_on_engines(monkeypatch)
    monkeypatch.setenv(fastinflate.VARIABLE, "zlib-ng")
    segio.read(path)
    assert used and set(used) == {"zlib-ng"}
    used.clear()
    _nrrd(path, gzip.compress(bytes(10)), (11, 1, 1))  # one byte short: zlib must decide
    with pytest.raises(ReadError):
        segio.read(path)
    assert used == ["zlib-ng", "zlib"]


# -- NIfTI: gzip.GzipFile or the engine's subclass -------------------------------------------------


def _nifti_gz(tmp_path: Path) -> tuple[Path, bytes]:
    seg = synthetic_segmentation(shape=(12, 50, 40), n_segments=4, seed=4, terminology=False)
    path = tmp_path / "s.nii.gz"
    segio.write(seg, path)  # with its segio-json sidecar, which keeps the names
    return path, gzip.decompress(path.read_bytes())


def test_a_nifti_reads_identically_with_every_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, plain = _nifti_gz(tmp_path)
    half = len(plain) // 2
    members = tmp_path / "members.nii.gz"  # two gzip members, as some tools write
    members.write_bytes(gzip.compress(plain[:half]) + gzip.compress(plain[half:]))
    for source in (path, members):
        arrays = list(_read_all_engines(source, monkeypatch))
        assert all(isinstance(a, np.ndarray) for a in arrays), arrays
        for array in arrays[1:]:
            np.testing.assert_array_equal(array, arrays[0])


@pytest.mark.parametrize("damage", ["truncated", "bad crc", "garbage after", "bomb after"])
def test_a_damaged_nifti_gets_the_same_error_whatever_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    path, plain = _nifti_gz(tmp_path)
    good = gzip.compress(plain)
    path.write_bytes(
        {
            "truncated": good[: len(good) * 2 // 3],
            "bad crc": good[:-8] + b"\x00\x00\x00\x00" + good[-4:],
            "garbage after": good + b"\x00junk",
            "bomb after": gzip.compress(plain + bytes(16 << 20)),
        }[damage]
    )
    results = list(_read_all_engines(path, monkeypatch))
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1, results
    assert "\n" not in results[0] and "s.nii.gz" in results[0]


def test_a_good_nifti_is_inflated_by_the_fast_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read goes through zlib-ng's GzipFile, and the plain gzip one is not asked."""
    from zlib_ng import gzip_ng

    path, _ = _nifti_gz(tmp_path)
    opened: list[str] = []

    class Spy(gzip_ng.GzipFile):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            opened.append("zlib-ng")
            super().__init__(*args, **kwargs)

    monkeypatch.setenv(fastinflate.VARIABLE, "zlib-ng")
    monkeypatch.setattr(fastinflate, "gzip_file", lambda engine: Spy)
    monkeypatch.setattr(gzip, "GzipFile", None)  # the plain path would fail
    segio.read(path)
    assert opened == ["zlib-ng"]
