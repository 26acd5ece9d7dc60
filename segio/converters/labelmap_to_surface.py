"""Binary labelmap -> closed surface, after 3D Slicer's conversion rule.

Labelmap -> surface reproduces ``vtkBinaryLabelmapToClosedSurfaceConversionRule``:
discrete flying edges (or surface nets) in index space, optional ``vtkDecimatePro``,
``vtkWindowedSincPolyDataFilter`` with Slicer's pass band and iteration count, then the
grid's full IJK -> LPS matrix (oblique grids included) and vertex normals. It differs from
Slicer in *how much* it contours, not in what: Slicer contours the whole (shared)
labelmap once per segment, at the segment's label, segio each segment inside its
bounding box padded by one voxel. Discrete flying-edges vertices sit at the midpoints of
edges whose two voxels differ, so the crop yields the same triangles (the padding also
closes segments cut by the image border, as Slicer's padding does); the cropped image
keeps the whole grid's index coordinates (its origin is the box's first voxel), so the
points, their order and the smoothing's arithmetic are Slicer's, and the smoothed points
are Slicer's bit for bit. Segments run in a thread pool, largest first: VTK releases the
GIL in ``Update()`` and numpy in its loops, so the threads share the cores.

Surface -> labelmap is :mod:`segio.converters.surface_to_labelmap`. VTK is imported
inside the functions that use it (:mod:`segio.converters.vtkbridge`), so ``import segio``
never loads it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from segio import progress
from segio.converters import vtkbridge
from segio.converters.surface_to_labelmap import contained
from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Extent, Segment, Segmentation
from segio.representations import PARAMETERS, ConversionParameters, Representation
from segio.surfaces import Surface, compacted, face_normals, vertex_normals

if TYPE_CHECKING:
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPolyData


# Slicer's parameter names (``vtkBinaryLabelmapToClosedSurfaceConversionRule``).
SMOOTHING = "Smoothing factor"
DECIMATION = "Decimation factor"
NORMALS = "Compute surface normals"
METHOD = "Conversion method"
NETS_SMOOTHING = "SurfaceNets smoothing"
JOINT = "Joint smoothing"

FLYING_EDGES, SURFACE_NETS = 0, 1

FloatArray = vtkbridge.FloatArray
IndexArray = vtkbridge.IndexArray


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


# -- labelmap -> closed surface ----------------------------------------------------------------


def _segment_mesh(
    labels: NDArray[np.integer], value: int, extent: Extent, settings: SurfaceSettings
) -> tuple[NDArray[np.float32], IndexArray]:
    """One segment by flying edges inside its padded bounding box: float32 points in the
    whole grid's index space (i, j, k) and triangles.

    The cropped image's origin is the box's first voxel, so the contour's points are the
    very floats of Slicer's contour of the whole labelmap (in the same order), and the
    smoothing, which normalises by the mesh's centre and size, computes with the same
    numbers: Slicer's points, bit for bit (with the crop's own origin they would differ
    in the last float32 bit).
    """
    box, start = _padded_box(extent)
    region = labels[box]
    padded = np.zeros(tuple(n + 2 for n in region.shape), dtype=np.uint8)
    np.equal(region, value, out=padded[1:-1, 1:-1, 1:-1].view(np.bool_))
    poly = _flying_edges(vtkbridge.image(padded, start), [1])
    points, faces = vtkbridge.triangles(_smooth(_decimate(poly, settings), settings))
    return np.asarray(points, dtype=np.float32), faces


def _segment_surface(
    labels: NDArray[np.integer],
    segment: Segment,
    extent: Extent,
    grid: Geometry,
    settings: SurfaceSettings,
) -> dict[str, Surface]:
    """One segment's LPS surface (see :func:`_segment_mesh`)."""
    points, faces = _segment_mesh(labels, segment.label_value, extent, settings)
    return {segment.id: _to_surface(points, faces, grid, settings.normals)}


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
    poly = _smooth(_decimate(_flying_edges(vtkbridge.image(padded), values), settings), settings)
    points, faces = vtkbridge.triangles(poly)
    result: dict[str, Surface] = {}
    if not len(faces):
        return {s.id: _to_surface(points, faces, grid, False) for s, _ in members}
    point_labels = (
        vtkbridge.np_vtk().vtk_to_numpy(poly.GetPointData().GetScalars()).astype(np.int64)
    )
    face_labels = point_labels[faces[:, 0]]
    shift = vtkbridge.ijk_offset(start)
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
    nets.SetInputData(vtkbridge.image(padded))
    for n, value in enumerate(values):
        nets.SetValue(n, value)
    nets.SetBackgroundLabel(0)
    nets.SetOutputMeshTypeToTriangles()
    nets.SmoothingOff()
    nets.DataCachingOn()
    nets.Update()
    poly = nets.GetOutput()
    points, faces = vtkbridge.triangles(poly)
    if not len(faces):
        return {s.id: _to_surface(points, faces, grid, False) for s, _ in members}
    boundary = vtkbridge.np_vtk().vtk_to_numpy(poly.GetCellData().GetArray("BoundaryLabels"))
    boundary = np.asarray(boundary, dtype=np.int64)
    if settings.nets_smoothing and settings.smoothing > 0:
        # The filter's own smoothing moves the two coincident points of a voxel edge
        # apart, which would open a crack there: the points to merge are found before
        # it runs (the cached extraction is smoothed, not redone) and merged after.
        nets.SmoothingOn()
        nets.SetNumberOfIterations(settings.nets_iterations)
        nets.Update()
        smoothed, _ = vtkbridge.triangles(nets.GetOutput())
        points, faces = _merged(points, faces, smoothed)
    else:
        points, faces = _merged(points, faces)
    joint = settings.joint and settings.smooths
    if joint:  # windowed sinc moves points only: faces and their labels stay in order
        points, faces = vtkbridge.triangles(_smooth(vtkbridge.polydata(points, faces), settings))
    shift = vtkbridge.ijk_offset(start)
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
            segment_poly = _decimate(vtkbridge.polydata(pts, tri), settings)
            pts, tri = vtkbridge.triangles(
                segment_poly if joint else _smooth(segment_poly, settings)
            )
        result[segment.id] = _to_surface(pts, tri, grid, settings.normals, shift)
    return result


