"""The in-memory adapters (``segio.interop``) against the few lines a user would write by hand.

The segmentation is ``synthetic_segmentation`` (24 or 104 segments) on a 512 x 512 x 200
CT grid, one labelmap layer. Every job is a fresh process (``_harness.run_python``) that
loads it before the clock starts and times one call: ``to_numpy`` / ``from_numpy`` in nibabel's
``(i, j, k)`` order, ``to_nibabel``, ``to_simpleitk``, ``to_monai`` and their inverses. The
hand-written baselines do the least that gives the same object: a transposed copy and an
affine for nibabel, ``GetImageFromArray`` plus origin, spacing and direction for
SimpleITK. The adapters do more (they check the labels, name the segments, copy so that
the result shares no memory with the segmentation): the ratio is that price.

    python benchmarks/interop_arrays.py [--segments 104] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, print_table, ratio_line, repeat, run_python
from surfaces import prepare

TIMED = """
seg = load_segmentation()
from segio.interop import {name}
{setup}
start = time.perf_counter()
{call}
done(time.perf_counter() - start)
"""

JOBS: dict[str, tuple[str, str, str]] = {
    "to_numpy ijk RAS": ("to_numpy", "", "to_numpy(seg, axes='ijk', space='RAS')"),
    "from_numpy ijk RAS": (
        "from_numpy, to_numpy",
        "out = to_numpy(seg, axes='ijk', space='RAS')",
        "from_numpy(out.array, out.affine, axes='ijk', space='RAS', names=out.names)",
    ),
    "to_nibabel": ("to_nibabel", "import nibabel", "to_nibabel(seg)"),
    "by hand: nibabel": (
        "to_nibabel",
        "import nibabel",
        "nibabel.Nifti1Image(np.ascontiguousarray(seg.layers[0].array.T), seg.geometry.ijk_to_ras)",
    ),
    "from_nibabel": ("from_nibabel, to_nibabel", "image = to_nibabel(seg)", "from_nibabel(image)"),
    "to_simpleitk": ("to_simpleitk", "import SimpleITK", "to_simpleitk(seg)"),
    "by hand: SimpleITK": (
        "to_simpleitk",
        "import SimpleITK as sitk",
        "g = seg.geometry; image = sitk.GetImageFromArray(seg.layers[0].array); "
        "image.SetOrigin(tuple(g.origin)); image.SetSpacing(tuple(g.spacing)); "
        "image.SetDirection(tuple(g.direction.ravel()))",
    ),
    "from_simpleitk": (
        "from_simpleitk, to_simpleitk",
        "image = to_simpleitk(seg)",
        "from_simpleitk(image)",
    ),
    "to_monai": ("to_monai", "", "to_monai(seg)"),
    "from_monai": ("from_monai, to_monai", "data = to_monai(seg)", "from_monai(data)"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=104)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.segments)
        for job, (name, setup, call) in JOBS.items():
            code = TIMED.format(name=name, setup=setup, call=call)
            results[job] = repeat(lambda code=code: run_python(code, work), args.repeat)
    print(f"\n{args.segments} segments, 512 x 512 x 200 voxels")
    print_table(results)
    print("\nadapter / by hand:")
    print(ratio_line("to_nibabel", results["to_nibabel"], results["by hand: nibabel"]))
    print(ratio_line("to_simpleitk", results["to_simpleitk"], results["by hand: SimpleITK"]))


if __name__ == "__main__":
    main()
