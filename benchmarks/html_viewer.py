"""The HTML viewer page against the GLB of the same meshes: size, write time, opening.

The 24-segment case of ``benchmarks/surfaces.py`` (``synthetic_segmentation`` on a
512 x 512 x 200 CT grid of 0.78 x 0.78 x 1.5 mm voxels) becomes closed surfaces once
(segio's converter, Slicer's default smoothing); the same surfaces are then written as a
GLB (float32, as ``segio convert x.seg.nrrd x.glb``), a quantised GLB
(``-O quantize=true``) and the HTML page, each timed (best of ``--repeat``). The page is
then opened from file:// in headless Chromium (software WebGL) and the wall time until it
reports every mesh drawn is printed, an upper bound for a desktop browser with a GPU.
The issue's target: the page within about 1.5 x the GLB.

    python benchmarks/html_viewer.py [--segments 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from surfaces import SPACING

import segio
from segio.geometry import Geometry
from segio.representations import Representation
from segio.testing.synthetic import FULL_SHAPE, synthetic_segmentation


def best_write(
    segmentation: segio.Segmentation, path: Path, repeat: int, **options: object
) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        segio.write(segmentation, path, force=True, **options)
        best = min(best, time.perf_counter() - start)
    return best


def open_in_chromium(page: Path) -> tuple[float, str]:
    """Wall seconds until headless Chromium has run the page, and the meshes it drew."""
    chromium = shutil.which("chromium")
    if chromium is None:
        return float("nan"), "chromium missing (make tools)"
    start = time.perf_counter()
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--enable-unsafe-swiftshader",
            "--virtual-time-budget=120000",
            "--window-size=1280,800",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    seconds = time.perf_counter() - start
    found = re.search(r'data-segio-meshes="(\d+)"', done.stdout.partition("<head>")[0])
    return seconds, f"{found.group(1)} meshes drawn" if found else "not drawn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    grid = Geometry.from_spacing(FULL_SHAPE, SPACING, (-200.0, -180.0, -300.0))
    labelmap = synthetic_segmentation(n_segments=args.segments, geometry=grid)
    start = time.perf_counter()
    surfaces = labelmap.representation(Representation.CLOSED_SURFACE)
    print(
        f"{args.segments} segments, labelmap 200 x 512 x 512 -> closed surfaces in "
        f"{time.perf_counter() - start:.1f} s: "
        f"{sum(len(s.vertices) for s in surfaces.surfaces.values()):,} vertices, "
        f"{sum(len(s.faces) for s in surfaces.surfaces.values()):,} triangles"
    )
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        rows = [
            ("GLB (float32)", work / "atlas.glb", {}),
            ("GLB quantize=true", work / "quantized.glb", {"quantize": True}),
            ("HTML page", work / "atlas.html", {}),
        ]
        sizes = {}
        print(f"{'file':<20} {'size (MB)':>10} {'x GLB':>7} {'write (s)':>10}")
        for label, path, options in rows:
            seconds = best_write(surfaces, path, args.repeat, **options)
            sizes[label] = path.stat().st_size
            ratio = sizes[label] / sizes["GLB (float32)"]
            print(f"{label:<20} {sizes[label] / 1e6:>10.2f} {ratio:>7.2f} {seconds:>10.2f}")
        seconds, drawn = open_in_chromium(work / "atlas.html")
        print(f"HTML page opened in headless Chromium (software WebGL): {seconds:.1f} s, {drawn}")


if __name__ == "__main__":
    main()
