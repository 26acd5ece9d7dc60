"""Every .seg.nrrd layout 3D Slicer and SlicerRT wrote lands where its writer put it.

The files and their truth come from ``fixtures/seg_nrrd_layouts.py`` (built byte by byte
as each writer laid them out, never by segio): for each segment, the LPS centroid of its
voxels, the LPS centres of two named voxels, its name, id and colour. A mirrored or
shifted read moves the centroid; an anonymous read loses the names.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio.model import Segmentation
from segio.testing.compare import assert_same_segmentation

LAYOUTS = Path(__file__).resolve().parents[2] / "fixtures" / "seg-nrrd" / "layouts"
EXPECTED: dict[str, Any] = json.loads((LAYOUTS / "expected.json").read_text(encoding="utf-8"))


def _read(path: Path) -> tuple[Segmentation, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segmentation = segio.read(path)
    return segmentation, [str(w.message) for w in caught]


def _space_warnings(messages: list[str]) -> list[str]:
    return [m for m in messages if "'space'" in m]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_layout_lands_where_its_writer_put_it(name: str) -> None:
    segmentation, _ = _read(LAYOUTS / name)
    geometry = segmentation.require_geometry()
    to_index = np.linalg.inv(geometry.ijk_to_lps)
    counts = segmentation.voxel_counts()
    assert [s.name for s in segmentation.segments.values()] == [
        s["name"] for s in EXPECTED[name]["segments"]
    ]
    for segment, want in zip(
        segmentation.segments.values(), EXPECTED[name]["segments"], strict=True
    ):
        assert segment.id == want["id"]
        assert np.allclose(segment.color, want["color"], atol=1e-9), segment.name
        assert (segment.layer, segment.label_value) == (want["layer"], want["label"])
        assert counts[segment.id] == want["voxels"], segment.name
        mask = segmentation.mask(segment.id)
        kji = np.argwhere(mask)
        lps = (geometry.ijk_to_lps[:3, :3] @ kji[:, ::-1].T).T + geometry.ijk_to_lps[:3, 3]
        assert np.allclose(lps.mean(axis=0), want["centroid_lps"], atol=1e-6), segment.name
        for label, point in want["points_lps"].items():
            ijk = (to_index @ [*point, 1.0])[:3]
            assert np.allclose(ijk, np.round(ijk), atol=1e-6), (segment.name, label)
            i, j, k = (int(v) for v in np.round(ijk))
            assert mask[k, j, i], (segment.name, label)
        if "type" in want:
            assert segment.terminology is not None
            assert list(segment.terminology.type.key) == want["type"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_ambiguous_space_says_what_was_assumed(name: str) -> None:
    _, messages = _read(LAYOUTS / name)
    said = _space_warnings(messages)
    want = EXPECTED[name]["warning"]
    if want is None:
        assert not said, said
    else:
        assert len(said) == 1 and want in said[0] and str(LAYOUTS / name) in said[0], said


def test_slicerrt_keys_give_names_colours_and_the_display_colour() -> None:
    segmentation, _ = _read(LAYOUTS / "slicerrt-2015-4d-spatial.seg.nrrd")
    liver = segmentation.segments["Liver"]
    # 0DisplayedColor (what the user saw, with its 3D opacity) wins over 0DefaultColor.
    assert liver.color == (0.9, 0.4, 0.3)
    assert liver.properties["Slicer.DisplayedColor"] == "0.9 0.4 0.3 0.8"
    assert segmentation.contained_representations[0].value == "Binary labelmap"
    assert segmentation.conversion_parameters.value("Smoothing factor") == "0.5"
    assert "seg-nrrd" not in segmentation.extras  # every SlicerRT key was understood


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_layout_is_rewritten_as_current_slicer_writes(name: str, tmp_path: Path) -> None:
    original, _ = _read(LAYOUTS / name)
    written = segio.write(original, tmp_path / "now.seg.nrrd")[0]
    back, messages = _read(written)
    assert not _space_warnings(messages)  # LPS, said so
    assert_same_segmentation(original, back)
