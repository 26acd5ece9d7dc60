"""DICOM slices onto a regular grid: spacing, gaps, tilt, multi-frame, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segio.dicom.series import read_image_series
from segio.errors import GeometryError, ReadError
from segio.geometry import slice_grid

AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_regular_axial_slices() -> None:
    positions = [[-10.0, -20.0, z] for z in (5.0, 2.5, 0.0)]  # unsorted on purpose
    geometry, k = slice_grid(positions, AXIAL, (0.8, 0.6), (4, 5))
    assert geometry.shape == (3, 4, 5)
    assert np.allclose(geometry.spacing, (0.6, 0.8, 2.5))  # i: column spacing, j: row spacing
    assert np.allclose(geometry.origin, (-10, -20, 0))
    assert k.tolist() == [2, 1, 0]


def test_irregular_spacing_becomes_a_grid_with_empty_slices() -> None:
    # pydicom's CT2 series: gaps of 202.5 and 1.25 mm -> 165 slices
    z = [-99.48, 103.02, 104.27, 105.52]
    geometry, k = slice_grid([[0.0, 0.0, v] for v in z], AXIAL, (1, 1), (2, 2))
    assert geometry.shape[0] == 165
    assert k.tolist() == [0, 162, 163, 164]


def test_repeated_positions_share_a_slice() -> None:
    geometry, k = slice_grid([[0, 0, 0], [0, 0, 2], [0, 0, 0]], AXIAL, (1, 1), (2, 2))
    assert geometry.shape[0] == 2
    assert k.tolist() == [0, 1, 0]


def test_tilted_stack_keeps_its_step() -> None:
    positions = [[0.0, 0.3 * n, 2.0 * n] for n in range(4)]  # gantry tilt: step leans in y
    geometry, _ = slice_grid(positions, AXIAL, (1, 1), (2, 2))
    assert np.allclose(geometry.ijk_to_lps[:3, 2], (0, 0.3, 2.0))
    assert np.allclose(geometry.slice_positions(), positions)


def test_slices_off_the_grid_are_an_error() -> None:
    with pytest.raises(GeometryError, match="not on a regular grid"):
        slice_grid([[0, 0, 0], [0, 0, 1.0], [0, 0, 2.5]], AXIAL, (1, 1), (2, 2))
    with pytest.raises(GeometryError, match="orientation"):
        slice_grid([[0, 0, 0]], [1, 0, 0, 1, 0, 0], (1, 1), (2, 2))


def test_single_slice_uses_the_default_spacing() -> None:
    geometry, _ = slice_grid([[1.0, 2.0, 3.0]], AXIAL, (0.5, 0.5), (2, 3), default_spacing=4.0)
    assert geometry.shape == (1, 2, 3)
    assert np.isclose(geometry.spacing[2], 4.0)


def test_no_images_is_a_read_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(ReadError, match="no DICOM image"):
        read_image_series(tmp_path)


def test_shared_series_single_and_multi_frame_agree(shared_data: Path) -> None:
    base = shared_data / "dcmqi" / "data" / "segmentations" / "23x38x3"
    single = read_image_series(base / "image")
    multi = read_image_series(base / "multiframe")
    assert single.geometry.is_close(multi.geometry, atol=1e-4)
    assert [f.frame_number for f in multi.frames if f] == [1, 2, 3]
    assert all(f is not None and f.frame_number is None for f in single.frames)


def test_shared_oblique_series(shared_data: Path) -> None:
    series = read_image_series(shared_data / "rt-utils" / "tests" / "oriented_data")
    geometry = series.geometry
    assert geometry.shape == (3, 50, 100)
    assert not np.allclose(geometry.direction, np.eye(3))
    assert np.allclose(geometry.spacing, (2.5, 3.5, 4.5))


@pytest.mark.usefixtures("dicom_fast_path")
def test_fast_headers_agree_with_pydicom_and_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The struct-walked headers give pydicom's grid; a value the walker cannot convert
    (an IS that is not a number) sends that file to pydicom instead of failing."""
    from segio.dicom import series as dicomseries
    from segio.testing.series import reference_series
    from segio.testing.synthetic import grid

    geometry = grid("oblique", (5, 12, 9))
    folder = reference_series(geometry, tmp_path / "ct")
    fast = read_image_series(folder)
    with monkeypatch.context() as patch:
        patch.setattr(dicomseries, "_HEAD", 0)  # every file through the whole-file path
        assert read_image_series(folder).geometry == fast.geometry
    assert fast.geometry.is_close(geometry, atol=1e-4)
    assert type(fast.header).__name__ == "Header"
    first = sorted(folder.iterdir())[0]
    data = first.read_bytes()
    tag = b"\x20\x00\x13\x00IS"  # Instance Number, explicit VR
    at = data.index(tag) + 8
    size = data[at - 2]
    first.write_bytes(data[:at] + b"x" * size + data[at + size :])
    assert read_image_series(folder).geometry == fast.geometry
    # The first instance as a pydicom Dataset, loaded when a writer asks for it.
    header_uid = fast.header["SOPInstanceUID"]
    assert type(fast.dataset).__name__ == "FileDataset"
    assert str(fast.dataset.SOPInstanceUID) == header_uid


