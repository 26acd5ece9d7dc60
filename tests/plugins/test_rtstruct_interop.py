"""RTSTRUCT against its peers, both ways: plastimatch and rt-utils read us, we read them.

One synthetic case per grid (24 slices, 8 segments with holes and islands, one cut by the
``i = 0`` face), on an axial grid and on an oblique, anisotropic, non-square one. Every
file is compared with the ground truth, and the peer is held to its own standard: what it
gets reading *its own* RTSTRUCT of the same labelmap is the bar for reading ours.

plastimatch is a required test tool (``make test`` installs the Debian package when it is
missing), so a missing binary fails these tests instead of skipping them: a skipped
interoperability test is one nobody notices stopped running.

What plastimatch does (found here, see the tests for the numbers):

* It writes contours by marching squares (ITK ``ContourExtractor2DImageFilter``), halfway
  between inside and outside voxel centres, like our ``midpoint`` mode, but without
  padding the image: a region cut by the image border gets a contour *through the centres*
  of its border voxels. Whether such a voxel is in is a tie that rounding decides once
  the vertices went through millimetres and 16-character decimal strings; on the axial
  grid they are exact, on the oblique one up to ~1e-5 pixel off, and readers (plastimatch
  itself included) drop a share of those voxels. It also joins holes to their outline
  by keyholes ("Keyholizing structure n"), which even-odd filling reads right.
* By default it ORs the contours of a plane (holes come back filled); ``--xor-contours``
  gives even-odd filling, as segio does.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray

import segio
from segio.analysis.overlap import dice
from segio.geometry import Geometry
from segio.model import Segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, synthetic_segmentation

pytestmark = pytest.mark.interop

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
GRIDS = {
    "axial": lambda: grid("axial", (24, 96, 96)),
    "oblique": lambda: grid("oblique", (24, 100, 88)),
}


class Case:
    """A segmentation, its CT series and both tools' RTSTRUCTs of it, in ``folder``."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.geometry: Geometry = GRIDS[kind]()
        self.seg: Segmentation = synthetic_segmentation(
            geometry=self.geometry, n_segments=8, seed=3
        )
        self.folder = folder
        self.series = reference_series(self.geometry, folder / "ct")
        self.truth = {s.name: self.seg.mask(s.id) for s in self.seg.segments.values()}
        self.ours = folder / "segio.rtstruct.dcm"
        segio.write(self.seg, self.ours, reference=self.series, contour_mode="midpoint")
        self.ours_centre = folder / "segio-centre.rtstruct.dcm"
        segio.write(self.seg, self.ours_centre, reference=self.series, contour_mode="centre")
        self.theirs = plastimatch_write(self.seg, self.geometry, self.series, folder / "pm")


def plastimatch() -> str:
    """The plastimatch binary; a failure (not a skip) without it."""
    found = shutil.which("plastimatch")
    if found is None:
        pytest.fail("plastimatch is not installed; `make test` installs it (Debian package)")
    return found


def run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


def write_nrrd(path: Path, array: NDArray[Any], geometry: Geometry) -> None:
    """A volume ``[k, j, i]`` as NRRD in LPS, the way ITK (plastimatch) reads it."""
    header = {
        "space": "left-posterior-superior",
        "space directions": geometry.ijk_to_lps[:3, :3].T,
        "space origin": geometry.origin,
        "kinds": ["domain"] * 3,
    }
    nrrd.write(str(path), np.ascontiguousarray(array.T), header)


