"""Labelmap -> closed surface: segio against 3D Slicer's default per-segment VTK pipeline.

The labelmap is ``synthetic_segmentation`` (24 or 104 segments: holes, islands, segments cut
by the image border) on a 512 x 512 x 200 CT grid of 0.78 x 0.78 x 1.5 mm voxels. Every job
is a whole process (``_harness.paired``): interpreter start-up, imports (VTK included, on
both sides), loading ``labels.npy`` and ``meta.json`` the same way, the conversion, and
saving the vertices for the comparison are all on the clock.

Slicer's pipeline is reimplemented here as ``vtkBinaryLabelmapToClosedSurfaceConversionRule``
(``CreateClosedSurface``) runs it for one segment at a time on a shared labelmap: pad the
whole labelmap by one voxel when any voxel on its border is set, ``vtkDiscreteFlyingEdges3D``
at the segment's label over the whole image (Slicer contours the shared labelmap at the
label value; it does not threshold, which would only add time), ``vtkWindowedSincPolyDataFilter``
(pass band 10^(-4 s), 20 + 40 s iterations, Nuttall window), IJK -> patient transform,
``vtkPolyDataNormals`` (consistency on, no splitting). It runs with VTK's sequential SMP
backend (the issue's reference) and with its ``STDThread`` backend (Slicer's own VTK uses
TBB threads), reported beside it.

The vertices are compared per segment after the runs: nearest neighbour both ways
(``segio.analysis.distances``, a k-d tree), the largest distance over all segments, against
1e-4 mm; the vertex counts must agree.

    python benchmarks/surfaces.py [--segments 24|104] [--smoothing 0.5] [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import paired, print_pairs, python_job

from segio.analysis.distances import point_distances

SPACING = (0.78125, 0.78125, 1.5)
TARGET = 0.1  # segio / Slicer's sequential pipeline
DEVIATION = 1e-4  # mm, largest vertex distance to Slicer's

# The data loading both sides share: the labelmap array and the segments' metadata.
LOAD = """
import json
import numpy as np
meta = json.loads((work / "meta.json").read_text())
labels = np.load(work / "labels.npy")
"""

SEGIO = (
    LOAD
    + """
import segio
from segio.converters.labelmap_to_surface import to_closed_surface
from segio.model import Layer, Segment, Segmentation
segments = [Segment(id=s["id"], name=s["name"], color=tuple(s["color"]), label_value=s["label"])
            for s in meta["segments"]]
seg = Segmentation(segments, [Layer(labels, segio.Geometry(meta["ijk_to_lps"], labels.shape))])
seg.conversion_parameters.set("Smoothing factor", "{smoothing}")
result = to_closed_surface(seg, threads={threads})
np.savez(work / "{out}.npz", **{{k: s.vertices for k, s in result.surfaces.items()}})
"""
)

# Slicer's vtkBinaryLabelmapToClosedSurfaceConversionRule::CreateClosedSurface, per segment.
SLICER = (
    LOAD
    + """
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonTransforms import vtkTransform
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkWindowedSincPolyDataFilter
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D, vtkTransformPolyDataFilter
from vtkmodules.vtkImagingCore import vtkImageConstantPad
from vtkmodules.vtkCommonCore import vtkSMPTools
vtkSMPTools.SetBackend("{backend}")
s = {smoothing}
k, j, i = labels.shape
image = vtkImageData()  # the surface is made in IJK space (origin 0, spacing 1)
image.SetDimensions(i, j, k)
image.GetPointData().SetScalars(numpy_to_vtk(labels.ravel(), deep=False))
matrix = vtkTransform()
matrix.SetMatrix(np.asarray(meta["ijk_to_lps"]).ravel())
results = {{}}
for segment in meta["segments"]:
    value = segment["label"]
    binary = image
    # IsLabelmapPaddingNecessary: a non-zero voxel (any label) on the extent's border.
    faces = (labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0],
             labels[:, :, -1])
    if any(face.any() for face in faces):
        pad = vtkImageConstantPad()
        pad.SetInputData(image)
        pad.SetOutputWholeExtent(-1, i, -1, j, -1, k)
        pad.SetConstant(0)
        pad.Update()
        binary = pad.GetOutput()  # extent -1..n: points keep their IJK coordinates
    contour = vtkDiscreteFlyingEdges3D()
    contour.SetInputData(binary)
    contour.SetValue(0, value)
    contour.ComputeGradientsOff()
    contour.ComputeNormalsOff()
    contour.Update()
    poly = contour.GetOutput()
    if poly.GetNumberOfPolys() == 0:
        results[segment["id"]] = np.zeros((0, 3))
        continue
    if s > 0:
        smoother = vtkWindowedSincPolyDataFilter()
        smoother.SetInputData(poly)
        smoother.SetNumberOfIterations(int(20 + s * 40))
        smoother.SetPassBand(10.0 ** (-4.0 * s))
        smoother.BoundarySmoothingOff()
        smoother.FeatureEdgeSmoothingOff()
        smoother.NonManifoldSmoothingOn()
        smoother.NormalizeCoordinatesOn()
        smoother.SetWindowFunctionToNuttall()
        smoother.Update()
        poly = smoother.GetOutput()
    transform = vtkTransformPolyDataFilter()
    transform.SetInputData(poly)
    transform.SetTransform(matrix)
    transform.Update()
    normals = vtkPolyDataNormals()
    normals.SetInputConnection(transform.GetOutputPort())
    normals.ConsistencyOn()
    normals.SplittingOff()
    normals.Update()
    results[segment["id"]] = normals.GetOutput()
