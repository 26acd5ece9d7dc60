"""Labelmap -> closed surface: segio against 3D Slicer's default per-segment VTK pipeline.

The labelmap is ``synthetic_segmentation`` (24 or 104 segments: holes, islands, segments cut
by the image border) on a 512 x 512 x 200 CT grid of 0.78 x 0.78 x 1.5 mm voxels. Every
job runs in a fresh process (``_harness``) and reports its wall time and peak memory.

Slicer's pipeline is reimplemented here as ``vtkBinaryLabelmapToClosedSurfaceConversionRule``
(``CreateClosedSurface``) runs it for one segment at a time on a shared labelmap: pad the
whole labelmap by one voxel when any voxel on its border is set, ``vtkDiscreteFlyingEdges3D``
at the segment's label over the whole image (Slicer contours the shared labelmap at the
label value; it does not threshold, which would only add time), ``vtkWindowedSincPolyDataFilter``
(pass band 10^(-4 s), 20 + 40 s iterations, Nuttall window), IJK -> patient transform,
``vtkPolyDataNormals`` (consistency on, no splitting).
segio runs ``to_closed_surface`` at the same smoothing factor, with its thread pool and
with one thread; Slicer's pipeline runs with VTK's sequential backend and with its
``STDThread`` backend (Slicer's own VTK uses TBB threads). VTK is imported before the
clock starts in every job. The results are compared per segment by the symmetric
Hausdorff distance between their vertex sets (``segio.analysis.distances``), outside
the timed part; the target is below one voxel (the smallest voxel side).

    python benchmarks/surfaces.py [--segments 24|104] [--smoothing 0.5] [--repeat 3]
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
from _harness import Result, print_table, ratio_line, repeat, run_python

from segio.analysis.distances import point_distances

SPACING = (0.78125, 0.78125, 1.5)

SEGIO = """
    from segio.converters.labelmap_to_surface import to_closed_surface
    # VTK is imported before the clock starts, in both pipelines.
    import vtkmodules.util.numpy_support, vtkmodules.vtkFiltersCore, vtkmodules.vtkFiltersGeneral
    seg = load_segmentation()
    seg.conversion_parameters.set("Smoothing factor", "{smoothing}")
    t = time.perf_counter()
    result = to_closed_surface(seg, threads={threads})
    done(time.perf_counter() - t)
    np.savez(work / "{out}.npz", **{{k: s.vertices for k, s in result.surfaces.items()}})
"""

# Slicer's vtkBinaryLabelmapToClosedSurfaceConversionRule::CreateClosedSurface, per segment.
SLICER = """
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkWindowedSincPolyDataFilter
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D, vtkTransformPolyDataFilter
    from vtkmodules.vtkImagingCore import vtkImageConstantPad
    from vtkmodules.vtkCommonCore import vtkSMPTools
    vtkSMPTools.SetBackend("{backend}")  # Slicer's own VTK is built with TBB threads
    meta = json.loads((work / "meta.json").read_text())
    labels = np.load(work / "labels.npy")
    s = {smoothing}
    t = time.perf_counter()
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
    done(time.perf_counter() - t)
    np.savez(work / "{out}.npz", **{{
        key: value if isinstance(value, np.ndarray)
        else vtk_to_numpy(value.GetPoints().GetData()).astype(np.float64)
        for key, value in results.items()
    }})
"""


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--smoothing", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.segments)
        print(
            f"labelmap 200 x 512 x 512, {args.segments} segments -> closed surfaces, "
            f"smoothing factor {args.smoothing}"
        )
        jobs = {
            "segio": SEGIO.format(smoothing=args.smoothing, threads=None, out="segio"),
            "segio 1 thread": SEGIO.format(smoothing=args.smoothing, threads=1, out="segio1"),
            "Slicer pipeline (VTK)": SLICER.format(
                smoothing=args.smoothing, backend="Sequential", out="slicer"
            ),
            "Slicer, VTK threads": SLICER.format(
                smoothing=args.smoothing, backend="STDThread", out="slicer-smp"
            ),
        }
        for name, code in jobs.items():
            results[name] = repeat(lambda code=code: run_python(code, work), args.repeat)
        ours = np.load(work / "segio.npz")
        single = np.load(work / "segio1.npz")
        theirs = np.load(work / "slicer.npz")
        distances = {key: point_distances(ours[key], theirs[key]).hausdorff for key in theirs.files}
        same = all(np.array_equal(ours[key], single[key]) for key in ours.files)
        vertices = sum(len(theirs[key]) for key in theirs.files)
    print_table(results)
    print(
        "load average during the run (1, 5, 15 min): "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    worst = max(distances, key=lambda key: distances[key])
    voxel = min(SPACING)
    print(f"\n{vertices:,} vertices in Slicer's surfaces; segio with 1 thread identical: {same}")
    print(
        f"symmetric Hausdorff segio vs Slicer, worst segment {worst}: "
        f"{distances[worst]:.2e} mm = {distances[worst] / voxel:.2e} voxel "
        f"(smallest side {voxel} mm; target < 1 voxel); "
        f"mean over segments {np.mean(list(distances.values())):.2e} mm"
    )
    print("\nsegio / Slicer pipeline (target: time <= 0.5):")
    slicer = results["Slicer pipeline (VTK)"]
    print(ratio_line("segio", results["segio"], slicer))
    print(ratio_line("segio, 1 thread", results["segio 1 thread"], slicer))
    print(
        ratio_line(
            "segio vs Slicer with VTK threads", results["segio"], results["Slicer, VTK threads"]
        )
    )


if __name__ == "__main__":
    main()
