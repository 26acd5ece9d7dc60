"""``segio.analysis.report.conversion_report``: what resampling, meshes and contours cost."""

from __future__ import annotations

import numpy as np
import pytest

from segio.analysis.report import REPORT_COLUMNS, conversion_report
from segio.cli.tables import emit
from segio.converters.resample import resample
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.testing.synthetic import grid, synthetic_segmentation


@pytest.fixture
def before() -> Segmentation:
    """Four blobs on an oblique grid and a one-voxel-thick sheet."""
    segmentation = synthetic_segmentation(n_segments=4, geometry=grid("oblique", (16, 30, 28)))
    sheet = np.zeros(segmentation.require_geometry().shape, dtype=bool)
    sheet[:, 3, 2:20] = True
    sheet &= segmentation.layers[0].array == 0
    segmentation.add_mask(sheet, "sheet")
    return segmentation


def _coarse(geometry: Geometry) -> Geometry:
    """Twice the spacing, voxel centres 0.4 fine voxels past the fine ones: odd fine
    rows fall between coarse centres."""
    matrix = geometry.ijk_to_lps.copy()
    matrix[:3, 3] = geometry.ijk_to_points([[0.4, 0.4, 0.4]])[0]
    matrix[:3, :3] *= 2
    return Geometry(matrix, tuple(-(-n // 2) for n in geometry.shape))


def test_resampling_to_a_coarser_grid(before: Segmentation) -> None:
    fine = before.require_geometry()
    after = resample(before, _coarse(fine))
    rows = conversion_report(before, after)
    assert [r["segment"] for r in rows] == [s.name for s in before.segments.values()]
    counts_before, counts_after = before.voxel_counts(), after.voxel_counts()
    coarse = after.require_geometry().voxel_volume
    for row, segment in zip(rows, before.segments.values(), strict=True):
        assert row["volume_before_mm3"] == pytest.approx(
            counts_before[segment.id] * fine.voxel_volume
        )
        assert row["volume_after_mm3"] == pytest.approx(counts_after[segment.id] * coarse)
        change = (
            100 * (row["volume_after_mm3"] - row["volume_before_mm3"]) / row["volume_before_mm3"]
        )
        assert row["volume_change_percent"] == pytest.approx(change)
    blobs, sheet = rows[:-1], rows[-1]
    assert all(r["status"] == "kept" and 0.5 < r["dice"] < 1.0 for r in blobs)
    assert all(r["hausdorff_mm"] > 0 for r in blobs)
    assert sheet["status"] == "emptied" and sheet["dice"] == 0.0
    assert sheet["volume_after_mm3"] == 0.0 and sheet["hausdorff_mm"] is None


def test_same_grid_round_trip_is_perfect(before: Segmentation) -> None:
    rows = conversion_report(before, before.copy())
    assert all(r["status"] == "kept" and r["dice"] == 1.0 for r in rows)
    assert all(r["hausdorff_mm"] == 0.0 and r["volume_change_percent"] == 0.0 for r in rows)


def test_meshes_and_contours_are_rasterised_on_the_input_grid(before: Segmentation) -> None:
    blobs = before.copy()
    blobs.segments.remove("sheet")
    blobs.layers[0].array[blobs.layers[0].array == 5] = 0
    blobs.modified()
    mesh = blobs.representation(Representation.CLOSED_SURFACE, smoothing_factor=0)
    contours = blobs.representation(Representation.PLANAR_CONTOURS)
    for after in (mesh, contours):
        rows = conversion_report(blobs, after)
        assert all(r["status"] == "kept" for r in rows)
        assert all(r["dice"] > 0.8 for r in rows), [r["dice"] for r in rows]
        assert all(abs(r["volume_change_percent"]) < 25 for r in rows)


def test_lost_added_and_empty_segments(before: Segmentation) -> None:
    after = before.copy()
    lost = next(iter(after.segments.values()))
    after.segments.remove(lost.id)
    after.layers[0].array[after.layers[0].array == lost.label_value] = 0
    after.segments.add(Segment(id="new", name="new", layer=0, label_value=42))
    after.layers[0].array[0, 0, 0] = 42
    after.modified()
    rows = conversion_report(before, after)
    statuses = {r["segment"]: r["status"] for r in rows}
    assert statuses[lost.name] == "lost" and statuses["new"] == "added"
    assert next(r for r in rows if r["segment"] == "new")["volume_before_mm3"] is None
    empty = Segmentation(
        [Segment(id="e", name="e")],
        [Layer(np.zeros((2, 3, 4), np.uint8), grid("axial", (2, 3, 4)))],
    )
    assert conversion_report(empty, empty.copy())[0]["status"] == "empty"


def test_kept_ids_pair_segments_of_one_name(before: Segmentation) -> None:
    for segment in before.segments.values():
        segment.name = "Tumor"
    after = before.copy()
    rows = conversion_report(before, after)
    assert [(r["segment_before"], r["segment_after"]) for r in rows] == [
        (s.id, s.id) for s in before.segments.values()
    ]


def test_columns_print_from_the_rows(
    before: Segmentation, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = conversion_report(before, resample(before, _coarse(before.require_geometry())))
    assert {c.key for c in REPORT_COLUMNS} <= set(rows[0])
    emit(rows, REPORT_COLUMNS, "csv")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(c.key for c in REPORT_COLUMNS)
    assert lines[-1].startswith("sheet,emptied,")
