"""VTK from numpy and back, and a thread pool: what the surface converters share.

VTK is imported inside the functions, so importing this module (and ``segio``) never
loads it. Arrays cross without a copy where VTK allows it.

The pool is threads because VTK's filters release the GIL while they run (``Update()``),
as numpy does in its loops: a Python loop in another thread keeps its full speed while
a contour or a smoothing runs (``tests/test_surface_parallel.py`` checks it), so the
jobs share the cores without processes, pickling or copies of the labelmap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]
T = TypeVar("T")


def np_vtk() -> Any:
    """``vtkmodules.util.numpy_support`` (untyped, hence ``Any``)."""
    from vtkmodules.util import numpy_support

    return numpy_support


def image(array: NDArray[np.integer], origin: tuple[int, int, int] = (0, 0, 0)) -> vtkImageData:
    """A ``(k, j, i)`` C-ordered array as VTK image data (x = i fastest), without a copy.

    ``origin`` is the ``(k, j, i)`` index of the array's first voxel in a larger grid:
    points made from the image are then in that grid's index space, the very floats the
    whole grid would give.
    """
    from vtkmodules.vtkCommonDataModel import vtkImageData

    data = np.ascontiguousarray(array)
    image = vtkImageData()
    image.SetDimensions(data.shape[2], data.shape[1], data.shape[0])
    image.SetOrigin(float(origin[2]), float(origin[1]), float(origin[0]))
    scalars = np_vtk().numpy_to_vtk(data.ravel(), deep=False)
    image.GetPointData().SetScalars(scalars)
    return image


def triangles(poly: vtkPolyData) -> tuple[NDArray[np.floating], IndexArray]:
    """Points ``(N, 3)`` and triangles ``(M, 3)`` of polydata as numpy arrays."""
    from vtkmodules.vtkFiltersCore import vtkTriangleFilter

    polys = poly.GetPolys()
    if polys.GetNumberOfCells() == 0 or poly.GetPoints() is None:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    if polys.GetNumberOfConnectivityIds() != 3 * polys.GetNumberOfCells():
        splitter = vtkTriangleFilter()
        splitter.SetInputData(poly)
        splitter.Update()
        poly = splitter.GetOutput()
        polys = poly.GetPolys()
    points = np_vtk().vtk_to_numpy(poly.GetPoints().GetData())
    faces = np.asarray(np_vtk().vtk_to_numpy(polys.GetConnectivityArray()), dtype=np.int64)
    return points, faces.reshape(-1, 3)


def polydata(points: NDArray[np.floating], faces: IndexArray) -> vtkPolyData:
    """Triangles as VTK polydata (points and connectivity copied once)."""
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    support = np_vtk()
    vtk_points = vtkPoints()
    vtk_points.SetData(support.numpy_to_vtk(np.ascontiguousarray(points, np.float64), deep=True))
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    connectivity = np.ascontiguousarray(faces, dtype=np.int64).ravel()
    cells = vtkCellArray()
    cells.SetData(
        support.numpy_to_vtkIdTypeArray(offsets, deep=True),
        support.numpy_to_vtkIdTypeArray(connectivity, deep=True),
    )
    poly = vtkPolyData()
    poly.SetPoints(vtk_points)
    poly.SetPolys(cells)
    return poly


def ijk_offset(start: tuple[int, int, int]) -> FloatArray:
    """A ``(k, j, i)`` array start as the (i, j, k) shift of index-space points."""
    return np.array([start[2], start[1], start[0]], dtype=np.float64)


def cpus() -> int:
    """CPUs this process may use (``sched_getaffinity`` is Linux-only)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(jobs: Sequence[Callable[[], T]], threads: int | None) -> list[T]:
    """Run jobs, in a thread pool when more than one thread is allowed; results in order."""
    workers = threads if threads is not None else min(4, cpus())
    if workers <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))