def plastimatch_write(seg: Segmentation, geometry: Geometry, series: Path, out: Path) -> Path:
    """plastimatch's RTSTRUCT of ``seg``: from a structure-set image (bit n = structure n)."""
    out.mkdir()
    segments = list(seg.segments.values())
    bits = np.zeros(geometry.shape, dtype=np.uint32)
    for n, segment in enumerate(segments):
        bits |= seg.mask(segment.id).astype(np.uint32) << np.uint32(n)
    write_nrrd(out / "ss.nrrd", bits, geometry)
    colours = ["\\".join(str(round(c * 255)) for c in s.color) for s in segments]
    (out / "ss.txt").write_text(
        "".join(
            f"{n}|{rgb}|{s.name}\n"
            for n, (s, rgb) in enumerate(zip(segments, colours, strict=True))
        )
    )
    run(
        [
            plastimatch(), "convert",
            "--input-ss-img", str(out / "ss.nrrd"),
            "--input-ss-list", str(out / "ss.txt"),
            "--referenced-ct", str(series),
            "--output-dicom", str(out / "dicom"),
        ]
    )  # fmt: skip
    (path,) = (out / "dicom").glob("rtss*.dcm")
    return path


def plastimatch_read(
    rtstruct: Path, series: Path, out: Path, geometry: Geometry, *, xor: bool
) -> dict[str, BoolArray]:
    """plastimatch's masks, one per structure, on the series grid (checked)."""
    argv = [
        plastimatch(), "convert",
        "--input", str(rtstruct),
        "--referenced-ct", str(series),
        "--output-prefix", str(out),
        "--prefix-format", "nrrd",
    ]  # fmt: skip
    run([*argv, "--xor-contours"] if xor else argv)
    masks = {}
    for path in sorted(out.glob("*.nrrd")):
        array, header = nrrd.read(str(path))
        np.testing.assert_allclose(header["space origin"], geometry.origin, atol=1e-4)
        np.testing.assert_allclose(
            header["space directions"], geometry.ijk_to_lps[:3, :3].T, atol=1e-5
        )
        masks[path.stem] = array.T > 0
        assert masks[path.stem].shape == geometry.shape
    return masks


def scores(truth: dict[str, BoolArray], masks: dict[str, BoolArray]) -> dict[str, float]:
    return {name: dice(mask, masks[name]) for name, mask in truth.items() if mask.any()}


