"""``segio info`` reads a file as ``segio convert`` would: the same ``-I`` reader options
and ``--reference`` (issue 12, item 8), so what info shows is what convert will use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner

import segio
from segio.cli import cli
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation


def _info(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, ["info", *args, "--json"])
    return (
        result.exit_code,
        json.loads(result.stdout) if result.exit_code == 0 else None,
        (result.stderr),
    )


def test_info_takes_a_label_table_as_convert_does(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique")
    image = segio.write(segmentation, tmp_path / "scan.nii.gz", sidecar="none")[0]
    table = tmp_path / "names elsewhere.csv"
    values = sorted({s.label_value for s in segmentation.segments.values()})
    table.write_text(
        "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n"
        + "".join(f"{v},organ {v},10,20,30,255\n" for v in values),
        encoding="utf-8",
    )
    code, summary, err = _info(str(image), "-I", f"labels={table}")
    assert code == 0, err
    assert [s["name"] for s in summary["segments"]] == [f"organ {v}" for v in values]
    code, summary, err = _info(str(image))
    assert code == 0, err
    assert [s["name"] for s in summary["segments"]] == [f"Segment_{v}" for v in values]


def test_info_takes_the_reference_grid_as_convert_does(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique")
    mesh = segio.write(segmentation, tmp_path / "s.ply")[0]
    grid = segmentation.require_geometry()
    ct = reference_series(grid, tmp_path / "ct")
    code, summary, err = _info(str(mesh))
    assert code == 0, err
    assert summary["reference_geometry"] is None
    for args in (["--reference", str(ct)], ["-I", f"reference={ct}"]):
        code, summary, err = _info(str(mesh), *args)
        assert code == 0, err
        reference = summary["reference_geometry"]  # the grid the surfaces will be voxelised on
        assert reference["size_ijk"] == list(grid.size_ijk)
        assert np.allclose(reference["origin_lps"], grid.origin, atol=1e-4)


def test_info_refuses_an_option_the_reader_does_not_take(tmp_path: Path) -> None:
    path = segio.write(small_segmentation(), tmp_path / "s.seg.nrrd")[0]
    result = CliRunner().invoke(cli, ["info", str(path), "-I", "colour=blue"])
    assert result.exit_code != 0 and "colour" in result.stderr
    result = CliRunner().invoke(cli, ["info", str(path), "--reference", str(tmp_path)])
    assert result.exit_code != 0 and "reference" in result.stderr
