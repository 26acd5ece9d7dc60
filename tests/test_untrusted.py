"""The groundwork every reader stands on: memory limits, regular inputs, bounded inflate."""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from pathlib import Path

import pytest

from segio.errors import LimitError, ReadError, ValidationError
from segio.fileio.deflate import GZIP, RAW, inflate
from segio.fileio.inputs import check_regular, open_input, read_input, referenced_file
from segio.fileio.limits import (
    ENVIRONMENT_VARIABLE,
    check_allocation,
    check_grid,
    check_payload,
    format_bytes,
    memory_limit,
)

_OPENED: list[str] = []


def _audit(event: str, arguments: tuple[object, ...]) -> None:
    if event == "open" and arguments and isinstance(arguments[0], str | bytes | os.PathLike):
        _OPENED.append(os.path.realpath(os.fsdecode(arguments[0])))


sys.addaudithook(_audit)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000", 1000), ("8G", 8_000_000_000), ("512MiB", 512 << 20), ("1.5 GB", 1_500_000_000)],
)
def test_the_limit_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: int
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, text)
    assert memory_limit() == expected


def test_an_unreadable_limit_is_an_error_and_no_limit_means_half_the_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "lots")
    with pytest.raises(ValidationError, match=ENVIRONMENT_VARIABLE):
        memory_limit()
    monkeypatch.delenv(ENVIRONMENT_VARIABLE)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit() == max(physical // 2, 1 << 30)


def test_an_allocation_over_the_limit_says_how_much_and_how_to_raise_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "1G")
    check_allocation(10**9, "the array")
    with pytest.raises(LimitError) as caught:
        check_allocation(3_610_000_000, "the array", path="big.nii")
    assert str(caught.value).startswith("big.nii: the array would need 3.6 GB")
    assert f"{ENVIRONMENT_VARIABLE}=4GiB" in str(caught.value)
    with pytest.raises(LimitError, match="unbounded"):
        check_allocation(float("nan"), "the array")


def test_grids_are_multiplied_without_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "1G")
    check_grid((100, 512, 512), 1, "the grid")
    with pytest.raises(LimitError, match="unbounded amount"):
        check_grid((2**62, 2**62, 2**62, 10**300), 8, "the grid")
    with pytest.raises(LimitError, match="unbounded extent"):
        check_grid((float("inf"), 1, 1), 1, "the grid")
    assert format_bytes(10**400) == "an unbounded amount"


def test_a_payload_must_fit_in_the_file() -> None:
    check_payload(1000, 1000, "the image")
    with pytest.raises(LimitError, match="holds 360 bytes"):
        check_payload(1900 * 1900 * 1000, 360, "the image", path="x.nii")
    check_payload(1_000_000, 1000, "the image", compressed=True)  # deflate can do 1032:1
    with pytest.raises(LimitError, match="compressed bytes hold at most"):
        check_payload(2_000_000, 1000, "the image", compressed=True)


def test_inflate_stops_at_the_declared_size() -> None:
    bomb = zlib.compress(bytes(100 << 20))  # 100 MiB of zeros in about 100 kB
    with pytest.raises(ReadError, match="decompression bomb"):
        inflate(bomb, 4096)
    assert inflate(zlib.compress(b"segio" * 100), 500) == b"segio" * 100
    assert inflate(gzip.compress(b"abc"), 3, wbits=GZIP) == b"abc"
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert inflate(raw.compress(b"xyz") + raw.flush(), 10, wbits=RAW, exact=False) == b"xyz"
    with pytest.raises(ReadError, match="instead of 600"):
        inflate(zlib.compress(b"segio" * 100), 600)
    with pytest.raises(ReadError, match="end marker"):
        inflate(zlib.compress(b"segio" * 100)[:-4], 500)
    with pytest.raises(ReadError, match="cannot be inflated"):
        inflate(b"not deflate at all", 10)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """``case/data.nrrd`` and a secret in ``outside/`` beside ``case/``."""
    case, outside = tmp_path / "case", tmp_path / "outside"
    case.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (case / "data.nrrd").write_bytes(b"NRRD0004\n")
    (case / "sub").mkdir()
    (case / "sub" / "part.raw").write_bytes(b"payload")
    return case / "data.nrrd", outside / "secret.txt"


@pytest.mark.parametrize(
    ("reference", "url", "why"),
    [
        ("SECRET", False, "absolute path"),
        ("../outside/secret.txt", False, "outside the folder"),
        ("sub/../../outside/secret.txt", False, "outside the folder"),
        ("%2e%2e/outside/secret.txt", True, "outside the folder"),
        ("file:///etc/passwd", True, "URL"),
        ("http://example.invalid/x.bin", True, "URL"),
        ("//host/share/x.bin", True, "URL"),
        ("link-out", False, "outside the folder"),
        ("zero", False, "outside the folder"),  # /dev/zero, through a link
        ("pipe", False, "FIFO"),
        ("sub", False, "a folder"),
        ("missing.raw", False, "No such file"),
        ("", False, "empty"),
        ("a\0b", False, "NUL"),
    ],
)
def test_a_reference_may_name_only_a_regular_file_in_its_folder(
    layout: tuple[Path, Path], reference: str, url: bool, why: str
) -> None:
    container, secret = layout
    (container.parent / "link-out").symlink_to(secret)
    (container.parent / "zero").symlink_to("/dev/zero")
    os.mkfifo(container.parent / "pipe")
    reference = reference.replace("SECRET", str(secret))
    _OPENED.clear()
    with pytest.raises(ReadError, match=why) as caught:
        referenced_file(container, reference, what="the data file", url=url)
    assert str(caught.value).startswith(f"{container}: refused to read the data file")
    assert str(secret.resolve()) not in _OPENED


def test_references_inside_the_folder_resolve_and_streams_name_nothing(
    layout: tuple[Path, Path],
) -> None:
    container, _ = layout
    assert referenced_file(container, "sub/part.raw") == (container.parent / "sub/part.raw")
    assert referenced_file(container, "sub/part%2Eraw", url=True).name == "part.raw"
    with pytest.raises(ReadError, match="stream has no folder"):
        referenced_file(None, "sub/part.raw")


def test_inputs_are_regular_files_and_never_block(tmp_path: Path) -> None:
    fifo, zero = tmp_path / "pipe.nrrd", tmp_path / "zero.nii"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    for path, kind in ((fifo, "FIFO"), (zero, "character device"), (tmp_path, "folder")):
        with pytest.raises(ReadError, match=kind):
            open_input(path)  # a blocking open of the FIFO would hang here
        with pytest.raises(ReadError, match=kind):
            check_regular(path)
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"12345")
    with open_input(plain) as stream:
        assert stream.read() == b"12345"
    assert read_input(plain, limit=5) == b"12345"
    with pytest.raises(ReadError, match="larger than 4 bytes"):
        read_input(plain, limit=4)
    with pytest.raises(ReadError, match="No such file"):
        open_input(tmp_path / "missing")
