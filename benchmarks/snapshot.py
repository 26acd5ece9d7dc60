"""``segio snapshot`` of the 24-segment 512 x 512 x 200 case: time, peak memory, check.

The labelmap is ``synthetic_segmentation`` on the CT grid of ``benchmarks/surfaces.py``
(0.78 x 0.78 x 1.5 mm voxels). Jobs, each in a fresh process (``_harness``):

- the command, ``segio snapshot case.seg.nrrd -o case.png`` (start-up, reading the file,
  closed surfaces, slices, 3D view, PNG), under ``/usr/bin/time``;
- in process, :func:`segio.preview.snapshot` on the segmentation in memory; the
  closed-surface conversion alone; the picture alone (surfaces already cached, as for a
  second picture of one segmentation).

The picture is then checked: every segment's exact colour is in it outside the legend.

    python benchmarks/snapshot.py [--segments 24] [--size 320] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, print_table, repeat, run_command, run_python
from surfaces import prepare

PICTURE = """
    from segio.preview import snapshot
    seg = load_segmentation()
    t = time.perf_counter()
    snapshot(seg, work / "inprocess.png", size={size}, force=True)
    done(time.perf_counter() - t, work / "inprocess.png")
"""

CACHED = """
    from segio.preview import snapshot
    from segio.representations import Representation
    seg = load_segmentation()
    seg.representation(Representation.CLOSED_SURFACE)  # cached on the segmentation
    t = time.perf_counter()
    snapshot(seg, work / "cached.png", size={size}, force=True)
    done(time.perf_counter() - t, work / "cached.png")
"""

SURFACES = """
    from segio.representations import Representation
    import vtkmodules.util.numpy_support, vtkmodules.vtkFiltersCore
    seg = load_segmentation()
    t = time.perf_counter()
    seg.representation(Representation.CLOSED_SURFACE)
    done(time.perf_counter() - t)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import segio
    from segio.model import Layer, Segment, Segmentation
    from segio.preview.slices import rgb8
    from segio.preview.snapshot import panel_boxes

    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.segments)
        labels = np.load(work / "labels.npy")
        import json

        meta = json.loads((work / "meta.json").read_text())
        segments = [
            Segment(id=s["id"], name=s["name"], color=tuple(s["color"]), label_value=s["label"])
            for s in meta["segments"]
        ]
        grid = segio.Geometry(meta["ijk_to_lps"], labels.shape)
        case = work / "case.seg.nrrd"
        segio.write(Segmentation(segments, [Layer(labels, grid)]), case)
        print(f"snapshot of {args.segments} segments on 200 x 512 x 512, --size {args.size}")
        command = shutil.which("segio") or str(Path(sys.executable).parent / "segio")
        png = work / "case.png"
        results["command segio snapshot"] = repeat(
            lambda: run_command(
                [command, "-q", "snapshot", str(case), "-o", str(png), "--force"], png
            ),
            args.repeat,
        )
        results["in process, snapshot()"] = repeat(
            lambda: run_python(PICTURE.format(size=args.size), work), args.repeat
        )
        results["  of which closed surfaces"] = repeat(
            lambda: run_python(SURFACES, work), args.repeat
        )
        results["  picture, surfaces cached"] = repeat(
            lambda: run_python(CACHED.format(size=args.size), work), args.repeat
        )
        from PIL import Image

        with Image.open(png) as image:
            pixels = np.asarray(image.convert("RGB"))
        views = np.concatenate(
            [pixels[t:b, left:r].reshape(-1, 3) for left, t, r, b in panel_boxes(320).values()]
        )
        present = {tuple(int(v) for v in c) for c in np.unique(views, axis=0)}
        shown = sum(rgb8(s.color) in present for s in segments)
    print_table(results)
    print(
        "load average during the run (1, 5, 15 min): "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(f"segments whose exact colour is in the views: {shown} of {len(segments)}")


if __name__ == "__main__":
    main()
