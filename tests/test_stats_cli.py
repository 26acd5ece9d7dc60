"""``segio stats``: table, CSV and JSON of the library's rows, reference images, errors."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segio
from segio.analysis.statistics import flat_row, segment_statistics
from segio.cli import cli
from segio.model import Segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["stats", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """Five segments on the oblique grid, overlapping (two layers), one named with a comma."""
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    first = next(iter(segmentation.segments.values()))
    first.name = "Neoplasm, Primary"
    return segio.write(segmentation, tmp_path / "s.seg.nrrd")[0]


def _image(segmentation: Segmentation, path: Path, *, infinite: bool = False) -> np.ndarray:
    """A float NIfTI on the segmentation's grid; +inf in one voxel of the first segment."""
    import nibabel

    geometry = segmentation.require_geometry()
    values = np.random.default_rng(4).normal(0.0, 100.0, geometry.shape).astype(np.float32)
    if infinite:
        first = next(iter(segmentation.segments))
        values[tuple(np.argwhere(segmentation.mask(first))[0])] = np.inf
    nibabel.save(nibabel.Nifti1Image(values.T, geometry.ijk_to_ras), path)
    return values


def test_table_shows_the_main_columns(sample: Path) -> None:
    code, out, err = _run(str(sample), "--no-surface")
    assert code == 0, err
    assert "Volume cm³" in out and "Centroid LPS mm" in out and "Mean" not in out
    for segment in segio.read(sample).segments.values():
        assert segment.name in out
    assert "(5 segments)" in out


def test_csv_holds_every_column_in_full_precision(sample: Path) -> None:
    code, out, err = _run(str(sample), "--csv")
    assert code == 0, err
    parsed = list(csv.DictReader(io.StringIO(out)))
    rows = [flat_row(row) for row in segment_statistics(segio.read(sample))]
    assert [r["name"] for r in parsed] == [r["name"] for r in rows]
    assert parsed[0]["name"] == "Neoplasm, Primary"  # quoted, one cell
    assert list(parsed[0]) == list(rows[0])
    for cells, row in zip(parsed, rows, strict=True):
        for key in ("voxel_count", "volume_mm3", "surface_area_mm2", "centroid_l", "obb_size3_mm"):
            assert float(cells[key]) == row[key]  # repr of a float reads back exactly
        assert cells["principal_axis2_s"] == repr(row["principal_axis2_s"])


def test_json_document_holds_file_grid_and_rows(sample: Path) -> None:
    code, out, err = _run(str(sample), "--json", "--no-surface")
    assert code == 0, err
    document = json.loads(out)
    segmentation = segio.read(sample)
    assert document["file"] == str(sample) and document["format"] == "seg-nrrd"
    assert document["grid"]["size_ijk"] == list(segmentation.require_geometry().size_ijk)
    assert document["reference"] is None
    expected = segment_statistics(segmentation, surface=False)
    assert document["rows"] == json.loads(json.dumps(expected))
    assert document["rows"][0]["surface_area_mm2"] is None


def test_reference_image_adds_intensities(sample: Path, tmp_path: Path) -> None:
    segmentation = segio.read(sample)
    values = _image(segmentation, tmp_path / "ct.nii.gz")
    code, out, err = _run(str(sample), "-r", str(tmp_path / "ct.nii.gz"), "--no-surface")
    assert code == 0, err
    assert "Mean" in out and "Median" in out
    code, out, err = _run(
        str(sample), "-r", str(tmp_path / "ct.nii.gz"), "--csv", "--percentiles", "10,90"
    )
    assert code == 0, err
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert "percentile_10" in parsed[0] and "percentile_05" not in parsed[0]
    for cells, segment in zip(parsed, segmentation.segments.values(), strict=True):
        inside = values[segmentation.mask(segment.id)].astype(np.float64)
        assert float(cells["mean"]) == pytest.approx(inside.mean(), rel=1e-12)
        assert float(cells["percentile_90"]) == pytest.approx(np.percentile(inside, 90))
    code, out, _ = _run(str(sample), "-r", str(tmp_path / "ct.nii.gz"), "--json")
    assert json.loads(out)["reference"]["grid"]["size_ijk"] == list(
        segmentation.require_geometry().size_ijk
    )


