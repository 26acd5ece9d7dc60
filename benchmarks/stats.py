"""``segio stats`` against SimpleITK's LabelShapeStatistics (and LabelIntensityStatistics).

The labelmap is ``synthetic_segmentation`` (104 segments: holes, islands, segments cut by
the image border) on a 512 x 512 x 200 CT grid of 0.78 x 0.78 x 1.5 mm voxels, written as
a NIfTI labelmap (``.nii.gz`` + label table) and as a ``.seg.nrrd``; the reference image is
a CT-like int16 NIfTI on the same grid. Every job is a fresh process:

* **command** jobs are what a user runs, timed whole under ``/usr/bin/time`` (interpreter
  start, imports, reading, computing, printing): ``segio stats FILE --json`` (with and
  without ``--no-surface``, and with ``--reference``) against a Python script that does
  the same with SimpleITK: ``ReadImage``, ``LabelShapeStatisticsImageFilter`` with its
  perimeter on (ITK's default) and the oriented bounding box on, every value of every
  label fetched (and ``LabelIntensityStatisticsImageFilter`` for the reference);
* **in-process** jobs time only reading and computing, libraries imported before the
  clock starts (``_harness.run_python``), to separate the work from the start-up.

The results are compared (outside the timed part): voxel counts, centroids, principal
moments, oriented box sizes and mean intensities per label, segio against SimpleITK.

    python benchmarks/stats.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, print_table, ratio_line, repeat, run_command, run_python

SPACING = (0.78125, 0.78125, 1.5)

# What a user would write with SimpleITK: every shape value of every label, as JSON.
SITK_SCRIPT = """
import json, sys
import SimpleITK as sitk
labels = sitk.ReadImage(sys.argv[1])
shape = sitk.LabelShapeStatisticsImageFilter()
shape.ComputePerimeterOn()
shape.ComputeOrientedBoundingBoxOn()
shape.Execute(labels)
intensity = None
if len(sys.argv) > 2:
    intensity = sitk.LabelIntensityStatisticsImageFilter()
    intensity.Execute(labels, sitk.ReadImage(sys.argv[2]))
rows = []
for label in shape.GetLabels():
    row = {
        "label": label, "voxel_count": shape.GetNumberOfPixels(label),
        "volume_mm3": shape.GetPhysicalSize(label), "perimeter_mm2": shape.GetPerimeter(label),
        "roundness": shape.GetRoundness(label), "centroid": shape.GetCentroid(label),
        "moments": shape.GetPrincipalMoments(label), "axes": shape.GetPrincipalAxes(label),
        "obb_origin": shape.GetOrientedBoundingBoxOrigin(label),
        "obb_size": shape.GetOrientedBoundingBoxSize(label),
        "obb_direction": shape.GetOrientedBoundingBoxDirection(label),
        "bounding_box": shape.GetBoundingBox(label),
    }
    if intensity is not None:
        row.update(mean=intensity.GetMean(label), sd=intensity.GetStandardDeviation(label),
                   min=intensity.GetMinimum(label), max=intensity.GetMaximum(label),
                   median=intensity.GetMedian(label))
    rows.append(row)
print(json.dumps(rows))
"""

SEGIO_JOB = """
    import segio, nibabel
    from segio.analysis.statistics import segment_statistics
    import segio.analysis.images, segio.analysis.intensity
    import vtkmodules.vtkFiltersCore, vtkmodules.vtkFiltersGeneral
    t = time.perf_counter()
    seg = segio.read(work / "{file}")
    rows = segment_statistics(seg, surface={surface}, reference_image={reference})
    done(time.perf_counter() - t)
"""

SITK_JOB = """
    import SimpleITK as sitk
    t = time.perf_counter()
    labels = sitk.ReadImage(str(work / "labels.nii.gz"))
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.ComputePerimeterOn()
    shape.ComputeOrientedBoundingBoxOn()
    shape.Execute(labels)
    values = [(shape.GetCentroid(n), shape.GetPerimeter(n), shape.GetOrientedBoundingBoxSize(n),
               shape.GetPrincipalAxes(n)) for n in shape.GetLabels()]
    if {reference}:
        intensity = sitk.LabelIntensityStatisticsImageFilter()
        intensity.Execute(labels, sitk.ReadImage(str(work / "ct.nii.gz")))
        values += [intensity.GetMean(n) for n in shape.GetLabels()]
    done(time.perf_counter() - t)
