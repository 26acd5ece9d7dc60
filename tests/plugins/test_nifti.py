"""NIfTI labelmaps: geometry, sidecars, layers, and the round trip through .seg.nrrd."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pytest

import segio
from segio.geometry import Geometry
from segio.labels.tables import LabelEntry
from segio.labels.tables.caret_xml import caret_xml
from segio.model import Segmentation
from segio.testing.compare import assert_same_segmentation
from segio.testing.synthetic import small_segmentation


@pytest.mark.parametrize("kind", ["axial", "oblique", "anisotropic", "lps_flipped"])
def test_seg_nrrd_to_nifti_to_seg_nrrd_is_exact(tmp_path: Path, kind: str) -> None:
    original = small_segmentation(kind=kind, overlapping=True, unicode_names=True)
    first = segio.write(original, tmp_path / "a.seg.nrrd")[0]
    segio.convert(first, tmp_path / "b.nii.gz")
    segio.convert(tmp_path / "b.nii.gz", tmp_path / "c.seg.nrrd")
    back = segio.read(tmp_path / "c.seg.nrrd")
    assert_same_segmentation(original, back, atol_mm=1e-6)
    # and again from the far end
    segio.convert(tmp_path / "c.seg.nrrd", tmp_path / "d.nii")
    assert_same_segmentation(original, segio.read(tmp_path / "d.nii"), atol_mm=1e-6)


def test_nibabel_sees_our_geometry_in_ras(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique")
    written = segio.write(segmentation, tmp_path / "g.nii.gz")
    path = next(p for p in written if p.name.endswith(".gz"))
    image = nibabel.load(path)
    grid = segmentation.require_geometry()
    assert np.allclose(image.affine, grid.ijk_to_ras, atol=1e-4)
    assert image.header.get_intent()[0] == "label"
    assert int(image.header["sform_code"]) == 1 and int(image.header["qform_code"]) == 1
    data = np.asarray(image.dataobj)
    assert data.shape == grid.size_ijk
    layer = segmentation.layers[0].array
    assert np.array_equal(data, layer.T)


def test_sheared_grid_writes_no_qform(tmp_path: Path) -> None:
    matrix = np.array([[1.0, 0.3, 0, 5], [0, 1, 0, 6], [0, 0, 2, 7], [0, 0, 0, 1]])
    segmentation = Segmentation()
    mask = np.zeros((3, 4, 5), bool)
    mask[1, 1, 1:4] = True
    segmentation.add_mask(mask, "s", geometry=Geometry(matrix, (3, 4, 5)))
    path = segio.write(segmentation, tmp_path / "s.nii", sidecar="none")[0]
    image = nibabel.load(path)
    assert int(image.header["qform_code"]) == 0
    back = segio.read(path)
    assert back.require_geometry().is_close(segmentation.require_geometry(), atol=1e-5)


def test_nifti_from_another_tool_gets_default_names(tmp_path: Path) -> None:
    data = np.zeros((5, 6, 7), np.int16)
    data[1:3, 1:3, 1:3] = 4
    data[3:5, 3:5, 3:5] = 7
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])
    affine[:3, 3] = (10, 20, 30)
    nibabel.save(nibabel.Nifti1Image(data, affine), tmp_path / "other.nii.gz")
    segmentation = segio.read(tmp_path / "other.nii.gz")
    assert [s.name for s in segmentation.segments.values()] == ["Segment_4", "Segment_7"]
    assert [s.label_value for s in segmentation.segments.values()] == [4, 7]
    assert segmentation.voxel_counts() == {"Segment_4": 8, "Segment_7": 8}
    grid = segmentation.require_geometry()
    assert np.allclose(grid.ijk_to_ras, affine)
    assert np.allclose(grid.origin, (-10, -20, 30))  # LPS


@pytest.mark.parametrize(
    ("sidecar", "suffix"),
    [
        ("slicer-csv", ".labels.csv"),
        ("itksnap", ".label"),
        ("slicer-ctbl", ".ctbl"),
        ("segio-json", ".json"),
    ],
)
def test_sidecar_formats_keep_names_and_colours(tmp_path: Path, sidecar: str, suffix: str) -> None:
    segmentation = small_segmentation(kind="axial")
    written = segio.write(segmentation, tmp_path / "x.nii.gz", sidecar=sidecar)
    assert tmp_path / f"x{suffix}" in written
    back = segio.read(tmp_path / "x.nii.gz")
    for a, b in zip(segmentation.segments.values(), back.segments.values(), strict=True):
        # Slicer colour tables store spaces as '_' and read every '_' back as a space.
        assert a.name == b.name or (sidecar == "slicer-ctbl" and a.name.replace("_", " ") == b.name)
        assert np.allclose(a.color, b.color, atol=0.5 / 255 + 1e-9)
        assert np.array_equal(segmentation.mask(a.id), back.mask(b.id))


def test_split_layers_writes_one_file_and_table_per_layer(tmp_path: Path) -> None:
    segmentation = small_segmentation(overlapping=True)
    assert len(segmentation.layers) > 1
    written = segio.write(segmentation, tmp_path / "o.nii.gz", layers="split", sidecar="slicer-csv")
    images = sorted(p.name for p in written if p.name.endswith(".nii.gz"))
    assert images == [f"o_layer{n}.nii.gz" for n in range(len(segmentation.layers))]
    total = 0
    for name in images:
        part = segio.read(tmp_path / name)
        assert len(part.layers) == 1
        total += len(part.segments)
    assert total == len([c for c in segmentation.voxel_counts().values() if c])


def test_multilayer_with_single_table_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(segio.WriteError, match="cannot say which layer"):
        segio.write(small_segmentation(overlapping=True), tmp_path / "o.nii.gz", sidecar="itksnap")
    assert list(tmp_path.iterdir()) == []


def test_totalsegmentator_header_extension_names_labels(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 4), np.uint8)
    data[1, 1, 1], data[2, 2, 2] = 1, 2
    image = nibabel.Nifti1Image(data, np.eye(4))
    xml = caret_xml([LabelEntry(1, "spleen", (1.0, 0.0, 0.0)), LabelEntry(2, "kidney_right")])
    image.header.extensions.append(nibabel.nifti1.Nifti1Extension(0, xml))
    nibabel.save(image, tmp_path / "ts.nii.gz")
    segmentation = segio.read(tmp_path / "ts.nii.gz")
    assert [s.name for s in segmentation.segments.values()] == ["spleen", "kidney_right"]
    assert segmentation.segments["spleen"].color == (1.0, 0.0, 0.0)


def test_nnunet_dataset_json_names_labels(tmp_path: Path) -> None:
    (tmp_path / "labelsTr").mkdir()
    (tmp_path / "dataset.json").write_text(
        json.dumps({"labels": {"background": 0, "liver": 1, "tumour": 2}, "file_ending": ".nii.gz"})
    )
    data = np.zeros((4, 4, 4), np.uint8)
    data[0, 0, 0], data[1, 1, 1] = 1, 2
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), tmp_path / "labelsTr" / "case_000.nii.gz")
    segmentation = segio.read(tmp_path / "labelsTr" / "case_000.nii.gz")
    assert [s.name for s in segmentation.segments.values()] == ["liver", "tumour"]


def test_explicit_label_table_wins(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="axial")
    segio.write(segmentation, tmp_path / "x.nii.gz", sidecar="none")
    table = tmp_path / "names.txt"
    lines = [
        f'{s.label_value} 255 0 0 1 1 1 "renamed {n}"'
        for n, s in enumerate(s for s in segmentation.segments.values() if s.layer == 0)
    ]
    table.write_text("# ITK-SnAP Label Description File\n" + "\n".join(lines) + "\n")
    back = segio.read(tmp_path / "x.nii.gz", labels=table)
    assert all(s.name.startswith("renamed") for s in back.segments.values())


def test_probability_map_is_refused(tmp_path: Path) -> None:
    nibabel.save(
        nibabel.Nifti1Image(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), tmp_path / "p.nii"
    )
    with pytest.raises(segio.ReadError, match="fractional values"):
        segio.read(tmp_path / "p.nii")


def test_header_changed_by_another_tool_wins_over_sidecar(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="axial")
    segio.write(segmentation, tmp_path / "x.nii.gz")
    image = nibabel.load(tmp_path / "x.nii.gz")
    moved = image.affine.copy()
    moved[0, 3] += 5.0
    nibabel.save(nibabel.Nifti1Image(np.asarray(image.dataobj), moved), tmp_path / "x.nii.gz")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = segio.read(tmp_path / "x.nii.gz")
    assert any("differs from the image header" in str(w.message) for w in caught)
    assert np.allclose(back.require_geometry().ijk_to_ras, moved, atol=1e-4)


# -- hostile headers: checked against the file before nibabel allocates ------------------------


def nifti_bytes(data: np.ndarray, **fields: object) -> bytes:
    """A single-file NIfTI-1 of ``data``, then header fields overwritten at their offsets."""
    import io
    import struct

    image = nibabel.Nifti1Image(data, np.eye(4))
    stream = io.BytesIO()
    holder = nibabel.FileHolder(fileobj=stream)
    image.to_file_map({"image": holder, "header": holder})
    raw = bytearray(stream.getvalue())
    layout = {"dim": (40, "<8h"), "pixdim": (76, "<8f"), "scl": (112, "<2f"), "type": (70, "<2h")}
    for name, value in fields.items():
        offset, form = layout[name]
        values = value if isinstance(value, tuple) else (value,)
        raw[offset : offset + struct.calcsize(form)] = struct.pack(form, *values)
    return bytes(raw)


def peak_bytes(action: object) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        action()  # type: ignore[operator]
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_360_byte_header_declaring_gigabytes_allocates_nothing(
    tmp_path: Path, suffix: str
) -> None:
    import gzip

    data = nifti_bytes(np.zeros((2, 2, 2), np.uint8), dim=(3, 1900, 1900, 1000, 1, 1, 1, 1))
    path = tmp_path / f"big{suffix}"
    path.write_bytes(gzip.compress(data[:360]) if suffix == ".nii.gz" else data[:360])

    def read() -> None:
        with pytest.raises(segio.LimitError, match=r"declares 3\.6 GB") as info:
            segio.read(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)

    assert peak_bytes(read) < 4 << 20


def test_a_gzip_bomb_after_the_voxels_is_refused_without_inflating_it(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(nifti_bytes(np.ones((2, 2, 2), np.uint8)) + bytes(64 << 20)))

    def read() -> None:
        with pytest.raises(segio.ReadError, match="after the voxels"):
            segio.read(path)

    assert peak_bytes(read) < 8 << 20


@pytest.mark.parametrize(
    ("dim", "match"),
    [
        ((3, 2, -2, 2, 1, 1, 1, 1), "not positive"),
        ((3, 2, 0, 2, 1, 1, 1, 1), "not positive"),
        ((9, 2, 2, 2, 1, 1, 1, 1), "1 to 7"),
        ((7, 32767, 32767, 32767, 32767, 32767, 32767, 32767), "declares"),
    ],
)
def test_impossible_dimensions_are_refused(
    tmp_path: Path, dim: tuple[int, ...], match: str
) -> None:
    path = tmp_path / "d.nii"
    path.write_bytes(nifti_bytes(np.ones((2, 2, 2), np.uint8), dim=dim))
    with pytest.raises(segio.ReadError, match=match):
        segio.read(path)


@pytest.mark.parametrize(
    ("slope", "inter", "labels"),
    [
        (2.0, 1.0, [1, 3, 5, 7, 9, 11, 13, 15]),  # applied, as the header says
        (0.0, 5.0, [1, 2, 3, 4, 5, 6, 7]),  # slope 0: no scaling (the NIfTI rule)
        (float("nan"), 5.0, [1, 2, 3, 4, 5, 6, 7]),  # NaN: no scaling either
        (0.5, 0.0, None),  # 0.5, 1.5, ...: not labels
        (1.0, float("inf"), None),
        (-1.0, 0.0, None),  # negative labels
        (1000.0, 4294967040.0, [4294967040 + 1000 * v for v in range(1, 8)]),
    ],
)
def test_scl_slope_and_inter_are_applied_as_the_header_says(
    tmp_path: Path, slope: float, inter: float, labels: list[int] | None
) -> None:
    path = tmp_path / "s.nii"
    values = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    path.write_bytes(nifti_bytes(values, scl=(slope, inter)))
    if labels is None:
        with pytest.raises(segio.ReadError) as info:
            segio.read(path)
        assert str(path) in str(info.value)
        return
    segmentation = segio.read(path)
    present = sorted(s.label_value for s in segmentation.segments.values())
    expected = labels if inter != 4294967040.0 else [4294967040, *labels]
    assert present == sorted(v for v in expected if v)


def test_even_values_with_a_half_slope_are_whole_labels(tmp_path: Path) -> None:
    path = tmp_path / "s.nii"
    path.write_bytes(nifti_bytes(np.array([[[0, 2], [4, 6]]], np.int16), scl=(0.5, 0.0)))
    assert [s.label_value for s in segio.read(path).segments.values()] == [1, 2, 3]


@pytest.mark.parametrize(("dtype", "code"), [(np.complex64, 32), (np.complex128, 1792)])
def test_complex_images_are_refused(tmp_path: Path, dtype: type, code: int) -> None:
    path = tmp_path / "c.nii"
    path.write_bytes(nifti_bytes(np.ones((2, 2, 2), dtype)))
    with pytest.raises(segio.ReadError, match=f"complex values .NIfTI datatype {code}"):
        segio.read(path)


def test_huge_label_values_read(tmp_path: Path) -> None:
    for dtype, top in [(np.uint32, 2**32 - 1), (np.int32, 2**31 - 1), (np.int64, 2**62)]:
        values = np.zeros((2, 2, 2), dtype)
        values[0, 0, 0] = top
        path = tmp_path / "h.nii.gz"
        nibabel.save(nibabel.Nifti1Image(values, np.eye(4), dtype=dtype), path)
        segmentation = segio.read(path)
        assert [s.label_value for s in segmentation.segments.values()] == [top]
        assert segmentation.voxel_counts() == {f"Segment_{top}": 1}


def test_nibabel_log_lines_become_one_warning_naming_the_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.nii"
    path.write_bytes(nifti_bytes(np.ones((2, 2, 2), np.uint8), pixdim=(1, 0, 0, 0, 1, 1, 1, 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segio.read(path)
    assert capfd.readouterr().err == ""
    messages = [str(w.message) for w in caught]
    assert messages == [f"{path}: nibabel: pixdim[1,2,3] should be non-zero; setting 0 dims to 1"]


def test_a_nifti_pair_header_is_refused_clearly(tmp_path: Path) -> None:
    data = bytearray(nifti_bytes(np.ones((2, 2, 2), np.uint8)))
    data[344:348] = b"ni1\0"
    path = tmp_path / "pair.nii"
    path.write_bytes(bytes(data))
    with pytest.raises(segio.ReadError, match=r"NIfTI pair \(.hdr \+ .img\)"):
        segio.read(path)


def test_a_fifo_label_table_is_refused_not_waited_on(tmp_path: Path) -> None:
    import os

    nibabel.save(nibabel.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), tmp_path / "x.nii")
    os.mkfifo(tmp_path / "table.txt")
    with pytest.raises(segio.ReadError, match="FIFO"):
        segio.read(tmp_path / "x.nii", labels=tmp_path / "table.txt")


def test_a_sidecar_linked_out_of_the_folder_is_not_opened(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    secret = tmp_path / "outside" / "x.json"
    secret.write_text('{"1": "secret name"}')
    folder = tmp_path / "case"
    folder.mkdir()
    nibabel.save(nibabel.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4)), folder / "x.nii")
    (folder / "x.json").symlink_to(secret)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segmentation = segio.read(folder / "x.nii")
    assert [s.name for s in segmentation.segments.values()] == ["Segment_1"]
    assert any("outside the folder" in str(w.message) for w in caught)


# -- 4D images: layers by segio's marker, by assumption otherwise (issue 12, item 8) ------------


def _layer_warnings(path: Path, **options: object) -> tuple[Segmentation, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segmentation = segio.read(path, **options)
    return segmentation, [str(w.message) for w in caught if "fourth axis" in str(w.message)]


def test_a_foreign_4d_image_warns_that_its_fourth_axis_was_taken_as_layers(
    tmp_path: Path,
) -> None:
    grid = Geometry.from_spacing((3, 4, 5), (0.7, 0.9, 2.5), (-10.0, 20.0, 5.0))
    data = np.zeros((*grid.size_ijk, 2), np.uint8)  # e.g. two time points of one label
    data[1, 1, 1, 0] = data[2, 2, 1, 1] = 1
    nibabel.save(nibabel.Nifti1Image(data, grid.ijk_to_ras), tmp_path / "cine.nii.gz")
    segmentation, said = _layer_warnings(tmp_path / "cine.nii.gz")
    assert len(segmentation.layers) == 2
    assert len(said) == 1 and "cine.nii.gz" in said[0] and "2 volumes" in said[0], said


def test_segios_own_4d_image_carries_its_layer_marker(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    path = segio.write(segmentation, tmp_path / "o.nii.gz", sidecar="none")[0]
    assert nibabel.load(path).header.get_intent()[2] == "segio layers"
    back, said = _layer_warnings(path)
    assert not said
    assert len(back.layers) == len(segmentation.layers)


def test_a_label_table_placing_labels_in_layers_marks_them_too(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique", overlapping=True)
    written = segio.write(segmentation, tmp_path / "o.nii.gz")
    image = next(p for p in written if p.name.endswith(".nii.gz"))
    unmarked = nibabel.load(image)
    unmarked.header.set_intent("label")  # as segio wrote it before the marker existed
    nibabel.save(unmarked, tmp_path / "old.nii.gz")
    (tmp_path / "old.json").write_bytes((tmp_path / "o.json").read_bytes())
    _, said = _layer_warnings(tmp_path / "old.nii.gz")
    assert not said
    _, said = _layer_warnings(tmp_path / "old.nii.gz", labels=tmp_path / "o.json")
    assert not said


def test_a_3d_image_is_no_layer_question(tmp_path: Path) -> None:
    path = segio.write(small_segmentation(kind="oblique"), tmp_path / "o.nii.gz", sidecar="none")
    image = nibabel.load(path[0])
    image.header.set_intent("none")
    nibabel.save(image, tmp_path / "plain.nii.gz")
    assert not _layer_warnings(tmp_path / "plain.nii.gz")[1]
