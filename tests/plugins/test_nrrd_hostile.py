"""NRRD files crafted as an attacker would: references out of the folder, bombs, lying sizes.

A secret is planted outside the folder of each file; an audit hook records every file the
process opens, so "never opened" is proved even as root. Each hostile file must end in a
one-line :class:`~segio.errors.ReadError` naming it, without reading the secret, without
allocating what the header claims, and quickly.
"""

from __future__ import annotations

import bz2
import gzip
import os
import sys
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from segio_plugins.nrrd import nrrddata as nd
from segio_plugins.nrrd import nrrdfile as nf

import segio
from segio.errors import LimitError, ReadError

SECRET = b"SEGIO-NRRD-SECRET-0123456789\n" * 8
_OPENED: list[str] = []


def _audit(event: str, arguments: tuple[Any, ...]) -> None:
    if event == "open" and arguments and isinstance(arguments[0], (str, bytes, os.PathLike)):
        name = os.fsdecode(arguments[0])
        if Path(name).name == "secret.txt":
            _OPENED.append(name)


sys.addaudithook(_audit)  # hooks cannot be removed: one for the module, cleared per test


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """``<tmp>/case/`` for the files, ``<tmp>/outside/secret.txt`` beside it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(SECRET)
    case = tmp_path / "case"
    case.mkdir()
    _OPENED.clear()
    yield case
    assert not _OPENED, f"the secret was opened: {_OPENED}"


def header(sizes: str = "4 3 2", type_: str = "uint8", encoding: str = "raw", **extra: str) -> str:
    lines = ["NRRD0004", f"type: {type_}", f"dimension: {len(sizes.split())}"]
    lines += [f"sizes: {sizes}", f"encoding: {encoding}"]
    lines += [f"{name.replace('_', ' ')}: {value}" for name, value in extra.items()]
    return "\n".join(lines) + "\n"


def refused(path: Path, match: str, error: type[ReadError] = ReadError) -> ReadError:
    """The file is refused with a one-line message naming it and never showing the secret."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match) as info:
            segio.read(path)
    message = str(info.value)
    assert "\n" not in message and path.name in message
    assert SECRET.decode().split("\n")[0] not in message
    return info.value


# -- detached data: only regular files in the header's own folder ----------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("{secret}", "absolute path"),
        ("../outside/secret.txt", "outside the folder"),
        ("sub/../../outside/secret.txt", "outside the folder"),
        ("%2e%2e/outside/secret.txt 1 1 1", "pattern"),
        ("%2e%2e/outside/secret.txt", "No such file"),
        ("link.raw", "outside the folder"),
        ("zero.raw", "outside the folder"),
        ("pipe.raw", "FIFO"),
        ("", "names no file"),
    ],
)
def test_a_data_file_outside_the_folder_is_refused_unopened(
    folder: Path, name: str, why: str
) -> None:
    secret = folder.parent / "outside" / "secret.txt"
    (folder / "link.raw").symlink_to(secret)
    (folder / "zero.raw").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.raw")
    path = folder / "a.nhdr"
    path.write_text(header(data_file=name.format(secret=secret)))
    started = time.monotonic()
    refused(path, why)
    assert time.monotonic() - started < 2  # a FIFO is never waited on


def test_every_name_of_a_list_or_pattern_is_checked(folder: Path) -> None:
    (folder / "s0.raw").write_bytes(bytes(12))
    path = folder / "a.nhdr"
    path.write_text(header(data_file="LIST") + "s0.raw\n../outside/secret.txt\n")
    refused(path, "outside the folder")
    path.write_text(header(data_file="../outside/s%d.raw 0 1 1"))
    refused(path, "outside the folder")
    path.write_text(header(data_file="s%s.raw 0 1 1"))  # only integer conversions
    refused(path, "pattern")


def test_list_and_pattern_data_files_are_read_in_order(folder: Path) -> None:
    data = np.arange(24, dtype="<u2").reshape(2, 3, 4)
    for k in range(2):
        (folder / f"slice{k:02d}.raw").write_bytes(b"junk\n" + data[k].tobytes())
        (folder / f"slice{k:02d}.raw.gz").write_bytes(gzip.compress(data[k].tobytes()))
    path = folder / "a.nhdr"
    path.write_text(header(type_="uint16", line_skip="1", data_file="LIST 2") + "slice00.raw\n")
    with pytest.raises(ReadError, match="names 1 data file"):
        nf.read_header(path)
    path.write_text(header(type_="uint16", line_skip="1", data_file="LIST") + "slice00.raw\n")
    path.write_text(path.read_text() + "slice01.raw\n")
    np.testing.assert_array_equal(nd.read_data(path, nf.read_header(path)), data)
    path.write_text(header(type_="uint16", encoding="gzip", data_file="slice%02d.raw.gz 0 1 1"))
    np.testing.assert_array_equal(nd.read_data(path, nf.read_header(path)), data)
    path.write_text(header(type_="uint16", encoding="gzip", data_file="slice%02d.raw.gz 1 0 -1"))
    np.testing.assert_array_equal(nd.read_data(path, nf.read_header(path)), data[::-1])


