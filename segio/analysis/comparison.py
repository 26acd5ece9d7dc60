"""Compare two segmentations segment by segment: overlap, volumes and surface distances.

Slicer's Segment Comparison module, for whole files: segments are paired by
:mod:`segio.analysis.matching` (an explicit map, then name, terminology, label), and each
pair gets Dice and Jaccard coefficients, both volumes and their difference, the Hausdorff
distance, its 95th percentile and the mean surface distance, in mm. docs/comparison.md
gives the formulas; in short:

* Overlap counts voxels on one lattice. Grids that share a lattice (the same grid, or one
  cropped, padded, permuted or flipped: :meth:`Geometry.index_map`) are compared exactly;
  otherwise B is resampled onto A's lattice by nearest neighbour first and
  :attr:`Comparison.resampled` says so.
* The Hausdorff distance is the symmetric Hausdorff distance between the two sets of voxel
  centres, a voxel of one inside the other counting 0: SimpleITK's
  ``HausdorffDistanceImageFilter``.
* HD95 and the mean surface distance are taken over boundary voxel centres, from each
  boundary to the other boundary (plastimatch's "boundary" family), each side on its own
  grid: no distance is ever measured on a resampled grid.

Work is cropped to each pair's bounding box and nearest points come from k-d trees over
boundary points, so the cost follows the segments' size, not the image's. Surfaces and
contours are compared through their binary labelmap on the other side's grid (or the
reference grid when neither side has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segio import progress
from segio.analysis.distances import SurfaceDistances
from segio.analysis.matching import Match, match_segments
from segio.analysis.pairs import GridPairs, LatticePairs, measure
from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Segmentation
from segio.representations import Representation

__all__ = ["Comparison", "compare", "describe_side"]

_VOXELS = (Representation.BINARY_LABELMAP, Representation.FRACTIONAL_LABELMAP)


@dataclass
class Comparison:
    """The result of :func:`compare`: one JSON-ready row per segment pair or lone segment.

    ``a`` and ``b`` describe the inputs (path, format, representation, grid); ``overlap``
    says on which grid voxels were counted; ``resampled`` is True when B was resampled
    onto A's lattice for the overlap (the grids share no lattice).
    """

    rows: list[dict[str, Any]]
    a: dict[str, Any]
    b: dict[str, Any]
    overlap: str
    resampled: bool
    matches: list[Match] = field(default_factory=list)
    #: Boundary-to-boundary distances of each pair with voxels on both sides, by
    #: ``(A id, B id)``: the per-point values behind HD95 and the mean surface distance.
    surfaces: dict[tuple[str, str], SurfaceDistances] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: the inputs, how they were compared, and the rows."""
        return {
            "a": self.a,
            "b": self.b,
            "overlap": self.overlap,
            "resampled": self.resampled,
            "rows": self.rows,
        }


def describe_side(segmentation: Segmentation, grid: Geometry | None) -> dict[str, Any]:
    """Path, format, source representation and the voxel grid used for one input."""
    from segio.analysis.summary import _geometry

    return {
        "path": segmentation.provenance.get("source_path"),
        "format": segmentation.provenance.get("format"),
        "representation": segmentation.source_representation.value,
        "segments": len(segmentation.segments),
        "grid": _geometry(grid),
    }


def compare(
    a: Segmentation,
    b: Segmentation,
    *,
    mapping: Mapping[str, str] | None = None,
    reference: Geometry | None = None,
) -> Comparison:
    """Compare ``b`` against ``a``, segment by segment.

    ``mapping`` pairs segments explicitly (A id or name -> B id or name); the others are
    paired by name, terminology and label. ``reference`` is the grid surfaces and contours
    are rasterised on when neither side has voxels. Scores never raise: a missing segment
    is a row with status "only in A" or "only in B". Raises :class:`ValidationError` when
    segments cannot be told apart, the map names unknown segments, or there is no grid.
    """
    where = (_where(a, "A"), _where(b, "B"))
    matches = match_segments(a, b, mapping, names=where)
    a_vox, b_vox = _voxel_forms(a, b, reference)
    pairs, how, resampled = _pairs(a_vox, b_vox)
    rows = []
    surfaces = {}
    for match in progress.track(matches, "comparing segments"):
        row, surface = _row(match, a, b, pairs)
        rows.append(row)
        if surface is not None and match.a is not None and match.b is not None:
            surfaces[(match.a, match.b)] = surface
    return Comparison(
        rows,
        describe_side(a, a_vox.geometry),
        describe_side(b, b_vox.geometry),
        how,
        resampled,
        matches,
        surfaces,
    )


def _pairs(a: Segmentation, b: Segmentation) -> tuple[GridPairs | LatticePairs, str, bool]:
    """How the pairs' voxels are reached, what the overlap is counted on, and whether B
    was resampled for it."""
    grid_a, grid_b = a.geometry, b.geometry
    if grid_a is not None and grid_b is not None and grid_a.is_close(grid_b, atol=1e-4):
        return GridPairs(a, b), "one grid (exact)", False
    frame = grid_a or grid_b
    if frame is None:  # no segment on either side, so no layer
        frame = Geometry(np.eye(4), (1, 1, 1))
    if grid_b is None or frame.index_map(grid_b) is not None:
        return LatticePairs(a, b, frame), "A's lattice (exact)", False
    how = "B resampled onto A's lattice (nearest neighbour); distances on each own grid"
    return LatticePairs(a, _onto_lattice(b, frame), frame, own_b=b), how, True