def segio_masks(path: Path, series: Path) -> dict[str, BoolArray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plastimatch's file name ends "...dcm": sniffed
        seg = segio.read(path, format="rtstruct", reference=series)
    return {s.name: seg.mask(s.id) for s in seg.segments.values()}


def table(title: str, rows: dict[str, dict[str, float]]) -> None:
    """Printed per test (``pytest -s``): the numbers the report quotes."""
    print(f"\n{title}")
    for label, row in rows.items():
        values = " ".join(f"{v:.4f}" for v in row.values())
        print(f"  {label:<34} mean {np.mean(list(row.values())):.4f}  [{values}]")


@pytest.fixture(scope="module", params=sorted(GRIDS))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    plastimatch()
    return Case(request.param, tmp_path_factory.mktemp(request.param))


# -- plastimatch -------------------------------------------------------------------------------


@pytest.mark.parametrize("xor", [False, True], ids=["or", "xor"])
@pytest.mark.parametrize("mode", ["midpoint", "centre"])
def test_plastimatch_reads_our_file_as_well_as_its_own(case: Case, xor: bool, mode: str) -> None:
    """Per segment, plastimatch reading our file scores at least what it scores on its own
    file of the same labelmap, with the same options. With ``--xor-contours`` ours is
    exact: our contours never pass through a voxel centre, border or not."""
    ours = case.ours if mode == "midpoint" else case.ours_centre
    read = {
        name: plastimatch_read(path, case.series, case.folder / f"read-{name}-{mode}-{xor}",
                               case.geometry, xor=xor)
        for name, path in (("ours", ours), ("theirs", case.theirs))
    }  # fmt: skip
    on_ours, on_theirs = scores(case.truth, read["ours"]), scores(case.truth, read["theirs"])
    table(
        f"plastimatch {'--xor-contours' if xor else 'default (OR)'}, Dice vs truth",
        {"on segio's file": on_ours, "on plastimatch's own file": on_theirs},
    )
    for name in on_theirs:
        assert on_ours[name] >= on_theirs[name], name
    if xor:
        assert min(on_ours.values()) == 1.0
    else:
        # OR fills holes: the segments with holes lose, on both files alike.
        assert min(on_ours.values()) < 1.0


def test_we_read_plastimatch_file_as_plastimatch_does(case: Case) -> None:
    """segio on plastimatch's RTSTRUCT against plastimatch's own ``--xor-contours`` reading.

    plastimatch's contours of a region cut by the image border run along the border voxels'
    centres (its marching squares do not pad), so those voxels are ties. On the axial grid
    the vertices are exact and both readers keep them; on the oblique grid the decimal
    strings put them a hair (< 1e-5 pixel) either side and plastimatch drops some of them
    (about 50 voxels, all of the border-cut segment). segio keeps every voxel an edge along
    a row or column of centres runs through, so it reads the file exactly on both grids.
    Any voxel plastimatch gets wrong is such a tie: its centre is on a contour.
    """
    ours = segio_masks(case.theirs, case.series)
    theirs = plastimatch_read(
        case.theirs, case.series, case.folder / "read-theirs-xor", case.geometry, xor=True
    )
    assert ours.keys() == theirs.keys() == case.truth.keys()
    border = np.ones(case.geometry.shape, dtype=bool)
    border[:, 1:-1, 1:-1] = False
    rows: dict[str, dict[str, float]] = {"segio": {}, "plastimatch --xor-contours": {}}
    for name, truth in case.truth.items():
        rows["segio"][name] = dice(truth, ours[name])
        rows["plastimatch --xor-contours"][name] = dice(truth, theirs[name])
        assert not (theirs[name] & ~truth).any(), "nothing is added"
        assert not ((theirs[name] != truth) & ~border).any(), "off the border: exact"
    table(f"reading plastimatch's RTSTRUCT ({case.folder.name}), Dice vs truth", rows)
    assert min(rows["segio"].values()) == 1.0
    distances = _distance_to_contours(case, {n: m != case.truth[n] for n, m in theirs.items()})
    if distances:
        print(f"  plastimatch's wrong voxels: {len(distances)}, {max(distances):.2e} px off")
        assert max(distances) < 1e-4


def _distance_to_contours(case: Case, wrong: dict[str, BoolArray]) -> list[float]:
    """For each ``True`` voxel, the distance (pixels) from its centre to the nearest edge
    of its segment's contours in plastimatch's file on that slice."""
    ds = pydicom.dcmread(case.theirs)
    names = {roi.ROINumber: roi.ROIName for roi in ds.StructureSetROISequence}
    edges: dict[tuple[str, int], list[FloatArray]] = {}
    for roi in ds.ROIContourSequence:
        for item in roi.ContourSequence:
            points = np.array(item.ContourData, dtype=float).reshape(-1, 3)
            ijk = case.geometry.points_to_ijk(points)
            key = (names[roi.ReferencedROINumber], int(np.round(ijk[:, 2].mean())))
            ends = np.stack([ijk[:, :2], np.roll(ijk[:, :2], -1, axis=0)], axis=1)
            edges.setdefault(key, []).append(ends)
    result = []
    for name, mask in wrong.items():
        for k, j, i in np.argwhere(mask):
            ends = np.concatenate(edges.get((name, int(k)), [np.full((1, 2, 2), np.inf)]))
            a, ab = ends[:, 0], ends[:, 1] - ends[:, 0]
            t = np.clip(((np.array([i, j]) - a) * ab).sum(1) / (ab * ab).sum(1), 0, 1)
            result.append(float(np.hypot(*(a + t[:, None] * ab - [i, j]).T).min()))
    return result


# -- rt-utils ----------------------------------------------------------------------------------


def _rt_utils() -> Any:
    """rt-utils, untyped (no stubs). Only ``rt_utils`` itself: its wheel also installs a
    stray top-level ``tests`` package, which must never be imported."""
    return importlib.import_module("rt_utils")


def _rows_cols(mask: BoolArray, shape: tuple[int, ...]) -> BoolArray:
    """An rt-utils mask as ``[row, col, slice]``: 1.2.7 allocates ``(cols, rows, slices)``
    but indexes rows first, so on non-square images only the common square is filled."""
    out = np.zeros(shape, dtype=bool)
    r, c = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
    out[:r, :c] = mask[:r, :c]
    return out


def _rt_utils_vertices(path: Path, series: Path) -> tuple[FloatArray, FloatArray]:
    """All contour vertices of an RTSTRUCT in pixel units ``(col, row)`` of their image,
    once with the pixel spacings as DICOM defines them and once swapped."""
    images = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(series.iterdir())]
    by_uid = {str(im.SOPInstanceUID): im for im in images}
    right, swapped = [], []
    for roi in pydicom.dcmread(path).ROIContourSequence:
        for item in roi.ContourSequence:
            image = by_uid[item.ContourImageSequence[0].ReferencedSOPInstanceUID]
            iop = np.array(image.ImageOrientationPatient, dtype=float)
            offset = np.array(item.ContourData, dtype=float).reshape(-1, 3) - np.array(
                image.ImagePositionPatient, dtype=float
            )
            along = np.column_stack([offset @ iop[:3], offset @ iop[3:]])
            row_spacing, col_spacing = (float(v) for v in image.PixelSpacing)
            right.append(along / [col_spacing, row_spacing])
            swapped.append(along / [row_spacing, col_spacing])
    return np.concatenate(right), np.concatenate(swapped)


