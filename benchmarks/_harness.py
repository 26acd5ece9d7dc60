"""Shared benchmark plumbing: one job per fresh process, time + peak memory + file size.

Python jobs run as ``python -c PRELUDE + job`` and report through ``done()``; external
tools (dcmqi) run under ``/usr/bin/time`` for their wall time and peak RSS. Peak memory is
the process's own high-water mark (``VmHWM``), imports included, as a user would see it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PRELUDE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np
    work = Path(sys.argv[1])
    def done(seconds, path=None):
        # VmHWM is this process's own peak; ru_maxrss would include the parent's at fork.
        status = Path("/proc/self/status").read_text()
        peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
        size = path.stat().st_size if path is not None else 0
        print(json.dumps({"seconds": seconds, "bytes": size, "peak_mb": peak}))
    def load_segmentation(tissue=False):
        # The benchmark's segmentation, from labels.npy and meta.json in ``work``.
        import segio
        from segio.model import Layer, Segment, Segmentation
        from segio.terminology import Code, Terminology
        meta = json.loads((work / "meta.json").read_text())
        labels = np.load(work / "labels.npy")
        code = Code("SCT", "85756007", "Tissue")
        terminology = Terminology(code, code) if tissue else None
        segments = [Segment(id=s["id"], name=s["name"], color=tuple(s["color"]),
                            label_value=s["label"], terminology=terminology)
                    for s in meta["segments"]]
        grid = segio.Geometry(meta["ijk_to_lps"], labels.shape)
        return Segmentation(segments, [Layer(labels, grid)])
    """
)

Result = dict[str, float]


def run_python(code: str, work: Path) -> Result:
    """Run a job (Python source using ``work`` and ``done``) in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"job failed:\n{textwrap.dedent(code)}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_command(argv: Sequence[str], output: Path | None = None) -> Result:
    """Run an external tool under /usr/bin/time: wall seconds and peak RSS."""
    result = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %M", *argv], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise SystemExit(f"{argv[0]} failed:\n{result.stdout}\n{result.stderr}")
    line = next(x for x in result.stderr.splitlines() if x.startswith("TIME "))
    _, seconds, kilobytes = line.split()
    size = 0
    if output is not None:
        files = [output] if output.is_file() else [p for p in output.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
    return {"seconds": float(seconds), "bytes": size, "peak_mb": int(kilobytes) / 1024}


def repeat(job: Callable[[], Result], times: int) -> Result:
    """Median time, highest peak memory, last size over ``times`` runs."""
    runs = [job() for _ in range(times)]
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
        "bytes": runs[-1]["bytes"],
    }


def print_table(results: dict[str, Result]) -> None:
    print(f"\n{'job':<28}{'time s':>9}{'peak MB':>10}{'file MB':>10}")
    for job, r in results.items():
        size = f"{r['bytes'] / 2**20:.2f}" if r["bytes"] else "-"
        print(f"{job:<28}{r['seconds']:>9.3f}{r['peak_mb']:>10.0f}{size:>10}")


def ratio_line(label: str, ours: Result, theirs: Result, *, size: bool = False) -> str:
    line = (
        f"  {label:<34} time {ours['seconds'] / theirs['seconds']:.2f}"
        f"  peak memory {ours['peak_mb'] / theirs['peak_mb']:.2f}"
    )
    if size and theirs["bytes"]:
        line += (
            f"  file size {ours['bytes'] / theirs['bytes']:.4f}"
            f" ({ours['bytes']:,.0f} vs {theirs['bytes']:,.0f} bytes)"
        )
    return line


# -- whole processes, paired ---------------------------------------------------------------------

# What a whole-process Python job starts from: nothing imported but ``sys``/``pathlib``, so
# the interpreter's start-up and every import the job makes are on the clock.
BARE = "import sys, time\nfrom pathlib import Path\nwork = Path(sys.argv[1])\n"


def python_job(code: str, *, python: str | Path = sys.executable) -> list[str]:
    """The argv of a whole-process job: ``code`` (using ``work``) after :data:`BARE`.

    Append the work folder when running it (:func:`paired` does). ``python`` is another
    interpreter for a peer that cannot share our environment (pydicom-seg pins numpy 1).
    """
    return [str(python), "-c", BARE + textwrap.dedent(code)]


def compile_segio() -> None:
    """Write segio's and the plugins' bytecode, as ``pip install`` does for a package
    (this checkout may run with ``PYTHONDONTWRITEBYTECODE``: every job would recompile)."""
    root = Path(__file__).resolve().parents[1]
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root / "segio"), str(root / "plugins")],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run_process(argv: Sequence[str]) -> Result:
    """Wall time from spawn to exit and the job's own peak RSS.

    The job runs under ``/usr/bin/time``: Linux carries the high-water mark of the memory
    a process had before ``exec`` into its ``ru_maxrss``, so a job spawned straight from
    this (large) process would report our peak, not its own; ``time`` is small, and the
    job it forks starts from ``time``'s memory. Its start-up (about a millisecond) is on
    the clock of every job alike.
    """
    with tempfile.NamedTemporaryFile(suffix=".peak") as peak, tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-q", "-f", "%M", "-o", peak.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            check=False,
        )
        seconds = time.perf_counter() - start
        if result.returncode:
            errors.seek(0)
            raise SystemExit(f"{argv[0]} failed:\n{errors.read().decode(errors='replace')}")
        kilobytes = int(Path(peak.name).read_text().split()[-1])
    return {"seconds": seconds, "peak_mb": kilobytes / 1024, "bytes": 0}


class Rounds(list[dict[str, Result]]):
    """Every job's result in each round of a :func:`run_rounds`."""

    def summary(self, outputs: dict[str, Path] | None = None) -> dict[str, Result]:
        """Each job's median time, highest peak memory and (from ``outputs``) file size."""
        return {
            name: {
                "seconds": statistics.median(r[name]["seconds"] for r in self),
                "peak_mb": max(r[name]["peak_mb"] for r in self),
                "bytes": outputs[name].stat().st_size if outputs and name in outputs else 0,
            }
            for name in self[0]
        }

    def ratio(self, ours: str, theirs: str) -> float:
        """The median over the rounds of ``ours``' time divided by ``theirs``' in the same
        round: a ratio of pairs, which a slow moment of the machine shifts for both alike."""
        return statistics.median(r[ours]["seconds"] / r[theirs]["seconds"] for r in self)


