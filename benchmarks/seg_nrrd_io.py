"""`.seg.nrrd` read and write: segio against slicerio (and nibabel's NIfTI as a floor).

One run, same data for everybody: a 512 x 512 x 200 labelmap with ``--segments`` segments
(24 or 104; holes, islands, one touching the border) from
``segio.testing.synthetic_segmentation``, written by slicerio with gzip as Slicer writes.

First the issue's figure: the read as users run it, whole processes paired in the same
rounds (:func:`_harness.paired`, ``--pairs`` rounds, start-up and imports on the clock):
``segio.read`` against ``slicerio.read_segmentation``, each then touching every voxel
(a sum), with each side's peak memory; the target is segio <= 0.5 x slicerio's time.
``segio, zlib inflate`` is the same read with ``SEGIO_INFLATE=zlib``, what the fast
inflate engine (:mod:`segio.fileio.fastinflate`) gains. segio's bytecode is compiled
first, as an installed package's is.

Then the operation alone, in fresh processes: time is the median of ``--repeat`` runs of
the read or write (imports and data loading excluded), peak memory that of the whole
process. Reads all read the same file; writes each write their own file from the same
array. ``--skip-writes`` leaves this section out.

    python benchmarks/seg_nrrd_io.py [--segments 24|104] [--pairs 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    compile_segio,
    paired,
    print_pairs,
    print_table,
    python_job,
    ratio_line,
    repeat,
    run_python,
)

#: segio's whole-process read time over slicerio's, at most.
READ_TARGET = 0.5
#: The issue's read, whole processes: start-up, imports, the read, every voxel touched.
WHOLE = {
    "segio": """
        import segio
        seg = segio.read(work / "slicerio.seg.nrrd")
        seg.layers[0].array.sum()
    """,
    "slicerio": """
        import slicerio
        seg = slicerio.read_segmentation(str(work / "slicerio.seg.nrrd"))
        seg["voxels"].sum()
    """,
    "segio, zlib inflate": """
        import os
        os.environ["SEGIO_INFLATE"] = "zlib"
        import segio
        seg = segio.read(work / "slicerio.seg.nrrd")
        seg.layers[0].array.sum()
    """,
}

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
        seg = load_segmentation()
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
    from segio.testing.synthetic import synthetic_segmentation

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


def whole_reads(work: Path, pairs: int) -> None:
    """The issue's figure: whole-process reads, paired, against the 0.5 target."""
    jobs = {name: python_job(code) for name, code in WHOLE.items()}
    results, ratios = paired(jobs, work, pairs=pairs)
    ratio = ratios["slicerio"]
    print_pairs(f"read: whole processes, {pairs} pairs", results, {"slicerio": ratio})
    print(f"  segio / segio, zlib inflate            time {ratios['segio, zlib inflate']:.2f}")
    memory = results["segio"]["peak_mb"] / results["slicerio"]["peak_mb"]
    verdict = "met" if ratio <= READ_TARGET else "MISSED"
    print(
        f"  target read time: segio / slicerio = {ratio:.2f} (<= {READ_TARGET}) {verdict}; "
        f"peak memory {results['segio']['peak_mb']:.0f} MB vs "
        f"{results['slicerio']['peak_mb']:.0f} MB ({memory:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=5, help="rounds of paired whole reads")
    parser.add_argument("--shape", type=int, nargs=3, default=(200, 512, 512))
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--skip-writes", action="store_true", help="the paired reads only")
    args = parser.parse_args()
    compile_segio()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, tuple(args.shape), args.segments)
        labelmap_mb = (work / "labels.npy").stat().st_size / 2**20
        print(f"labelmap {args.shape} uint8 ({labelmap_mb:.0f} MB), {args.segments} segments")
        whole_reads(work, args.pairs)
        if args.skip_writes:
            return
        results = {
            job: repeat(lambda job=job: run_python(JOBS[job], work), args.repeat) for job in JOBS
        }
    print("\nThe operation alone (imports excluded), fresh processes:")
    print_table(results)
    print("\nsegio / slicerio (below 1 is better):")
    for verb in ("read", "write"):
        ours, theirs = results[f"segio {verb}"], results[f"slicerio {verb}"]
        print(ratio_line(verb, ours, theirs, size=verb == "write"))


if __name__ == "__main__":
    main()
