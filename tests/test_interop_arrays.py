"""In-memory adapters (issue 17): numpy arrays, nibabel and SimpleITK images, MONAI dicts.

Round trips must keep voxels, geometry (to 1e-6 mm), names, colours and codes wherever the
library has a place for them; the libraries' own readers, on the same files, must agree
with segio about where every voxel is.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk  # noqa: N813

import segio
from segio.errors import GeometryError, ValidationError
from segio.geometry import Geometry
from segio.interop import (
    from_monai,
    from_nibabel,
    from_numpy,
    from_simpleitk,
    to_monai,
    to_nibabel,
    to_numpy,
    to_simpleitk,
)
from segio.io import select_segments
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.testing.synthetic import grid, small_segmentation


def _same(a: Segmentation, b: Segmentation, *, names: bool = True, atol: float = 1e-6) -> None:
    """Equal voxels per segment, same grid; same names, colours and codes if ``names``."""
    assert a.require_geometry().is_close(b.require_geometry(), atol=atol)
    assert len(a.segments) == len(b.segments)
    for left, right in zip(a.segments.values(), b.segments.values(), strict=True):
        np.testing.assert_array_equal(a.mask(left.id), b.mask(right.id), err_msg=left.name)
        if names:
            assert (left.name, left.color, left.terminology) == (
                right.name,
                right.color,
                right.terminology,
            )


@pytest.mark.parametrize("axes", ["kji", "ijk"])
@pytest.mark.parametrize("space", ["LPS", "RAS"])
@pytest.mark.parametrize("kind", ["oblique", "anisotropic", "lps_flipped"])
def test_numpy_round_trip_is_lossless(axes: Any, space: Any, kind: str) -> None:
    seg = small_segmentation(kind=kind, empty_segment=True)
    out = to_numpy(seg, axes=axes, space=space)
    back = from_numpy(
        out.array,
        out.affine,
        axes=axes,
        space=space,
        names=out.names,
        colors=out.colors,
        terminologies=out.terminologies,
    )
    _same(seg, back, atol=1e-9)
    assert 0 in seg.voxel_counts().values()  # the empty segment came back too


def test_axes_and_space_place_a_known_voxel() -> None:
    """The voxel at array[k, j, i] (segio's order) sits where the affine puts (i, j, k)."""
    seg = small_segmentation(kind="oblique")
    geometry = seg.require_geometry()
    k, j, i = 5, 2, 9
    lps = geometry.ijk_to_points([[i, j, k]])[0]
    for axes, index in (("kji", (k, j, i)), ("ijk", (i, j, k))):
        for space, point in (("LPS", lps), ("RAS", lps * (-1, -1, 1))):
            out = to_numpy(seg, axes=axes, space=space)  # type: ignore[arg-type]
            assert out.array[index] == seg.layers[0].array[k, j, i]
            np.testing.assert_allclose((out.affine @ [i, j, k, 1])[:3], point, atol=1e-9)
    assert to_numpy(seg, axes="ijk", space="LPS").array.shape == geometry.size_ijk


def test_a_labelmap_from_scratch() -> None:
    """Whole-valued floats are labels; names given as a sequence follow the labels present;
    a named label absent from the array stays as an empty segment."""
    labels = np.zeros((4, 5, 6), np.float32)
    labels[1, 2, 3], labels[2, 2, 2] = 7, 3
    seg = from_numpy(labels, np.eye(4), axes="kji", space="LPS", names=["three", "seven"])
    assert [(s.name, s.label_value) for s in seg.segments.values()] == [
        ("three", 3),
        ("seven", 7),
    ]
    assert seg.layers[0].array.dtype == np.uint8
    named = from_numpy(labels, np.eye(4), axes="kji", space="LPS", names={3: "a", 4: "b"})
    assert [s.name for s in named.segments.values()] == ["a", "b", "Segment_7"]
    assert named.voxel_counts()["b"] == 0


@pytest.mark.parametrize(
    ("array", "options", "error", "words"),
    [
        (np.zeros((2, 3, 4), np.uint8), {"axes": "xyz", "space": "LPS"}, ValidationError, "axes"),
        (np.zeros((2, 3, 4), np.uint8), {"axes": "kji", "space": "RAI"}, ValidationError, "space"),
        (np.full((2, 3, 4), 0.5), {"axes": "kji", "space": "LPS"}, ValidationError, "whole"),
        (np.full((2, 3, 4), -1), {"axes": "kji", "space": "LPS"}, ValidationError, ">= 0"),
        (np.zeros((2, 3), np.uint8), {"axes": "kji", "space": "LPS"}, GeometryError, "3D"),
        (np.ones((2, 3, 4), np.uint8), {"axes": "kji", "space": "LPS", "names": ["a", "b"]},
         ValidationError, "2 values for 1"),
        (np.full((1, 2, 3, 4), 2), {"axes": "kji", "space": "LPS", "masks": True},
         ValidationError, "0/1"),
    ],
)  # fmt: skip
def test_from_numpy_refuses_what_it_cannot_place(
    array: Any, options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as caught:
        from_numpy(array, np.eye(4), **options)
    assert "\n" not in str(caught.value)
    assert caught.value.hint  # type: ignore[attr-defined]


def test_overlapping_segments_as_masks() -> None:
    seg = small_segmentation(kind="oblique", overlapping=True)
    assert len(seg.layers) > 1
    with pytest.raises(ValidationError, match="overlap"):
        to_numpy(seg, axes="kji", space="LPS")
    out = to_numpy(seg, axes="ijk", space="RAS", masks=True)
    assert out.array.shape == (len(seg.segments), *seg.require_geometry().size_ijk)
    back = from_numpy(
        out.array,
        out.affine,
        axes="ijk",
        space="RAS",
        masks=True,
        names=out.names,
        colors=out.colors,
        terminologies=out.terminologies,
    )
    _same(seg, back, atol=1e-9)


def test_layers_that_do_not_overlap_pack_into_one_labelmap() -> None:
    """Segments kept in separate layers but not overlapping still make one labelmap."""
    seg = small_segmentation(kind="oblique")
    geometry = seg.require_geometry()
    split = Segmentation(
        [replace(s, layer=n, label_value=1) for n, s in enumerate(seg.segments.values())],
        [Layer(seg.mask(s.id).astype(np.uint8), geometry) for s in seg.segments.values()],
    )
    out = to_numpy(split, axes="kji", space="LPS")
    back = from_numpy(out.array, out.affine, axes="kji", space="LPS", names=out.names)
    _same(split, back, names=False, atol=1e-9)
    assert [s.name for s in back.segments.values()] == [s.name for s in seg.segments.values()]


# -- nibabel ---------------------------------------------------------------------------


def test_nibabel_image_in_memory_round_trip() -> None:
    """Names and colours ride in the Caret XML label table; codes are passed in the call."""
    seg = small_segmentation(kind="oblique", unicode_names=True, empty_segment=True)
    image = to_nibabel(seg)
    np.testing.assert_allclose(image.affine, seg.require_geometry().ijk_to_ras, atol=1e-9)
    out = to_numpy(seg, axes="ijk", space="RAS")
    _same(seg, from_nibabel(image, terminologies=out.terminologies), atol=1e-9)
    bare = from_nibabel(to_nibabel(seg, label_table=False))
    assert [s.name for s in bare.segments.values()] == ["Segment_1", "Segment_2", "Segment_3",
                                                        "Segment_5"]  # fmt: skip
    renamed = from_nibabel(image, names={1: "one"})  # the call wins over the table
    assert [s.name for s in renamed.segments.values()][:2] == ["one", "Segment_2"]


def test_nibabel_agrees_with_segio_on_the_same_files(tmp_path: Path) -> None:
    """nibabel's own reader on our image, and our adapter on segio's NIfTI file."""
    seg = small_segmentation(kind="oblique")
    ours = tmp_path / "adapter.nii.gz"
    nibabel.save(to_nibabel(seg), ours)
    loaded = nibabel.load(ours)
    # The header stores float32: compare at its precision, and with segio's reader exactly.
    np.testing.assert_allclose(loaded.affine, seg.require_geometry().ijk_to_ras, atol=1e-4)
    np.testing.assert_array_equal(
        np.asarray(loaded.dataobj), to_numpy(seg, axes="ijk", space="RAS").array
    )
    by_segio = segio.read(ours)  # segio's reader takes the names from our label table too
    _same(by_segio, from_nibabel(loaded), names=False, atol=1e-9)
    assert [(s.name, s.color) for s in by_segio.segments.values()] == [
        (s.name, s.color) for s in seg.segments.values()
    ]

    written = tmp_path / "segio.nii.gz"
    segio.write(seg, written)
    by_segio = segio.read(written)
    from_file = from_nibabel(nibabel.load(written))
    # segio's reader restores the exact grid; nibabel's affine is the header's float32.
    _same(by_segio, from_file, names=False, atol=1e-6)
    np.testing.assert_allclose(
        nibabel.load(written).affine, from_file.require_geometry().ijk_to_ras, atol=1e-9
    )


def test_nibabel_refuses_a_multi_volume_image() -> None:
    image = nibabel.Nifti1Image(np.zeros((3, 4, 5, 2), np.uint8), np.eye(4))
    with pytest.raises(GeometryError, match="3D"):
        from_nibabel(image)


# -- SimpleITK -------------------------------------------------------------------------


def test_simpleitk_image_in_memory_round_trip() -> None:
    seg = small_segmentation(kind="oblique")
    geometry = seg.require_geometry()
    image = to_simpleitk(seg)
    np.testing.assert_allclose(image.GetOrigin(), geometry.origin, atol=1e-9)
    np.testing.assert_allclose(image.GetSpacing(), geometry.spacing, atol=1e-9)
    np.testing.assert_allclose(
        np.reshape(image.GetDirection(), (3, 3)), geometry.direction, atol=1e-9
    )
    out = to_numpy(seg, axes="kji", space="LPS")
    back = from_simpleitk(
        image, names=out.names, colors=out.colors, terminologies=out.terminologies
    )
    _same(seg, back, atol=1e-9)


def test_simpleitk_agrees_with_segio_on_the_same_files(tmp_path: Path) -> None:
    seg = small_segmentation(kind="oblique")
    geometry = seg.require_geometry()
    ours = tmp_path / "adapter.nrrd"
    sitk.WriteImage(to_simpleitk(seg), str(ours))
    read_back = sitk.ReadImage(str(ours))
    np.testing.assert_allclose(read_back.GetOrigin(), geometry.origin, atol=1e-6)
    np.testing.assert_allclose(
        np.reshape(read_back.GetDirection(), (3, 3)), geometry.direction, atol=1e-6
    )
    _same(segio.read(ours), from_simpleitk(read_back), names=False)

    written = tmp_path / "segio.seg.nrrd"
    segio.write(seg, written)
    _same(segio.read(written), from_simpleitk(sitk.ReadImage(str(written))), names=False)


def test_simpleitk_refuses_a_sheared_grid() -> None:
    matrix = np.eye(4)
    matrix[0, 1] = 0.5  # the j axis leans towards i
    seg = from_numpy(np.ones((2, 3, 4), np.uint8), matrix, axes="kji", space="LPS", names=["lean"])
    with pytest.raises(GeometryError, match="perpendicular"):
        to_simpleitk(seg)


# -- MONAI-style dicts -------------------------------------------------------------------


class _MetaArray(np.ndarray):  # a stand-in for MONAI's MetaTensor: an array with .meta
    meta: dict[str, Any]


@pytest.mark.parametrize("masks", [False, True])
def test_monai_dict_round_trip(masks: bool) -> None:
    seg = small_segmentation(kind="oblique", overlapping=masks)
    data = to_monai(seg, key="seg", masks=masks)
    array, meta = data["seg"], data["seg_meta_dict"]
    size = seg.require_geometry().size_ijk
    assert array.shape == ((len(seg.segments), *size) if masks else (1, *size))
    assert tuple(meta["spatial_shape"]) == size and meta["space"] == "RAS"
    np.testing.assert_allclose(meta["affine"], seg.require_geometry().ijk_to_ras, atol=1e-9)
    out = to_numpy(seg, axes="ijk", space="RAS", masks=masks)
    back = from_monai(
        data,
        key="seg",
        onehot_background=False,
        names=out.names,
        colors=out.colors,
        terminologies=out.terminologies,
    )
    _same(seg, back, atol=1e-9)


def test_monai_meta_on_the_tensor_and_in_lps() -> None:
    seg = small_segmentation(kind="oblique")
    tensor = to_monai(seg)["label"].view(_MetaArray)
    tensor.meta = {"affine": seg.require_geometry().ijk_to_lps, "space": "LPS"}
    _same(seg, from_monai({"label": tensor}), names=False, atol=1e-9)


def test_monai_onehot_drops_the_background_channel() -> None:
    seg = small_segmentation(kind="oblique")
    data = to_monai(seg, masks=True)
    masks = data["label"]
    onehot = np.concatenate([~masks.any(axis=0, keepdims=True), masks])
    data["label"] = onehot
    with pytest.raises(ValidationError, match="background"):
        from_monai(data)
    _same(seg, from_monai(data, onehot_background=True), names=False, atol=1e-9)


def test_monai_refuses_a_label_without_an_affine_or_a_batch() -> None:
    with pytest.raises(GeometryError, match="affine"):
        from_monai({"label": np.zeros((1, 2, 3, 4), np.uint8)})
    batch = {"label": np.zeros((2, 1, 2, 3, 4)), "label_meta_dict": {"affine": np.eye(4)}}
    with pytest.raises(GeometryError, match="decollate"):
        from_monai(batch)


def test_importing_the_adapters_loads_no_image_library() -> None:
    code = (
        "import sys, segio.interop; segio.interop.from_numpy; segio.interop.to_nibabel; "
        "segio.interop.to_simpleitk; segio.interop.from_monai; "
        "print(sorted({'nibabel', 'SimpleITK', 'torch', 'monai'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_geometry_is_the_named_one() -> None:
    """A RAS affine read as RAS and the same matrix read as LPS are mirror images."""
    geometry = grid("oblique")
    ras = from_numpy(np.ones(geometry.shape, np.uint8), geometry.ijk_to_ras, axes="kji",
                     space="RAS")  # fmt: skip
    assert ras.require_geometry().is_close(geometry, atol=1e-9)
    lps = from_numpy(np.ones(geometry.shape, np.uint8), geometry.ijk_to_ras, axes="kji",
                     space="LPS")  # fmt: skip
    assert not lps.require_geometry().is_close(geometry, atol=1e-3)
    assert isinstance(lps.require_geometry(), Geometry)


def test_fractional_segments_are_thresholded_at_one_half() -> None:
    """Fractions give the voxels at least half inside (Slicer's rule), in either order."""
    geometry = grid("oblique")
    fractions = np.random.default_rng(1).integers(0, 256, geometry.shape).astype(np.uint8)
    seg = Segmentation(
        [Segment(id="soft", name="soft"), Segment(id="core", name="core", layer=1)],
        [
            Layer(fractions, geometry, max_fraction=255),
            Layer(np.where(fractions > 200, 255, 0).astype(np.uint8), geometry, max_fraction=255),
        ],
        source_representation=Representation.FRACTIONAL_LABELMAP,
    )
    half = fractions >= 128
    for axes in ("kji", "ijk"):
        out = to_numpy(seg, axes=axes, space="LPS", masks=True)  # type: ignore[arg-type]
        soft, core = out.array if axes == "kji" else (m.T for m in out.array)
        np.testing.assert_array_equal(soft, half)
        np.testing.assert_array_equal(core, fractions > 200)
    single = to_numpy(select_segments(seg, ["soft"]), axes="kji", space="LPS")
    np.testing.assert_array_equal(single.array == 1, half)


def test_labels_are_found_in_every_slab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels are counted by slabs (memory): one present only in the last, partial slab, or
    only in the first voxel, is still a segment."""
    from segio.interop import numpy_arrays

    monkeypatch.setattr(numpy_arrays, "_SLAB", 7)
    labels = np.zeros((3, 4, 5), np.uint16)
    labels.flat[0], labels.flat[-1], labels.flat[30] = 9, 300, 2
    seg = from_numpy(labels, np.eye(4), axes="ijk", space="RAS")
    assert [s.label_value for s in seg.segments.values()] == [2, 9, 300]
