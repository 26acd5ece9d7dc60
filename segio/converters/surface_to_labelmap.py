"""Closed surface -> labelmap and fractional labelmap, after 3D Slicer's rules.

Follows ``vtkClosedSurfaceToBinaryLabelmapConversionRule``: the surface is mapped into the
grid's index space and ``vtkPolyDataToImageStencil`` marks the voxels whose *centre* is
inside, a slab of slices at a time. Only a closed surface has an inside, so an open one is
refused (:func:`_require_closed`) rather than guessed at. The fractional rule samples
6³ sub-voxel centres per voxel, as Slicer's ``vtkPolyDataToFractionalLabelmapFilter``.
VTK is imported inside the functions that use it (:mod:`.vtkbridge`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from functools import partial

import numpy as np
from numpy.typing import NDArray

from segio import progress
from segio.converters import vtkbridge
from segio.errors import GeometryError, LimitError, ValidationError
from segio.fileio.limits import check_allocation, check_grid
from segio.geometry import Geometry
from segio.labels.packing import FirstFitPacker
from segio.model import Layer, Segment, Segmentation
from segio.representations import PARAMETERS, ConversionParameters, Representation
from segio.surfaces import Surface, compacted

# Slicer's parameter names (``vtkClosedSurfaceToBinaryLabelmapConversionRule``).
OVERSAMPLING = "Oversampling factor"
CROP = "Crop to reference image geometry"
COLLAPSE = "Collapse labelmaps"
FRACTIONAL_OVERSAMPLING = "Fractional labelmap oversampling factor"
#: segio's own parameter: voxel size (mm) of the grid made when no reference grid is known.
SPACING = "Surface rasterization spacing"
#: Sub-samples per axis of a fractional voxel: Slicer's ``NumberOfOffsets`` (6³ = 216 levels).
FRACTION_SAMPLES = 6
#: Largest oversampling factor accepted (Slicer refuses above 100; memory grows as f³).
MAX_OVERSAMPLING = 16

IndexArray = vtkbridge.IndexArray


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
    (``layers`` one-byte labelmaps of it, :func:`segio.fileio.limits.check_grid`) before anything
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
    """:func:`segio.fileio.limits.check_grid` for ``layers`` one-byte labelmaps, with a hint."""
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
    ijk = grid.points_to_ijk(surface.vertices) - vtkbridge.ijk_offset(start)
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
    stencil.SetInputData(vtkbridge.polydata(points, faces))
    stencil.SetOutputOrigin(0.0, 0.0, 0.0)
    stencil.SetOutputSpacing(1.0, 1.0, 1.0)
    stencil.SetOutputWholeExtent(0, shape[2] - 1, 0, shape[1] - 1, 0, shape[0] - 1)
    image = vtkImageStencilToImage()
    image.SetInputConnection(stencil.GetOutputPort())
    image.SetInsideValue(1)
    image.SetOutsideValue(0)
    image.SetOutputScalarTypeToUnsignedChar()
    image.Update()
    values = vtkbridge.np_vtk().vtk_to_numpy(image.GetOutput().GetPointData().GetScalars())
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

    with progress.task("rasterising surfaces", total=len(order)) as step:
        masks = vtkbridge.run([step.counting(partial(job, s)) for s in order], threads)
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
        contained_representations=contained(segmentation),
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
    with progress.task("rasterising surfaces (fractions)", total=len(order)) as step:
        counted = vtkbridge.run(
            [
                step.counting(
                    partial(_sampled_counts, segmentation.surfaces[s.id], grid, FRACTION_SAMPLES)
                )
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
        contained_representations=contained(segmentation),
        provenance=segmentation.provenance,
        extras=segmentation.extras,
    )


def contained(segmentation: Segmentation) -> list[Representation]:
    contained = [*segmentation.contained_representations, segmentation.source_representation]
    return list(dict.fromkeys(contained))
