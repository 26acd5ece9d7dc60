"""``segio convert`` editing options, several sources, --split, --report, and the ids of
``segio info``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segio
from segio.cli import cli
from segio.cli.convert import FLATTEN_CHOICES
from segio.model import Segmentation
from segio.operations import FLATTEN_RULES
from segio.testing.synthetic import small_segmentation

COMMA = "Neoplasm, Primary"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    seg = small_segmentation(kind="oblique", overlapping=True)
    seg.segments["Segment_4"].name = COMMA
    seg.segments["Segment_2"].name = "a=b"
    return segio.write(seg, tmp_path / "s.seg.nrrd")[0]


def _run(*args: str | Path) -> tuple[int, str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # printed by the command, not raised by pytest
        result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _names(path: Path) -> list[str]:
    return [s.name for s in segio.read(path).segments.values()]


def test_segments_takes_ids_names_with_commas_lists_and_repeats(
    sample: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.seg.nrrd"
    for args, expected in (
        (["-s", COMMA], [COMMA]),
        (["-s", "spleen,liver"], ["spleen", "liver"]),
        (["-s", "aorta", "-s", COMMA, "-s", "Segment_1"], ["aorta", COMMA, "liver"]),
        (["-s", "layer:1:label:1"], ["spleen"]),
    ):
        code, _, err = _run("convert", sample, out, "--force", *args)
        assert code == 0, err
        assert _names(out) == expected


def test_an_unknown_or_ambiguous_key_is_one_line_with_the_way_out(
    sample: Path, tmp_path: Path
) -> None:
    code, _, err = _run("convert", sample, tmp_path / "o.seg.nrrd", "-s", "Neoplasm")
    assert code == 1 and err.count("\n") == 1
    assert f"did you mean '{COMMA}'" in err and "segio info" in err
    code, _, err = _run("convert", sample, tmp_path / "o.seg.nrrd", "-s", "label:1")
    assert code == 1 and "layer:0:label:1" in err
    assert not (tmp_path / "o.seg.nrrd").exists()


def test_drop_rename_colour_and_relabel(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.nii.gz"
    code, _, err = _run(
        "convert",
        sample,
        out,
        "--drop",
        "aorta",
        "--rename",
        "a=b=kidney",  # the key holds '=': split at the last one
        "--rename",
        f"{COMMA}=tumour",
        "--color",
        "liver=#ff0000",
        "--color",
        "spleen=0,128,255",
        "--relabel",
        "liver=10",
        "--relabel",
        "a=b=11",
    )
    assert code == 0, err
    back = segio.read(out)
    assert _names(out) == ["liver", "kidney", "spleen", "tumour"]
    liver, kidney, spleen, _ = back.segments.values()
    assert liver.color == (1.0, 0.0, 0.0) and spleen.color == (0.0, 128 / 255, 1.0)
    assert (liver.label_value, kidney.label_value) == (10, 11)
    original = segio.read(sample)
    np.testing.assert_array_equal(back.mask("liver"), original.mask("liver"))


def test_option_mistakes_are_one_line(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.nii.gz"
    for args, said in (
        (["--rename", "liver"], "is not KEY=VALUE"),
        (["--color", "liver=red"], "neither #rrggbb nor r,g,b"),
        (["--relabel", "liver=2"], "would both have label 2 in layer 0"),
        (["--relabel", "liver=x"], "not a whole number"),
        (["--rename", "liver=a", "--rename", "liver=b"], "names 'liver' twice"),
        (["--pad", "1,2"], "is not N or I,J,K"),
    ):
        code, _, err = _run("convert", sample, out, *args)
        assert code == 1 and err.startswith("segio: error: ") and said in err, (args, err)
        assert "Traceback" not in err
    assert not out.exists()


def test_flatten_choices_are_the_library_s_rules() -> None:
    assert set(FLATTEN_CHOICES) == set(FLATTEN_RULES)


def test_flatten_and_relabel_table(sample: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.labels.csv"
    table.write_text("LabelValue,Name\n5,liver\n6,spleen\n7,aorta\n", encoding="utf-8")
    out = tmp_path / "o.nii.gz"
    code, _, err = _run("convert", sample, out, "--flatten", "smallest", "--relabel-table", table)
    assert code == 0, err
    assert "no entry for 2 segment(s)" in err and "voxels lost" in err
    back = segio.read(out)
    assert len(back.layers) == 1
    values = {s.name: s.label_value for s in back.segments.values()}
    assert values == {"liver": 5, "a=b": 8, "spleen": 6, COMMA: 9, "aorta": 7}


def test_several_sources_are_merged(sample: Path, tmp_path: Path) -> None:
    other = small_segmentation(kind="oblique", n_segments=2, seed=3)
    second = tmp_path / "b.nii.gz"
    segio.write(other, second)
    out = tmp_path / "m.seg.nrrd"
    code, out_text, err = _run("convert", sample, second, out)
    assert code == 0, err
    assert "m.seg.nrrd" in out_text
    merged = segio.read(out)
    assert len(merged.segments) == 7
    assert len(set(merged.segments)) == 7  # ids made unique
    for key, segment in other.segments.items():
        twin = [s for s in merged.segments.values() if s.name == segment.name][-1]
        np.testing.assert_array_equal(merged.mask(twin.id), other.mask(key))


def test_split_names_files_safely_and_uniquely(tmp_path: Path) -> None:
    seg = small_segmentation(kind="oblique", n_segments=5)
    names = ["../../x", "a/b", ".hidden", "Liver", "liver"]
    for segment, name in zip(seg.segments.values(), names, strict=True):
        segment.name = name
    source = segio.write(seg, tmp_path / "s.seg.nrrd")[0]
    folder = tmp_path / "out"
    folder.mkdir()
    code, _, err = _run("convert", source, folder / "{name}.seg.nrrd", "--split")
    assert code == 0, err
    made = sorted(p.name for p in folder.iterdir())
    assert made == sorted(
        ["____x.seg.nrrd", "a_b.seg.nrrd", "hidden.seg.nrrd", "Liver.seg.nrrd", "liver_2.seg.nrrd"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s.seg.nrrd"]
    piece = segio.read(folder / "a_b.seg.nrrd")
    assert [s.name for s in piece.segments.values()] == ["a/b"]
    np.testing.assert_array_equal(piece.mask("a/b"), seg.mask("Segment_2"))


def test_split_into_a_folder_by_id_and_label(sample: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pieces"
    folder.mkdir()
    code, _, err = _run("convert", sample, folder, "--split")
    assert code == 1 and "needs the output format" in err and "--to" in err
    code, _, err = _run("convert", sample, folder, "--split", "--to", "nifti")
    assert code == 0, err
    assert (folder / "liver.nii.gz").is_file() and (folder / "a=b.nii.gz").is_file()
    code, _, err = _run(
        "convert", sample, tmp_path / "p_{id}_{label}.nrrd", "--split", "-s", "aorta"
    )
    assert code == 0, err
    assert (tmp_path / "p_Segment_5_1.nrrd").is_file()


def test_split_writes_all_pieces_or_none(sample: Path, tmp_path: Path) -> None:
    (tmp_path / "spleen.seg.nrrd").write_bytes(b"keep me")
    code, _, err = _run("convert", sample, tmp_path / "{name}.seg.nrrd", "--split")
    assert code == 1 and "exists already" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.seg.nrrd", "spleen.seg.nrrd"]
    for target, said in (
        (tmp_path / "plain.seg.nrrd", "placeholder"),
        (tmp_path / "{nom}.seg.nrrd", "unknown placeholder"),
        (tmp_path / "{name}" / "x.seg.nrrd", "not the folder"),
    ):
        code, _, err = _run("convert", sample, target, "--split")
        assert code == 1 and said in err, err


def test_grid_options_reach_the_resampler(sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.seg.nrrd"
    code, _, err = _run("convert", sample, out, "--crop", "--pad", "2", "--pack-layers")
    assert code == 0, err
    original, back = segio.read(sample), segio.read(out)
    boxes = [b for b in original.extents().values() if b is not None]
    size = [max(b[a][1] for b in boxes) - min(b[a][0] for b in boxes) + 1 for a in range(3)]
    assert back.require_geometry().shape == tuple(n + 4 for n in size)
    assert back.voxel_counts() == original.voxel_counts()
    code, _, err = _run("convert", sample, out, "--force", "--resample", "1.4,1.8,5")
    assert code == 0, err
    np.testing.assert_allclose(segio.read(out).require_geometry().spacing, [1.4, 1.8, 5.0])


def test_json_lists_the_files_written(sample: Path, tmp_path: Path) -> None:
    code, out, err = _run("convert", sample, tmp_path / "o.nii.gz", "--json")
    assert code == 0, err
    assert json.loads(out)["written"] == [str(tmp_path / "o.json"), str(tmp_path / "o.nii.gz")]


def test_info_shows_ids_in_the_table_and_the_plain_lines(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segio.cli import render

    code, out, _ = _run("info", sample)
    assert code == 0
    for key in segio.read(sample).segments:
        assert key in out
    monkeypatch.setattr(render, "PLAIN_ABOVE", 0)
    code, out, _ = _run("info", sample)
    lines = out.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("id "))
    assert lines[header + 1].split()[:2] == ["Segment_1", "liver"]


# -- the conversion report ----------------------------------------------------------------


def _report(*args: str | Path) -> list[dict[str, object]]:
    code, out, err = _run(*args, "--report", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["written"]
    rows: list[dict[str, object]] = document["report"]
    return rows


def test_report_compares_the_edited_input_with_the_file(sample: Path, tmp_path: Path) -> None:
    rows = _report("convert", sample, tmp_path / "o.nii.gz", "--drop", "aorta")
    assert [row["segment"] for row in rows] == ["liver", "a=b", "spleen", COMMA]
    for row in rows:
        assert row["dice"] == pytest.approx(1.0)
        assert row["volume_before_mm3"] == pytest.approx(row["volume_after_mm3"])
    rows = _report("convert", sample, tmp_path / "f.nii.gz", "--flatten", "smallest")
    segmentation: Segmentation = segio.read(sample)
    losing = [row for row in rows if float(row["dice"]) < 1.0]  # type: ignore[arg-type]
    assert losing and len(rows) == len(segmentation.segments)


def test_report_table_is_printed(sample: Path, tmp_path: Path) -> None:
    code, out, err = _run("convert", sample, tmp_path / "o.nii.gz", "--report", "-s", "liver")
    assert code == 0, err
    assert "wrote" in out and "liver" in out and "conversion report" in out
