"""Labelmap -> closed surface in parallel threads, against the serial path and Slicer's own
pipeline (``vtkBinaryLabelmapToClosedSurfaceConversionRule`` reimplemented here on the
whole labelmap, one segment at a time, as ``benchmarks/surfaces.py`` runs it).

The labelmap is small, oblique, anisotropic and non-square, with segments cut by three
image faces, a hole and an island: everything the crop-and-shift of segio's path could get
wrong (frames, padding, offsets) shows as vertices away from Slicer's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from segio.analysis.distances import point_distances
from segio.converters import vtkbridge
from segio.converters.labelmap_to_surface import SurfaceSettings, to_closed_surface
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation

pytest.importorskip("vtk")

TOLERANCE = 1e-4  # mm, the largest vertex distance to Slicer's allowed


def _oblique_grid(shape: tuple[int, int, int]) -> Geometry:
    """Rotated about two axes, voxels 0.7 x 1.1 x 2.3 mm, origin away from zero."""
    a, b = np.radians(17.0), np.radians(-31.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    matrix = np.eye(4)
    matrix[:3, :3] = (rz @ rx) @ np.diag([0.7, 1.1, 2.3])
    matrix[:3, 3] = (-81.5, 37.25, 140.0)
    return Geometry(matrix, shape)


def _case() -> Segmentation:
    """Five segments on a (k, j, i) = (23, 37, 41) grid; three touch an image face."""
    shape = (23, 37, 41)
    k, j, i = np.indices(shape)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[((i - 12) / 9.0) ** 2 + ((j - 15) / 11.0) ** 2 + ((k - 11) / 7.0) ** 2 <= 1] = 1
    labels[((i - 12) / 4.0) ** 2 + ((j - 15) / 4.0) ** 2 + ((k - 11) / 3.0) ** 2 <= 1] = 0
    labels[(i >= 30) & (j < 8) & (k < 6)] = 2  # cut by the j = 0 and k = 0 faces
    labels[(i > 36) & (j > 20) & (j < 33) & (k > 4) & (k < 19)] = 3  # cut by i = 40
    labels[((i - 28) ** 2 + (j - 27) ** 2 < 20) & (k >= 15)] = 4  # cut by k = 22
    labels[(i > 3) & (i < 7) & (j > 30) & (k > 2) & (k < 7)] = 4  # an island of 4
    labels[(i == 20) & (j == 30) & (k == 3)] = 5  # one voxel
    segments = [Segment(id=f"s{n}", name=f"s{n}", label_value=n) for n in range(1, 6)]
    segments.append(Segment(id="empty", name="empty", label_value=6))
    return Segmentation(segments, [Layer(labels, _oblique_grid(shape))])


def _with(segmentation: Segmentation, **parameters: str) -> Segmentation:
    result = segmentation.copy()
    for name, value in parameters.items():
        result.conversion_parameters.set(name.replace("_", " "), value)
    return result


def _slicer(segmentation: Segmentation) -> dict[str, NDArray[np.float64]]:
    """Slicer's ``CreateClosedSurface`` for every segment, on the whole labelmap: pad by
    one voxel when any border voxel is set, discrete flying edges at the label in IJK,
    windowed sinc (Nuttall), the IJK -> LPS transform (VTK's, float32 points)."""
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkCommonTransforms import vtkTransform
    from vtkmodules.vtkFiltersCore import vtkWindowedSincPolyDataFilter
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D, vtkTransformFilter
    from vtkmodules.vtkImagingCore import vtkImageConstantPad

    settings = SurfaceSettings.from_parameters(segmentation.conversion_parameters)
    labels = segmentation.layers[0].array
    grid = segmentation.geometry
    assert grid is not None
    nk, nj, ni = labels.shape
    image = vtkImageData()
    image.SetDimensions(ni, nj, nk)
    image.GetPointData().SetScalars(vtkbridge.np_vtk().numpy_to_vtk(labels.ravel(), deep=False))
    border = (labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[..., 0], labels[..., -1])
    if any(face.any() for face in border):
        pad = vtkImageConstantPad()
        pad.SetInputData(image)
        pad.SetOutputWholeExtent(-1, ni, -1, nj, -1, nk)
        pad.Update()
        image = pad.GetOutput()
    matrix = vtkTransform()
    matrix.SetMatrix(grid.ijk_to_lps.ravel())
    result: dict[str, NDArray[np.float64]] = {}
    for segment in segmentation.segments.values():
        contour = vtkDiscreteFlyingEdges3D()
        contour.SetInputData(image)
        contour.SetValue(0, segment.label_value)
        contour.ComputeGradientsOff()
        contour.ComputeNormalsOff()
        contour.Update()
        poly = contour.GetOutput()
        if poly.GetNumberOfPolys() == 0:
            result[segment.id] = np.zeros((0, 3))
            continue
        if settings.smooths:
            smoother = vtkWindowedSincPolyDataFilter()
            smoother.SetInputData(poly)
            smoother.SetNumberOfIterations(settings.iterations)
            smoother.SetPassBand(settings.pass_band)
            smoother.BoundarySmoothingOff()
            smoother.FeatureEdgeSmoothingOff()
            smoother.NonManifoldSmoothingOn()
            smoother.NormalizeCoordinatesOn()
            smoother.SetWindowFunctionToNuttall()
            smoother.Update()
            poly = smoother.GetOutput()
        transform = vtkTransformFilter()
        transform.SetInputData(poly)
        transform.SetTransform(matrix)
        transform.Update()
        points = transform.GetOutput().GetPoints().GetData()
        result[segment.id] = vtkbridge.np_vtk().vtk_to_numpy(points).astype(np.float64)
    return result


def _deviation(ours: NDArray[np.float64], theirs: NDArray[np.float64]) -> float:
    """Largest distance from a vertex to the nearest of the other set, both ways."""
    assert ours.shape == theirs.shape
    if not len(ours):
        return 0.0
    return point_distances(ours, theirs).hausdorff


def _same(a: Segmentation, b: Segmentation) -> None:
    assert a.surfaces.keys() == b.surfaces.keys()
    for key, surface in a.surfaces.items():
        other = b.surfaces[key]
        np.testing.assert_array_equal(surface.vertices, other.vertices)
        np.testing.assert_array_equal(surface.faces, other.faces)
        if surface.normals is None:
            assert other.normals is None
        else:
            assert other.normals is not None
            np.testing.assert_array_equal(surface.normals, other.normals)


@pytest.mark.parametrize("smoothing", ["0.5", "0", "0.2", "1"])
def test_vertices_are_slicers(smoothing: str) -> None:
    """Every vertex within 1e-4 mm of Slicer's (in fact the same float32 IJK points: what
    is left is Slicer's float32 LPS rounding), in the same order."""
    case = _with(_case(), Smoothing_factor=smoothing)
    ours = to_closed_surface(case, threads=2)
    theirs = _slicer(case)
    assert ours.surfaces["empty"].is_empty and not len(theirs["empty"])
    for key, points in theirs.items():
        vertices = ours.surfaces[key].vertices
        assert len(vertices) == len(points), key
        assert _deviation(vertices, points) <= TOLERANCE, key
        # Not only the same set: the same order, as Slicer's contour of the whole image.
        assert np.abs(vertices - points).max(initial=0.0) <= TOLERANCE, key


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_threads_give_the_serial_result(threads: int) -> None:
    case = _case()
    serial = to_closed_surface(case, threads=1)
    _same(serial, to_closed_surface(case, threads=threads))


@pytest.mark.parametrize(
    "parameters",
    [
        {"Smoothing_factor": "0"},
        {"Conversion_method": "1"},
        {"Conversion_method": "1", "SurfaceNets_smoothing": "1"},
        {"Joint_smoothing": "1"},
        {"Decimation_factor": "0.3"},
    ],
)
def test_other_modes_are_the_same_in_threads(parameters: dict[str, str]) -> None:
    """Smoothing off, surface nets (own and windowed-sinc smoothing), joint smoothing and
    decimation: the same surfaces, closed, whichever number of threads."""
    case = _with(_case(), **parameters)
    serial = to_closed_surface(case, threads=1)
    _same(serial, to_closed_surface(case, threads=3))
    for key, surface in serial.surfaces.items():
        assert surface.is_closed, key
        assert key == "empty" or not surface.is_empty


def test_index_space_points_are_slicers_bit_for_bit() -> None:
    """Before the LPS transform, a segment's smoothed points are the very float32 values
    (and order) of Slicer's contour of the whole labelmap: the crop keeps its index frame."""
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkImagingCore import vtkImageConstantPad

    from segio.converters import labelmap_to_surface as converter

    case = _case()
    settings = SurfaceSettings()
    labels = case.layers[0].array
    nk, nj, ni = labels.shape
    image = vtkImageData()
    image.SetDimensions(ni, nj, nk)
    image.GetPointData().SetScalars(vtkbridge.np_vtk().numpy_to_vtk(labels.ravel(), deep=False))
    pad = vtkImageConstantPad()
    pad.SetInputData(image)
    pad.SetOutputWholeExtent(-1, ni, -1, nj, -1, nk)
    pad.Update()
    extents = case.extents()
    for segment in case.segments.values():
        extent = extents[segment.id]
        if extent is None:
            continue
        whole = converter._flying_edges(pad.GetOutput(), [segment.label_value])
        points, faces = vtkbridge.triangles(converter._smooth(whole, settings))
        ours, our_faces = converter._segment_mesh(labels, segment.label_value, extent, settings)
        np.testing.assert_array_equal(ours, points)
        np.testing.assert_array_equal(our_faces, faces)


def _largest_pause(call: Callable[[], object]) -> tuple[float, float]:
    """How long ``call`` takes in another thread, and the longest this thread went without
    running meanwhile: all of it when the call holds the GIL."""
    inside = threading.Event()
    done = threading.Event()
    span = [0.0]

    def run() -> None:
        start = time.perf_counter()
        inside.set()
        call()
        inside.clear()
        span[0] = time.perf_counter() - start
        done.set()

    worker = threading.Thread(target=run)
    last = time.perf_counter()
    pause = 0.0
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        if inside.is_set():
            pause = max(pause, now - last)
        last = now
    worker.join()
    return pause, span[0]


def test_vtk_releases_the_gil_while_it_smooths() -> None:
    """What the thread pool rests on: while VTK's filter runs in one thread, this thread
    keeps running. The control, a long ``bytes.count`` (which holds the GIL), shows that
    the measurement sees a held GIL."""
    from segio.converters import labelmap_to_surface as converter

    k, j, i = np.indices((100, 100, 100))
    ball = ((i - 50) ** 2 + (j - 50) ** 2 + (k - 50) ** 2 < 45**2).astype(np.uint8)
    poly = converter._flying_edges(vtkbridge.image(ball), [1])
    settings = SurfaceSettings(smoothing=1.0)  # 60 iterations
    held, held_span = _largest_pause(lambda: (b"a" * 200_000_000).count(b"b"))
    assert held > 0.5 * held_span
    pause, span = _largest_pause(lambda: converter._smooth(poly, settings))
    assert pause < 0.5 * span