np.savez(work / "{out}.npz", **{{
    key: value if isinstance(value, np.ndarray)
    else vtk_to_numpy(value.GetPoints().GetData()).astype(np.float64)
    for key, value in results.items()
}})
"""
)


def prepare(work: Path, n_segments: int) -> None:
    """labels.npy and meta.json (segments, label values, IJK -> LPS) for the jobs."""
    from segio.geometry import Geometry
    from segio.testing.synthetic import FULL_SHAPE, synthetic_segmentation

    grid = Geometry.from_spacing(FULL_SHAPE, SPACING, (-200.0, -180.0, -300.0))
    seg = synthetic_segmentation(n_segments=n_segments, geometry=grid)
    assert len(seg.layers) == 1
    np.save(work / "labels.npy", seg.layers[0].array)
    meta = {
        "ijk_to_lps": grid.ijk_to_lps.tolist(),
        "segments": [
            {"id": s.id, "name": s.name, "color": list(s.color), "label": s.label_value}
            for s in seg.segments.values()
        ],
    }
    (work / "meta.json").write_text(json.dumps(meta))


def deviation(ours: Path, theirs: Path) -> tuple[float, str, bool, int]:
    """Largest nearest-vertex distance (both ways, mm) over all segments, its segment, whether
    every segment has as many vertices on both sides, and Slicer's vertex total."""
    a, b = np.load(ours), np.load(theirs)
    worst, where, counts, total = 0.0, "-", True, 0
    for key in b.files:
        total += len(b[key])
        counts = counts and len(a[key]) == len(b[key])
        if not len(a[key]) or not len(b[key]):
            if len(a[key]) != len(b[key]):
                return float("inf"), key, False, total
            continue
        distance = point_distances(a[key], b[key]).hausdorff
        if distance >= worst:
            worst, where = distance, key
    return worst, where, counts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--smoothing", type=float, default=0.5)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--one-thread", action="store_true", help="also run segio with one thread")
    args = parser.parse_args()
    s = args.smoothing
    jobs: dict[str, Sequence[str]] = {
        "segio": python_job(SEGIO.format(smoothing=s, threads=None, out="segio")),
        "Slicer pipeline": python_job(
            SLICER.format(smoothing=s, backend="Sequential", out="slicer")
        ),
        "Slicer, VTK threads": python_job(
            SLICER.format(smoothing=s, backend="STDThread", out="slicer-smp")
        ),
    }
    if args.one_thread:
        jobs["segio 1 thread"] = python_job(SEGIO.format(smoothing=s, threads=1, out="segio1"))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.segments)
        results, ratios = paired(jobs, work, pairs=args.pairs)
        worst, where, counts, total = deviation(work / "segio.npz", work / "slicer.npz")
        same = None
        if args.one_thread:
            a, b = np.load(work / "segio.npz"), np.load(work / "segio1.npz")
            same = all(np.array_equal(a[key], b[key]) for key in a.files)
    peers = {name: r for name, r in ratios.items() if name.startswith("Slicer")}
    print_pairs(
        f"labelmap 200 x 512 x 512, {args.segments} segments -> closed surfaces, smoothing "
        f"factor {s}; whole processes, median of {args.pairs} pairs",
        results,
        peers,
    )
    if args.one_thread:
        print(f"  segio / segio with 1 thread          time {ratios['segio 1 thread']:.2f}")
    print(
        "load average during the run (1, 5, 15 min): "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    ratio = ratios["Slicer pipeline"]
    print(
        f"\nsegio / Slicer pipeline (sequential VTK): {ratio:.3f}  target <= {TARGET}: "
        f"{'met' if ratio <= TARGET else 'MISSED'}"
    )
    print(
        f"{total:,} vertices in Slicer's surfaces; same vertex count per segment: {counts}; "
        f"largest vertex distance segio vs Slicer {worst:.2e} mm (segment {where}), "
        f"target <= {DEVIATION:g} mm: {'met' if counts and worst <= DEVIATION else 'MISSED'}"
    )
    if same is not None:
        print(f"segio with 1 thread identical to segio with its thread pool: {same}")


if __name__ == "__main__":
    main()
