"""Start-up: ``import segio`` plus a first small read, as whole processes, against slicerio.

The issue's target: ``python -c "import segio; segio.read('small.seg.nrrd')"`` (interpreter
start-up, every import, the registry and the read, all on the clock) in at most 0.2 s.
The same small ``.seg.nrrd`` (24 x 32 x 20 voxels, 3 segments, gzip) is read by slicerio
for comparison, and bare ``python`` and ``import numpy`` show the floor no Python
segmentation reader goes below. ``import segio`` alone is timed too.

Jobs run in rotating order, ``--pairs`` rounds (:func:`_harness.paired`); segio's modules
are compiled to ``__pycache__`` first, as an installed package's are (pip compiles them),
since this checkout may run with ``PYTHONDONTWRITEBYTECODE``.

    python benchmarks/startup.py [--pairs 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compile_segio, paired, print_pairs, python_job

ROOT = Path(__file__).resolve().parents[1]
#: Seconds for ``import segio`` plus a first small read, whole process.
TARGET = 0.2

JOBS = {
    "segio": """
        import segio
        seg = segio.read(work / "small.seg.nrrd")
        seg.layers[0].array.sum()
    """,
    "slicerio": """
        import slicerio
        seg = slicerio.read_segmentation(str(work / "small.seg.nrrd"))
        seg["voxels"].sum()
    """,
    "import segio": "import segio",
    "import numpy": "import numpy",
    "python": "pass",
}


def prepare(work: Path) -> None:
    """The small file everybody reads: segio writes it (gzip, as Slicer does)."""
    import segio
    from segio.testing.synthetic import synthetic_segmentation

    small = synthetic_segmentation(shape=(20, 32, 24), n_segments=3, seed=1, terminology=False)
    segio.write(small, work / "small.seg.nrrd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args()
    compile_segio()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work)
        jobs = {name: python_job(code) for name, code in JOBS.items()}
        results, ratios = paired(jobs, work, pairs=args.pairs)
    # Ratios against slicerio only: bare python and numpy are floors, not peers.
    print_pairs(
        f"import + first small read: whole processes, {args.pairs} pairs",
        results,
        {"slicerio": ratios["slicerio"]},
    )
    seconds = results["segio"]["seconds"]
    verdict = "met" if seconds <= TARGET else "MISSED"
    print(f"  target: import segio + first small read {seconds:.3f} s (<= {TARGET} s) {verdict}")
    floor = results["import numpy"]["seconds"]
    print(f"  of which beyond `import numpy` ({floor:.3f} s): {seconds - floor:.3f} s")


if __name__ == "__main__":
    main()
