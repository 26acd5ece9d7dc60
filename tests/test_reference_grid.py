"""Issue 12, items 3 and 4: the reference grid is the grid, and a reference that cannot
serve is refused.

Contours and surfaces converted with ``--reference`` must equal a direct rasterisation on
the reference grid, voxel for voxel (they used to be rasterised on a grid of their own and
then resampled by nearest neighbour). A grid that differs only by axis order or direction
moves voxels exactly, without a "resampled" warning. A reference that misses the
segmentation, or leaves every segment empty, is refused unless ``--allow-empty``; an
input that is empty to begin with still converts.

Every grid here is oblique, anisotropic and non-square.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner

import segio
from segio.cli import cli
from segio.converters.contours_to_labelmap import to_labelmap
from segio.converters.labelmap_to_contours import to_contours
from segio.converters.resample import resample, voxels_outside
from segio.errors import WriteError
from segio.geometry import Geometry
from segio.model import Segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, small_segmentation

SOURCE = grid("oblique")  # 7 x 13 x 11 voxels of 0.7 x 0.9 x 2.5 mm, rotated 25 degrees
MOCK = Path("rt-utils/tests/mock_data")


def _finer() -> Geometry:
    """The source's slices and orientation with finer, non-square pixels, shifted by a
    fraction of a pixel: no voxel centre of one grid is a voxel centre of the other."""
    matrix = SOURCE.ijk_to_lps.copy()
    matrix[:3, 0] *= 0.45 / 0.7
    matrix[:3, 1] *= 0.55 / 0.9
    matrix[:3, 3] -= 0.3 * SOURCE.ijk_to_lps[:3, 0] + 0.2 * SOURCE.ijk_to_lps[:3, 1]
    return Geometry(matrix, (SOURCE.shape[0], 23, 19))


TARGET = _finer()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("grids")
    far = SOURCE.ijk_to_lps.copy()
    far[:3, 3] += (400.0, -300.0, 250.0)
    return {
        "source": reference_series(SOURCE, root / "source"),
        "target": reference_series(TARGET, root / "target"),
        "far": reference_series(Geometry(far, SOURCE.shape), root / "far"),
        "top": reference_series(SOURCE.cropped((0, 0, 0), (3, 13, 11)), root / "top"),
    }


@pytest.fixture(scope="module")
def contour_file(folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RTSTRUCT as other tools write it: contours, and no grid stated beside them."""
    path = tmp_path_factory.mktemp("rt") / "contours.rtstruct.dcm"
    segio.write(small_segmentation(kind="oblique"), path, reference=folders["source"])
    ds = pydicom.dcmread(path)
    block = ds.private_block(0x0071, "segio")
    del ds[block.get_tag(0x02)]  # segio's own grid element: without it, contours only
    ds.save_as(path)
    assert segio.read(path).source_representation.value == "Planar contour"
    return path


def _masks(segmentation: Segmentation) -> list[np.ndarray]:
    return [segmentation.mask(key) for key in segmentation.segments]


