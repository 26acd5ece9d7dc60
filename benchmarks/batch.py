"""``segio batch``: 200 cases, NIfTI + label table -> DICOM SEG, on 1 and 2 local worker
processes and on a local Dask cluster of 2 workers.

Each case is a 128 x 128 x 64 labelmap with 8 segments (``synthetic_segmentation``; ten
different ones, copied to 200 case folders) written as ``seg.nii.gz`` + its label table;
every case cites one shared reference CT series. Every job is a fresh ``segio batch``
process timed whole under ``/usr/bin/time`` (start-up, the pool or the cluster, every
item, the report): items/s is 200 over that wall time. The report's own times give the
steady rate as well: the items started after every worker had finished its first item
(which imports the format libraries), over the time from then to the last item's end;
it leaves out starting the workers or the cluster. *Span* is the time from the first
item's start to the last item's end: the throughput of the engine once it runs. A plain
loop of ``segio.convert`` in one process is the baseline without any batch machinery.
``--scheduler`` runs on a cluster started beforehand (the same two workers ``--dask``
starts, in a process of its own), as a cluster is used in practice: its start-up is not
the command's.

    python benchmarks/batch.py [--cases 200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, run_command, run_python

SHAPE = (64, 128, 128)  # k, j, i
DISTINCT = 10

LOOP_JOB = """
    import segio
    cases = sorted((work / "cases").iterdir())
    out = work / "loop"
    out.mkdir()
    t = time.perf_counter()
    for case in cases:
        segio.convert(case / "seg.nii.gz", out / f"{case.name}.dcm", reference=work / "CT")
    done(time.perf_counter() - t)
"""


def prepare(work: Path, count: int) -> None:
    import segio
    from segio.testing.series import reference_series
    from segio.testing.synthetic import grid, synthetic_segmentation

    geometry = grid("axial", shape=SHAPE)
    reference_series(geometry, work / "CT")
    firsts = []
    for index in range(count):
        case = work / "cases" / f"case{index:04d}"
        case.mkdir(parents=True)
        if index < DISTINCT:
            seg = synthetic_segmentation(n_segments=8, geometry=geometry, seed=index)
            segio.write(seg, case / "seg.nii.gz")
            firsts.append(case)
        else:
            for file in firsts[index % DISTINCT].iterdir():
                shutil.copy2(file, case / file.name)


CLUSTER = """
import sys, time
from segio.batch.runner import local_cluster
cluster = local_cluster(2)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the benchmark closes it
cluster.close()
"""


@contextmanager
def existing_cluster() -> Iterator[str]:
    """A local Dask cluster of two workers in a process of its own: its address."""
    process = subprocess.Popen(
        [sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(timeout=60)


def batch(work: Path, name: str, *options: str) -> tuple[Result, float]:
    """One ``segio batch`` run: its wall time, the steady rate, as ``span`` the time from
    the first item's start to the last one's end, and as ``peak_mb`` the highest peak of
    one item's worker (the batch process itself stays small)."""
    out = work / name
    argv = [
        sys.executable, "-c", "from segio.cli import main; main()", "batch",
        "--tree", str(work / "cases"), "--input-pattern", "seg.nii.gz",
        "-r", str(work / "CT"), "-o", str(out / "{case}.dcm"), *options,
    ]  # fmt: skip
    result = run_command(argv, out)
    lines = [json.loads(x) for x in (out / "segio-batch-report.jsonl").read_text().splitlines()]
    failed = [line for line in lines if line["status"] != "ok"]
    if failed:
        raise SystemExit(f"{name}: {len(failed)} items did not convert: {failed[0]}")
    # steady: after each worker's first item (which imports the format libraries)
    firsts: dict[str, float] = {}
    for line in sorted(lines, key=lambda x: x["finished"]):
        firsts.setdefault(line["worker"], line["finished"])
    start = max(firsts.values())
    later = [x for x in lines if x["started"] >= start]
    span = max(x["finished"] for x in later) - start
    result["peak_mb"] = max(x["peak_memory_mb"] for x in lines)
    result["span"] = max(x["finished"] for x in lines) - min(x["started"] for x in lines)
    shutil.rmtree(out)
    return result, len(later) / span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.cases)
        print(f"{args.cases} cases of {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]}, 8 segments -> DICOM SEG")
        loop = run_python(LOOP_JOB, work)
        shutil.rmtree(work / "loop")
        runs: dict[str, tuple[Result, float]] = {}
        jobs: dict[str, tuple[str, ...]] = {
            "--jobs 1": ("-j", "1"),
            "--jobs 2": ("-j", "2"),
            "--dask (2)": ("--dask", "-j", "2"),
        }
        with existing_cluster() as address:
            jobs["--scheduler (2)"] = ("--scheduler", address)
            for label, options in jobs.items():
                best: tuple[Result, float] | None = None
                for _ in range(args.repeat):
                    run = batch(work, "out", *options)
                    best = run if best is None or run[0]["seconds"] < best[0]["seconds"] else best
                assert best is not None
                runs[label] = best
    count = args.cases
    head = f"{'job':<22}{'wall s':>8}{'items/s':>9}{'span s':>8}{'steady/s':>10}{'worker MB':>11}"
    print("\n" + head)
    print(f"{'loop of convert':<22}{loop['seconds']:>8.2f}{count / loop['seconds']:>9.1f}"
          f"{'':>18}{loop['peak_mb']:>11.0f}")  # fmt: skip
    for label, (result, steady) in runs.items():
        print(
            f"{label:<22}{result['seconds']:>8.2f}{count / result['seconds']:>9.1f}"
            f"{result['span']:>8.2f}{steady:>10.1f}{result['peak_mb']:>11.0f}"
        )
    one, two, dask, existing = (runs[k] for k in jobs)

    def ratio(a: tuple[Result, float], b: tuple[Result, float], key: str) -> float:
        return a[0][key] / b[0][key]

    print(
        f"\nspeed-up, 2 workers vs 1: wall {ratio(one, two, 'seconds'):.2f}x, "
        f"span {ratio(one, two, 'span'):.2f}x, steady {two[1] / one[1]:.2f}x"
    )
    for label, run in (("--dask", dask), ("--scheduler", existing)):
        print(
            f"{label} overhead vs 2 local workers: wall {ratio(run, two, 'seconds') - 1:+.1%}, "
            f"span {ratio(run, two, 'span') - 1:+.1%}, steady {two[1] / run[1] - 1:+.1%}"
        )


if __name__ == "__main__":
    main()
