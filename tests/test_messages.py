"""Messages: one line, the user's file, a reason, no traceback (issue 11, items 3 and 8).

A plugin that lets ``ValueError``, ``OverflowError`` or ``MemoryError`` escape (the
``crash`` format of ``tests/crashing.py``) must still give the user a one-line
:class:`~segio.errors.SegioError` naming the file, from the library and from the command
line; the command summarises thousands of warnings, folds library log lines into its own,
and refuses a FIFO or a device with one line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from crashing import crashing_registry

import segio
from segio.cli import cli
from segio.errors import (
    GeometryError,
    LimitError,
    ReadError,
    SegioError,
    ValidationError,
    WriteError,
    reading,
)
from segio.registry import Registry
from segio.testing.synthetic import small_segmentation

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def registry() -> Registry:
    return crashing_registry()


@pytest.fixture
def crash_file(tmp_path: Path) -> Path:
    path = tmp_path / "input.crash"
    path.write_bytes(b"crafted")
    return path


@pytest.mark.parametrize(
    ("how", "says", "cause"),
    [
        ("valueerror", "cannot reshape array", ValueError),
        ("overflow", "too large to convert", OverflowError),
        ("memory", "not enough memory", MemoryError),
        ("recursion", "maximum recursion depth", RecursionError),
        ("empty", "ValueError without a message", ValueError),
    ],
)
def test_read_turns_escaping_exceptions_into_one_line_errors(
    crash_file: Path, registry: Registry, how: str, says: str, cause: type[BaseException]
) -> None:
    with pytest.raises(ReadError) as info:
        segio.read(crash_file, registry=registry, how=how)
    message = str(info.value)
    assert message.startswith(f"{crash_file}: ")
    assert says in message and "\n" not in message
    assert isinstance(info.value.__cause__, cause), "chained, for --debug"


def test_a_reason_is_never_empty(crash_file: Path, registry: Registry) -> None:
    with pytest.raises(ReadError) as info:
        segio.read(crash_file, registry=registry, how="segio-empty")
    assert info.value.reason
    assert str(info.value) == f"{crash_file}: unknown error (no reason was given)"


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("valueerror", "value out of range"),
        ("overflow", "too large to convert"),
        ("memory", "not enough memory"),
        ("oserror", "No space left on device"),
    ],
)
def test_write_turns_escaping_exceptions_into_one_line_errors(
    tmp_path: Path, registry: Registry, how: str, says: str
) -> None:
    target = tmp_path / "out.crash"
    with pytest.raises(WriteError) as info:
        segio.write(small_segmentation(), target, registry=registry, how=how)
    message = str(info.value)
    assert message.startswith(f"{target}: ") and says in message, message
    assert ".segio-tmp" not in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_convert_names_the_source_or_the_target(
    crash_file: Path, tmp_path: Path, registry: Registry
) -> None:
    with pytest.raises(ReadError, match="cannot reshape") as info:
        segio.convert(crash_file, tmp_path / "x.seg.nrrd", registry=registry)
    assert info.value.path == str(crash_file)
    source = tmp_path / "s.seg.nrrd"
    segio.write(small_segmentation(), source)
    with pytest.raises(WriteError, match="too large") as written:
        segio.convert(
            source,
            tmp_path / "x.crash",
            registry=registry,
            write_options={"how": "overflow"},
        )
    assert written.value.path == str(tmp_path / "x.crash")


@pytest.mark.parametrize(("how", "kind"), [("limit", LimitError), ("returns", ReadError)])
def test_read_names_the_file_in_an_error_that_names_none(
    crash_file: Path, registry: Registry, how: str, kind: type[SegioError]
) -> None:
    """A reader's error without a path gets the file, and keeps its class."""
    with pytest.raises(kind) as info:
        segio.read(crash_file, registry=registry, how=how)
    assert type(info.value) is kind and info.value.path == str(crash_file)


def test_reading_helper_names_the_file(tmp_path: Path) -> None:
    """``segio.errors.reading``: what every plugin's reader wraps its parsing in."""
    path = tmp_path / "scan.xyz"
    with pytest.raises(LimitError) as limit, reading(path, "XYZ"):
        raise LimitError("the labelmap needs 9 GB")
    assert type(limit.value) is LimitError and limit.value.path == str(path)
    with pytest.raises(GeometryError) as grid, reading(path, "XYZ"):
        raise GeometryError("the frames are not on one grid")
    assert type(grid.value) is GeometryError and grid.value.path == str(path)
    with pytest.raises(ReadError) as rule, reading(path, "XYZ"):
        raise ValidationError("label 300 does not fit", path=tmp_path / "elsewhere")
    assert type(rule.value) is ReadError, "a model rule the file breaks is a read error"
    assert rule.value.path == str(tmp_path / "elsewhere") and "label 300" in rule.value.reason
    named = ReadError("bad header", path=tmp_path / "data.raw")
    with pytest.raises(ReadError) as kept, reading(path, "XYZ"):
        raise named
    assert kept.value is named
    with pytest.raises(ReadError) as broken, reading(path, "XYZ"):
        raise ValueError("cannot reshape array")
    assert str(broken.value).startswith(f"{path}: not a readable XYZ file (ValueError: cannot")
    assert isinstance(broken.value.__cause__, ValueError)
    with pytest.raises(ReadError, match="No such file") as missing, reading(path, "XYZ"):
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "side.raw"))
    assert missing.value.path == str(tmp_path / "side.raw")
    with pytest.raises(ValueError), reading(path, "XYZ", catch=()):
        raise ValueError("left for segio.read to flag as unexpected")