"""


def prepare(work: Path) -> None:
    """labels.nii.gz (+ label table), labels.seg.nrrd and ct.nii.gz in ``work``."""
    import nibabel

    import segio
    from segio.geometry import Geometry
    from segio.testing.synthetic import FULL_SHAPE, synthetic_segmentation

    grid = Geometry.from_spacing(FULL_SHAPE, SPACING, (-200.0, -180.0, -300.0))
    segmentation = synthetic_segmentation(n_segments=104, geometry=grid)
    assert len(segmentation.layers) == 1
    segio.write(segmentation, work / "labels.nii.gz")
    segio.write(segmentation, work / "labels.seg.nrrd")
    labels = segmentation.layers[0].array
    rng = np.random.default_rng(0)
    ct = rng.normal(-900.0, 40.0, labels.shape).astype(np.int16)
    ct += (labels.astype(np.int16) * 9).astype(np.int16)  # each organ its own mean
    nibabel.save(nibabel.Nifti1Image(ct.T, grid.ijk_to_ras), work / "ct.nii.gz")


def compare(segio_rows: list[dict[str, object]], sitk_rows: list[dict[str, object]]) -> str:
    """The largest differences between the two tools over all labels."""
    theirs = {int(row["label"]): row for row in sitk_rows}  # type: ignore[call-overload]
    centroid = moments = obb = mean = 0.0
    counts = True
    for row in segio_rows:
        other = theirs.get(int(row["label"]))  # type: ignore[call-overload]
        if other is None:
            counts = counts and row["voxel_count"] == 0
            continue
        counts = counts and row["voxel_count"] == other["voxel_count"]
        centroid = max(
            centroid, float(np.abs(np.subtract(row["centroid_lps"], other["centroid"])).max())
        )  # type: ignore[arg-type]
        moments = max(
            moments,
            float(np.abs(np.divide(row["principal_moments_mm2"], other["moments"]) - 1).max()),
        )  # type: ignore[arg-type]
        obb = max(obb, float(np.abs(np.divide(row["obb_size_mm"], other["obb_size"]) - 1).max()))  # type: ignore[arg-type]
        if "mean" in other and row.get("mean") is not None:
            mean = max(mean, abs(float(row["mean"]) / float(other["mean"]) - 1))  # type: ignore[arg-type]
    return (
        f"segio vs SimpleITK over {len(segio_rows)} segments: voxel counts equal: {counts}; "
        f"largest centroid difference {centroid:.2e} mm, principal moment {moments:.2e} "
        f"(relative), oriented box size {obb:.2e} (relative), mean intensity {mean:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    segio_command = [str(Path(sys.executable).with_name("segio")), "stats"]
    python = [sys.executable, "-c", SITK_SCRIPT]
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work)
        nii, nrrd, ct = (str(work / n) for n in ("labels.nii.gz", "labels.seg.nrrd", "ct.nii.gz"))
        commands = {
            "segio stats (command)": [*segio_command, nii, "--json"],
            "segio --no-surface": [*segio_command, nii, "--json", "--no-surface"],
            "segio --no-surface seg.nrrd": [*segio_command, nrrd, "--json", "--no-surface"],
            "SimpleITK shape (command)": [*python, nii],
            "segio -r ct --no-surface": [*segio_command, nii, "--json", "--no-surface", "-r", ct],
            "SimpleITK shape+intensity": [*python, nii, ct],
        }
        for name, argv in commands.items():
            results[name] = repeat(lambda argv=argv: run_command(argv), args.repeat)
        jobs = {
            "segio API": SEGIO_JOB.format(file="labels.nii.gz", surface=True, reference=None),
            "segio API, no surface": SEGIO_JOB.format(
                file="labels.nii.gz", surface=False, reference=None
            ),
            "SimpleITK API": SITK_JOB.format(reference=False),
            "segio API -r, no surface": SEGIO_JOB.format(
                file="labels.nii.gz", surface=False, reference='work / "ct.nii.gz"'
            ),
            "SimpleITK API + intensity": SITK_JOB.format(reference=True),
        }
        for name, code in jobs.items():
            results[name] = repeat(lambda code=code: run_python(code, work), args.repeat)
        import subprocess

        ours = json.loads(
            subprocess.run(
                commands["segio -r ct --no-surface"], capture_output=True, check=True
            ).stdout
        )["rows"]
        theirs = json.loads(
            subprocess.run([*python, nii, ct], capture_output=True, check=True).stdout
        )
    print("labelmap 200 x 512 x 512, 104 segments (NIfTI .nii.gz), reference CT int16")
    print_table(results)
    print(
        "load average during the run (1, 5, 15 min): "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print("\n" + compare(ours, theirs))
    print("\nsegio / SimpleITK (target: time <= 1):")
    sitk, both = results["SimpleITK shape (command)"], results["SimpleITK shape+intensity"]
    print(ratio_line("command, with surface", results["segio stats (command)"], sitk))
    print(ratio_line("command, --no-surface", results["segio --no-surface"], sitk))
    print(
        ratio_line("command, seg.nrrd --no-surface", results["segio --no-surface seg.nrrd"], sitk)
    )
    print(ratio_line("command, -r, --no-surface", results["segio -r ct --no-surface"], both))
    api = results["SimpleITK API"]
    print(ratio_line("in process, with surface", results["segio API"], api))
    print(ratio_line("in process, no surface", results["segio API, no surface"], api))
    print(
        ratio_line(
            "in process, -r, no surface",
            results["segio API -r, no surface"],
            results["SimpleITK API + intensity"],
        )
    )


if __name__ == "__main__":
    main()