def run_rounds(jobs: dict[str, Sequence[str]], work: Path, pairs: int) -> Rounds:
    """Run every job once per round, ``pairs`` rounds, in a rotating order (so that no job
    always runs first, in a cold cache, or last); each job a whole process."""
    names = list(jobs)
    rounds = Rounds()
    for n in range(pairs):
        order = names[n % len(names) :] + names[: n % len(names)]
        rounds.append({name: run_process([*jobs[name], str(work)]) for name in order})
    return rounds


def paired(
    jobs: dict[str, Sequence[str]], work: Path, *, pairs: int = 5, ours: str = "segio"
) -> tuple[dict[str, Result], dict[str, float]]:
    """:func:`run_rounds`, then each job's summary and ``ours``' ratio to every other job."""
    rounds = run_rounds(jobs, work, pairs)
    ratios = {name: rounds.ratio(ours, name) for name in jobs if name != ours}
    return rounds.summary(), ratios


def print_pairs(
    title: str, results: dict[str, Result], ratios: dict[str, float], *, ours: str = "segio"
) -> str:
    """The table of a :func:`paired` run and ``ours``' ratios; returns the fastest peer."""
    print(f"\n{title}")
    print_table(results)
    fastest = min(ratios, key=lambda name: results[name]["seconds"])
    for name, ratio in ratios.items():
        memory = results[ours]["peak_mb"] / results[name]["peak_mb"]
        mark = "  <- fastest peer" if name == fastest else ""
        print(f"  {ours} / {name:<30} time {ratio:.2f}  peak memory {memory:.2f}{mark}")
    return fastest
