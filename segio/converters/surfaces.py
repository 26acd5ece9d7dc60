"""Binary labelmap <-> closed surface, after 3D Slicer's conversion rules.

Labelmap -> surface reproduces ``vtkBinaryLabelmapToClosedSurfaceConversionRule``:
discrete flying edges (or surface nets) in index space, optional ``vtkDecimatePro``,
``vtkWindowedSincPolyDataFilter`` with Slicer's pass band and iteration count, then the
grid's full IJK -> LPS matrix (oblique grids included) and vertex normals. It differs from
Slicer in *how much* it contours, not in what: Slicer contours the whole (shared)
labelmap once per segment, at the segment's label, segio each segment inside its
bounding box padded by one voxel. Discrete flying-edges vertices sit at the midpoints of
edges whose two voxels differ, so the crop yields the same triangles (the padding also
closes segments cut by the image border, as Slicer's padding does), and smoothing, which
only sees the mesh, gives the same result. Segments are processed in a thread pool: VTK
releases the GIL in ``Update()``.

Surface -> labelmap follows ``vtkClosedSurfaceToBinaryLabelmapConversionRule``: the
surface is mapped into the grid's index space and ``vtkPolyDataToImageStencil`` marks the
voxels whose *centre* is inside. VTK is imported inside the functions that use it, so
``import segio`` never loads it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from segio.errors import GeometryError, LimitError, ValidationError
from segio.geometry import Geometry
from segio.limits import check_allocation, check_grid
from segio.model import Extent, FirstFitPacker, Layer, Segment, Segmentation
from segio.representations import PARAMETERS, ConversionParameters, Representation
from segio.surfaces import Surface, compacted, face_normals, vertex_normals

if TYPE_CHECKING:
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData

# Slicer's parameter names (``vtkBinaryLabelmapToClosedSurfaceConversionRule`` and
# ``vtkClosedSurfaceToBinaryLabelmapConversionRule``).
SMOOTHING = "Smoothing factor"
DECIMATION = "Decimation factor"
NORMALS = "Compute surface normals"
METHOD = "Conversion method"
NETS_SMOOTHING = "SurfaceNets smoothing"
JOINT = "Joint smoothing"
OVERSAMPLING = "Oversampling factor"
CROP = "Crop to reference image geometry"
COLLAPSE = "Collapse labelmaps"
FRACTIONAL_OVERSAMPLING = "Fractional labelmap oversampling factor"
#: segio's own parameter: voxel size (mm) of the grid made when no reference grid is known.
SPACING = "Surface rasterization spacing"

FLYING_EDGES, SURFACE_NETS = 0, 1
#: Sub-samples per axis of a fractional voxel: Slicer's ``NumberOfOffsets`` (6³ = 216 levels).
FRACTION_SAMPLES = 6
#: Largest oversampling factor accepted (Slicer refuses above 100; memory grows as f³).
MAX_OVERSAMPLING = 16

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.int64]
T = TypeVar("T")


# -- settings ---------------------------------------------------------------------------------


def _default(name: str) -> float:
    return float(PARAMETERS[name].default)


@dataclasses.dataclass(frozen=True)
class SurfaceSettings:
    """The labelmap -> surface parameters, read once (defaults from :data:`PARAMETERS`).

    The values were checked when they were set or read from a file
    (:class:`~segio.representations.ConversionParameters`): smoothing in -1..1, so the
    iteration count and pass band stay small. A negative smoothing factor is Slicer's
    "smoothing switched off, remember the value" (the 3D button toggles the sign), so only
    a positive factor smooths.
    """

    smoothing: float = _default(SMOOTHING)
    decimation: float = _default(DECIMATION)
    normals: bool = _default(NORMALS) > 0
    method: int = int(_default(METHOD))
    nets_smoothing: bool = _default(NETS_SMOOTHING) > 0
    joint: bool = _default(JOINT) > 0

    @classmethod
    def from_parameters(cls, parameters: ConversionParameters) -> SurfaceSettings:
        return cls(
            smoothing=parameters.number(SMOOTHING),
            decimation=parameters.number(DECIMATION),
            normals=parameters.flag(NORMALS),
            method=int(parameters.number(METHOD)),
            nets_smoothing=parameters.flag(NETS_SMOOTHING),
            joint=parameters.flag(JOINT),
        )

    @property
    def smooths(self) -> bool:
        """Windowed-sinc smoothing runs (not with surface nets' own smoothing)."""
        return self.smoothing > 0 and not (self.method == SURFACE_NETS and self.nets_smoothing)

    @property
    def pass_band(self) -> float:
        """Slicer: ``10^(-4 s)``, 1 (no smoothing) to 0.0001 (strong)."""
        return float(10.0 ** (-4.0 * self.smoothing))

    @property
    def iterations(self) -> int:
        """Slicer since 2024-03 (``ddc0379b36``): ``20 + 40 s`` (truncated), 40 at 0.5."""
        return int(20 + self.smoothing * 40)

    @property
    def nets_iterations(self) -> int:
        """Surface nets' own smoothing: ``floor(15 s² + 9 s)`` (0 -> 0, 0.5 -> 8, 1 -> 24)."""
        s = max(self.smoothing, 0.0)
        return math.floor(15 * s * s + 9 * s)


# -- VTK plumbing -------------------------------------------------------------------------------


def _np_vtk() -> Any:
    """``vtkmodules.util.numpy_support`` (untyped, hence ``Any``)."""
    from vtkmodules.util import numpy_support

    return numpy_support


def _image(array: NDArray[np.integer]) -> vtkImageData:
    """A ``(k, j, i)`` C-ordered array as VTK image data (x = i fastest), without a copy."""
    from vtkmodules.vtkCommonDataModel import vtkImageData

    data = np.ascontiguousarray(array)
    image = vtkImageData()
    image.SetDimensions(data.shape[2], data.shape[1], data.shape[0])
    scalars = _np_vtk().numpy_to_vtk(data.ravel(), deep=False)
    image.GetPointData().SetScalars(scalars)
    return image


def _triangles(poly: vtkPolyData) -> tuple[NDArray[np.floating], IndexArray]:
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
    points = _np_vtk().vtk_to_numpy(poly.GetPoints().GetData())
    faces = np.asarray(_np_vtk().vtk_to_numpy(polys.GetConnectivityArray()), dtype=np.int64)
    return points, faces.reshape(-1, 3)


def _polydata(points: NDArray[np.floating], faces: IndexArray) -> vtkPolyData:
    """Triangles as VTK polydata (points and connectivity copied once)."""
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    support = _np_vtk()
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


def _decimate(poly: vtkPolyData, settings: SurfaceSettings) -> vtkPolyData:
    """Slicer's ``vtkDecimatePro`` settings; it runs before smoothing, as in Slicer."""
    if settings.decimation <= 0 or poly.GetNumberOfPolys() == 0:
        return poly
    from vtkmodules.vtkFiltersCore import vtkDecimatePro

    decimator = vtkDecimatePro()
    decimator.SetInputData(poly)
    decimator.SetFeatureAngle(60)
    decimator.SplittingOff()
    decimator.PreserveTopologyOn()
    decimator.SetMaximumError(1)
    decimator.SetTargetReduction(settings.decimation)
    decimator.Update()
    output: vtkPolyData = decimator.GetOutput()
    return output


def _smooth(poly: vtkPolyData, settings: SurfaceSettings) -> vtkPolyData:
    """Slicer's windowed-sinc smoothing (Nuttall window, as Slicer's VTK since 2024-03)."""
    if not settings.smooths or poly.GetNumberOfPolys() == 0:
        return poly
    from vtkmodules.vtkFiltersCore import vtkWindowedSincPolyDataFilter

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
    output: vtkPolyData = smoother.GetOutput()
    return output


def _flying_edges(image: vtkImageData, labels: Sequence[int]) -> vtkPolyData:
    from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

    contour = vtkDiscreteFlyingEdges3D()
    contour.SetInputData(image)
    for n, label in enumerate(labels):
        contour.SetValue(n, label)
    # Slicer: no gradients, and no normals ("incorrect normals in meshes from shared
    # labelmaps"); normals are computed at the end, on the final mesh.
    contour.ComputeGradientsOff()
    contour.ComputeNormalsOff()
    contour.SetComputeScalars(len(labels) > 1)
    contour.Update()
    output: vtkPolyData = contour.GetOutput()
    return output


# -- geometry helpers -----------------------------------------------------------------------------


def _merged(
    points: NDArray[np.floating], faces: IndexArray, moved: NDArray[np.floating] | None = None
) -> tuple[NDArray[np.floating], IndexArray]:
    """One point per position. Where two voxels of a segment touch only along an edge,
    surface nets gives the segment two coincident points; merged, the mesh is closed
    (four faces on that edge) and smoothing keeps the two sheets joined. ``moved`` are the
    same points after the filter's own smoothing: points coincident before it are merged
    at their mean smoothed position."""
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    if moved is None:
        return (points, faces) if len(unique) == len(points) else (unique, inverse[faces])
    if len(unique) == len(points):
        return moved, faces
    counts = np.bincount(inverse, minlength=len(unique)).astype(np.float64)[:, None]
    mean = np.stack(
        [np.bincount(inverse, moved[:, axis], minlength=len(unique)) for axis in range(3)],
        axis=1,
    )
    return mean / counts, inverse[faces]


def _to_surface(
    points_ijk: NDArray[np.floating],
    faces: IndexArray,
    grid: Geometry,
    normals: bool,
    shift: FloatArray | None = None,
) -> Surface:
    """Index-space triangles (shifted by ``shift``, i, j, k) -> LPS Surface, wound
    counter-clockwise seen from outside.

    The contouring filters wind all triangles of a mesh the same way, but which way
    depends on the filter and on the sign of the grid's determinant (an LPS-flipped or
    mirrored grid turns it over), so the sign of the enclosed volume decides.
    """
    if not len(faces):
        return Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    matrix = grid.ijk_to_lps
    offset = matrix[:3, 3] + (matrix[:3, :3] @ shift if shift is not None else 0.0)
    vertices = points_ijk @ matrix[:3, :3].T + offset  # float32 points -> float64
    weights = face_normals(vertices, faces)
    # Divergence theorem: sum of a . ((b - a) x (c - a)) = 6 x the signed volume.
    if float(np.einsum("ij,ij->", vertices[faces[:, 0]], weights)) < 0:
        faces = np.ascontiguousarray(faces[:, ::-1])
        weights = np.negative(weights, out=weights)
    unit = vertex_normals(vertices, faces, weights) if normals else None
    return Surface(vertices, faces, unit)


def _padded_box(extent: Extent) -> tuple[tuple[slice, slice, slice], tuple[int, int, int]]:
    """The array box of an inclusive extent, and the index of its first voxel in the padded
    copy's frame: the padded array starts one voxel before the box on every axis."""
    box = (
        slice(extent[0][0], extent[0][1] + 1),
        slice(extent[1][0], extent[1][1] + 1),
        slice(extent[2][0], extent[2][1] + 1),
    )
    return box, (extent[0][0] - 1, extent[1][0] - 1, extent[2][0] - 1)


def _union(extents: Sequence[Extent]) -> Extent:
    return (
        (min(e[0][0] for e in extents), max(e[0][1] for e in extents)),
        (min(e[1][0] for e in extents), max(e[1][1] for e in extents)),
        (min(e[2][0] for e in extents), max(e[2][1] for e in extents)),
    )


def _ijk_offset(start: tuple[int, int, int]) -> FloatArray:
    """A ``(k, j, i)`` array start as the (i, j, k) shift of index-space points."""
    return np.array([start[2], start[1], start[0]], dtype=np.float64)


def _cpus() -> int:
    """CPUs this process may use (``sched_getaffinity`` is Linux-only)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _run(jobs: Sequence[Callable[[], T]], threads: int | None) -> list[T]:
    """Run jobs, in a thread pool when more than one thread is allowed; results in order."""
    workers = threads if threads is not None else min(4, _cpus())
    if workers <= 1 or len(jobs) <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: job(), jobs))


# -- labelmap -> closed surface ----------------------------------------------------------------


def _segment_surface(
    labels: NDArray[np.integer],
    segment: Segment,
    extent: Extent,
    grid: Geometry,
    settings: SurfaceSettings,
) -> dict[str, Surface]:
    """One segment by flying edges inside its padded bounding box."""
    box, start = _padded_box(extent)
    region = labels[box]
    padded = np.zeros(tuple(n + 2 for n in region.shape), dtype=np.uint8)
    np.equal(region, segment.label_value, out=padded[1:-1, 1:-1, 1:-1].view(np.bool_))
    poly = _flying_edges(_image(padded), [1])
    poly = _smooth(_decimate(poly, settings), settings)
    points, faces = _triangles(poly)
    return {segment.id: _to_surface(points, faces, grid, settings.normals, _ijk_offset(start))}


def _layer_region(
    labels: NDArray[np.integer], extents: Sequence[Extent], values: Sequence[int]
) -> tuple[NDArray[np.integer], tuple[int, int, int]]:
    """The labels of a layer inside the padded union of its segments' boxes.

    Values that are no segment's become 0, so they close surfaces like background.
    """
    box, start = _padded_box(_union(extents))
    region = labels[box]
    padded = np.zeros(tuple(n + 2 for n in region.shape), dtype=region.dtype)
    inner = padded[1:-1, 1:-1, 1:-1]
    inner[...] = region
    stray = (region != 0) & np.isin(region, values, invert=True)
    if stray.any():
        inner[stray] = 0
    return padded, start


def _joint_flying_edges(
    labels: NDArray[np.integer],
    members: Sequence[tuple[Segment, Extent]],
    grid: Geometry,
    settings: SurfaceSettings,
) -> dict[str, Surface]:
    """Slicer's joint smoothing: every label of a layer in one mesh, smoothed together,
    then split by the label each point carries (VTK gives each label its own points)."""

    values = [segment.label_value for segment, _ in members]
    padded, start = _layer_region(labels, [e for _, e in members], values)
    poly = _smooth(_decimate(_flying_edges(_image(padded), values), settings), settings)
    points, faces = _triangles(poly)
    result: dict[str, Surface] = {}
    if not len(faces):
        return {s.id: _to_surface(points, faces, grid, False) for s, _ in members}
    point_labels = _np_vtk().vtk_to_numpy(poly.GetPointData().GetScalars()).astype(np.int64)
    face_labels = point_labels[faces[:, 0]]
    shift = _ijk_offset(start)
    for segment, _ in members:
        own = faces[face_labels == segment.label_value]
        pts, tri = compacted(points, own) if len(own) else (points[:0], own)
        result[segment.id] = _to_surface(pts, tri, grid, settings.normals, shift)
    return result


def _surface_nets(
    labels: NDArray[np.integer],
    members: Sequence[tuple[Segment, Extent]],
    grid: Geometry,
    settings: SurfaceSettings,
) -> dict[str, Surface]:
    """Every segment of a layer from one ``vtkSurfaceNets3D`` pass.

    Surface nets writes each boundary face once with the two labels it separates
    (``BoundaryLabels``), so neighbouring segments share their boundary exactly; a
    segment's surface is its faces, those where it is the second label turned over.
    Smoothing is the filter's own (``SurfaceNets smoothing`` = 1), joint windowed sinc on
    the shared mesh (``Joint smoothing`` = 1), or windowed sinc per segment as Slicer does.
    Decimation runs per segment (before per-segment smoothing, after joint smoothing).
    """
    from vtkmodules.vtkFiltersCore import vtkSurfaceNets3D

    values = [segment.label_value for segment, _ in members]
    padded, start = _layer_region(labels, [e for _, e in members], values)
    nets = vtkSurfaceNets3D()
    nets.SetInputData(_image(padded))
    for n, value in enumerate(values):
        nets.SetValue(n, value)
    nets.SetBackgroundLabel(0)
    nets.SetOutputMeshTypeToTriangles()
    nets.SmoothingOff()
    nets.DataCachingOn()
    nets.Update()
    poly = nets.GetOutput()
    points, faces = _triangles(poly)
    if not len(faces):
        return {s.id: _to_surface(points, faces, grid, False) for s, _ in members}
    boundary = _np_vtk().vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels"))
    boundary = np.asarray(boundary, dtype=np.int64)
    if settings.nets_smoothing and settings.smoothing > 0:
        # The filter's own smoothing moves the two coincident points of a voxel edge
        # apart, which would open a crack there: the points to merge are found before
        # it runs (the cached extraction is smoothed, not redone) and merged after.
        nets.SmoothingOn()
        nets.SetNumberOfIterations(settings.nets_iterations)
        nets.Update()
        smoothed, _ = _triangles(nets.GetOutput())
        points, faces = _merged(points, faces, smoothed)
    else:
        points, faces = _merged(points, faces)
    joint = settings.joint and settings.smooths
    if joint:  # windowed sinc moves points only: faces and their labels stay in order
        points, faces = _triangles(_smooth(_polydata(points, faces), settings))
    shift = _ijk_offset(start)
    result: dict[str, Surface] = {}
    for segment, _ in members:
        value = segment.label_value
        own = np.concatenate(
            [faces[boundary[:, 0] == value], faces[boundary[:, 1] == value][:, ::-1]]
        )
        if not len(own):
            result[segment.id] = _to_surface(points[:0], own, grid, False)
            continue
        pts, tri = compacted(points, own)
        if settings.decimation > 0 or (settings.smooths and not joint):
            segment_poly = _decimate(_polydata(pts, tri), settings)
            pts, tri = _triangles(segment_poly if joint else _smooth(segment_poly, settings))
        result[segment.id] = _to_surface(pts, tri, grid, settings.normals, shift)
    return result


def to_closed_surface(segmentation: Segmentation, *, threads: int | None = None) -> Segmentation:
    """Every segment as a closed triangle mesh in LPS mm (Slicer's labelmap -> surface rule).

    Parameters are the segmentation's conversion parameters (Slicer's names and defaults,
    see :class:`SurfaceSettings`). The result keeps the segments, has no layers, and has
    the labelmap grid as its reference geometry, so converting back lands on the same
    voxels. Empty segments get empty surfaces. ``threads`` caps the worker threads (default:
    the usable CPUs, at most 4).
    """
    if segmentation.source_representation is Representation.FRACTIONAL_LABELMAP:
        from segio.converters.fractional import to_binary

        segmentation = to_binary(segmentation)
    if segmentation.source_representation is not Representation.BINARY_LABELMAP:
        raise ValidationError(
            "to_closed_surface needs a labelmap segmentation, got "
            f"{segmentation.source_representation.value!r}"
        )
    settings = SurfaceSettings.from_parameters(segmentation.conversion_parameters)
    empty = Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    surfaces: dict[str, Surface] = {s.id: empty for s in segmentation.segments.values()}
    grid = segmentation.geometry
    jobs: list[Callable[[], dict[str, Surface]]] = []
    sizes: list[int] = []
    if grid is not None:
        extents = segmentation.extents()
        for index, layer in enumerate(segmentation.layers):
            members = [
                (s, extent)
                for s in segmentation.segments_in_layer(index)
                if (extent := extents.get(s.id)) is not None
            ]
            if not members:
                continue
            labels = layer.array
            if settings.method == SURFACE_NETS or (settings.joint and settings.smooths):
                build = _surface_nets if settings.method == SURFACE_NETS else _joint_flying_edges
                jobs.append(partial(build, labels, members, grid, settings))
                sizes.append(_volume(_union([e for _, e in members])))
                continue
            for segment, extent in members:
                jobs.append(partial(_segment_surface, labels, segment, extent, grid, settings))
                sizes.append(_volume(extent))
    # Largest first, so that a big segment does not start last and run alone.
    order = sorted(range(len(jobs)), key=lambda n: -sizes[n])
    for built in _run([jobs[n] for n in order], threads):
        surfaces.update(built)
    return Segmentation(
        [dataclasses.replace(s, layer=0, label_value=1) for s in segmentation.segments.values()],
        source_representation=Representation.CLOSED_SURFACE,
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=grid if grid is not None else segmentation.reference_geometry,
        contained_representations=_contained(segmentation),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
        surfaces=surfaces,
    )


def _volume(extent: Extent) -> int:
    return math.prod(hi - lo + 1 for lo, hi in extent)


# -- closed surface -> labelmap ----------------------------------------------------------------


def _factor(parameters: ConversionParameters, name: str) -> int:
    """A whole oversampling factor; Slicer's fractional and automatic ("A") ones are refused
    because segio keeps one grid per segmentation and downsamples back to it."""
    text = parameters.value(name) or PARAMETERS[name].default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value.is_integer() and 1 <= value <= MAX_OVERSAMPLING):
        raise ValidationError(
            f"conversion parameter {name!r} is {text!r}, but segio oversamples by a whole "
            f"factor from 1 to {MAX_OVERSAMPLING}",
            hint=f"set {name!r} to 1 (voxel centres) or 2, 3, 4 (sub-voxel majority)",
        )
    return int(value)


def automatic_grid(
    surfaces: Sequence[Surface], spacing: float, *, source: str | None = None, layers: int = 1
) -> Geometry:
    """An axis-aligned grid of ``spacing`` mm voxels tiling the surfaces' bounding box.

    Used when neither a grid nor a reference geometry is known (a mesh read from a file).
    Slicer's default grid puts voxel *centres* on the box and picks about 250³ voxels;
    segio takes the spacing from :data:`SPACING` (default 1 mm). The grid's size follows
    from coordinates, so one vertex 1e5 mm away would ask for terabytes: it is checked
    (``layers`` one-byte labelmaps of it, :func:`segio.limits.check_grid`) before anything
    is allocated, and ``source`` (the mesh file) is named in the refusal.
    """
    if not spacing > 0 or not math.isfinite(spacing):
        raise ValidationError(f"conversion parameter {SPACING!r} must be > 0, got {spacing}")
    filled = [s.vertices for s in surfaces if not s.is_empty]
    if not filled:
        raise GeometryError(
            "every surface is empty, so there is no extent to rasterise",
            hint="give a reference geometry (--reference) to get an empty labelmap",
        )
    low = np.min([v.min(axis=0) for v in filled], axis=0)
    high = np.max([v.max(axis=0) for v in filled], axis=0)
    # Voxels tile the bounding box (corners on it), so no voxel centre lies on a face of
    # a mesh made from another grid's voxels, whose vertices sit on half-voxel planes.
    with np.errstate(over="ignore", invalid="ignore"):
        size = np.maximum(np.ceil((high - low) / spacing - 1e-9), 1.0)
    _check_grid(size[::-1], layers, "the labelmap grid around the surfaces", source)
    shape = (int(size[2]), int(size[1]), int(size[0]))
    return Geometry.from_spacing(shape, (spacing, spacing, spacing), low + spacing / 2)


def _check_grid(
    shape_kji: Sequence[float] | NDArray[np.float64], layers: int, what: str, source: str | None
) -> None:
    """:func:`segio.limits.check_grid` for ``layers`` one-byte labelmaps, with a hint."""
    # Capped: beyond 1e18 voxels an axis is refused anyway, and the product stays printable.
    dims = [min(float(n), 1e18) for n in shape_kji]
    try:
        check_grid(dims, max(layers, 1), what, path=source)
    except LimitError as exc:
        hint = (
            f"a vertex may be far from the others (or the voxels too small): check the mesh, "
            f"give a reference grid, or raise {SPACING!r}; {exc.hint}"
        )
        raise LimitError(exc.reason, path=source, hint=hint) from None


def _covering(
    grid: Geometry, surfaces: Sequence[Surface], source: str | None = None, layers: int = 1
) -> Geometry:
    """``grid`` grown (same axes, spacing and voxel positions) until it holds every voxel
    centre that is inside a surface; ``grid`` itself when it already does. The grown grid
    is checked against the memory limit before it is made (a far vertex grows it far)."""
    filled = [s.vertices for s in surfaces if not s.is_empty]
    if not filled:
        return grid
    with np.errstate(over="ignore", invalid="ignore"):
        ijk = grid.points_to_ijk(np.concatenate(filled))
        size = np.array(grid.size_ijk, dtype=np.float64)
        low = np.minimum(np.ceil(ijk.min(axis=0) - 1e-6), 0.0)
        high = np.maximum(np.floor(ijk.max(axis=0) + 1e-6), size - 1)
    if np.all(low == 0) and np.all(high == size - 1):
        return grid
    extent = high - low + 1
    _check_grid(extent[::-1], layers, "the labelmap grid grown to hold the surfaces", source)
    start, shape = low.astype(np.int64), extent.astype(np.int64)
    return grid.cropped(
        (int(start[2]), int(start[1]), int(start[0])),
        (int(shape[2]), int(shape[1]), int(shape[0])),
    )


def refined(grid: Geometry, factor: int) -> Geometry:
    """``grid`` with every voxel split into ``factor``³, voxel corners kept in place
    (Slicer's ``ApplyOversamplingOnImageGeometry`` for a whole factor)."""
    if factor == 1:
        return grid
    matrix = grid.ijk_to_lps.copy()
    axes = matrix[:3, :3].copy()
    matrix[:3, :3] = axes / factor
    matrix[:3, 3] = matrix[:3, 3] + axes @ np.full(3, -0.5 + 0.5 / factor)
    return Geometry(matrix, tuple(n * factor for n in grid.shape))


def _box(grid: Geometry, surface: Surface) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(start, shape)`` (k, j, i) of the voxels of ``grid`` that a surface may touch,
    half a voxel wider than its bounds (a sub-voxel may be inside when the centre is not);
    an empty shape when it misses the grid."""
    with np.errstate(over="ignore", invalid="ignore"):  # far vertices: clipped as floats
        ijk = grid.points_to_ijk(surface.vertices)
    size = np.array(grid.size_ijk, dtype=np.float64)
    low = np.clip(np.floor(ijk.min(axis=0) - 0.5), 0, size).astype(np.int64)
    high = np.clip(np.ceil(ijk.max(axis=0) + 0.5) + 1, 0, size).astype(np.int64)
    shape = np.maximum(high - low, 0)
    return (int(low[2]), int(low[1]), int(low[0])), (
        int(shape[2]),
        int(shape[1]),
        int(shape[0]),
    )


#: Slices per ``vtkPolyDataToImageStencil`` call (see :func:`rasterize`).
STENCIL_SLAB = 8


def rasterize(
    surface: Surface,
    grid: Geometry,
    start: tuple[int, int, int] = (0, 0, 0),
    shape: tuple[int, int, int] | None = None,
) -> NDArray[np.bool_]:
    """Voxels of ``grid`` (in the box ``start``, ``shape``; k, j, i) whose centre is inside.

    ``vtkPolyDataToImageStencil`` cuts the mesh at every slice and fills the polygons by
    scan lines, as Slicer does; orientation does not matter, closedness does. It tests
    every triangle at every slice, so the box is cut into slabs of :data:`STENCIL_SLAB`
    slices, each given only the triangles that reach it: linear instead of quadratic.
    """
    box = shape if shape is not None else grid.shape
    mask = np.zeros(box, dtype=bool)
    if surface.is_empty or 0 in box:
        return mask
    ijk = grid.points_to_ijk(surface.vertices) - _ijk_offset(start)
    corner_k = ijk[:, 2][surface.faces]
    low, high = corner_k.min(axis=1), corner_k.max(axis=1)
    for k0 in range(0, box[0], STENCIL_SLAB):
        k1 = min(box[0], k0 + STENCIL_SLAB)
        crossing = surface.faces[(high >= k0) & (low <= k1 - 1)]
        if len(crossing):
            points, faces = compacted(ijk, crossing)
            points = points - np.array([0.0, 0.0, float(k0)])
            mask[k0:k1] = _stencil(points, faces, (k1 - k0, box[1], box[2]))
    return mask


def _stencil(
    points: NDArray[np.floating], faces: IndexArray, shape: tuple[int, int, int]
) -> NDArray[np.bool_]:
    """Index-space triangles -> voxel-centre mask of ``shape`` (k, j, i), by VTK."""
    from vtkmodules.vtkImagingStencil import vtkImageStencilToImage, vtkPolyDataToImageStencil

    stencil = vtkPolyDataToImageStencil()
    stencil.SetInputData(_polydata(points, faces))
    stencil.SetOutputOrigin(0.0, 0.0, 0.0)
    stencil.SetOutputSpacing(1.0, 1.0, 1.0)
    stencil.SetOutputWholeExtent(0, shape[2] - 1, 0, shape[1] - 1, 0, shape[0] - 1)
    image = vtkImageStencilToImage()
    image.SetInputConnection(stencil.GetOutputPort())
    image.SetInsideValue(1)
    image.SetOutsideValue(0)
    image.SetOutputScalarTypeToUnsignedChar()
    image.Update()
    values = _np_vtk().vtk_to_numpy(image.GetOutput().GetPointData().GetScalars())
    return np.asarray(values.reshape(shape) != 0)


def _sampled_counts(
    surface: Surface, grid: Geometry, factor: int
) -> tuple[tuple[int, int, int], NDArray[np.unsignedinteger]]:
    """How many of the ``factor``³ sub-voxel centres of each voxel are inside, over the
    surface's box of ``grid``; rasterised a slab of slices at a time to bound memory."""
    dtype = np.uint8 if factor**3 <= 255 else np.uint16
    if surface.is_empty:
        return (0, 0, 0), np.zeros((0, 0, 0), dtype=dtype)
    start, shape = _box(grid, surface)
    counts = np.zeros(shape, dtype=dtype)
    if 0 in shape:
        return start, counts
    fine = refined(grid, factor)
    plane = shape[1] * shape[2] * factor**3
    check_allocation(plane, "one oversampled slice of a surface's box")
    step = max(1, (1 << 25) // plane)
    for k in range(0, shape[0], step):
        slab = min(step, shape[0] - k)
        mask = rasterize(
            surface,
            fine,
            ((start[0] + k) * factor, start[1] * factor, start[2] * factor),
            (slab * factor, shape[1] * factor, shape[2] * factor),
        )
        counts[k : k + slab] = mask.reshape(slab, factor, shape[1], factor, shape[2], factor).sum(
            axis=(1, 3, 5)
        )
    return start, counts


def _output_grid(
    segmentation: Segmentation, geometry: Geometry | None, layers: int, factor: int = 1
) -> Geometry:
    """The grid the surfaces go on, checked to fit in memory as ``layers`` one-byte
    labelmaps refined ``factor`` times before any of them is allocated."""
    if segmentation.source_representation is not Representation.CLOSED_SURFACE:
        raise ValidationError(
            "this converter needs a closed-surface segmentation, got "
            f"{segmentation.source_representation.value!r}"
        )
    source = segmentation.provenance.get("source_path")
    _require_closed(segmentation, source)
    parameters = segmentation.conversion_parameters
    surfaces = list(segmentation.surfaces.values())
    grid = geometry or segmentation.reference_geometry
    if grid is None:
        grid = automatic_grid(surfaces, parameters.number(SPACING), source=source, layers=layers)
    elif not parameters.flag(CROP):
        grid = _covering(grid, surfaces, source, layers)
    _check_grid([n * factor for n in grid.shape], layers, "the labelmap grid", source)
    return grid


def _require_closed(segmentation: Segmentation, source: str | None) -> None:
    """Refuse to voxelise an open surface, naming its segments.

    A voxel is in when its centre is inside the mesh, and an open mesh (a sheet, a box
    without a lid) has no inside: the stencil would fill whatever its scan lines happen to
    pair up, a guess that looks like a result. Segments without triangles are fine (they
    come out empty, with a warning).
    """
    open_ = [
        f"{segment.name!r} ({segmentation.surfaces[segment.id].boundary_edges} boundary edges)"
        for segment in segmentation.segments.values()
        if not segmentation.surfaces[segment.id].is_closed
    ]
    if open_:
        listed = ", ".join(open_[:5]) + (f" and {len(open_) - 5} more" if len(open_) > 5 else "")
        raise ValidationError(
            f"cannot voxelise an open surface, which encloses no volume: segment {listed}",
            path=source,
            hint="close the mesh (fill its holes) in a mesh editor, or leave the segment out",
        )


def to_labelmap(
    segmentation: Segmentation, geometry: Geometry | None = None, *, threads: int | None = None
) -> Segmentation:
    """Rasterise every closed surface onto a grid (Slicer's surface -> labelmap rule).

    The grid is ``geometry``, else the reference geometry, else :func:`automatic_grid`
    (``Surface rasterization spacing``, default 1 mm). Unless ``Crop to reference image
    geometry`` is 1 the grid grows to hold every surface (a surface inside it gives
    exactly that grid). A voxel is in when its centre is inside; with ``Oversampling
    factor`` f > 1, when at least half of its f³ sub-voxel centres are. Overlapping
    segments go to separate layers (first fit, as Slicer collapses labelmaps); with
    ``Collapse labelmaps`` = 0 every segment gets a layer of its own.
    """
    factor = _factor(segmentation.conversion_parameters, OVERSAMPLING)
    collapse = segmentation.conversion_parameters.flag(COLLAPSE)
    order = list(segmentation.segments.values())
    grid = _output_grid(segmentation, geometry, 1 if collapse else len(order))

    def job(segment: Segment) -> tuple[tuple[int, int, int], NDArray[np.bool_]]:
        surface = segmentation.surfaces[segment.id]
        if surface.is_empty:
            return (0, 0, 0), np.zeros((0, 0, 0), dtype=bool)
        if factor == 1:
            start, shape = _box(grid, surface)
            return start, rasterize(surface, grid, start, shape)
        start, counts = _sampled_counts(surface, grid, factor)
        return start, np.asarray(counts >= (factor**3 + 1) // 2)  # at least half

    masks = _run([partial(job, s) for s in order], threads)
    packer = FirstFitPacker(grid.shape)
    segments = []
    lost = []
    for segment, (start, mask) in zip(order, masks, strict=True):
        box = tuple(slice(a, a + n) for a, n in zip(start, mask.shape, strict=True))
        filled = bool(mask.any())
        if not filled and not segmentation.surfaces[segment.id].is_empty:
            lost.append(segment.name)
        if collapse:
            layer, label = packer.place([(box, mask)] if filled else [])
        else:  # Slicer's "Collapse labelmaps" = 0: a layer per segment
            array = np.zeros(grid.shape, dtype=np.uint8)
            array[box][mask] = 1
            packer.keep(array, 1)
            layer, label = len(packer.layers) - 1, 1
        segments.append(dataclasses.replace(segment, layer=layer, label_value=label))
    if lost:
        spacing = ", ".join(f"{v:.3g}" for v in grid.spacing)
        warnings.warn(
            f"{len(lost)} surface(s) enclose no voxel centre of the {spacing} mm grid (too "
            f"small, or outside a cropped reference) and came out empty: {', '.join(lost)}; "
            f"give a finer reference grid or a smaller {SPACING!r}",
            stacklevel=2,
        )
    layers = packer.layers or [np.zeros(grid.shape, dtype=np.uint8)]
    return Segmentation(
        segments,
        [Layer(array, grid) for array in layers],
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=segmentation.reference_geometry or grid,
        contained_representations=_contained(segmentation),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
    )


def to_fractional(
    segmentation: Segmentation, geometry: Geometry | None = None, *, threads: int | None = None
) -> Segmentation:
    """Every closed surface as a fractional labelmap: the share of each voxel inside it.

    The grid is chosen as in :func:`to_labelmap`, then refined by ``Fractional labelmap
    oversampling factor``. Each voxel is sampled at 6³ sub-voxel centres (Slicer's 216
    offsets), so values run from 0 to ``max_fraction`` = 216, one layer per segment.
    """
    factor = _factor(segmentation.conversion_parameters, FRACTIONAL_OVERSAMPLING)
    order = list(segmentation.segments.values())
    grid = refined(_output_grid(segmentation, geometry, len(order), factor), factor)
    counted = _run(
        [
            partial(_sampled_counts, segmentation.surfaces[s.id], grid, FRACTION_SAMPLES)
            for s in order
        ],
        threads,
    )
    layers = []
    for start, counts in counted:
        array = np.zeros(grid.shape, dtype=np.uint8)
        box = tuple(slice(a, a + n) for a, n in zip(start, counts.shape, strict=True))
        array[box] = counts
        layers.append(Layer(array, grid, max_fraction=FRACTION_SAMPLES**3))
    return Segmentation(
        [dataclasses.replace(s, layer=n, label_value=1) for n, s in enumerate(order)],
        layers,
        source_representation=Representation.FRACTIONAL_LABELMAP,
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=segmentation.reference_geometry or grid,
        contained_representations=_contained(segmentation),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
    )


def _contained(segmentation: Segmentation) -> list[Representation]:
    contained = [*segmentation.contained_representations, segmentation.source_representation]
    return list(dict.fromkeys(contained))
