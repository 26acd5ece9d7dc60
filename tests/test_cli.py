"""The segio command line: convert, info, formats, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segio
from segio.analysis.summary import summarize
from segio.cli import cli
from segio.contours import Contour, ContourKind, PlanarContours
from segio.model import Segment, Segmentation
from segio.representations import Representation
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    return segio.write(
        small_segmentation(kind="oblique", overlapping=True), tmp_path / "s.seg.nrrd"
    )[0]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_convert_round_trip(sample: Path, tmp_path: Path) -> None:
    code, out, _ = _run("convert", str(sample), str(tmp_path / "s.nii.gz"))
    assert code == 0
    assert "s.nii.gz" in out and "s.json" in out
    code, _, _ = _run("convert", str(tmp_path / "s.nii.gz"), str(tmp_path / "back.seg.nrrd"))
    assert code == 0
    assert_same_segmentation(segio.read(sample), segio.read(tmp_path / "back.seg.nrrd"))


def test_convert_selects_and_orders_segments(sample: Path, tmp_path: Path) -> None:
    names = [s.name for s in segio.read(sample).segments.values()]
    picked = [names[2], names[0]]
    code, _, err = _run(
        "convert", str(sample), str(tmp_path / "p.seg.nrrd"), "-s", ",".join(picked)
    )
    assert code == 0, err
    back = segio.read(tmp_path / "p.seg.nrrd")
    assert [s.name for s in back.segments.values()] == picked


def test_convert_pack_layers(sample: Path, tmp_path: Path) -> None:
    code, _, _ = _run("convert", str(sample), str(tmp_path / "p.seg.nrrd"), "--pack-layers")
    assert code == 0
    packed = segio.read(tmp_path / "p.seg.nrrd")
    assert len(packed.layers) <= len(segio.read(sample).layers)
    assert_same_segmentation(segio.read(sample), packed)


def test_existing_output_needs_force(sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.seg.nrrd"
    target.write_bytes(b"keep me")
    code, _, err = _run("convert", str(sample), str(target))
    assert code == 1
    assert err.startswith("segio: error: ") and "--force" in err
    assert "Traceback" not in err
    assert target.read_bytes() == b"keep me"
    assert _run("convert", str(sample), str(target), "--force")[0] == 0


def test_writer_options_pass_through(sample: Path, tmp_path: Path) -> None:
    code, out, err = _run(
        "convert",
        str(sample),
        str(tmp_path / "x.nii.gz"),
        "-O",
        "sidecar=slicer-csv",
        "-O",
        "layers=split",
    )
    assert code == 0, err
    assert "x_layer0.labels.csv" in out
    code, _, err = _run("convert", str(sample), str(tmp_path / "y.nii.gz"), "-O", "bogus=1")
    assert code == 1 and "does not take the write option" in err


def test_missing_input_is_one_line(tmp_path: Path) -> None:
    code, _, err = _run("info", str(tmp_path / "nope.seg.nrrd"))
    assert code == 1
    assert err.strip() == f"segio: error: {tmp_path / 'nope.seg.nrrd'}: no such file or folder"


def test_info_json(sample: Path) -> None:
    code, out, _ = _run("info", str(sample), "--json")
    assert code == 0
    summary = json.loads(out)
    segmentation = segio.read(sample)
    assert [s["name"] for s in summary["segments"]] == [
        s.name for s in segmentation.segments.values()
    ]
    assert summary["overlapping"] is True
    assert [s["voxels"] for s in summary["segments"]] == list(segmentation.voxel_counts().values())
    assert summary["geometry"]["size_ijk"] == list(segmentation.require_geometry().size_ijk)


def test_info_table_lists_every_segment(sample: Path) -> None:
    code, out, _ = _run("info", str(sample))
    assert code == 0
    for segment in segio.read(sample).segments.values():
        assert segment.name in out


def test_formats_lists_builtins() -> None:
    code, out, _ = _run("formats", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0
    assert {"seg-nrrd", "nrrd", "nifti"} <= set(rows)
    assert rows["nifti"]["installed"] is True
    assert rows["nifti"]["install"] == "pip install 'segio[nifti]'"
    assert "sidecar" in rows["nifti"]["write_options"]
    code, out, _ = _run("formats")
    assert code == 0 and "seg-nrrd" in out


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "segio", "--version"], capture_output=True, text=True, check=True
    )
    assert segio.__version__ in result.stdout


def test_info_on_contours_counts_contours() -> None:
    square = [[0, 0, 1.0], [4, 0, 1.0], [4, 4, 1.0], [0, 4, 1.0]]
    contours = PlanarContours([Contour(square), Contour(square[:1], kind=ContourKind.POINT)])
    segmentation = Segmentation(
        [Segment("s", "skin")],
        source_representation=Representation.PLANAR_CONTOURS,
        contours={"s": contours},
    )
    summary = summarize(segmentation)
    assert summary["segments"][0]["contours"] == 1
    assert summary["segments"][0]["annotations"] == 1


def test_conversion_parameters_from_the_command_line(sample: Path, tmp_path: Path) -> None:
    """``-P`` sets a Slicer conversion parameter: unsmoothed surfaces of a small oblique
    segmentation go back onto the grid exactly; the default smoothing shrinks them."""
    original = segio.read(sample)
    for smoothing, expect_exact in (("0", True), (None, False)):
        out = tmp_path / f"s{smoothing}.ply"
        extra = ["-P", f"Smoothing factor={smoothing}"] if smoothing else []
        assert _run("convert", str(sample), str(out), *extra)[0] == 0
        back = tmp_path / f"back{smoothing}.seg.nrrd"
        ref = tmp_path / "ct"
        if not ref.exists():
            reference_series(original.require_geometry(), ref)
        code, _, err = _run("convert", str(out), str(back), "--reference", str(ref))
        assert code == 0, err
        again = segio.read(back)
        same = all(
            (original.mask(s.id) == again.mask(t.id)).all()
            for s, t in zip(original.segments.values(), again.segments.values(), strict=True)
        )
        assert same is expect_exact
    code, _, err = _run("convert", str(sample), str(tmp_path / "x.ply"), "-P", "no-equals")
    assert code != 0 and "not name=value" in err


def test_info_prints_names_from_the_file_literally(tmp_path: Path) -> None:
    """A name is text, never rich markup (``[/bold]`` crashed ``info``) nor a terminal
    escape sequence."""
    segmentation = small_segmentation()
    first, second, *_ = segmentation.segments.values()
    first.name = "[/bold] closing tag"
    second.name = "[red]red[/red] \x1b[31mansi\x1b]0;title\x07"
    path = segio.write(segmentation, tmp_path / "markup.seg.nrrd")[0]
    code, out, err = _run("info", str(path))
    assert code == 0, err
    assert "[/bold] closing tag" in out
    assert "[red]red[/red] \\x1b[31mansi\\x1b]0;title\\x07" in out
    assert "\x1b" not in out and "\x07" not in out


def test_error_messages_escape_control_characters(tmp_path: Path) -> None:
    missing = tmp_path / "evil\x1b[2Jname.seg.nrrd"
    code, _, err = _run("info", str(missing))
    assert code == 1
    assert "\x1b" not in err and "evil\\x1b[2Jname" in err


def test_info_on_65535_labels_answers_in_seconds(tmp_path: Path) -> None:
    """Every label listed, as aligned plain lines (rich took 44 s to measure such a table)."""
    import time

    nibabel = pytest.importorskip("nibabel")
    labels = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)
    nibabel.save(nibabel.Nifti1Image(labels, np.eye(4)), tmp_path / "labels.nii.gz")
    started = time.perf_counter()
    code, out, _ = _run("info", str(tmp_path / "labels.nii.gz"))
    assert code == 0
    assert time.perf_counter() - started < 20
    rows = out.splitlines()
    assert sum(row.startswith("Segment_") for row in rows) == 65535
    assert rows[-1].split()[:4] == ["Segment_65535", "Segment_65535", "0", "65535"]  # id, name


def test_convert_refuses_a_reference_that_misses_and_allow_empty_writes_it(
    sample: Path, tmp_path: Path
) -> None:
    """Issue 12: a SEG on a series far from the segmentation used to be written all empty
    with exit status 0; now it is one error naming the reference, and --allow-empty."""
    geometry = segio.read(sample).require_geometry()
    matrix = geometry.ijk_to_lps.copy()
    matrix[:3, 3] += (0.0, 0.0, 500.0)
    far = reference_series(type(geometry)(matrix, geometry.shape), tmp_path / "far")
    out = tmp_path / "s.seg.dcm"
    code, _, err = _run("convert", str(sample), str(out), "--reference", str(far))
    assert code == 1 and not out.exists()
    assert err.count("\n") == 1 and "does not overlap the segmentation" in err
    assert "far" in err and "--allow-empty" in err
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # printed by the command, not raised by pytest
        code, _, err = _run(
            "convert", str(sample), str(out), "--reference", str(far), "--allow-empty"
        )
    assert code == 0 and out.exists() and "written empty as asked" in err


def test_convert_reference_is_the_grid_of_a_labelmap_output(sample: Path, tmp_path: Path) -> None:
    """NIfTI takes no reference option: --reference is the grid of the output."""
    geometry = segio.read(sample).require_geometry()
    bigger = geometry.cropped((-1, -2, -3), (geometry.shape[0] + 2, 20, 20))
    ref = reference_series(bigger, tmp_path / "ct")
    out = tmp_path / "s.nii.gz"
    code, _, err = _run("convert", str(sample), str(out), "-r", str(ref))
    assert code == 0, err
    assert "resampled" not in err  # the same lattice: padded by index
    back = segio.read(out)
    assert back.require_geometry().is_close(bigger, 1e-4)
    assert sum(back.voxel_counts().values()) == sum(segio.read(sample).voxel_counts().values())