def _run(*args: str | Path) -> tuple[int, str]:
    """``segio convert ARGS``: exit status and what it printed (warnings included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the command prints them as "segio: warning:"
        result = CliRunner().invoke(cli, ["convert", *map(str, args)])
    return result.exit_code, result.output


def _convert(*args: str | Path) -> str:
    status, output = _run(*args)
    assert status == 0, output
    return output


# -- item 3: rasterised on the reference grid ---------------------------------------------------


@pytest.mark.parametrize("suffix", [".seg.dcm", ".rtstruct.dcm", ".nii.gz", ".seg.nrrd"])
def test_contours_with_a_reference_are_a_direct_rasterisation(
    contour_file: Path, folders: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    """Before issue 12 the SEG and RTSTRUCT outputs were rasterised on a 1 mm grid of
    their own and resampled: voxels appeared and vanished at every edge."""
    direct = to_labelmap(segio.read(contour_file), TARGET)
    out = tmp_path / f"out{suffix}"
    output = _convert(contour_file, out, "-r", folders["target"])
    assert "resampled" not in output and "lost" not in output  # nothing was
    back = segio.read(out, reference=folders["target"]) if suffix.endswith("dcm") else None
    back = back or segio.read(out)
    assert back.require_geometry().is_close(TARGET, 1e-4)
    for expected, got in zip(_masks(direct), _masks(back), strict=True):
        assert expected.any() and np.array_equal(expected, got)


@pytest.mark.parametrize("suffix", [".seg.dcm", ".nii.gz"])
def test_surfaces_with_a_reference_are_a_direct_rasterisation(
    folders: dict[str, Path], tmp_path: Path, suffix: str
) -> None:
    pytest.importorskip("vtk")
    from segio.converters.labelmap_to_surface import to_closed_surface
    from segio.converters.surface_to_labelmap import to_labelmap as surfaces_to_labelmap

    mesh = tmp_path / "mesh.vtk"
    labelmap = small_segmentation(kind="oblique")
    labelmap.conversion_parameters.set("Smoothing factor", "0")  # tiny blobs stay whole
    segio.write(to_closed_surface(labelmap), mesh)
    surfaces = segio.read(mesh)
    direct = surfaces_to_labelmap(surfaces, TARGET)
    assert direct.require_geometry() == TARGET  # every surface is inside the grid
    out = tmp_path / f"out{suffix}"
    _convert(mesh, out, "-r", folders["target"])
    back = segio.read(out, reference=folders["target"]) if suffix.endswith("dcm") else None
    back = back or segio.read(out)
    assert back.require_geometry().is_close(TARGET, 1e-4)
    for expected, got in zip(_masks(direct), _masks(back), strict=True):
        assert expected.any() and np.array_equal(expected, got)


def test_a_vendor_rtstruct_keeps_every_voxel_of_its_series_grid(
    shared_data: Path, tmp_path: Path
) -> None:
    """The MIM structure set of rt-utils' tests, written as a SEG on its CT: the SEG
    holds exactly the voxels of a direct rasterisation (882 of 20,146 moved before)."""
    ct = tmp_path / "ct"
    ct.mkdir()
    for name in ("ct_1.dcm", "ct_2.dcm"):
        shutil.copy(shared_data / MOCK / name, ct / name)
    rtstruct = shared_data / MOCK / "invalid_reference_rt.dcm"
    # Its 4 contours at z = 70 have no CT slice: dropped when read, lost when written.
    with pytest.warns(UserWarning, match="lie outside the grid and were dropped"):
        direct = segio.read(rtstruct, reference=ct)
    assert sum(direct.voxel_counts().values()) == 20146
    output = _convert(rtstruct, tmp_path / "out.seg.dcm", "-r", ct)
    assert "voxels outside it are lost: 'ROI-1' 484 of 5460" in output
    back = segio.read(tmp_path / "out.seg.dcm", reference=ct)
    for expected, got in zip(_masks(direct), _masks(back), strict=True):
        assert np.array_equal(expected, got)


def test_a_transposed_and_reversed_series_is_the_same_grid(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    """Rows and columns swapped, one of them reversed: the same voxel centres, so the
    voxels move by index and nothing warns of resampling."""
    matrix = np.eye(4)
    matrix[:3, 0] = SOURCE.ijk_to_lps[:3, 1]
    matrix[:3, 1] = -SOURCE.ijk_to_lps[:3, 0]
    matrix[:3, 2] = SOURCE.ijk_to_lps[:3, 2]
    matrix[:3, 3] = SOURCE.ijk_to_points([[SOURCE.shape[2] - 1, 0, 0]])[0]
    turned = Geometry(matrix, (SOURCE.shape[0], SOURCE.shape[2], SOURCE.shape[1]))
    series = reference_series(turned, tmp_path / "turned")
    segmentation = small_segmentation(kind="oblique")
    for name in ("s.seg.dcm", "s.rtstruct.dcm", "s.tag"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            segio.write(segmentation, tmp_path / name, reference=series)
    back = segio.read(tmp_path / "s.seg.dcm", reference=series)
    assert back.require_geometry().is_close(turned, 1e-4)
    for expected, got in zip(_masks(resample(segmentation, turned)), _masks(back), strict=True):
        assert np.array_equal(expected, got)
    assert back.voxel_counts() == {
        k: v for k, v in zip(back.segments, segmentation.voxel_counts().values(), strict=True)
    }


def test_a_labelmap_format_with_a_reference_is_on_its_grid(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    """seg.nrrd and NIfTI take no reference option: --reference is their output grid."""
    source = tmp_path / "s.seg.nrrd"
    segio.write(small_segmentation(kind="oblique"), source)
    _convert(source, tmp_path / "padded.nii.gz", "-r", folders["source"])
    back = segio.read(tmp_path / "padded.nii.gz")
    assert back.require_geometry().is_close(SOURCE, 1e-4)
    with pytest.warns(UserWarning, match="nearest neighbour"):
        segio.convert(source, tmp_path / "finer.nii.gz", reference=folders["target"])
    assert segio.read(tmp_path / "finer.nii.gz").require_geometry().is_close(TARGET, 1e-4)


# -- item 4: a reference that cannot serve ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".seg.dcm", ".rtstruct.dcm", ".nii.gz"])
def test_a_reference_that_misses_the_segmentation_is_refused(
    folders: dict[str, Path], contour_file: Path, tmp_path: Path, suffix: str
) -> None:
    """Before issue 12: an all-empty SEG or RTSTRUCT, exit status 0."""
    labelmap = tmp_path / "s.seg.nrrd"
    segio.write(small_segmentation(kind="oblique"), labelmap)
    for source in (labelmap, contour_file):
        out = tmp_path / f"{source.name.split('.')[0]}{suffix}"
        status, output = _run(source, out, "-r", folders["far"])
        assert status == 1
        assert "does not overlap the segmentation" in output and "--allow-empty" in output
        assert not out.exists()
        output = _convert(source, out, "-r", folders["far"], "--allow-empty", "--force")
        assert "written empty as asked" in output
        assert out.exists()


def test_write_refuses_an_emptied_output_in_python_too(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    segmentation = small_segmentation(kind="oblique")
    with pytest.raises(WriteError, match="does not overlap"):
        segio.write(segmentation, tmp_path / "s.seg.dcm", reference=folders["far"])
    with pytest.warns(UserWarning, match="written empty"):
        segio.write(
            segmentation, tmp_path / "s.seg.dcm", reference=folders["far"], allow_empty=True
        )


def test_an_empty_input_still_converts(folders: dict[str, Path], tmp_path: Path) -> None:
    """An AI model that found nothing: its empty segments are written as they are."""
    segmentation = small_segmentation(kind="oblique")
    for layer in segmentation.layers:
        layer.array[...] = 0
    for name in ("s.seg.dcm", "s.nii.gz"):
        segio.write(segmentation, tmp_path / name, reference=folders["far"])
    back = segio.read(tmp_path / "s.seg.dcm", reference=folders["far"])
    assert not any(back.voxel_counts().values())


def test_a_partial_overlap_warns_with_the_voxels_lost_per_segment(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    segmentation = small_segmentation(kind="oblique")
    top = SOURCE.cropped((0, 0, 0), (3, 13, 11))
    lost = voxels_outside(segmentation, top)
    counts = segmentation.voxel_counts()
    assert any(lost.values()) and not all(lost[k] == counts[k] for k in lost)
    with pytest.warns(UserWarning, match="voxels outside it are lost") as caught:
        segio.write(segmentation, tmp_path / "s.seg.dcm", reference=folders["top"])
    text = " ".join(str(w.message) for w in caught)
    for key, n in lost.items():
        if n:
            assert f"{segmentation.segments[key].name!r} {n} of {counts[key]}" in text
    back = segio.read(tmp_path / "s.seg.dcm", reference=folders["top"])
    kept = sum(back.voxel_counts().values())
    assert kept == sum(counts.values()) - sum(lost.values())


def test_contours_partly_off_the_reference_warn_and_count_their_voxels(
    contour_file: Path, folders: dict[str, Path], tmp_path: Path
) -> None:
    """Rasterised on the reference's lattice grown to hold them, then cropped: the voxels
    outside are counted, not clipped unseen."""
    contours = segio.read(contour_file)
    whole = to_labelmap(contours, SOURCE)
    lost = {k: n for k, n in voxels_outside(whole, SOURCE.cropped((0, 0, 0), (3, 13, 11))).items()}
    with pytest.warns(UserWarning, match="voxels outside it are lost") as caught:
        segio.write(contours, tmp_path / "s.seg.dcm", reference=folders["top"])
    text = " ".join(str(w.message) for w in caught)
    names = [contours.segments[k].name for k, n in lost.items() if n]
    assert names and all(repr(name) in text for name in names)
    with pytest.warns(UserWarning, match="lie off its slices"):
        segio.write(contours, tmp_path / "s.rtstruct.dcm", reference=folders["top"])


def test_contours_traced_from_a_labelmap_come_back_exactly(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    """Contours of the source grid, written as SEG on that grid: the voxels they came from."""
    segmentation = small_segmentation(kind="oblique")
    contours = to_contours(segmentation)
    contours.reference_geometry = None
    segio.write(contours, tmp_path / "s.seg.dcm", reference=folders["source"])
    back = segio.read(tmp_path / "s.seg.dcm", reference=folders["source"])
    for expected, got in zip(_masks(segmentation), _masks(back), strict=True):
        assert np.array_equal(expected, got)


def test_an_rtstruct_is_read_onto_any_reference_image(contour_file: Path, tmp_path: Path) -> None:
    """The reader's reference is any image too: a NIfTI of the target grid, say."""
    import nibabel

    image = np.zeros(TARGET.shape[::-1], dtype=np.int16)  # nibabel indexes (i, j, k)
    nibabel.save(nibabel.Nifti1Image(image, TARGET.ijk_to_ras), tmp_path / "ct.nii.gz")
    back = segio.read(contour_file, reference=tmp_path / "ct.nii.gz")
    direct = to_labelmap(segio.read(contour_file), TARGET)
    assert back.require_geometry().is_close(TARGET, 1e-5)
    for expected, got in zip(_masks(direct), _masks(back), strict=True):
        assert np.array_equal(expected, got)
