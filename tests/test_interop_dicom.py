"""pydicom Datasets and highdicom Segmentations <-> Segmentation (issue 17).

Checked against highdicom's and pydicom's own view of the same object: segment labels,
colours, the pixel array placed by highdicom's volume affine, and the file read by path.
"""

from __future__ import annotations

from pathlib import Path

import highdicom
import numpy as np
import pydicom
import pytest

import segio
from segio.interop.dicom_objects import from_dicom, from_highdicom, to_dicom, to_highdicom
from segio.model import Segmentation
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation


@pytest.fixture(scope="module")
def oblique(tmp_path_factory: pytest.TempPathFactory) -> tuple[Segmentation, Path]:
    """An oblique, anisotropic, non-square segmentation (overlapping) and its CT series."""
    seg = small_segmentation(kind="oblique", overlapping=True, n_segments=3)
    return seg, reference_series(seg.layers[0].geometry, tmp_path_factory.mktemp("ct"))


def test_to_highdicom_matches_highdicoms_view(oblique: tuple[Segmentation, Path]) -> None:
    seg, series = oblique
    result = to_highdicom(seg, reference=series)
    assert isinstance(result, highdicom.seg.Segmentation)
    segments = list(seg.segments.values())
    assert [d.SegmentLabel for d in result.SegmentSequence] == [s.name for s in segments]
    for description, segment in zip(result.SegmentSequence, segments, strict=True):
        lab = highdicom.color.CIELabColor.from_dicom_value(
            description.RecommendedDisplayCIELabValue
        )
        np.testing.assert_allclose(np.array(lab.to_rgb()) / 255, segment.color, atol=0.01)
    volume = result.get_volume(combine_segments=False)
    # highdicom's array index -> LPS (its affine) -> our (i, j, k): voxel by voxel equal.
    grid = seg.layers[0].geometry
    index = np.indices(volume.array.shape[:3]).reshape(3, -1)
    lps = volume.affine[:3, :3] @ index + volume.affine[:3, 3:]
    ijk = np.rint(grid.points_to_ijk(lps.T)).astype(int)
    assert np.allclose(grid.points_to_ijk(lps.T), ijk, atol=1e-6)  # same lattice to 1e-6
    for number, segment in enumerate(segments):
        ours = seg.mask(segment.id)[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
        theirs = volume.array[..., number].reshape(-1) > 0
        assert ours.any()
        np.testing.assert_array_equal(theirs, ours)


def test_highdicom_round_trip_equals_the_file_round_trip(
    oblique: tuple[Segmentation, Path], tmp_path: Path
) -> None:
    """Through objects as through a file: the SEG writer drops empty slices, both ways."""
    seg, series = oblique
    back = from_highdicom(to_highdicom(seg, reference=series))
    segio.write(seg, tmp_path / "a.seg.dcm", reference=series)
    assert_same_segmentation(segio.read(tmp_path / "a.seg.dcm"), back, check_layers=True)
    assert back.voxel_counts() == seg.voxel_counts()
    assert [s.name for s in back.segments.values()] == [s.name for s in seg.segments.values()]
    assert back.provenance["source"] == "<dataset>"


def test_rtstruct_dataset_round_trip(oblique: tuple[Segmentation, Path]) -> None:
    seg, series = oblique
    dataset = to_dicom(seg, format="rtstruct", reference=series)
    assert isinstance(dataset, pydicom.Dataset)
    assert dataset.Modality == "RTSTRUCT"
    names = [item.ROIName for item in dataset.StructureSetROISequence]
    assert names == [s.name for s in seg.segments.values()]
    back = from_dicom(dataset, reference=series)
    assert [s.name for s in back.segments.values()] == names


def test_real_objects_read_as_their_files(shared_data: Path) -> None:
    seg_file = shared_data / "highdicom/data/test_files/seg_image_ct_binary_overlap.dcm"
    expected = segio.read(seg_file)
    got = from_highdicom(highdicom.seg.segread(seg_file))
    assert_same_segmentation(expected, got, check_layers=True)
    assert [s.name for s in got.segments.values()] == [
        d.SegmentLabel for d in pydicom.dcmread(seg_file).SegmentSequence
    ]
    rt_file = shared_data / "pydicom/src/pydicom/data/test_files/rtstruct.dcm"
    got = from_dicom(pydicom.dcmread(rt_file, force=True))  # this file has no preamble
    assert_same_segmentation(segio.read(rt_file), got)


def test_other_datasets_are_refused(shared_data: Path) -> None:
    ct = pydicom.dcmread(shared_data / "pydicom/src/pydicom/data/test_files/CT_small.dcm")
    with pytest.raises(segio.ValidationError, match="modality is CT, not SEG or RTSTRUCT"):
        from_dicom(ct)
    with pytest.raises(segio.ValidationError, match="not a DICOM object format"):
        to_dicom(small_segmentation(kind="oblique"), format="nifti")