def _off_whole_pixels(points: FloatArray) -> float:
    return float(np.abs(points - np.round(points)).max())


def test_we_read_rt_utils_files_better_than_rt_utils(case: Case) -> None:
    """segio on rt-utils' RTSTRUCT against rt-utils reading it, both against the truth.

    * Axial: rt-utils traces contours through the boundary voxels' centres
      (``cv.findContours``, one-voxel lines as 2-point contours) and fills rounded vertices
      inclusively (``cv.fillPoly``), so it gets its own file back exactly; segio keeps the
      voxels such traced edges run through, so it does too.
    * Oblique (anisotropic, non-square): rt-utils 1.2.7 converts pixels to millimetres with
      the two pixel spacings swapped (fixed upstream, unreleased), so its contours are
      misplaced in the patient; its reader cancels the error but clips non-square images
      (Dice ~0.92). segio recognises the swap from the vertices (whole pixels only with the
      spacings swapped), puts them back with a warning, and reads the file exactly.
    """
    rt_utils = _rt_utils()
    present = [s for s in case.seg.segments.values() if case.truth[s.name].any()]
    path = case.folder / "rt-utils.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom deprecations raised inside rt-utils
        builder = rt_utils.RTStructBuilder.create_new(dicom_series_path=str(case.series))
        for segment in present:
            # rt-utils masks are [row, column, slice].
            builder.add_roi(mask=case.truth[segment.name].transpose(1, 2, 0), name=segment.name)
        builder.save(str(path))
        again = rt_utils.RTStructBuilder.create_from(
            dicom_series_path=str(case.series), rt_struct_path=str(path)
        )
        by_rt_utils = {
            s.name: _rows_cols(
                again.get_roi_mask_by_name(s.name), case.truth[s.name].transpose(1, 2, 0).shape
            ).transpose(2, 0, 1)
            for s in present
        }
    oblique = not case.folder.name.startswith("axial")
    with pytest.warns(UserWarning, match="pixel spacings swapped") if oblique else nullcontext():
        read = segio.read(path, format="rtstruct", reference=case.series)
    by_segio = {s.name: read.mask(s.id) for s in read.segments.values()}
    rows = {
        "segio on rt-utils' file": scores(case.truth, by_segio),
        "rt-utils on its own file": scores(case.truth, by_rt_utils),
    }
    table(f"reading rt-utils' RTSTRUCT ({case.folder.name}), Dice vs truth", rows)
    ours, theirs = (min(r.values()) for r in rows.values())
    right, swapped = _rt_utils_vertices(path, case.series)
    assert ours == 1.0
    if oblique:
        assert _off_whole_pixels(right) > 0.1 and _off_whole_pixels(swapped) < 1e-4
        assert theirs < ours
    else:
        assert _off_whole_pixels(right) < 1e-4, "contours through voxel centres"
        assert theirs == 1.0
