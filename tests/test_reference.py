"""Reference images (segio.reference): any image as a grid, DICOM series with their UIDs,
and a series that cannot be cited refused before anything is written (issue 12, item 4)."""

from __future__ import annotations

from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest

import segio
from segio.errors import ReadError, ValidationError
from segio.reference import Reference, cited_series, read_reference, reference_paths
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, small_segmentation

OBLIQUE = grid("oblique")


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_series(OBLIQUE, tmp_path_factory.mktemp("ref") / "ct")


def _blanked(series: Path, folder: Path, keyword: str, *, delete: bool = False) -> Path:
    """A copy of ``series`` whose images have ``keyword`` empty (or deleted)."""
    folder.mkdir()
    for file in sorted(series.iterdir()):
        ds = pydicom.dcmread(file)
        if delete:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, "")
        ds.save_as(folder / file.name)
    return folder


def test_a_series_folder_a_file_and_a_list_are_read_as_dicom(series: Path) -> None:
    found = read_reference(series)
    assert found.series is not None and found.geometry.is_close(OBLIQUE, 1e-5)
    files = sorted(series.iterdir())
    one = read_reference(files[0])
    assert one.series is not None and one.geometry.shape == (1, *OBLIQUE.shape[1:])
    listed = read_reference(files)
    assert listed.geometry.is_close(OBLIQUE, 1e-5) and listed.path == files[0]
    assert read_reference(found) is found
    assert reference_paths(found) == [series] and reference_paths(files) == files


def test_an_image_that_is_not_a_segmentation_gives_its_grid(tmp_path: Path) -> None:
    """A CT in NIfTI holds negative floats: not labels, but its grid is a reference."""
    ct = (np.random.default_rng(0).random((11, 13, 7)) * 2000 - 1000).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(ct, OBLIQUE.ijk_to_ras), tmp_path / "ct.nii.gz")
    found = read_reference(tmp_path / "ct.nii.gz")
    assert found.series is None and found.geometry.is_close(OBLIQUE, 1e-5)


@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_a_nrrd_image_gives_its_grid_unread(tmp_path: Path, dtype: type) -> None:
    """A CT in NRRD (negative HU) is no labelmap; its header is the grid."""
    nrrd = pytest.importorskip("nrrd")
    ct = np.full(OBLIQUE.shape[::-1], -1000, dtype=dtype)  # pynrrd takes (i, j, k)
    header = {
        "space": "left-posterior-superior",
        "space directions": OBLIQUE.ijk_to_lps[:3, :3].T,
        "space origin": OBLIQUE.origin,
    }
    nrrd.write(str(tmp_path / "ct.nrrd"), ct, header)
    found = read_reference(tmp_path / "ct.nrrd")
    assert found.series is None and found.geometry.is_close(OBLIQUE, 1e-6)


def test_a_segmentation_gives_its_grid(tmp_path: Path) -> None:
    segmentation = small_segmentation(kind="oblique")
    path = segio.write(segmentation, tmp_path / "s.seg.nrrd")[0]
    found = read_reference(path)
    assert found.geometry.is_close(segmentation.require_geometry(), 1e-6)


def test_a_missing_reference_is_a_read_error(tmp_path: Path) -> None:
    with pytest.raises(ReadError, match="does not exist"):
        read_reference(tmp_path / "nothing")


def test_a_reference_that_is_not_dicom_cannot_be_cited(tmp_path: Path) -> None:
    path = tmp_path / "s.nii.gz"
    segio.write(small_segmentation(kind="oblique"), path)
    with pytest.raises(ValidationError, match="not a DICOM series"):
        cited_series(path, "a DICOM SEG")


@pytest.mark.parametrize(
    ("keyword", "delete", "named"),
    [
        ("SOPInstanceUID", False, "SOP Class/Instance UID of 7 of 7 images"),
        ("StudyInstanceUID", False, "Study Instance UID"),
        ("StudyInstanceUID", True, "Study Instance UID"),
        ("SeriesInstanceUID", False, "Series Instance UID"),
        ("SeriesInstanceUID", True, "Series Instance UID"),
    ],
)
def test_a_series_without_its_uids_is_refused_by_every_citing_writer(
    series: Path, tmp_path: Path, keyword: str, delete: bool, named: str
) -> None:
    """Issue 12: a SEG or RTSTRUCT citing empty UIDs was written, and no other tool could
    read it back. The grid alone is still fine as a reference for a labelmap."""
    blank = _blanked(series, tmp_path / "blank", keyword, delete=delete)
    assert read_reference(blank).geometry.is_close(OBLIQUE, 1e-5)
    segmentation = small_segmentation(kind="oblique")
    for name in ("s.seg.dcm", "s.rtstruct.dcm"):
        with pytest.raises(ValidationError, match=named) as caught:
            segio.write(segmentation, tmp_path / name, reference=blank)
        assert str(blank) in str(caught.value)
        assert not (tmp_path / name).exists()
    assert segio.write(segmentation, tmp_path / "s.nii.gz", reference=blank)


def test_a_reference_read_once_is_passed_to_the_writer(
    series: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """segio.write reads the reference once and hands the writer what it read."""
    import segio.reference as reference_module

    calls: list[object] = []
    real = reference_module.read_image_series

    def counting(path: object) -> object:
        calls.append(path)
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(reference_module, "read_image_series", counting)
    segio.write(small_segmentation(kind="oblique"), tmp_path / "s.seg.dcm", reference=series)
    assert len(calls) == 1
    assert isinstance(read_reference(Reference(series, OBLIQUE)), Reference)