def test_a_pattern_of_a_billion_files_is_refused_before_expanding(folder: Path) -> None:
    path = folder / "a.nhdr"
    path.write_text(header(sizes="4 3 1000000000", data_file="s%d.raw 1 1000000000 1"))
    started = time.monotonic()
    refused(path, "more than 16384 data files")
    assert time.monotonic() - started < 1


# -- skips stay inside the named file ---------------------------------------------------------


def test_byte_skip_minus_one_reads_the_tail_of_its_own_file_only(folder: Path) -> None:
    (folder / "d.raw").write_bytes(b"x" * 5 + bytes(range(24)))
    path = folder / "a.nhdr"
    path.write_text(header(data_file="d.raw", byte_skip="-1"))
    assert nd.read_data(path, nf.read_header(path)).ravel().tolist() == list(range(24))
    path.write_text(header(data_file="../outside/secret.txt", byte_skip="-1"))
    refused(path, "outside the folder")
    attached = folder / "b.nrrd"
    attached.write_bytes(header(byte_skip="-1").encode() + b"\n" + bytes(10))
    refused(attached, "outside the file")  # the data may not start inside the header


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"byte_skip": "1000000"}, "outside the file"),
        ({"byte_skip": "-2"}, ">= -1"),
        ({"line_skip": "1000000000000"}, "past the end"),
        ({"line_skip": "-1"}, ">= 0"),
        ({"byte_skip": "-1", "encoding": "gzip"}, "only defined for raw"),
    ],
)
def test_skips_beyond_the_file_are_refused(folder: Path, extra: dict[str, str], match: str) -> None:
    (folder / "d.raw").write_bytes(b"line\n" * 100 + bytes(24))
    path = folder / "a.nhdr"
    path.write_text(header(data_file="d.raw", **extra))
    refused(path, match)


def test_line_skip_over_many_lines_is_fast(folder: Path) -> None:
    (folder / "d.raw").write_bytes(b"\n" * 5_000_000 + bytes(range(24)))
    path = folder / "a.nhdr"
    path.write_text(header(data_file="d.raw", line_skip="5000000"))
    started = time.monotonic()
    assert nd.read_data(path, nf.read_header(path)).ravel().tolist() == list(range(24))
    assert time.monotonic() - started < 2


# -- bombs and lying sizes: memory follows the file ------------------------------------------


def peak_while(action: Any) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("encoding", ["gzip", "bzip2"])
def test_a_bomb_inflates_no_further_than_the_declared_array(folder: Path, encoding: str) -> None:
    zeros = bytes(64 << 20)
    payload = gzip.compress(zeros, 9) if encoding == "gzip" else bz2.compress(zeros, 9)
    path = folder / "bomb.nrrd"
    path.write_bytes(header(sizes="10 10 10", encoding=encoding).encode() + b"\n" + payload)
    peak = peak_while(lambda: refused(path, "longer than sizes"))
    assert peak < 8 << 20


def test_multi_member_gzip_reads_and_a_trailing_bomb_member_is_refused(folder: Path) -> None:
    data = bytes(range(24))
    path = folder / "m.nrrd"
    head = header(encoding="gzip").encode() + b"\n"
    path.write_bytes(head + gzip.compress(data[:10]) + gzip.compress(data[10:]))
    assert nd.read_data(path, nf.read_header(path)).ravel().tolist() == list(data)
    path.write_bytes(head + gzip.compress(data) + gzip.compress(bytes(32 << 20)))
    peak = peak_while(lambda: refused(path, "longer than sizes"))
    assert peak < 8 << 20


@pytest.mark.parametrize("encoding", ["raw", "gzip", "bzip2", "ascii"])
def test_a_header_declaring_gigabytes_is_refused_before_allocating(
    folder: Path, encoding: str
) -> None:
    payload = {"raw": bytes(360), "gzip": gzip.compress(bytes(360)), "ascii": b"1 " * 180}
    payload["bzip2"] = bz2.compress(bytes(360))
    path = folder / "big.nrrd"
    head = header(sizes="1900 1900 1000", encoding=encoding)
    path.write_bytes(head.encode() + b"\n" + payload[encoding])
    peak = peak_while(lambda: refused(path, "declares", LimitError))
    assert peak < 4 << 20


