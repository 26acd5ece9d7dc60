"""VTK from numpy and back, and the worker pool: what the surface converters share.

VTK is imported inside the functions, so importing this module (and ``segio``) never
loads it. Arrays cross without a copy where VTK allows it.

VTK's Python wrappers hold the GIL for the whole of ``Update()`` (the wheels are not built
with ``VTK_PYTHON_FULL_THREADSAFE``: two threads contouring take as long as one doing
both), so threads do not share the cores between VTK jobs. :func:`run` forks worker
processes instead where that is safe (Linux, no other thread running, not inside a
daemonic worker): the children inherit the labelmap and VTK already loaded, and send back
only their results. Elsewhere, or with one worker, the jobs run in a thread pool (the
numpy parts of the jobs still overlap) or one after the other.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
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
    points made from the image are then in that grid's index space, the same floats as
    from the whole grid.
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


def workers(requested: int | None) -> int:
    """Parallel workers: ``requested``, or the usable CPUs (at most 4)."""
    return requested if requested is not None else min(4, cpus())


def run(jobs: Sequence[Callable[[], T]], threads: int | None) -> list[T]:
    """Run jobs, in a thread pool when more than one thread is allowed; results in order."""
    count = workers(threads)
    if count <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda job: job(), jobs))


# The jobs of the running process pool: forked children inherit them (closures over the
# labelmap are not pickled), and are asked for them by index.
_FORKED: Sequence[Callable[[], Any]] = ()


def _call_forked(index: int) -> Any:
    _sequential_vtk()
    return _FORKED[index]()


def _sequential_vtk() -> None:
    """In a forked child: VTK's SMP back end to Sequential. The child has none of the
    parent's threads, so a thread pool VTK started there (``STDThread``, TBB) would be
    waited on forever; the worker processes are the parallelism here."""
    core = sys.modules.get("vtkmodules.vtkCommonCore")
    if core is not None and core.vtkSMPTools.GetBackend() != "Sequential":
        core.vtkSMPTools.SetBackend("Sequential")


def can_fork() -> bool:
    """Whether :func:`completed` may fork workers: on Linux, when no other thread runs
    (a fork copies only the calling thread, so another thread's locks would stay held
    in the child) and this process is not a daemonic worker (which may not have
    children)."""
    import multiprocessing

    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def completed(jobs: Sequence[Callable[[], T]], threads: int | None) -> Iterator[tuple[int, T]]:
    """``(index, result)`` of every job, as the jobs end: in forked worker processes
    when more than one worker is allowed and :func:`can_fork`, else as :func:`run` runs
    them. Results cross back pickled, so jobs should return plain arrays.

    A pool that breaks (a worker killed, say for memory) is not an error of the data:
    the jobs it had not finished run again in this process, which raises what a job
    raises.
    """
    count = min(workers(threads), len(jobs))
    if count <= 1 or not can_fork():
        yield from enumerate(run(jobs, threads))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    global _FORKED
    done: set[int] = set()
    _FORKED = jobs
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("fork"))
    try:
        futures = {pool.submit(_call_forked, n): n for n in range(len(jobs))}
        for future in as_completed(futures):
            index = futures[future]
            result = future.result()
            done.add(index)
            yield index, result
    except BrokenProcessPool:
        pool.shutdown(wait=True, cancel_futures=True)
        for index in range(len(jobs)):
            if index not in done:
                yield index, jobs[index]()
    finally:
        # Also when the caller stops early or a job raised: the jobs not started are dropped.
        pool.shutdown(wait=True, cancel_futures=True)
        _FORKED = ()
