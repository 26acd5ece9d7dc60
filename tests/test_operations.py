"""Segment editing (segio.operations): keys, every operation, the Edits plan, and round
trips of edited segmentations through seg.nrrd, NIfTI + sidecars and DICOM SEG.

Expected voxels are computed independently of the operation under test: per-segment
masks painted in a plain order, arrays placed by slicing.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.labels.tables import LabelEntry, write_label_table
from segio.model import Layer, Segment, Segmentation
from segio.operations import (
    FLATTEN_RULES,
    Edits,
    drop,
    flatten,
    merge,
    parse_color,
    recolor,
    relabel,
    relabel_from_table,
    rename,
    resolve,
    select,
    set_terminology,
    split,
)
from segio.operations.merge import packed
from segio.points import PointAnnotation
from segio.representations import Representation
from segio.surfaces import Surface
from segio.terminology import Code, Terminology
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, small_segmentation

COMMA = "Neoplasm, Primary"
TUMOUR = Terminology(
    Code("SCT", "49755003", "Morphologically Altered Structure"),
    Code("SCT", "86049000", "Neoplasm, Primary"),
)


def _sample() -> Segmentation:
    """The oblique overlapping case (3 layers), one segment named with a comma, a point."""
    seg = small_segmentation(kind="oblique", overlapping=True)
    seg.segments["Segment_4"].name = COMMA
    seg.points.append(PointAnnotation("tip", [1.0, 2.0, 3.0]))
    return seg


def _masks(seg: Segmentation) -> dict[str, np.ndarray]:
    return {key: seg.mask(key).copy() for key in seg.segments}


# -- keys ---------------------------------------------------------------------------------


def test_keys_name_ids_names_with_commas_and_labels() -> None:
    seg = _sample()
    assert resolve(seg, "Segment_2").name == "kidney_left"
    assert resolve(seg, COMMA).id == "Segment_4"
    assert resolve(seg, "layer:1:label:1").name == "spleen"
    assert resolve(seg, "label:2").name == "kidney_left"
    with pytest.raises(ValidationError, match="layer:0:label:1"):
        resolve(seg, "label:1")  # liver, spleen and aorta all have label 1
    with pytest.raises(ValidationError, match=r"did you mean 'liver'.*segio info"):
        resolve(seg, "livr")
    with pytest.raises(ValidationError, match="did you mean 'liver'"):
        resolve(seg, "Liver")


def test_a_shared_name_is_refused_with_the_ids() -> None:
    seg = _sample()
    seg.segments["Segment_5"].name = "liver"
    with pytest.raises(
        ValidationError, match=r"2 segments are named 'liver'.*Segment_1.*Segment_5"
    ):
        select(seg, ["liver"])
    assert list(select(seg, ["Segment_5"]).segments) == ["Segment_5"]


def test_a_key_list_splits_on_commas_only_when_the_whole_text_is_no_key() -> None:
    seg = _sample()
    assert [s.name for s in select(seg, [COMMA]).segments.values()] == [COMMA]
    picked = select(seg, "spleen, liver")
    assert [s.name for s in picked.segments.values()] == ["spleen", "liver"]
    with pytest.raises(ValidationError, match="'nope'"):
        select(seg, "spleen,nope")


def test_colours_parse_in_three_spellings() -> None:
    assert parse_color("#ff8000") == (1.0, 128 / 255, 0.0)
    assert parse_color("255,128,0") == (1.0, 128 / 255, 0.0)
    assert parse_color((1.0, 0.5, 0.0)) == (1.0, 0.5, 0.0)
    for bad in ("red", "1.0,0.5,0", "256,0,0", "#ff80"):
        with pytest.raises(ValidationError, match="colour"):
            parse_color(bad)


# -- select, drop, rename, recolour --------------------------------------------------------


def test_select_keeps_points_order_and_only_the_selected_voxels() -> None:
    seg = _sample()
    masks = _masks(seg)
    picked = select(seg, ["aorta", "Segment_1"])
    assert list(picked.segments) == ["Segment_5", "Segment_1"]
    assert [p.name for p in picked.points] == ["tip"]  # the old select_segments lost them
    assert len(picked.layers) == 2  # the layers of kidney and spleen went
    for key in picked.segments:
        np.testing.assert_array_equal(picked.mask(key), masks[key])
    union = np.zeros_like(masks["Segment_1"])
    for layer in picked.layers:
        union |= layer.array > 0
    np.testing.assert_array_equal(union, masks["Segment_1"] | masks["Segment_5"])
    assert list(seg.segments) == [f"Segment_{n}" for n in range(1, 6)]  # input untouched
    np.testing.assert_array_equal(seg.mask("Segment_2"), masks["Segment_2"])
    assert [p.name for p in segio.select_segments(seg, ["liver"]).points] == ["tip"]


def test_drop_clears_the_voxels_and_keeps_the_rest_in_order() -> None:
    seg = _sample()
    masks = _masks(seg)
    kept = drop(seg, ["kidney_left", COMMA])
    assert list(kept.segments) == ["Segment_1", "Segment_3", "Segment_5"]
    assert not np.isin(kept.layers[0].array, [2, 3]).any()
    for key in kept.segments:
        np.testing.assert_array_equal(kept.mask(key), masks[key])
    empty = drop(seg, list(seg.segments))
    assert not empty.segments and empty.geometry == seg.geometry


def test_select_and_rename_work_on_surfaces_and_contours() -> None:
    tetra = Surface([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3]])
    seg = Segmentation(
        [Segment("a", "A"), Segment("b", COMMA)],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={"a": tetra, "b": tetra},
    )
    picked = recolor(rename(select(seg, [COMMA]), {"b": "tumour"}), {"tumour": "#00ff00"})
    assert set(picked.surfaces) == {"b"}
    assert picked.segments["b"].name == "tumour" and picked.segments["b"].color == (0, 1, 0)
    assert seg.segments["b"].name == COMMA


def test_rename_refuses_an_empty_name_and_warns_about_a_shared_one() -> None:
    seg = _sample()
    with pytest.raises(ValidationError, match="non-empty"):
        rename(seg, {"liver": " "})
    with pytest.warns(UserWarning, match="both named 'spleen'"):
        renamed = rename(seg, {"liver": "spleen"})
    assert renamed.segments["Segment_1"].name == "spleen"
    assert seg.segments["Segment_1"].name == "liver"


# -- relabel ------------------------------------------------------------------------------


def test_relabel_keeps_layers_swaps_and_widens_the_type() -> None:
    seg = _sample()
    masks = _masks(seg)
    done = relabel(seg, {"liver": 2, "kidney_left": 1, "spleen": 300})
    assert [(s.layer, s.label_value) for s in done.segments.values()] == [
        (0, 2),
        (0, 1),
        (1, 300),
        (0, 3),
        (2, 1),
    ]
    assert done.layers[1].array.dtype == np.uint16
    for key in done.segments:
        np.testing.assert_array_equal(done.mask(key), masks[key])
    assert seg.segments["Segment_1"].label_value == 1


def test_relabel_refuses_a_collision_in_a_layer_but_not_across_layers() -> None:
    seg = _sample()
    with pytest.raises(ValidationError, match=r"'liver'.*'kidney_left'.*label 2 in layer 0"):
        relabel(seg, {"liver": 2})
    relabel(seg, {"spleen": 7, "aorta": 7})  # separate layers
    with pytest.raises(ValidationError, match="outside 1"):
        relabel(seg, {"liver": 0})


def test_relabel_clears_voxels_no_segment_claims() -> None:
    seg = _sample()
    seg.layers[0].array[0, 0, 0] = 9  # an orphan value
    done = relabel(seg, {"liver": 9})
    assert done.layers[0].array[0, 0, 0] == 0


def test_relabel_from_a_table_matches_terminology_then_name(tmp_path: Path) -> None:
    seg = _sample()
    spleen = seg.segments["Segment_3"].terminology
    table = tmp_path / "labels.labels.csv"
    write_label_table(
        table,
        [
            LabelEntry(10, "Spleen (coded)", terminology=spleen),
            LabelEntry(11, "liver"),
            LabelEntry(12, "Kidney_Left"),  # case differs: still the one match
            LabelEntry(20, "aorta"),
        ],
        format="slicer-csv",
    )
    with pytest.warns(UserWarning, match=rf"no entry for 1 segment.*'{COMMA}' -> 21"):
        done = relabel_from_table(seg, table)
    values = {s.name: s.label_value for s in done.segments.values()}
    assert values == {"liver": 11, "kidney_left": 12, "spleen": 10, COMMA: 21, "aorta": 20}
    masks = _masks(seg)
    for key in done.segments:
        np.testing.assert_array_equal(done.mask(key), masks[key])


# -- flatten ------------------------------------------------------------------------------


def _painted(seg: Segmentation, rule: str) -> dict[str, np.ndarray]:
    """What each segment keeps, painted from the least preferred segment to the most."""
    order = list(seg.segments.values())
    counts = seg.voxel_counts()
    if rule == "first":
        ranked = order
    elif rule == "last":
        ranked = order[::-1]
    else:
        sign = 1 if rule == "smallest" else -1
        ranked = sorted(order, key=lambda s: (sign * counts[s.id], order.index(s)))
    owner = np.full(seg.require_geometry().shape, -1)
    for segment in reversed(ranked):
        owner[seg.mask(segment.id)] = order.index(segment)
    return {s.id: owner == n for n, s in enumerate(order)}


@pytest.mark.parametrize("rule", sorted(FLATTEN_RULES))
def test_flatten_gives_each_overlap_to_the_rule_s_segment(rule: str) -> None:
    seg = _sample()
    assert seg.overlaps()
    expected = _painted(seg, rule)
    before = seg.voxel_counts()
    with pytest.warns(UserWarning) as caught:
        flat = flatten(seg, rule)
    assert len(flat.layers) == 1 and not flat.overlaps()
    for key, mask in expected.items():
        np.testing.assert_array_equal(flat.mask(key), mask, err_msg=f"{rule}: {key}")
    lost = {key: before[key] - int(mask.sum()) for key, mask in expected.items()}
    text = " ".join(str(w.message) for w in caught)
    for key, count in lost.items():
        if count:
            assert f"{seg.segments[key].name!r} {count} of {before[key]}" in text
    values = [s.label_value for s in flat.segments.values()]
    assert len(set(values)) == len(values)


def test_flatten_smallest_keeps_a_structure_inside_a_big_one() -> None:
    geometry = grid("oblique")
    big = np.zeros(geometry.shape, bool)
    big[1:6, 2:11, 2:9] = True
    small = np.zeros(geometry.shape, bool)
    small[3, 5:7, 4:6] = True
    seg = Segmentation()
    seg.add_mask(big, "organ", geometry=geometry)
    seg.add_mask(small, "lesion")
    assert len(seg.layers) == 2
    with pytest.warns(UserWarning) as caught:
        kept = flatten(seg, "smallest")
    assert "'lesion' 1 -> 2" in str(caught[0].message)  # label 1 is the organ's
    assert f"'organ' 4 of {big.sum()}" in str(caught[1].message)
    np.testing.assert_array_equal(kept.mask("lesion"), small)
    np.testing.assert_array_equal(kept.mask("organ"), big & ~small)
    with pytest.warns(UserWarning) as caught:
        lost = flatten(seg, "first")
    assert "'lesion' 4 of 4 (now empty)" in str(caught[1].message)
    assert not lost.mask("lesion").any()
    with pytest.raises(ValidationError, match="unknown flatten rule"):
        flatten(seg, "biggest")


# -- merge and split ---------------------------------------------------------------------


def _one(geometry: Geometry, box: tuple[slice, ...], name: str, label: int = 1) -> Segmentation:
    array = np.zeros(geometry.shape, np.uint8)
    array[box] = label
    return Segmentation(
        [Segment("Segment_1", name, label_value=label)],
        [Layer(array, geometry)],
        points=[PointAnnotation(f"{name} point", [0.0, 0.0, 0.0])],
    )


def test_merge_on_one_lattice_is_exact_and_makes_ids_unique() -> None:
    big = grid("oblique", (8, 14, 12))
    a = _one(big, np.s_[1:4, 2:6, 3:7], "liver")
    inner = big.cropped((2, 3, 4), (5, 9, 6))  # on a's lattice, inside it
    b = _one(inner, np.s_[0:2, 0:4, 0:3], "spleen", label=5)
    merged = merge([a, b])
    assert merged.require_geometry().is_close(big)
    assert list(merged.segments) == ["Segment_1", "Segment_1_1"]
    assert [p.name for p in merged.points] == ["liver point", "spleen point"]
    expected = np.zeros(big.shape, bool)
    expected[2:4, 3:7, 4:7] = True  # b's box, moved by its crop offset
    np.testing.assert_array_equal(merged.mask("spleen"), expected)
    np.testing.assert_array_equal(merged.mask("liver"), a.mask("liver"))
    assert len(merged.layers) == 2  # they overlap: kept apart


def test_merge_of_grids_off_each_other_s_lattice_resamples_with_a_warning() -> None:
    a = _one(grid("axial", (10, 12, 12)), np.s_[2:8, 2:8, 2:8], "liver")
    shifted = grid("axial", (10, 12, 12))
    matrix = shifted.ijk_to_lps.copy()
    matrix[:3, 3] += [0.3, -0.3, 20.0]  # off the lattice, and beyond a
    b = _one(Geometry(matrix, shifted.shape), np.s_[1:5, 1:5, 1:5], "spleen")
    with pytest.warns(UserWarning, match="not on the lattice"):
        merged = merge([a, b])
    grid_m = merged.require_geometry()
    assert merged.voxel_counts() == {"Segment_1": 216, "Segment_1_1": 64}
    for name, source in (("liver", a), ("spleen", b)):
        centres = grid_m.ijk_to_points(np.argwhere(merged.mask(name))[:, ::-1])
        ijk = source.require_geometry().points_to_ijk(centres)
        k, j, i = np.round(ijk[:, ::-1]).astype(int).T
        assert source.mask("Segment_1")[k, j, i].all()


def test_packing_after_a_merge_is_the_model_s_first_fit() -> None:
    one = small_segmentation(kind="oblique", overlapping=True, n_segments=8)
    two = small_segmentation(kind="oblique", n_segments=6, seed=4)
    layers = [Layer(layer.array.copy(), layer.geometry) for layer in (*one.layers, *two.layers)]
    later = [
        Segment(f"{s.id}_b", s.name, layer=s.layer + len(one.layers), label_value=s.label_value)
        for s in two.segments.values()
    ]
    twice = Segmentation([*one.segments.values(), *later], layers)
    expected = twice.pack_layers()
    got = packed(twice.copy())
    assert len(got.layers) == len(expected.layers) < len(layers)
    for mine, theirs in zip(got.layers, expected.layers, strict=True):
        np.testing.assert_array_equal(mine.array, theirs.array)
    assert [(s.layer, s.label_value) for s in got.segments.values()] == [
        (s.layer, s.label_value) for s in expected.segments.values()
    ]


def test_merge_of_surfaces_stays_surfaces() -> None:
    tetra = Surface([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3]])
    one = Segmentation(
        [Segment("a", "A")],
        source_representation=Representation.CLOSED_SURFACE,
        surfaces={"a": tetra},
    )
    merged = merge([one, one])
    assert merged.source_representation is Representation.CLOSED_SURFACE
    assert list(merged.surfaces) == ["a", "a_1"]


def test_split_makes_one_segmentation_per_segment() -> None:
    seg = _sample()
    masks = _masks(seg)
    pieces = split(seg)
    assert [segment.id for segment, _ in pieces] == list(seg.segments)
    for segment, piece in pieces:
        assert list(piece.segments) == [segment.id] and len(piece.layers) == 1
        assert piece.segments[segment.id].label_value == seg.segments[segment.id].label_value
        np.testing.assert_array_equal(piece.layers[0].array > 0, masks[segment.id])
        assert [p.name for p in piece.points] == ["tip"]


# -- the plan -----------------------------------------------------------------------------


def test_a_plan_resolves_every_key_before_any_edit() -> None:
    seg = _sample()
    plan = Edits(
        select=["liver", COMMA, "spleen"],
        rename={"liver": "Liver", COMMA: "tumour"},
        recolor={COMMA: "#ff0000"},
        relabel={"liver": 9},
        flatten="first",
    )
    with pytest.warns(UserWarning, match="flatten"):
        named, edited = plan.run(seg)
    assert [s.name for s in named.segments.values()] == ["Liver", "tumour", "spleen"]
    np.testing.assert_array_equal(
        named.layers[0].array, select(seg, ["liver", COMMA]).layers[0].array
    )
    assert edited.segments["Segment_1"].label_value == 9
    assert edited.segments["Segment_4"].color == (1.0, 0.0, 0.0)
    assert len(edited.layers) == 1
    with pytest.raises(ValidationError, match=r"before --rename.*use 'liver'"):
        Edits(rename={"liver": "Liver"}, relabel={"Liver": 4}).apply(seg)
    with pytest.raises(ValidationError, match="cannot also be renamed"):
        Edits(drop=["liver"], rename={"liver": "x"}).apply(seg)


def test_a_plan_checks_its_options_before_any_file_is_read() -> None:
    assert Edits().is_empty and not Edits(select=["a"]).is_empty
    for bad in (
        {"flatten": "middle"},
        {"resample_mode": "cubic"},
        {"crop": -1},
        {"pad": (1, 2)},
        {"recolor": {"a": "blue"}},
        {"relabel": {"a": "x"}},
    ):
        with pytest.raises(ValidationError):
            Edits(**bad)


def test_a_plan_resamples_crops_and_pads_before_flattening() -> None:
    seg = _sample()
    plan = Edits(crop=1, pad=2, flatten="smallest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edited = plan.apply(seg)
    boxes = [b for b in seg.extents().values() if b is not None]
    low = np.maximum(np.min([[b[a][0] for a in range(3)] for b in boxes], axis=0) - 1, 0)
    high = np.minimum(
        np.max([[b[a][1] for a in range(3)] for b in boxes], axis=0) + 1,
        np.array(seg.require_geometry().shape) - 1,
    )
    assert edited.require_geometry().shape == tuple((high - low + 1 + 4).tolist())
    assert len(edited.layers) == 1


def test_set_terminology_codes_a_copy(tmp_path: Path) -> None:
    seg = _sample()
    table = tmp_path / "codes.labels.csv"
    write_label_table(table, [LabelEntry(3, COMMA, terminology=TUMOUR)], format="slicer-csv")
    with pytest.warns(UserWarning, match="does not cover 4 segment"):
        coded = set_terminology(seg, table)
    assert coded.segments[COMMA].terminology == TUMOUR
    assert seg.segments[COMMA].terminology != TUMOUR


# -- round trips --------------------------------------------------------------------------


@pytest.fixture
def edited(tmp_path: Path) -> Segmentation:
    """Every editing operation once: select (a comma name), drop, rename, recolour, codes
    from a table, flatten, relabel."""
    table = tmp_path / "codes.labels.csv"
    write_label_table(table, [LabelEntry(1, "tumour", terminology=TUMOUR)], format="slicer-csv")
    plan = Edits(
        select=["liver,kidney_left", COMMA, "spleen"],
        drop=["kidney_left"],
        rename={COMMA: "tumour", "liver": "Liver, left lobe"},
        recolor={"spleen": "#20c040", "liver": "10,20,30"},
        terminology=table,
        flatten="smallest",
        relabel={"spleen": 7},
    )
    with pytest.warns(UserWarning) as caught:
        result = plan.apply(_sample())
    said = " ".join(str(w.message) for w in caught)
    assert "does not cover 2 segment(s)" in said and "flatten" in said
    result.points.clear()  # kept by every edit (tested above); no format here holds them
    return result


@pytest.mark.parametrize(
    ("name", "options", "flags"),
    [
        ("e.seg.nrrd", {}, {}),
        ("e.nii.gz", {}, {}),
        (
            "e.nii.gz",
            {"sidecar": "slicer-csv"},  # colours as 0..255 integers, no ids or properties
            {"check_ids": False, "check_properties": False, "color_atol": 0.5 / 255},
        ),
    ],
)
def test_edits_round_trip_through_labelmap_files(
    edited: Segmentation, tmp_path: Path, name: str, options: dict[str, Any], flags: dict[str, Any]
) -> None:
    segio.write(edited, tmp_path / name, **options)
    back = segio.read(tmp_path / name)
    assert_same_segmentation(edited, back, check_layers=True, **flags)
    assert [s.name for s in back.segments.values()] == ["Liver, left lobe", "tumour", "spleen"]
    assert [s.label_value for s in back.segments.values()] == [1, 3, 7]
    tumour = list(back.segments.values())[1].terminology
    assert tumour is not None and tumour.matches(TUMOUR)
    assert list(back.segments.values())[2].color == parse_color("#20c040")


def test_edits_round_trip_through_dicom_seg(edited: Segmentation, tmp_path: Path) -> None:
    series = reference_series(edited.require_geometry(), tmp_path / "ct")
    segio.write(edited, tmp_path / "e.dcm", reference=series)
    back = segio.read(tmp_path / "e.dcm", reference=series)  # the full grid, empty slices too
    assert_same_segmentation(
        edited, back, check_ids=False, check_properties=False, color_atol=1 / 255
    )
    tumour = next(s for s in back.segments.values() if s.name == "tumour")
    assert tumour.terminology is not None and tumour.terminology.matches(TUMOUR)