def test_an_honest_file_above_the_memory_limit_names_the_setting(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = folder / "big.nrrd"
    path.write_bytes(header(sizes="200 100 100").encode() + b"\n" + bytes(2_000_000))
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "1MB")
    error = refused(path, "SEGIO_MAX_MEMORY", LimitError)
    assert "2.0 MB" in str(error)


@pytest.mark.parametrize(
    ("sizes", "match"),
    [
        ("4294967296 4294967296 4294967296", "1 TiB"),
        ("9223372036854775807 9223372036854775807 2", "1 TiB"),
        ("4 -3 2", "positive"),
        ("4 0 2", "positive"),
        ("4 3 " + "9" * 5000, "int numbers"),
    ],
)
def test_impossible_sizes_are_refused(folder: Path, sizes: str, match: str) -> None:
    path = folder / "s.nrrd"
    path.write_bytes(header(sizes=sizes).encode() + b"\n" + bytes(24))
    refused(path, match)


def test_a_header_of_millions_of_lines_is_refused_by_size(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    path = folder / "lines.nrrd"
    path.write_bytes(header().encode() + b"k:=v\n" * 2_000_000 + b"\n" + bytes(24))
    refused(path, "NRRD header would need", LimitError)


# -- values that were quietly wrong ----------------------------------------------------------

GEOMETRY = "space: left-posterior-superior\nspace origin: (0,0,0)\n"


def test_a_zero_space_direction_is_refused_not_taken_as_layers(folder: Path) -> None:
    path = folder / "z.nrrd"
    text = header(sizes="2 4 3 2", kinds="domain domain domain domain") + GEOMETRY
    text += "space directions: (0,0,0) (1,0,0) (0,1,0) (0,0,1)\n\n"
    path.write_bytes(text.encode() + bytes(48))
    refused(path, "space direction of axis 0 is zero")


def test_a_float_labelmap_with_fractions_is_refused_whole_floats_read(folder: Path) -> None:
    path = folder / "f.nrrd"
    values = np.zeros(24, "<f4")
    values[:3] = [1.0, 2.0, 70000.0]
    path.write_bytes(header(type_="float").encode() + b"\n" + values.tobytes())
    segmentation = segio.read(path)
    assert segmentation.layers[0].array.dtype == np.uint32
    assert [s.label_value for s in segmentation.segments.values()] == [1, 2, 70000]
    values[3] = 2.5
    path.write_bytes(header(type_="float").encode() + b"\n" + values.tobytes())
    refused(path, "fractional values")


SPLEEN = (
    "TerminologyEntry:Segmentation category and type - 3D Slicer General Anatomy list"
    "~SCT^123037004^Anatomical Structure~SCT^78961009^Spleen~^^"
    "~Anatomic codes - DICOM master list~^^~^^|"
)
SEGMENTS = f"""Segment0_ID:=liver
Segment0_Name:=Liver
Segment0_Layer:=0
Segment1_Name:=Spleen
Segment1_Color:=0.1 0.2 0.3
Segment1_LabelValue:=2
Segment1_Layer:=0
Segment1_Tags:={SPLEEN}
Segment2_ID:=Segment_1
Segment2_Name:=Kidney
Segment2_LabelValue:=3
Segment2_Layer:=0
"""


def test_a_segment_without_id_keeps_its_name_colour_and_terminology(folder: Path) -> None:
    path = folder / "s.seg.nrrd"
    values = np.zeros(24, np.uint8)
    values[:3] = [1, 2, 3]
    path.write_bytes((header() + SEGMENTS + "\n").encode() + values.tobytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segmentation = segio.read(path)
    spleen = segmentation.segments["Spleen"]
    assert spleen.id == "Segment_2"  # Segment_1 is taken by the kidney
    assert spleen.color == (0.1, 0.2, 0.3) and spleen.label_value == 2
    assert spleen.terminology is not None and spleen.terminology.type.value == "78961009"
    assert [s.name for s in segmentation.segments.values()] == ["Liver", "Spleen", "Kidney"]
    assert [str(w.message) for w in caught if "SegmentN_ID" in str(w.message)] == [
        f"{path}: 1 segment(s) have no SegmentN_ID; given generated ids (Segment1)"
    ]


def test_thousands_of_segment_problems_are_one_warning_each(folder: Path) -> None:
    path = folder / "many.seg.nrrd"
    keys = "".join(f"Segment{n}_LabelValue:={n + 1}\nSegment{n}_Layer:=0\n" for n in range(400))
    path.write_bytes((header(type_="uint16") + keys + "\n").encode() + bytes(48))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segmentation = segio.read(path)
    assert len(segmentation.segments) == 400
    messages = [str(w.message) for w in caught]
    assert len(messages) <= 3, messages
    assert all("\n" not in m and path.name in m for m in messages)