def _where(segmentation: Segmentation, side: str) -> str:
    return segmentation.provenance.get("source_path") or f"segmentation {side}"


# -- voxels for both sides -------------------------------------------------------------------


def _grid(segmentation: Segmentation) -> Geometry | None:
    if segmentation.source_representation in _VOXELS:
        return segmentation.geometry
    return segmentation.reference_geometry


def _voxel_forms(
    a: Segmentation, b: Segmentation, reference: Geometry | None
) -> tuple[Segmentation, Segmentation]:
    """Both sides as labelmaps: a side without voxels is rasterised on the other side's
    grid, so that both are voxels on one lattice; on ``reference`` or its own reference
    geometry when neither side has voxels."""
    has_a = a.source_representation in _VOXELS
    has_b = b.source_representation in _VOXELS
    if has_a and has_b:
        return a, b
    target = (a.geometry if has_a else b.geometry) if has_a or has_b else None
    target = target or reference or _grid(a) or _grid(b)
    if target is None and (a.segments or b.segments):
        raise ValidationError(
            f"neither {_where(a, 'A')} ({a.source_representation.value}) nor "
            f"{_where(b, 'B')} ({b.source_representation.value}) has a voxel grid to "
            "compare on",
            hint="pass the image they were drawn on (segio compare --reference IMAGE)",
        )
    return _labelmap(a, target), _labelmap(b, target)


def _labelmap(segmentation: Segmentation, grid: Geometry | None) -> Segmentation:
    if segmentation.source_representation in _VOXELS or not segmentation.segments:
        return segmentation
    return segmentation.representation(Representation.BINARY_LABELMAP, geometry=grid)


def _onto_lattice(segmentation: Segmentation, frame: Geometry) -> Segmentation:
    """``segmentation`` resampled (nearest neighbour) onto ``frame``'s lattice, grown to
    cover its grid, so that no voxel is lost off ``frame``'s edge."""
    from segio.converters.resample import resample

    grid = segmentation.require_geometry()
    far = np.array(grid.size_ijk, dtype=np.float64) - 1
    corners = np.array(np.meshgrid(*[(0.0, n) for n in far], indexing="ij")).reshape(3, -1).T
    covering = frame.grown_to(np.vstack([grid.ijk_to_points(corners), frame.origin]))
    return resample(segmentation, covering)


# -- rows ------------------------------------------------------------------------------------------

_NO_DISTANCES: dict[str, Any] = {
    "hausdorff_mm": None,
    "hausdorff95_mm": None,
    "mean_surface_distance_mm": None,
    "boundary_hausdorff_mm": None,
}


def _row(
    match: Match, a: Segmentation, b: Segmentation, pairs: GridPairs | LatticePairs
) -> tuple[dict[str, Any], SurfaceDistances | None]:
    """One JSON-ready row, and the boundary distances behind it (None without)."""
    first = a.segments[match.a] if match.a is not None else None
    second = b.segments[match.b] if match.b is not None else None
    row: dict[str, Any] = {
        "segment_a": match.a,
        "name_a": first.name if first is not None else None,
        "segment_b": match.b,
        "name_b": second.name if second is not None else None,
        "status": "matched" if first and second else "only in A" if first else "only in B",
        "matched_by": match.rule or None,
    }
    unit_a, unit_b = pairs.voxel_volumes
    if match.a is None or match.b is None:
        row["volume_a_mm3"] = row["volume_b_mm3"] = None
        if match.a is not None:
            row["voxels_a"] = pairs.count_a(match.a)
            row["volume_a_mm3"] = row["voxels_a"] * unit_a
        elif match.b is not None:
            row["voxels_b"] = pairs.count_b(match.b)
            row["volume_b_mm3"] = row["voxels_b"] * unit_b
        return row, None
    voxels = pairs.pair(match.a, match.b)
    volume_a, volume_b = voxels.voxels_a * unit_a, voxels.voxels_b * unit_b
    total = voxels.overlap_a + voxels.overlap_b
    row.update(
        voxels_a=voxels.voxels_a,
        voxels_b=voxels.voxels_b,
        voxels_both=voxels.both,
        volume_a_mm3=volume_a,
        volume_b_mm3=volume_b,
        volume_difference_mm3=volume_b - volume_a,
        volume_difference_percent=(
            100.0 * (volume_b - volume_a) / volume_a if volume_a > 0 else None
        ),
        dice=2.0 * voxels.both / total if total else (0.0 if voxels.voxels_b else 1.0),
        jaccard=voxels.both / (total - voxels.both) if total else (0.0 if voxels.voxels_b else 1.0),
    )
    surface = None
    if voxels.outlines is None:
        row.update(_NO_DISTANCES)
    else:
        hausdorff, surface = measure(*voxels.outlines)
        row.update(
            hausdorff_mm=hausdorff,
            hausdorff95_mm=surface.hausdorff_percentile(95.0),
            mean_surface_distance_mm=surface.mean,
            boundary_hausdorff_mm=surface.hausdorff,
        )
    if not voxels.voxels_a or not voxels.voxels_b:
        row["note"] = (
            "empty in both"
            if not voxels.voxels_a and not voxels.voxels_b
            else ("empty in A" if not voxels.voxels_a else "empty in B")
        )
    return row, surface
