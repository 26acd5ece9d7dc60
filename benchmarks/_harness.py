"""Shared benchmark plumbing: one job per fresh process, time + peak memory + file size.

Python jobs run as ``python -c PRELUDE + job`` and report through ``done()``; external
tools (dcmqi) run under ``/usr/bin/time`` for their wall time and peak RSS. Peak memory is
the process's own high-water mark (``VmHWM``), imports included, as a user would see it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
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