def to_closed_surface(segmentation: Segmentation, *, threads: int | None = None) -> Segmentation:
    """Every segment as a closed triangle mesh in LPS mm (Slicer's labelmap -> surface rule).

    Parameters are the segmentation's conversion parameters (Slicer's names and defaults,
    see :class:`SurfaceSettings`). The result keeps the segments, has no layers, and has
    the labelmap grid as its reference geometry, so converting back lands on the same
    voxels. Empty segments get empty surfaces. ``threads`` caps the worker threads (default:
    the usable CPUs, at most 4); the result is the same for any number.
    """
    if segmentation.source_representation is Representation.FRACTIONAL_LABELMAP:
        from segio.converters.fractional_to_labelmap import to_binary

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
    counts: list[int] = []  # segments per job, for the progress
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
                counts.append(len(members))
                continue
            for segment, extent in members:
                jobs.append(partial(_segment_surface, labels, segment, extent, grid, settings))
                sizes.append(_volume(extent))
                counts.append(1)
    # Largest first, so that a big segment does not start last and run alone.
    order = sorted(range(len(jobs)), key=lambda n: -sizes[n])
    with progress.task("closed surfaces", total=sum(counts)) as step:
        for built in vtkbridge.run([step.counting(jobs[n], counts[n]) for n in order], threads):
            surfaces.update(built)
    return Segmentation(
        [dataclasses.replace(s, layer=0, label_value=1) for s in segmentation.segments.values()],
        source_representation=Representation.CLOSED_SURFACE,
        conversion_parameters=segmentation.conversion_parameters.copy(),
        reference_geometry=grid if grid is not None else segmentation.reference_geometry,
        contained_representations=contained(segmentation),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
        surfaces=surfaces,
    )


def _volume(extent: Extent) -> int:
    return math.prod(hi - lo + 1 for lo, hi in extent)