def test_infinite_and_missing_values_print_as_inf_and_empty(sample: Path, tmp_path: Path) -> None:
    segmentation = segio.read(sample)
    _image(segmentation, tmp_path / "ct.nii", infinite=True)
    code, out, err = _run(str(sample), "-r", str(tmp_path / "ct.nii"), "--csv", "--no-surface")
    assert code == 0, err
    first = next(csv.DictReader(io.StringIO(out)))
    assert first["max"] == "inf" and math.isinf(float(first["mean"]))
    assert first["stdev"] == ""  # inf - inf: no SD, an empty cell
    assert first["surface_area_mm2"] == ""  # --no-surface
    code, out, err = _run(str(sample), "-r", str(tmp_path / "ct.nii"), "--no-surface")
    assert code == 0, err
    line = next(line for line in out.splitlines() if "Neoplasm, Primary" in line)
    assert "inf" in line


def test_reference_also_places_contours_of_an_rtstruct(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique", n_segments=2)
    series = reference_series(segmentation.require_geometry(), tmp_path / "ct")
    written = segio.write(segmentation, tmp_path / "rt.dcm", reference=series)[0]
    code, out, err = _run(str(written), "-r", str(series), "--json", "--no-surface")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [row["name"] for row in rows] == [s.name for s in segmentation.segments.values()]
    assert all(row["voxel_count"] > 0 and row["mean"] == 0.0 for row in rows)


def _header_only() -> bytes:
    """A NIfTI header declaring 100 x 100 x 100 bytes, and no voxels."""
    import nibabel

    header = nibabel.Nifti1Header()
    header.set_data_shape((100, 100, 100))
    header.set_data_dtype(np.uint8)
    header.set_data_offset(352)
    return bytes(header.binaryblock) + bytes(4)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"this is no image\n", "not an image segio reads values from"),
        (b"\x5c\x01\x00\x00" + bytes(340) + b"n+1\x00", "data code 0 not supported"),
        (_header_only(), "declares 1.0 MB of data but the file holds 352 bytes"),
    ],
)
def test_bad_reference_is_one_line_error(
    sample: Path, tmp_path: Path, content: bytes, reason: str
) -> None:
    bad = tmp_path / "bad.nii"
    bad.write_bytes(content)
    code, out, err = _run(str(sample), "-r", str(bad))
    assert code == 1 and not out
    assert err.startswith("segio: error: ") and str(bad) in err and reason in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_csv_and_json_exclude_each_other(sample: Path) -> None:
    code, _, err = _run(str(sample), "--csv", "--json")
    assert code == 1 and "exclude each other" in err


def test_percentiles_are_checked(sample: Path) -> None:
    code, _, err = _run(str(sample), "--percentiles", "5,abc")
    assert code == 1 and "--percentiles" in err


def test_read_options_reach_the_reader(tmp_path: Path) -> None:
    """``-I labels=TABLE``: a NIfTI whose label table is not beside it gets its names."""
    segmentation = small_segmentation(kind="oblique", n_segments=2)
    segio.write(segmentation, tmp_path / "s.nii.gz")
    (tmp_path / "s.json").rename(tmp_path / "names.json")
    names = [s.name for s in segmentation.segments.values()]
    code, out, err = _run(str(tmp_path / "s.nii.gz"), "--json", "--no-surface")
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)["rows"]] != names
    code, out, err = _run(
        str(tmp_path / "s.nii.gz"), "-I", f"labels={tmp_path / 'names.json'}", "--json"
    )
    assert code == 0, err
    assert [row["name"] for row in json.loads(out)["rows"]] == names
