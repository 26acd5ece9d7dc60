"""`.seg.nrrd` read and write: segio against slicerio (and nibabel's NIfTI as a floor).

One run, same data for everybody: a 512 x 512 x 200 labelmap with 24 segments (holes,
islands, one touching the border) from ``segio.testing.synthetic_segmentation``.

Every measurement runs in a fresh Python process, so peak memory (``ru_maxrss``) is that
of the whole process doing one job, imports included, as a user would see it. Time is
the median of ``--repeat`` runs of the operation alone (imports and data loading
excluded). Reads all read the same file (written by slicerio); writes each write their
own file from the same array. Prints a table and the segio/slicerio ratios.

    python benchmarks/seg_nrrd_io.py [--repeat 3] [--shape 200 512 512] [--segments 24]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# Each job prints one JSON line: {"seconds": ..., "bytes": ...}; the runner adds memory.
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
    """
)

JOBS = {
    "segio read": """
        import segio
        t = time.perf_counter(); seg = segio.read(work / "slicerio.seg.nrrd")
        seg.layers[0].array.sum(); done(time.perf_counter() - t)
    """,
    "slicerio read": """
        import slicerio
        t = time.perf_counter(); seg = slicerio.read_segmentation(str(work / "slicerio.seg.nrrd"))
        seg["voxels"].sum(); done(time.perf_counter() - t)
    """,
    "nibabel read": """
        import nibabel
        t = time.perf_counter(); image = nibabel.load(work / "nibabel.nii.gz")
        np.asarray(image.dataobj).sum(); done(time.perf_counter() - t)
    """,
    "segio write": """
        import segio
        from segio.model import Layer, Segment, Segmentation
        meta = json.loads((work / "meta.json").read_text())
        array = np.load(work / "labels.npy")
        grid = segio.Geometry(meta["ijk_to_lps"], array.shape)
        segments = [Segment(id=s["id"], name=s["name"], color=tuple(s["color"]),
                            label_value=s["label"]) for s in meta["segments"]]
        seg = Segmentation(segments, [Layer(array, grid)])
        out = work / "segio.seg.nrrd"; out.unlink(missing_ok=True)
        t = time.perf_counter(); segio.write(seg, out); done(time.perf_counter() - t, out)
    """,
    "slicerio write": """
        import slicerio
        meta = json.loads((work / "meta.json").read_text())
        array = np.load(work / "labels.npy")
        seg = {"voxels": array.T, "ijkToLPS": np.array(meta["ijk_to_lps"]), "encoding": "gzip",
               "segments": meta["slicerio_segments"], **meta["slicerio_fields"]}
        out = work / "slicerio-out.seg.nrrd"
        t = time.perf_counter(); slicerio.write_segmentation(str(out), seg)
        done(time.perf_counter() - t, out)
    """,
    "nibabel write": """
        import nibabel
        meta = json.loads((work / "meta.json").read_text())
        array = np.load(work / "labels.npy")
        out = work / "nibabel-out.nii.gz"
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.array(meta["ijk_to_lps"])
        t = time.perf_counter(); nibabel.save(nibabel.Nifti1Image(array.T, affine), out)
        done(time.perf_counter() - t, out)
    """,
}


def prepare(work: Path, shape: tuple[int, int, int], n_segments: int) -> None:
    """Write the labelmap once, plus the shared input files every job reads."""
    import nibabel
    import numpy as np
    import slicerio

    import segio
    from segio.testing import synthetic_segmentation

    segmentation = synthetic_segmentation(
        shape=shape, n_segments=n_segments, seed=1, terminology=False
    )
    array = segmentation.layers[0].array
    geometry = segmentation.require_geometry()
    np.save(work / "labels.npy", array)
    meta = {
        "ijk_to_lps": geometry.ijk_to_lps.tolist(),
        "segments": [
            {"id": s.id, "name": s.name, "color": list(s.color), "label": s.label_value}
            for s in segmentation.segments.values()
        ],
    }
    # slicerio gets every field segio writes, so the file sizes compare like with like.
    reference = segio.read(segio.write(segmentation, work / "reference.seg.nrrd")[0])
    fields = slicerio.read_segmentation(str(work / "reference.seg.nrrd"), skip_voxels=True)
    meta["slicerio_segments"] = [
        {
            "id": s.id,
            "name": s.name,
            "color": list(s.color),
            "labelValue": s.label_value,
            "layer": 0,
            "extent": segment["extent"],
            "colorAutoGenerated": False,
            "nameAutoGenerated": False,
        }
        for s, segment in zip(reference.segments.values(), fields["segments"], strict=True)
    ]
    meta["slicerio_fields"] = {
        key: fields[key]
        for key in (
            "conversionParameters",
            "containedRepresentationNames",
            "masterRepresentation",
            "referenceImageExtentOffset",
        )
    }
    (work / "meta.json").write_text(json.dumps(meta))
    slicerio.write_segmentation(
        str(work / "slicerio.seg.nrrd"),
        {
            "voxels": array.T,
            "ijkToLPS": geometry.ijk_to_lps,
            "encoding": "gzip",
            "segments": meta["slicerio_segments"],
            **meta["slicerio_fields"],
        },
    )
    nibabel.save(nibabel.Nifti1Image(array.T, geometry.ijk_to_ras), work / "nibabel.nii.gz")


def run(job: str, work: Path) -> dict[str, float]:
    code = PRELUDE + textwrap.dedent(JOBS[job])
    result = subprocess.run(
        [sys.executable, "-c", code, str(work)], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise SystemExit(f"{job} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=(200, 512, 512))
    parser.add_argument("--segments", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, tuple(args.shape), args.segments)
        labelmap_mb = (work / "labels.npy").stat().st_size / 2**20
        print(f"labelmap {args.shape} uint8 ({labelmap_mb:.0f} MB), {args.segments} segments")
        results = {}
        for job in JOBS:
            runs = [run(job, work) for _ in range(args.repeat)]
            results[job] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "peak_mb": max(r["peak_mb"] for r in runs),
                "mb": runs[-1]["bytes"] / 2**20,
            }
    print(f"\n{'job':<16}{'time s':>9}{'peak MB':>10}{'file MB':>10}")
    for job, r in results.items():
        size = f"{r['mb']:.2f}" if r["mb"] else "-"
        print(f"{job:<16}{r['seconds']:>9.3f}{r['peak_mb']:>10.0f}{size:>10}")
    print("\nsegio / slicerio (below 1 is better):")
    for verb in ("read", "write"):
        ours, theirs = results[f"segio {verb}"], results[f"slicerio {verb}"]
        line = (
            f"  {verb:<6} time {ours['seconds'] / theirs['seconds']:.2f}"
            f"  peak memory {ours['peak_mb'] / theirs['peak_mb']:.2f}"
        )
        if verb == "write":
            line += (
                f"  file size {ours['mb'] / theirs['mb']:.4f}"
                f" ({ours['mb'] * 2**20:,.0f} vs {theirs['mb'] * 2**20:,.0f} bytes)"
            )
        print(line)


if __name__ == "__main__":
    main()
