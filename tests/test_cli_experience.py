"""One command-line experience (issue 15, item 5): progress bars on a terminal only,
``-q``/``-v``, every check that can fail early failing before any file is read, hints
worded as command-line options, and text from files or hints never taken as rich markup.

Progress is checked in a real pseudo-terminal (the bar is drawn only when stderr is a
terminal); ``SEGIO_PROGRESS_DELAY=0`` shows bars at once, so the work need not last a
second. The early checks replace :func:`segio.io.read` by a function that fails the test:
a check that ran after the heavy work would never be reached.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import segio
from segio import progress
from segio.cli import _hoisted, _summarised_warnings, cli
from segio.cli.progress_bar import CommandReporter
from segio.testing.synthetic import synthetic_segmentation

SEGMENTS = 12
SEGIO = [sys.executable, "-m", "segio"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A NIfTI labelmap of 12 segments: closed surfaces are one progress step each."""
    folder = tmp_path_factory.mktemp("experience")
    path = folder / "many.nii.gz"
    segio.write(synthetic_segmentation((24, 40, 40), SEGMENTS), path)
    return path


def _in_terminal(args: list[str], delay: str = "0") -> tuple[int, str, str]:
    """Run ``segio args`` with stderr on a pseudo-terminal: (status, terminal, stdout)."""
    master, slave = pty.openpty()
    env = {**os.environ, "SEGIO_PROGRESS_DELAY": delay, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [*SEGIO, *args], stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    assert process.stdout is not None
    with process.stdout:
        out = process.stdout.read().decode()
    return process.wait(timeout=60), seen.decode(errors="replace"), out


def _in_pipe(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEGIO, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SEGIO_PROGRESS_DELAY": "0", **env},
        timeout=120,
        check=False,
    )


def test_progress_bar_on_a_terminal(sample: Path) -> None:
    target = sample.parent / "t[old].glb"  # a file name in a bar is text, not rich markup
    code, terminal, out = _in_terminal(["convert", str(sample), str(target)])
    assert code == 0, terminal
    assert "writing t[old].glb" in terminal
    assert "closed surfaces" in terminal and f"/{SEGMENTS}" in terminal
    assert "/s" in terminal  # the rate
    assert "closed surfaces" not in out and out.startswith("wrote ")  # bars on stderr only


def test_no_bar_for_quick_work_nor_in_a_pipe_nor_with_quiet(sample: Path) -> None:
    code, terminal, _ = _in_terminal(
        ["convert", str(sample), str(sample.parent / "slow.glb")], delay="60"
    )
    assert code == 0 and "closed surfaces" not in terminal  # shorter than the delay
    piped = _in_pipe(["convert", str(sample), str(sample.parent / "p.glb")])
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == "" and piped.stdout.startswith("wrote ")
    for args in (["-q", "convert"], ["convert", "-q"]):
        target = sample.parent / f"q{len(args[0])}.glb"
        *head, last = args
        code, terminal, out = _in_terminal([*head, last, str(sample), str(target)])
        assert code == 0 and target.exists()
        assert "closed surfaces" not in terminal and out == ""  # -q: no 'wrote' line


def test_verbose_times_each_step_and_shows_every_warning(sample: Path) -> None:
    piped = _in_pipe(["convert", str(sample), str(sample.parent / "v.glb"), "-v"])
    assert piped.returncode == 0, piped.stderr
    assert "segio: closed surfaces: " in piped.stderr
    assert f" s, {SEGMENTS} of {SEGMENTS}" in piped.stderr
    assert "segio: reading many.nii.gz: " in piped.stderr
    stats = _in_pipe(["stats", str(sample), "-v", "--csv"])  # the analysis commands too
    assert stats.returncode == 0 and "segio: closed surfaces: " in stats.stderr
    assert "closed surfaces" not in stats.stdout
    for shown, lines in ((3, 4), (None, 5)):  # folded into a count, or every one with -v
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            runner = CliRunner()
            with runner.isolation() as (_, err, *_rest):
                with _summarised_warnings(shown):
                    for n in range(5):
                        warnings.warn(f"segment {n} is empty", stacklevel=1)
                text = err.getvalue().decode()
        assert len(text.splitlines()) == lines, text


def test_reporter_counts_steps_from_many_threads() -> None:
    """Surface jobs advance their task from pool threads: no step may be lost."""
    reporter = CommandReporter(bars=True, timings=False)
    with progress.reporting(reporter), progress.task("threads", total=8000) as step:
        assert isinstance(step, progress.Step) and step is not progress.NULL_STEP
        jobs = [threading.Thread(target=_advance, args=(step, 1000)) for _ in range(8)]
        for job in jobs:
            job.start()
        for job in jobs:
            job.join()
        assert step.done == 8000  # type: ignore[attr-defined]
    reporter.close()
    with progress.task("nobody") as step:  # no reporter: nothing is counted, nothing drawn
        assert step is progress.NULL_STEP


def _advance(step: progress.Step, times: int) -> None:
    for _ in range(times):
        step.advance()


def test_global_flags_after_the_command_name() -> None:
    args = ["convert", "a.nii.gz", "--rename", "-v", "b.nii.gz", "-q", "--", "-v"]
    assert _hoisted(cli, cli.make_context("segio", ["formats"]), args) == [
        "-q",
        "convert",
        "a.nii.gz",
        "--rename",
        "-v",  # the value of --rename stays
        "b.nii.gz",
        "--",
        "-v",  # after -- it is a path
    ]


# -- checks that fail before the heavy work -----------------------------------------


@pytest.fixture
def no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a segmentation is the first heavy step: reaching it fails the test."""

    def read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the segmentation was read before the check")

    monkeypatch.setattr(segio.io, "read", read)


def _convert(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["convert", *(str(a) for a in args)])
    assert not isinstance(result.exception, AssertionError), result.exception
    return result.exit_code, result.stderr


@pytest.mark.usefixtures("no_reading")
def test_each_early_check_fails_before_reading(sample: Path, tmp_path: Path) -> None:
    there = tmp_path / "there.nii.gz"
    there.write_bytes(b"old")
    cases = [
        ((sample, there), "exists already (choose another name, or pass --force"),
        ((sample, tmp_path / "missing" / "out.nii.gz"), "output folder"),
        ((sample, tmp_path / "out.seg.dcm"), "pass --reference SERIES_FOLDER"),
        (
            (sample, tmp_path / "o.nii.gz", "-P", "Smoothing factr=0.5"),
            "did you mean 'Smoothing factor'",
        ),
        ((sample, tmp_path / "o.nii.gz", "-O", "sidecr=none"), "did you mean sidecar?"),
        ((sample, tmp_path / "o.nii.gz", "-I", "lables=x.csv"), "did you mean labels?"),
        ((sample, tmp_path / "{nom}.nii.gz", "--split"), "unknown placeholder"),
        ((sample, tmp_path / "o.xyz"), "pass --to FORMAT (format= in Python)"),
    ]
    for args, said in cases:
        code, err = _convert(*args)
        assert code == 1 and said in err, (args, err)
        assert err.count("\n") == 1  # one line
    assert there.read_bytes() == b"old"


def test_force_gets_past_the_check_to_the_work(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check refuses only what the write would refuse: with --force the conversion
    goes on and replaces the file."""
    there = tmp_path / "there.nii.gz"
    there.write_bytes(b"old")
    code, err = _convert(sample, there, "--force")
    assert code == 0, err
    assert segio.read(there).segments.keys() == segio.read(sample).segments.keys()


def test_hints_name_command_line_options(tmp_path: Path) -> None:
    mislabelled = tmp_path / "x.nii.gz"
    mislabelled.write_bytes(b"not a nifti file at all" * 20)
    code, err = _convert(mislabelled, tmp_path / "y.nii.gz")
    assert code == 1 and "pass --from FORMAT to force one (format= in Python)" in err


# -- text is never rich markup ----------------------------------------------------------


def test_install_hint_keeps_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import segio.registry

    monkeypatch.setattr(segio.registry, "is_installed", lambda spec: False)
    result = CliRunner().invoke(cli, ["formats"], terminal_width=200)
    assert result.exit_code == 0
    assert "pip install 'segio[nifti]'" in result.stdout


def test_a_bracketed_file_name_stays_in_the_table_title(sample: Path, tmp_path: Path) -> None:
    """A table's title (stats, compare, --report) names files: it is text, not markup."""
    named = tmp_path / "seg[nifti].nii.gz"
    segio.write(segio.read(sample), named)
    result = CliRunner().invoke(cli, ["stats", str(named)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "seg[nifti].nii.gz" in result.stdout


# -- convert --json ---------------------------------------------------------------------


def test_convert_json_names_outputs_segments_and_warnings(tmp_path: Path) -> None:
    source = tmp_path / "empty.nii.gz"
    segmentation = synthetic_segmentation((16, 24, 24), 4, empty_segments=1)
    segio.write(segmentation, source, allow_empty=True)
    names = [s.name for s in segmentation.segments.values()]
    target = tmp_path / "e.stl"
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # shown by the command, not raised by pytest
        result = CliRunner().invoke(cli, ["-q", "convert", str(source), str(target), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout is the document alone
    assert document["format"] == "stl"
    assert len(document["written"]) == 3  # one STL per segment with triangles
    assert document["outputs"] == [{"path": str(target), "segments": names}]
    [warning] = document["warnings"]
    assert "STL cannot hold a segment without triangles" in warning
    assert warning in result.stderr  # still on stderr, even with -q