@pytest.mark.parametrize(
    ("z", "match"),
    [
        ([0.0, 2.0, 4e9], "2e\\+09 slices of 2 mm .*SEGIO_MAX_MEMORY"),  # one slice far away
        ([0.0, 2e-4, 4e3], "2e\\+07 slices of 0.0002 mm"),  # two a hair apart
        ([-1.7e308, 0.0, 1.7e308], "unbounded extent"),
    ],
)
def test_a_grid_through_far_positions_is_refused_before_it_exists(
    monkeypatch: pytest.MonkeyPatch, z: list[float], match: str
) -> None:
    from segio.errors import LimitError

    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")
    with pytest.raises(LimitError, match=match):
        slice_grid([[0.0, 0.0, v] for v in z], AXIAL, (1, 1), (64, 64))


@pytest.mark.parametrize(
    ("positions", "spacing"),
    [([[0.0, float("nan"), 0.0]], (1, 1)), ([[0.0, 0.0, 0.0]], (0, 1)), ([[0, 0, 0]], (1, -1))],
)
def test_positions_and_spacings_that_are_no_numbers_are_refused(
    positions: list[list[float]], spacing: tuple[float, float]
) -> None:
    with pytest.raises(GeometryError):
        slice_grid(positions, AXIAL, spacing, (4, 4))


def _series_with(tmp_path: Path, change: object) -> Path:
    """A five-slice series whose files go through ``change(dataset)`` first."""
    import pydicom

    from segio.testing.series import reference_series
    from segio.testing.synthetic import grid

    folder = reference_series(grid("axial", (5, 6, 7)), tmp_path / "ct")
    for file in sorted(folder.iterdir()):
        ds = pydicom.dcmread(file)
        change(ds)  # type: ignore[operator]
        ds.save_as(file)
    return folder


def test_pydicom_warnings_on_a_series_are_one_warning(tmp_path: Path) -> None:
    """A value pydicom warns about in every file (a UID with a leading zero, in files the
    struct walker leaves to pydicom) makes one warning for the series, not one a file."""

    def change(ds: object) -> None:
        from pydicom import config

        with config.disable_value_validation():
            ds.SpecificCharacterSet = "ISO_IR 144"  # type: ignore[attr-defined]
            ds.SOPInstanceUID += ".01"  # type: ignore[attr-defined]

    folder = _series_with(tmp_path, change)
    with pytest.warns(UserWarning) as caught:
        series = read_image_series(folder)
    assert series.geometry.shape == (5, 6, 7)
    assert len(caught) == 1
    assert "4 more warnings reading ct" in str(caught[0].message)


def test_unreadable_files_of_a_series_are_skipped_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hostile.dicom import bomb, part10

    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")  # the bombs stop at 64 MiB
    folder = _series_with(tmp_path, lambda ds: None)
    for n in range(3):  # deflated dataset bombs among the images
        (folder / f"bomb{n}.dcm").write_bytes(part10(b"", "1.2.840.10008.1.2.1.99") + bomb())
    with pytest.warns(UserWarning, match="3 unreadable DICOM file.* decompression bomb") as caught:
        series = read_image_series(folder)
    assert len(caught) == 1 and series.geometry.shape == (5, 6, 7)


def test_a_series_without_uids_still_gives_its_grid(tmp_path: Path) -> None:
    """Missing UIDs are read as empty (a grid needs none); writers that cite the series
    refuse them (segio.reference.cited_series), instead of a malformed-header error."""

    def change(ds: object) -> None:
        del ds.StudyInstanceUID  # type: ignore[attr-defined]
        del ds.SOPInstanceUID  # type: ignore[attr-defined]

    series = read_image_series(_series_with(tmp_path, change))
    assert series.geometry.shape == (5, 6, 7)
    assert series.study_instance_uid == ""
    assert all(f is not None and f.sop_instance_uid == "" for f in series.frames)
