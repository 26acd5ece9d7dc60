"""Per-segment statistics, after 3D Slicer's Segment Statistics module.

One row per segment, JSON-ready, keyed by segment id and name: voxel count and volume
(Slicer's ``LabelmapSegmentStatisticsPlugin``), surface area and enclosed volume of the
closed surface (``ClosedSurfaceSegmentStatisticsPlugin``: ``vtkMassProperties`` on the
segment's closed surface representation), sphericity, centroid, principal moments and axes
and the oriented bounding box (ITK's ``LabelShapeStatistics``, which Slicer's labelmap
plugin calls), the axis-aligned bounding box in LPS and the extent in voxels; with a
reference image, the intensity statistics of
:mod:`segio.analysis.intensity` (Slicer's ``ScalarVolumeSegmentStatisticsPlugin``).
Every definition, and where segio differs from Slicer and why, is in
``docs/statistics.md``.

Speed: every voxel measure of every segment of a layer comes from one pass over the
layer, which cuts each row of voxels (along i) into *runs* of one label value. A run is
five integers, and the count, the sums of coordinates and of their products, the
extremes and the oriented box all follow from runs exactly (the sums along a run have
closed forms, and a linear function of position is extreme at a run's ends), so nothing
is computed per voxel in Python and nothing is computed per segment over the whole image:
the loop over segments only touches that segment's runs. A 512 x 512 x 200 labelmap has
about half a million runs where it has 52 million voxels.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface, face_normals

__all__ = ["DEFAULT_PERCENTILES", "flat_row", "percentile_key", "segment_statistics"]

#: Percentiles of the intensities reported by default (Slicer reports 5 and 95, and the
#: median; the quartiles are added so a box plot can be drawn from the row).
DEFAULT_PERCENTILES: tuple[float, ...] = (5.0, 25.0, 75.0, 95.0)
#: Rows of the labelmap cut into runs at a time (bounded temporaries, about 8 MB).
_SLAB = 1 << 23
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def percentile_key(q: float) -> str:
    """``percentile_05`` for 5 (Slicer's key), ``percentile_2.5`` for 2.5."""
    return f"percentile_{int(q):02d}" if float(q).is_integer() else f"percentile_{q:g}"


def segment_statistics(
    segmentation: Segmentation,
    *,
    reference_image: Any = None,
    surface: bool = True,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
) -> list[dict[str, Any]]:
    """One JSON-ready row per segment, in segment order (see ``docs/statistics.md``).

    ``reference_image`` is an image path (NIfTI, NRRD, DICOM series folder) or a
    ``(values, Geometry)`` pair from :func:`segio.analysis.images.read_image`: the
    intensity columns are then filled. ``surface=False`` skips the closed surface (its
    area, enclosed volume and the sphericity are None), the slowest part.
    Empty segments get a row of zeros and Nones.
    """
    for q in percentiles:
        if not 0.0 <= float(q) <= 100.0:
            raise ValidationError(f"percentile {q} is not in 0..100")
    labelmap = _labelmap_of(segmentation)
    rows = {s.id: _empty_row(s, segmentation) for s in segmentation.segments.values()}
    grid = labelmap.geometry
    runs = {index: _runs_of(labelmap, index) for index in range(len(labelmap.layers))}
    if grid is not None:
        for key, shape in _shape_measures(labelmap, grid, runs).items():
            rows[key].update(shape)
    if segmentation.source_representation is Representation.CLOSED_SURFACE:
        for key, source in segmentation.surfaces.items():
            area, volume = mesh_area_volume(source, closed=None)
            rows[key].update(surface_area_mm2=area, volume_mm3=volume)
            rows[key]["volume_cm3"] = None if volume is None else volume / 1000.0
            rows[key]["surface_volume_mm3"] = volume
        _warn_open(segmentation, rows)
    elif surface:
        derived = segmentation.representation(Representation.CLOSED_SURFACE)
        for key, mesh in derived.surfaces.items():
            area, volume = mesh_area_volume(mesh, closed=True)
            rows[key].update(surface_area_mm2=area, surface_volume_mm3=volume)
    for row in rows.values():
        row["sphericity"] = sphericity(row["surface_volume_mm3"], row["surface_area_mm2"])
    if reference_image is not None:
        from segio.analysis.intensity import intensity_statistics

        found = intensity_statistics(labelmap, reference_image, percentiles=percentiles, runs=runs)
        for key, values in found.items():
            rows[key].update(values)
    return [rows[s.id] for s in segmentation.segments.values()]


def _labelmap_of(segmentation: Segmentation) -> Segmentation:
    """The segmentation whose layers give the voxel measures: itself for a labelmap (a
    fractional one too: :func:`_layer_labels` thresholds it), else its derived binary
    labelmap (cached, with the segmentation's conversion parameters). An open source mesh
    encloses no voxels: it is left out (empty) rather than refused, so the other segments
    still get their rows (:func:`_warn_open` names it)."""
    if segmentation.source_representation in (
        Representation.BINARY_LABELMAP,
        Representation.FRACTIONAL_LABELMAP,
    ):
        return segmentation
    if segmentation.source_representation is not Representation.CLOSED_SURFACE:
        return segmentation.representation(Representation.BINARY_LABELMAP)
    open_meshes = {key for key, mesh in segmentation.surfaces.items() if not mesh.is_closed}
    if segmentation.reference_geometry is None and all(
        mesh.is_empty or key in open_meshes for key, mesh in segmentation.surfaces.items()
    ):
        return segmentation  # no voxels anywhere, and no grid to put none on
    if not open_meshes:
        return segmentation.representation(Representation.BINARY_LABELMAP)
    view = copy.copy(segmentation)
    view._derived, view._derived_from = {}, None  # its own cache, not the source's
    empty = Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    view.surfaces = {
        key: empty if key in open_meshes else mesh for key, mesh in segmentation.surfaces.items()
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "came out empty": what _warn_open says, better
        return view.representation(Representation.BINARY_LABELMAP)


def _empty_row(segment: Segment, segmentation: Segmentation) -> dict[str, Any]:
    """The row of a segment without voxels: counts are 0, positions None."""
    on_grid = bool(segmentation.layers)
    return {
        "id": segment.id,
        "name": segment.name,
        "layer": segment.layer if on_grid else None,
        "label": segment.label_value if on_grid else None,
        "voxel_count": 0,
        "volume_mm3": 0.0,
        "volume_cm3": 0.0,
        "surface_area_mm2": None,
        "surface_volume_mm3": None,
        "sphericity": None,
        "centroid_lps": None,
        "bounds_min_lps": None,
        "bounds_max_lps": None,
        "extent": None,
        "principal_moments_mm2": None,
        "principal_axes_lps": None,
        "elongation": None,
        "flatness": None,
        "obb_origin_lps": None,
        "obb_axes_lps": None,
        "obb_size_mm": None,
    }


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with one scalar per column, for CSV and spreadsheets: an LPS vector becomes
    ``_l``/``_p``/``_s`` columns (``centroid_l``...), axes ``principal_axis1_l``...,
    moments and sizes ``principal_moment1_mm2``/``obb_size1_mm``..., the extent
    ``extent_i_min``... (empty cells where the row has None)."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("_axes_lps"):
            stem = key[: -len("es_lps")] + "is"  # principal_axes_lps -> principal_axis
            for n in range(3):
                for m, letter in enumerate("lps"):
                    flat[f"{stem}{n + 1}_{letter}"] = None if value is None else value[n][m]
        elif key.endswith("_lps"):
            for m, letter in enumerate("lps"):
                flat[f"{key[:-3]}{letter}"] = None if value is None else value[m]
        elif key in ("principal_moments_mm2", "obb_size_mm"):
            stem, unit = key.rsplit("_", 1)
            stem = stem.replace("moments", "moment")
            for n in range(3):
                flat[f"{stem}{n + 1}_{unit}"] = None if value is None else value[n]
        elif key == "extent":
            for axis in "ijk":
                flat[f"extent_{axis}_min"] = None if value is None else value[axis][0]
                flat[f"extent_{axis}_max"] = None if value is None else value[axis][1]
        else:
            flat[key] = value
    return flat


# -- runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runs:
    """Maximal runs of one value along i: each run's segment (index into the layer's
    members), slice k, row j, first column i and length, sorted by segment."""

    segment: IntArray
    k: IntArray
    j: IntArray
    i: IntArray
    length: IntArray
    bounds: IntArray  # runs of segment n are [bounds[n], bounds[n + 1])


def layer_runs(labels: NDArray[np.integer], values: Sequence[int]) -> Runs:
    """The runs of the voxels of each of ``values`` (label values) in ``labels`` (k, j, i).

    A run starts where a row starts or the value changes, so one comparison of each
    voxel with its left neighbour finds them all; a slab of rows at a time keeps the
    temporaries to a few MB. Values that are no member's are dropped.
    """
    depth, height, width = labels.shape
    rows = labels.reshape(depth * height, width)
    lookup = _member_lookup(labels.dtype, values)
    step = max(1, _SLAB // max(width, 1))
    parts: list[tuple[IntArray, IntArray, IntArray]] = []
    buffer = np.empty((min(step, rows.shape[0]), width), dtype=bool)  # reused: no page faults
    buffer[:, 0] = True
    for first in range(0, rows.shape[0], step):
        block = rows[first : first + step]
        change = buffer[: len(block)]
        np.not_equal(block[:, 1:], block[:, :-1], out=change[:, 1:])
        starts = np.flatnonzero(change)
        lengths = np.diff(starts, append=block.size)
        member = lookup(block.reshape(-1)[starts])
        listed = member >= 0
        parts.append((member[listed], starts[listed] + first * width, lengths[listed]))
    segment = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    start = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    length = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    # A stable sort of small integers is a radix sort in numpy.
    narrow = segment.astype(np.int16) if len(values) < 1 << 15 else segment
    by_segment = np.argsort(narrow, kind="stable")
    row, column = np.divmod(start[by_segment], width)
    k, j = np.divmod(row, height)
    counts = np.bincount(segment, minlength=len(values))
    return Runs(
        segment[by_segment].astype(np.int64),
        k,
        j,
        column,
        length[by_segment],
        np.concatenate([[0], np.cumsum(counts)]),
    )


def _member_lookup(
    dtype: np.dtype[Any], values: Sequence[int]
) -> Callable[[NDArray[np.integer]], IntArray]:
    """A function from label values to the index of the member with that value (-1 for
    none): a table lookup for labels of up to 16 bits, a sorted search above."""
    order = {int(v): n for n, v in enumerate(values)}
    if dtype.itemsize <= 2 and dtype.kind == "u":
        table = np.full(1 << (8 * dtype.itemsize), -1, dtype=np.int64)
        for value, n in order.items():
            if 0 <= value < len(table):
                table[value] = n
        return lambda found: table[found]
    info = np.iinfo(dtype)  # keys in the labels' own type: uint64 labels stay exact
    keys = np.array(sorted(v for v in order if info.min <= v <= info.max), dtype=dtype)
    members = np.array([order[int(v)] for v in keys], dtype=np.int64)

    def search(found: NDArray[np.integer]) -> IntArray:
        if not len(keys):
            return np.full(len(found), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, found), len(keys) - 1)
        return np.where(keys[at] == found, members[at], -1)

    return search


def _layer_labels(segmentation: Segmentation, index: int) -> NDArray[np.integer]:
    """The labels of layer ``index``: a fractional layer as the voxels at least half
    inside (label 1), the binary labelmap Slicer derives at its default threshold."""
    layer = segmentation.layers[index]
    if layer.max_fraction is None:
        return layer.array
    members = segmentation.segments_in_layer(index)
    if not members:
        return np.zeros(layer.array.shape, dtype=np.uint8)
    return segmentation.mask(members[0].id).view(np.uint8)


# -- shape measures from runs -------------------------------------------------------------


def _runs_of(labelmap: Segmentation, index: int) -> Runs:
    """The runs of layer ``index``, for its segments in segment order."""
    members = labelmap.segments_in_layer(index)
    values = [1] if labelmap.layers[index].is_fractional else [s.label_value for s in members]
    if not members:
        values = []
    return layer_runs(_layer_labels(labelmap, index), values)


def _shape_measures(
    labelmap: Segmentation, grid: Geometry, layers: dict[int, Runs]
) -> dict[str, dict[str, Any]]:
    """Voxel count, volume, centroid, moments, boxes and extent of every segment."""
    measures: dict[str, dict[str, Any]] = {}
    for index, runs in layers.items():
        members = labelmap.segments_in_layer(index)
        if not members:
            continue
        sums = _run_sums(runs, len(members))
        for n, segment in enumerate(members):
            if sums[n, 0] > 0:
                part = slice(int(runs.bounds[n]), int(runs.bounds[n + 1]))
                measures[segment.id] = _segment_shape(runs, part, sums[n], grid)
    return measures


def _run_sums(runs: Runs, count: int) -> FloatArray:
    """Per segment: voxel count, sums of i, j, k, and of ii, jj, kk, ij, ik, jk (index
    space, voxel centres), from the runs in closed form. Every term is an integer below
    2**53 for any image that fits in memory, so the float64 sums are exact."""
    length = runs.length.astype(np.float64)
    first = runs.i.astype(np.float64)
    j = runs.j.astype(np.float64)
    k = runs.k.astype(np.float64)
    # sum of i over a run = L i0 + L (L - 1) / 2; of i^2 = L i0^2 + i0 L (L - 1) + (L-1)L(2L-1)/6
    pairs = length * (length - 1.0)
    sum_i = length * first + pairs / 2.0
    sum_ii = length * first * first + first * pairs + pairs * (2.0 * length - 1.0) / 6.0
    terms = (
        length,
        sum_i,
        length * j,
        length * k,
        sum_ii,
        length * j * j,
        length * k * k,
        sum_i * j,
        sum_i * k,
        length * j * k,
    )
    return np.stack([np.bincount(runs.segment, t, minlength=count) for t in terms], axis=1)


def _segment_shape(runs: Runs, part: slice, sums: FloatArray, grid: Geometry) -> dict[str, Any]:
    count = sums[0]
    mean = sums[1:4] / count  # (i, j, k)
    second = np.empty((3, 3))
    second[0, 0], second[1, 1], second[2, 2] = sums[4:7]
    second[0, 1] = second[1, 0] = sums[7]
    second[0, 2] = second[2, 0] = sums[8]
    second[1, 2] = second[2, 1] = sums[9]
    covariance_ijk = second / count - np.outer(mean, mean)
    matrix = grid.ijk_to_lps[:3, :3]
    centroid = matrix @ mean + grid.ijk_to_lps[:3, 3]
    covariance = matrix @ covariance_ijk @ matrix.T
    moments, axes = principal_axes(covariance)
    # The ends of every run, as columns (i, j, k): a linear function of position is
    # extreme at one of them. Reductions run along the contiguous axis.
    first, rows, slices = runs.i[part], runs.j[part], runs.k[part]
    last = first + runs.length[part] - 1
    ends = np.empty((3, 2 * len(first)))
    ends[0, 0::2], ends[0, 1::2] = first, last
    ends[1, 0::2] = ends[1, 1::2] = rows
    ends[2, 0::2] = ends[2, 1::2] = slices
    # LPS coordinates and coordinates along the principal axes (from the centroid), at once.
    offset = grid.ijk_to_lps[:3, 3] - centroid
    projected = np.vstack([matrix, axes @ matrix]) @ ends
    projected += np.concatenate([offset, axes @ offset])[:, np.newaxis]
    low, high = projected.min(axis=1), projected.max(axis=1)
    # Half the extent of one voxel (a parallelepiped) along each LPS axis / principal axis.
    half = 0.5 * np.abs(np.vstack([matrix, axes @ matrix])).sum(axis=1)
    low, high = low - half, high + half
    volume = float(count) * grid.voxel_volume
    extent = {
        "i": [int(first.min()), int(last.max())],
        "j": [int(rows.min()), int(rows.max())],
        "k": [int(slices.min()), int(slices.max())],
    }
    return {
        "voxel_count": int(count),
        "volume_mm3": volume,
        "volume_cm3": volume / 1000.0,
        "centroid_lps": centroid.tolist(),
        "bounds_min_lps": (low[:3] + centroid).tolist(),
        "bounds_max_lps": (high[:3] + centroid).tolist(),
        "extent": extent,
        "principal_moments_mm2": moments.tolist(),
        "principal_axes_lps": axes.tolist(),
        "elongation": _ratio(moments[2], moments[1]),
        "flatness": _ratio(moments[1], moments[0]),
        "obb_origin_lps": (centroid + axes.T @ low[3:]).tolist(),
        "obb_axes_lps": axes.tolist(),
        "obb_size_mm": (high[3:] - low[3:]).tolist(),
    }


def _ratio(larger: float, smaller: float) -> float | None:
    """ITK's elongation and flatness: ``sqrt(larger / smaller)`` of two principal moments;
    None where the smaller is 0 (a segment one voxel thick has no flatness; ITK says 0)."""
    return math.sqrt(larger / smaller) if smaller > 0.0 else None


def principal_axes(covariance: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues of ``covariance`` in ascending order (ITK's principal moments) and the
    unit eigenvectors as rows, signed so that each of the first two has its largest
    component positive and the third is their cross product (a right-handed frame)."""
    moments, vectors = np.linalg.eigh((covariance + covariance.T) / 2.0)
    axes = vectors.T.copy()
    for row in axes[:2]:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1.0
    axes[2] = np.cross(axes[0], axes[1])
    return np.maximum(moments, 0.0), axes


# -- closed surface ---------------------------------------------------------------------


def mesh_area_volume(mesh: Surface, *, closed: bool | None) -> tuple[float, float | None]:
    """Area (mm²) and enclosed volume (mm³) of a triangle mesh, as ``vtkMassProperties``
    gives them for a closed one. ``closed=True`` trusts the mesh to be closed (segio's own
    labelmap -> surface converter makes closed meshes, and checking costs a sort of all
    edges); ``None`` checks, and gives None for the volume of an open or inconsistently
    wound mesh, which encloses none."""
    if mesh.is_empty:
        return 0.0, 0.0
    normals = face_normals(mesh.vertices, mesh.faces)
    area = 0.5 * float(np.sqrt(np.einsum("ij,ij->i", normals, normals)).sum())
    if closed is None:
        try:
            return area, mesh.volume()
        except ValidationError:
            return area, None
    first = mesh.vertices[mesh.faces[:, 0]]
    return area, abs(float(np.einsum("ij,ij->", first, normals))) / 6.0


def sphericity(volume: float | None, area: float | None) -> float | None:
    """``pi^(1/3) (6 V)^(2/3) / A`` (1 for a ball, less for any other shape), with V and A
    of the same closed surface, so the isoperimetric inequality keeps it at most 1."""
    if volume is None or area is None or area <= 0.0 or volume <= 0.0:
        return None
    return float(math.pi ** (1.0 / 3.0) * (6.0 * volume) ** (2.0 / 3.0) / area)


def _warn_open(segmentation: Segmentation, rows: dict[str, dict[str, Any]]) -> None:
    """One warning naming the source meshes that enclose no volume."""
    open_meshes = [
        row["name"]
        for key, row in rows.items()
        if row["surface_volume_mm3"] is None and key in segmentation.surfaces
    ]
    if open_meshes:
        shown = ", ".join(repr(n) for n in open_meshes[:5])
        more = f" and {len(open_meshes) - 5} more" if len(open_meshes) > 5 else ""
        source = segmentation.provenance.get("source_path")
        where = f"{os.fspath(source)}: " if source else ""
        warnings.warn(
            f"{where}the surface of {shown}{more} is open or inconsistently wound: it "
            "encloses no volume, so its volume, sphericity and voxel measures are left empty",
            stacklevel=3,
        )
