"""``segio compare``: table, CSV and JSON; segment maps; references; one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segio
from segio.analysis.comparison import compare
from segio.cli import cli
from segio.cli.compare import CSV_KEYS
from segio.model import Layer
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation, surface_segmentation


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["compare", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A: five segments on the oblique grid (seg.nrrd). B: the same moved by one voxel,
    the first segment renamed, uncoded and relabelled, written as NIfTI."""
    first = small_segmentation(kind="oblique")
    second = first.copy()
    second.layers = [Layer(np.roll(first.layers[0].array, 1, axis=2), first.require_geometry())]
    renamed = next(iter(second.segments.values()))
    renamed.name = "renamed"
    renamed.terminology = None
    renamed.label_value = 200  # neither the name, the codes nor the label pair it
    second.layers[0].array[first.layers[0].array == 1] = 0
    second.layers[0].array[np.roll(first.layers[0].array, 1, axis=2) == 1] = 200
    second.modified()
    a, b = tmp_path / "a.seg.nrrd", tmp_path / "b.nii.gz"
    segio.write(first, a)
    segio.write(second, b)
    return a, b


def test_table_lists_pairs_and_lone_segments(files: tuple[Path, Path]) -> None:
    code, out, err = _run(str(files[0]), str(files[1]))
    assert code == 0, err
    assert "4 pair(s), 2 on one side only" in " ".join(out.split())  # the title may wrap
    assert "only in A" in out and "only in B" in out and "renamed" in out
    assert "Dice" in out and "HD95 mm" in out


def test_csv_has_every_key_in_full_precision(files: tuple[Path, Path]) -> None:
    code, out, err = _run(str(files[0]), str(files[1]), "--csv")
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert tuple(table[0]) == CSV_KEYS
    library = compare(segio.read(files[0]), segio.read(files[1])).rows
    assert [r["status"] for r in table] == [r["status"] for r in library]
    matched = [(r, s) for r, s in zip(table, library, strict=True) if s["status"] == "matched"]
    assert matched and all(float(r["dice"]) == s["dice"] for r, s in matched)
    assert all(float(r["hausdorff_mm"]) == s["hausdorff_mm"] for r, s in matched)


def test_json_holds_files_grids_and_rows(files: tuple[Path, Path]) -> None:
    code, out, err = _run(str(files[0]), str(files[1]), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["a"]["path"] == str(files[0]) and document["b"]["format"] == "nifti"
    assert document["a"]["grid"]["size_ijk"] == [11, 13, 7]
    assert document["resampled"] is False
    library = compare(segio.read(files[0]), segio.read(files[1])).as_dict()
    assert document["rows"] == json.loads(json.dumps(library["rows"]))


def test_map_pairs_segments_from_the_command_line_or_a_file(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    first = next(iter(segio.read(files[0]).segments.values()))
    code, out, err = _run(str(files[0]), str(files[1]), "--json", "--map", f"{first.name}=renamed")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert (rows[0]["name_b"], rows[0]["matched_by"]) == ("renamed", "map")
    assert 0 < rows[0]["dice"] < 1 and len(rows) == 5
    as_json = tmp_path / "map.json"
    as_json.write_text(json.dumps({first.name: "renamed"}))
    as_csv = tmp_path / "map.csv"
    as_csv.write_text(f'a,b\n# a comment\n\n"{first.name}",renamed\n')
    for path in (as_json, as_csv):
        code, out, err = _run(str(files[0]), str(files[1]), "--json", "--map-file", str(path))
        assert code == 0, err
        assert json.loads(out)["rows"] == rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "nothing"], "is not A=B"),
        (["--map", "missing=renamed"], "'missing' is not a segment of A"),
        (["--csv", "--json"], "exclude each other"),
    ],
)
def test_bad_options_are_one_line_errors(
    files: tuple[Path, Path], args: list[str], message: str
) -> None:
    code, out, err = _run(str(files[0]), str(files[1]), *args)
    assert code == 1 and out == ""
    assert err.startswith("segio: error:") and message in err and err.count("\n") == 1


def test_bad_map_file_and_bad_input_are_one_line_errors(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("liver,Liver,extra\n")
    code, _, err = _run(str(files[0]), str(files[1]), "--map-file", str(bad_map))
    assert code == 1 and "line 1 of the segment map has 3 cell(s)" in err
    assert err.count("\n") == 1
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"\x1f\x8b not really gzip")
    code, _, err = _run(str(files[0]), str(garbage))
    assert code == 1 and err.startswith("segio: error:") and "garbage.nii.gz" in err
    assert err.count("\n") == 1


def test_low_scores_still_exit_zero(files: tuple[Path, Path], tmp_path: Path) -> None:
    first = segio.read(files[0])
    moved = first.copy()
    moved.layers = [Layer(np.roll(first.layers[0].array, 6, axis=2), first.require_geometry())]
    moved.modified()
    far = segio.write(moved, tmp_path / "far.seg.nrrd")[0]
    code, out, err = _run(str(files[0]), str(far), "--json")
    assert code == 0, err
    assert min(row["dice"] for row in json.loads(out)["rows"]) < 0.2


def test_meshes_need_a_reference_grid(tmp_path: Path) -> None:
    mesh = segio.write(surface_segmentation(2, seed=3), tmp_path / "s.obj")[0]
    code, _, err = _run(str(mesh), str(mesh))
    assert code == 1 and "--reference" in err and err.count("\n") == 1
    grid = small_segmentation(kind="axial")
    grid.layers[0].array[:] = 0
    image = tmp_path / "grid.nii.gz"
    segio.write(grid, image)
    code, out, err = _run(str(mesh), str(mesh), "--reference", str(image), "--json")
    assert code == 0, err
    assert [row["dice"] for row in json.loads(out)["rows"]] == [1.0, 1.0]


def test_reference_places_the_contours_of_an_rtstruct(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique", n_segments=2)
    labelmap = segio.write(segmentation, tmp_path / "a.seg.nrrd")[0]
    series = reference_series(segmentation.require_geometry(), tmp_path / "ct")
    rtstruct = segio.write(segmentation, tmp_path / "rt.dcm", reference=series)[0]
    code, out, err = _run(str(labelmap), str(rtstruct), "-r", str(series), "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["matched_by"] for r in rows] == ["name", "name"]
    assert all(r["dice"] > 0.5 for r in rows)