# -- the command line ------------------------------------------------------------------

CHILD = """
import sys
sys.path.insert(0, {tests!r})
import crashing
from segio.registry import default_registry
default_registry().register(crashing.Plugin())
from segio.cli import main
main(sys.argv[1:])
"""


def segio_command(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """Run ``segio ARGS`` in a fresh process that also knows the ``crash`` format."""
    return subprocess.run(
        [sys.executable, "-c", CHILD.format(tests=str(TESTS)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **environment},
    )


@pytest.mark.parametrize("how", ["valueerror", "overflow", "memory", "empty", "segio-empty"])
def test_command_line_prints_one_line_and_exits_1(crash_file: Path, how: str) -> None:
    for args in (["info", str(crash_file)], ["convert", str(crash_file), "out.seg.nrrd"]):
        result = segio_command(*args, CRASH_HOW=how)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"segio: error: {crash_file}: ")
        assert not lines[0].rstrip().endswith(":"), "a reason follows the file name"


def test_command_line_write_errors_name_the_target(tmp_path: Path) -> None:
    source = tmp_path / "s.seg.nrrd"
    segio.write(small_segmentation(), source)
    target = tmp_path / "out.crash"
    for how in ("segio", "segio-message", "oserror", "valueerror", "overflow"):
        result = segio_command("convert", str(source), str(target), "-O", f"how={how}")
        assert result.returncode == 1
        assert result.stderr.startswith(f"segio: error: {target}: "), result.stderr
        assert ".segio-tmp" not in result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_debug_shows_the_traceback(crash_file: Path) -> None:
    result = segio_command("--debug", "info", str(crash_file), CRASH_HOW="overflow")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "OverflowError" in result.stderr


def test_thousands_of_warnings_are_summarised(crash_file: Path) -> None:
    result = segio_command("info", "--json", str(crash_file), CRASH_HOW="warn")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert all(line.startswith("segio: warning: ") for line in lines)
    repeated = [line for line in lines if "is out of range" in line]
    assert len(repeated) == 4, lines  # three shown, then one line counting the rest
    assert "997 more warning(s) like" in repeated[-1]
    assert sum("unknown fields" in line for line in lines) == 1
    assert len(lines) == 5


def test_warnings_from_the_library_are_untouched(crash_file: Path, registry: Registry) -> None:
    """The summary is the command's: a library caller sees every warning."""
    with pytest.warns(UserWarning) as caught:
        os.environ["CRASH_WARNINGS"] = "50"
        try:
            segio.read(crash_file, registry=registry, how="warn")
        finally:
            del os.environ["CRASH_WARNINGS"]
    assert len(caught) == 51


def test_library_log_lines_are_folded_into_one_line_warnings(tmp_path: Path) -> None:
    """nibabel prints its log records itself (a handler of its own), several lines
    sometimes; the command prints them as its own one-line warnings, once."""
    script = CHILD.replace(
        "from segio.cli import main",
        "import nibabel.imageglobals, segio.cli, crashing\n"
        "def read(path, **options):\n"
        "    nibabel.imageglobals.logger.warning('pixdim[0] (qfac) should be 1\\n"
        "(default) or -1; setting qfac to 1')\n"
        "    return crashing.small_segmentation()\n"
        "crashing.read = read\n"
        "from segio.cli import main",
    )
    crash_file = tmp_path / "x.crash"
    crash_file.write_bytes(b"x")
    result = subprocess.run(
        [sys.executable, "-c", script.format(tests=str(TESTS)), "info", "--json", str(crash_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "segio: warning: pixdim[0] (qfac) should be 1 (default) or -1; setting qfac to 1"
    ]
    assert logging.getLogger("nibabel.global").filters == []


def test_a_fifo_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.seg.nrrd"
    os.mkfifo(fifo)
    for args in (["info", str(fifo)], ["convert", str(fifo), str(tmp_path / "o.nii.gz")]):
        result = segio_command(*args)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"segio: error: {fifo}: the file is a FIFO (named pipe), not a regular file "
            "(segio reads only regular files)"
        ]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    for args in (
        ["info", "/dev/zero"],
        ["info", "--from", "nifti", "/dev/zero"],
        ["convert", "/dev/zero", str(tmp_path / "o.nii.gz")],
    ):
        result = segio_command(*args)
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1
        assert "/dev/zero: the file is a character device" in result.stderr


def test_info_summarising_errors_name_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "s.seg.nrrd"
    segio.write(small_segmentation(), source)

    def overflowing(segmentation: object) -> dict[str, object]:
        raise OverflowError("int too big to convert")

    monkeypatch.setattr("segio.analysis.summary.summarize", overflowing)
    result = CliRunner().invoke(cli, ["info", str(source)])
    assert result.exit_code == 1
    reason = "cannot read this file: int too big to convert (OverflowError)"
    assert result.stderr == f"segio: error: {source}: {reason}\n"


def test_an_escaping_value_error_without_a_file_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError()

    monkeypatch.setattr("segio.registry.Registry.formats", property(broken))
    result = CliRunner().invoke(cli, ["formats"])
    assert result.exit_code == 1
    assert result.stderr == (
        "segio: error: no reason was given (ValueError; --debug shows where)\n"
    )
    assert isinstance(SegioError("").reason, str) and SegioError("").reason
