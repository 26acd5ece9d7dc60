"""What a conversion changed, per segment: volume before and after, Dice, Hausdorff.

Resampling, contours (RTSTRUCT), meshes and fractional-to-binary steps lose something; a
user trusts a conversion when they can see how much. ``segio convert --report`` reads the
written output back and calls :func:`conversion_report` with the segmentation as it was
before the lossy steps; the rows are those of :func:`segio.analysis.comparison.compare`
(segments paired the same way: ids kept by the conversion first, then name, terminology,
label) reduced to what a conversion changes, and :data:`REPORT_COLUMNS` prints them.

Statuses: ``kept`` (present on both sides), ``emptied`` (had voxels before, none after:
too thin for the output grid, or outside it), ``lost`` (no segment of that name after),
``added`` (only after), ``empty`` (empty on both sides).
"""

from __future__ import annotations

from typing import Any

from segio.analysis.comparison import compare
from segio.cli.tables import Column, number
from segio.model import Segmentation

__all__ = ["REPORT_COLUMNS", "conversion_report"]

#: How :func:`conversion_report` rows print (``segio.cli.tables.emit``).
REPORT_COLUMNS: list[Column] = [
    Column("segment", "Segment", right=False),
    Column("status", "Status", right=False),
    Column("volume_before_mm3", "Volume before mm³", number(6)),
    Column("volume_after_mm3", "Volume after mm³", number(6)),
    Column("volume_change_percent", "Change %", number(3)),
    Column("dice", "Dice", number(4)),
    Column("hausdorff_mm", "Hausdorff mm", number(3)),
]


def conversion_report(before: Segmentation, after: Segmentation) -> list[dict[str, Any]]:
    """One row per segment: ``segment`` (name), ``status``, ``volume_before_mm3``,
    ``volume_after_mm3``, ``volume_change_percent``, ``dice``, ``hausdorff_mm``, and also
    ``segment_before`` / ``segment_after`` (ids), ``jaccard``, ``hausdorff95_mm`` and
    ``mean_surface_distance_mm``.

    Segments whose id and name both survived the conversion are paired by id (so two
    segments of one name stay apart); the others as :func:`compare` pairs them.
    """
    names_after = {s.id: s.name for s in after.segments.values()}
    kept = {s.id: s.id for s in before.segments.values() if names_after.get(s.id) == s.name}
    comparison = compare(before, after, mapping=kept)
    return [_report_row(row) for row in comparison.rows]


def _report_row(row: dict[str, Any]) -> dict[str, Any]:
    volume_before, volume_after = row.get("volume_a_mm3"), row.get("volume_b_mm3")
    if row["status"] == "only in A":
        status = "lost"
    elif row["status"] == "only in B":
        status = "added"
    elif not row["voxels_a"] and not row["voxels_b"]:
        status = "empty"
    elif not row["voxels_b"]:
        status = "emptied"
    else:
        status = "kept"
    return {
        "segment": row["name_a"] if row["name_a"] is not None else row["name_b"],
        "status": status,
        "volume_before_mm3": volume_before,
        "volume_after_mm3": volume_after,
        "volume_change_percent": row.get("volume_difference_percent"),
        "dice": row.get("dice"),
        "hausdorff_mm": row.get("hausdorff_mm"),
        "segment_before": row["segment_a"],
        "segment_after": row["segment_b"],
        "jaccard": row.get("jaccard"),
        "hausdorff95_mm": row.get("hausdorff95_mm"),
        "mean_surface_distance_mm": row.get("mean_surface_distance_mm"),
    }
