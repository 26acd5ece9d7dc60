"""OsiriX/Horos ROI exports: real samples, every synthetic variant, placement, errors, CLI."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any

import legacy  # fixtures/legacy.py, on pytest's pythonpath
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segio
from segio.contours import ContourKind
from segio.errors import ReadError, SegioError, ValidationError
from segio.registry import default_registry
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ANNOTATIONS = r"line ROI\(s\) kept as annotations"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An oblique, anisotropic, non-square CT series and the export of its ROIs."""
    import pydicom

    folder = tmp_path_factory.mktemp("osirix")
    geometry = grid("oblique", (5, 14, 12))
    series = reference_series(geometry, folder / "series")
    files = sorted(series.glob("*.dcm"))
    uids = [str(pydicom.dcmread(p).SOPInstanceUID) for p in files]
    return {
        "folder": folder,
        "geometry": geometry,
        "series": series,
        "files": files,
        "uids": uids,
        "study": str(pydicom.dcmread(files[0]).StudyInstanceUID),
        "document": legacy.export_rois_document(geometry, uids),
    }


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _read(path: Path, **options: Any) -> segio.Segmentation:
    with pytest.warns(UserWarning, match=ANNOTATIONS):
        return segio.read(path, **options)


def _contours(seg: segio.Segmentation) -> dict[str, list[tuple[str, np.ndarray]]]:
    return {
        seg.segments[sid].name: [(c.kind.value, c.points) for c in group]
        for sid, group in seg.contours.items()
    }


def _assert_same_contours(a: segio.Segmentation, b: segio.Segmentation, atol: float) -> None:
    assert [p.name for p in a.points] == [p.name for p in b.points]
    for pa, pb in zip(a.points, b.points, strict=True):
        assert float(np.max(np.abs(pa.position - pb.position))) < atol, pa.name
    ca, cb = _contours(a), _contours(b)
    assert list(ca) == list(cb)
    for name in ca:
        assert [k for k, _ in ca[name]] == [k for k, _ in cb[name]], name
        for (_, pa), (_, pb) in zip(ca[name], cb[name], strict=True):
            assert pa.shape == pb.shape
            assert float(np.max(np.abs(pa - pb))) < atol, name


# -- the real samples -------------------------------------------------------------------------


def test_export_rois_json_sample(shared_data: Path) -> None:
    seg = segio.read(shared_data / "SlicerSandbox" / "Austrialian-2009-01-02-Head.json")
    assert seg.provenance["format"] == "osirix"
    assert [s.name for s in seg.segments.values()] == ["Head"]
    contours = seg.contours["Segment_1"].contours
    assert len(contours) == 76 and all(c.kind is ContourKind.CLOSED_PLANAR for c in contours)
    assert all(c.image_uid and c.image_uid.startswith("1.2.826.") for c in contours)
    # The pixel-corner rule: mm = origin + (px - 0.5)·3.2 with origin (0, 0) on every image.
    document = json.loads(
        (shared_data / "SlicerSandbox/Austrialian-2009-01-02-Head.json").read_text()
    )
    roi = document["Images"][0]["ROIs"][0]
    px = legacy_points(roi["Point_px"], 2)
    np.testing.assert_allclose(contours[0].points[:, :2], (px - 0.5) * 3.2, atol=2e-5)


def legacy_points(strings: list[str], n: int) -> np.ndarray:
    from segio_plugins.osirix.reader import parse_points

    return parse_points(strings, n, "test")


def test_roi_info_json_sample_groups_by_name(shared_data: Path) -> None:
    seg = segio.read(shared_data / "SlicerSandbox" / "OsirixTestROI_1.json")
    names = {s.name: len(seg.contours[s.id]) for s in seg.segments.values()}
    assert names == {"Test": 1, "Unnamed": 105}
    # Every ROI is planar and axial: one z per contour, 82 distinct slices.
    zs = [c.points[:, 2] for group in seg.contours.values() for c in group]
    assert all(np.ptp(z) == 0 for z in zs)
    assert len({float(z[0]) for z in zs}) == 82


def test_pixel_corner_rule_on_the_real_samples(shared_data: Path, tmp_path: Path) -> None:
    """Every point of both JSON samples: mm = origin + (px - 0.5)·spacing, exactly (§1.2).

    Then the reader's own pixel path: one real ROI given as pixel points only (as Horos
    exports it) on an image with the sample's geometry lands on the file's 3D points.
    """
    from segio.geometry import Geometry

    info = json.loads((shared_data / "SlicerSandbox" / "OsirixTestROI_1.json").read_text())
    px = np.concatenate([legacy_points(r["ROIPoints"], 2) for r in info])
    mm = np.concatenate([legacy_points(r["ROI3DPoints"], 3) for r in info])
    origin = mm[:, :2] - (px - 0.5) * 0.703125
    np.testing.assert_allclose(origin, np.broadcast_to([-170.70, -180.0], origin.shape), atol=3e-5)
    naive = mm[:, :2] - px * 0.703125  # without the half pixel: off by 0.35 mm
    assert float(np.min(np.abs(naive - [-170.70, -180.0]))) > 0.35
    export = json.loads(
        (shared_data / "SlicerSandbox" / "Austrialian-2009-01-02-Head.json").read_text()
    )
    rois = [r for image in export["Images"] for r in image["ROIs"]]
    px = np.concatenate([legacy_points(r["Point_px"], 2) for r in rois])
    mm = np.concatenate([legacy_points(r["Point_mm"], 3) for r in rois])
    np.testing.assert_allclose(mm[:, :2], (px - 0.5) * 3.2, atol=3e-5)

    roi = info[0]
    z = float(legacy_points(roi["ROI3DPoints"], 3)[0, 2])
    image = reference_series(
        Geometry.from_spacing((1, 512, 512), (0.703125, 0.703125, 1.0), (-170.70, -180.0, z)),
        tmp_path / "image",
    )
    horos = {"Name": "Test", "ROIPoints": ["{" + s[1:-1] + "}" for s in roi["ROIPoints"]]}
    import plistlib

    path = _write(tmp_path, "horos.xml", plistlib.dumps(horos, fmt=plistlib.FMT_XML))
    from segio_plugins.osirix.reader import build, parse

    from segio.dicom.series import read_image_series

    parsed, variant = parse(path.read_bytes(), path)
    assert variant == "roi-window" and parsed[0].points_mm is None
    placed = build(parsed, path, read_image_series(image)).contours["Segment_1"].contours[0]
    np.testing.assert_allclose(placed.points, legacy_points(roi["ROI3DPoints"], 3), atol=3e-5)


def test_export_rois_xml_sample_oblique_brush(shared_data: Path) -> None:
    seg = segio.read(shared_data / "SlicerSandbox" / "OsirixTestROI_2.xml")
    contours = seg.contours["Segment_1"].contours
    assert [s.name for s in seg.segments.values()] == ["Growing Region"]
    assert len(contours) == 11 and all(c.is_closed for c in contours)  # Type 20: brush
    for contour in contours:  # oblique: z varies inside a ROI, yet every ROI is planar
        centred = contour.points - contour.points.mean(axis=0)
        assert np.ptp(contour.points[:, 2]) > 0.1
        assert np.linalg.svd(centred, compute_uv=False)[2] < 0.01 * np.sqrt(len(centred))
    labelmap = segio.read(shared_data / "SlicerSandbox" / "OsirixTestROI_2.xml")
    from segio.converters.contours_to_labelmap import to_labelmap

    rasterised = to_labelmap(labelmap)
    assert rasterised.geometry is not None
    # Voxels x pixel area match the ROIs' own polygon areas (Newell), an independent count.
    area = sum(
        float(np.linalg.norm(np.cross(c.points, np.roll(c.points, -1, axis=0)).sum(axis=0))) / 2
        for c in contours
    )
    pixel = float(rasterised.geometry.spacing[0] * rasterised.geometry.spacing[1])
    covered = rasterised.voxel_counts()["Segment_1"] * pixel
    assert abs(covered - area) < 0.02 * area, (covered, area)


# -- synthetic variants: same segmentation as their source ---------------------------------------


VARIANTS = {
    "export_rois.xml": lambda s: legacy.export_rois_xml(
        legacy.export_rois_document(s["geometry"], s["uids"], with_uids=False)
    ),
    "export_rois_binary.plist": lambda s: legacy.export_rois_binary_plist(s["document"]),
    "export_rois.csv": lambda s: legacy.export_rois_csv(s["document"]),
    "export_rois_old.csv": lambda s: legacy.export_rois_csv(s["document"], old=True),
    "roi_info.json": lambda s: legacy.roi_info_json(s["geometry"]),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_imports_like_its_source(name: str, scene: dict[str, Any], tmp_path: Path) -> None:
    source = _read(_write(tmp_path, "source.json", legacy.export_rois_json(scene["document"])))
    variant = _read(_write(tmp_path, name, VARIANTS[name](scene)))
    _assert_same_contours(source, variant, atol=1e-5)
    on_grid = _read(tmp_path / name, reference=scene["series"])
    expected = _read(tmp_path / "source.json", reference=scene["series"])
    assert_same_segmentation(expected, on_grid)
    counts = on_grid.voxel_counts()
    assert counts["Segment_1"] > 50 and counts["Segment_2"] > 5  # Liver, Lesion
    assert [p.name for p in on_grid.points] == ["Marker"]  # rasterising keeps the point


def test_variant_is_found_by_content_alone(scene: dict[str, Any], tmp_path: Path) -> None:
    for n, build in enumerate(VARIANTS.values()):
        path = _write(tmp_path, f"noext{n}", build(scene))
        assert default_registry().reader_for(path).name == "osirix"


def test_contours_lie_in_the_plane_of_the_image_they_cite(
    scene: dict[str, Any], tmp_path: Path
) -> None:
    import pydicom

    seg = _read(_write(tmp_path, "a.json", legacy.export_rois_json(scene["document"])))
    planes = {}
    for file in scene["files"]:
        ds = pydicom.dcmread(file)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        planes[str(ds.SOPInstanceUID)] = (
            np.array(ds.ImagePositionPatient, dtype=float),
            np.cross(iop[:3], iop[3:]),
        )
    worst = 0.0
    for group in seg.contours.values():
        for contour in group:
            origin, normal = planes[contour.image_uid]
            worst = max(worst, float(np.max(np.abs((contour.points - origin) @ normal))))
    assert worst < 0.01, f"{worst} mm from the cited image plane"


def test_viewer_index_is_not_trusted(scene: dict[str, Any], tmp_path: Path) -> None:
    """ImageIndex counts the other way in the fixture: contours follow UIDs/positions."""
    seg = _read(
        _write(tmp_path, "a.json", legacy.export_rois_json(scene["document"])),
        reference=scene["series"],
    )
    mask = seg.mask("Segment_1")
    assert sorted(np.flatnonzero(mask.any(axis=(1, 2)))) == [1, 2, 3]


def test_a_reference_without_the_cited_images_is_reported(
    scene: dict[str, Any], tmp_path: Path
) -> None:
    document = legacy.export_rois_document(scene["geometry"], [f"9.9.{k}" for k in range(5)])
    path = _write(tmp_path, "a.json", legacy.export_rois_json(document))
    with pytest.warns(UserWarning, match="not in the reference series"):
        seg = _read(path, reference=scene["series"])
    assert seg.voxel_counts()["Segment_1"] > 50  # placed by coordinates all the same


def test_points_are_point_annotations_and_lines_annotations(
    scene: dict[str, Any], tmp_path: Path
) -> None:
    """A point ROI is a point annotation (no segment, never an empty one); a line stays an
    OPEN_PLANAR annotation of its segment."""
    seg = _read(_write(tmp_path, "a.json", legacy.export_rois_json(scene["document"])))
    kinds = {seg.segments[s].name: {c.kind for c in g} for s, g in seg.contours.items()}
    assert "Marker" not in kinds
    assert kinds["Ruler"] == {ContourKind.OPEN_PLANAR}
    assert kinds["Liver"] == {ContourKind.CLOSED_PLANAR}
    (marker,) = seg.points
    roi = next(r for r in legacy.scene(scene["geometry"]) if r.name == "Marker")
    assert marker.name == "Marker" and marker.image_uid == scene["uids"][roi.k]
    expected = legacy.to_mm(scene["geometry"], roi.px, roi.k)[0]
    assert float(np.max(np.abs(marker.position - expected))) < 1e-5


# -- pixel-only variants: ROI SR and Horos ROI-window XML ----------------------------------------


def _on_image(seg: segio.Segmentation, uid: str) -> dict[str, list[np.ndarray]]:
    """Contour points per segment name, of the contours drawn on image ``uid``."""
    result: dict[str, list[np.ndarray]] = {}
    for sid, group in seg.contours.items():
        points = [c.points for c in group if c.image_uid == uid]
        if points:
            result[seg.segments[sid].name] = points
    return result


def test_roi_sr_places_pixel_points_on_the_referenced_image(
    scene: dict[str, Any], tmp_path: Path
) -> None:
    import plistlib

    import pydicom
    from segio_plugins.osirix.reader import build, parse

    from segio.dicom.series import read_image_series

    source = _read(_write(tmp_path, "a.json", legacy.export_rois_json(scene["document"])))
    series = read_image_series(scene["series"])
    rois = legacy.scene(scene["geometry"])
    padded = 0
    for k in (1, 2, 3):
        uid = scene["uids"][k]
        payload = legacy.roi_sr([r for r in rois if r.k == k], uid, scene["study"], odd=k != 2)
        path = _write(tmp_path, f"sr{k}.dcm", payload)
        document = pydicom.dcmread(path)[0x0042, 0x0011].value
        if k != 2:  # an odd-length archive, padded by DICOM: plistlib alone cannot read it
            assert len(document) % 2 == 0 and document.endswith(b"\x00")
            with pytest.raises(plistlib.InvalidFileException):
                plistlib.loads(document)
            padded += 1
        parsed, variant = parse(path.read_bytes(), path)
        assert variant == "roi-sr"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the annotations notice
            from_sr = build(parsed, path, series)
            on_grid = segio.read(path, reference=scene["series"])
        got, want = _on_image(from_sr, uid), _on_image(source, uid)
        brushes = {r.name for r in rois if r.k == k and r.type == legacy.T_BRUSH}
        want = {name: v for name, v in want.items() if name not in brushes}  # bitmaps
        assert list(got) == list(want)
        for name in want:
            assert len(got[name]) == len(want[name])
            for a, b in zip(got[name], want[name], strict=True):
                assert float(np.max(np.abs(a - b))) < 1e-5, name
        liver = next(s.id for s in on_grid.segments.values() if s.name == "Liver")
        mask = on_grid.mask(liver)
        assert mask[k].sum() > 20 and mask.sum() == mask[k].sum()
        assert on_grid.segments[liver].color == (1.0, 0.0, 0.0)  # from the archive
    assert padded == 2


def test_roi_sr_without_reference_says_what_to_pass(scene: dict[str, Any], tmp_path: Path) -> None:
    """Without the series the ROIs are listed but not placed: any write says what to pass."""
    rois = [r for r in legacy.scene(scene["geometry"]) if r.k == 1]
    path = _write(tmp_path, "sr.dcm", legacy.roi_sr(rois, scene["uids"][1], scene["study"]))
    with pytest.warns(UserWarning, match="pixel coordinates only"):
        seg = segio.read(path)
    with pytest.raises(ValidationError, match="reference"):
        segio.write(seg, tmp_path / "out.seg.nrrd")
    assert not (tmp_path / "out.seg.nrrd").exists()
    with (
        pytest.warns(UserWarning, match="pixel coordinates only"),
        pytest.raises(ValidationError, match="reference"),
    ):
        segio.convert(path, tmp_path / "out.nii.gz", segments=["Liver"])


def test_horos_roi_window_xml_on_its_one_image(scene: dict[str, Any], tmp_path: Path) -> None:
    roi = legacy.scene(scene["geometry"])[0]  # Liver on slice 1
    expected = legacy.to_mm(scene["geometry"], roi.px, roi.k)
    for array in (False, True):
        path = _write(tmp_path, f"horos{array}.xml", legacy.horos_roi_xml(roi, array=array))
        with pytest.warns(UserWarning, match="pixel coordinates only"):
            unplaced = segio.read(path)
        with pytest.raises(ValidationError, match="reference"):
            unplaced.validate()
        with pytest.raises(ReadError, match="one image file"):
            segio.read(path, reference=scene["series"])
        seg = segio.read(path, reference=[scene["files"][1]])
        assert seg.voxel_counts()["Segment_1"] > 20
        contours = _horos_contours(path, scene["files"][1])
        assert float(np.max(np.abs(contours - expected))) < 1e-9


def _horos_contours(path: Path, image: Path) -> np.ndarray:
    from segio_plugins.osirix.reader import build, parse

    from segio.dicom.series import read_image_series

    rois, _ = parse(path.read_bytes(), path)
    seg = build(rois, path, read_image_series([image]))
    return seg.contours["Segment_1"].contours[0].points


# -- errors -------------------------------------------------------------------------------------


def test_native_archive_names_the_supported_exports(tmp_path: Path) -> None:
    path = _write(tmp_path, "rois.rois_series", legacy.TYPEDSTREAM)
    with pytest.raises(ReadError, match="Export ROIs plugin output"):
        segio.read(path)
    renamed = _write(tmp_path, "noext", legacy.TYPEDSTREAM)
    assert default_registry().reader_for(renamed).name == "osirix"


@pytest.mark.parametrize("cut", [10, 200, 2000])
def test_truncated_and_broken_files_raise_segio_errors(
    cut: int, scene: dict[str, Any], tmp_path: Path
) -> None:
    for name, build in VARIANTS.items():
        data = build(scene)
        path = _write(tmp_path, name, data[: min(cut, len(data) - 1)])
        with pytest.raises(SegioError):
            segio.read(path, format="osirix")
    rois = [r for r in legacy.scene(scene["geometry"]) if r.k == 1]
    sr = legacy.roi_sr(rois, scene["uids"][1], scene["study"])
    with pytest.raises(SegioError):
        segio.read(_write(tmp_path, "cut.dcm", sr[: len(sr) - cut // 10 - 40]), format="osirix")


def test_an_unknown_xml_encoding_is_a_read_error(tmp_path: Path) -> None:
    """Found by the fuzzer: expat raises LookupError for an encoding it does not know."""
    data = legacy.horos_roi_xml(legacy.scene(grid("oblique", (5, 14, 12)))[0])
    path = _write(tmp_path, "a.xml", data.replace(b"UTF-8", b"U0F-8", 1))
    with pytest.raises(ReadError, match="property list"):
        segio.read(path, format="osirix")


def test_wrong_points_raise(tmp_path: Path) -> None:
    bad = {"Images": [{"ROIs": [{"Name": "x", "Type": 11, "Point_mm": ["(1, 2)"]}]}]}
    with pytest.raises(ReadError, match="3 numbers per point"):
        segio.read(_write(tmp_path, "bad.json", json.dumps(bad).encode()))
    with pytest.raises(ReadError, match="no ROI"):
        segio.read(_write(tmp_path, "empty.json", b'{"Images": []}'), format="osirix")


# -- command line -------------------------------------------------------------------------------


def test_cli_convert_with_reference(scene: dict[str, Any], tmp_path: Path) -> None:
    from segio.cli import cli

    source = _write(
        tmp_path,
        "roi_export.xml",
        legacy.export_rois_xml(legacy.export_rois_document(scene["geometry"], scene["uids"])),
    )
    out = tmp_path / "out.seg.nrrd"
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # the CLI prints them as "segio: warning: ..."
        result = CliRunner().invoke(
            cli, ["convert", str(source), str(out), "--reference", str(scene["series"])]
        )
    assert result.exit_code == 0, result.output
    assert "segio: warning: roi_export.xml: 1 line ROI(s) kept as annotations" in result.output
    # The point ROI is no segment of the .seg.nrrd (not even an empty one): said once.
    assert result.output.count("point annotation(s) not written ('Marker')") == 1
    seg = segio.read(out)
    assert seg.geometry is not None and seg.geometry.is_close(scene["geometry"], 1e-6)
    assert [s.name for s in seg.segments.values()] == ["Liver", "Lesion", "Ruler"]
    assert seg.voxel_counts()["Segment_1"] > 50


# -- fuzzing: damaged exports give a SegioError, never a traceback -------------------------------

_FUZZ_SOURCES: dict[str, bytes] = {}


def _fuzz_sources() -> dict[str, bytes]:
    if not _FUZZ_SOURCES:
        geometry = grid("oblique", (5, 14, 12))
        uids = [f"1.2.3.{k}" for k in range(5)]
        document = legacy.export_rois_document(geometry, uids)
        _FUZZ_SOURCES.update(
            {
                "a.json": legacy.export_rois_json(document),
                "a.xml": legacy.export_rois_xml(document),
                "a.csv": legacy.export_rois_csv(document),
                "b.json": legacy.roi_info_json(geometry),
                "a.plist": legacy.export_rois_binary_plist(document),
            }
        )
    return _FUZZ_SOURCES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_exports_read_or_raise_segio_errors(data: st.DataObject) -> None:
    import tempfile

    name = data.draw(st.sampled_from(sorted(_fuzz_sources())))
    payload = bytearray(_fuzz_sources()[name])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(payload) - 1))
        payload[at] = data.draw(st.sampled_from(b'0123456789-.e,;:"[](){}<>/ \nNIaxZ\x00\xff'))
    at = data.draw(st.integers(0, len(payload)))
    token = data.draw(st.sampled_from([b"", b"inf", b"Infinity", b"-Infinity", b"NaN", b"1e400"]))
    payload[at:at] = token
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(payload))))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(bytes(payload[:cut]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(SegioError):
                segio.read(path, format="osirix")


def test_csv_names_with_commas_and_quotes(scene: dict[str, Any], tmp_path: Path) -> None:
    document = legacy.export_rois_document(scene["geometry"], scene["uids"])
    for image in document["Images"]:
        for roi in image["ROIs"]:
            roi["Name"] = roi["Name"] + ', left "lobe"'
    seg = _read(_write(tmp_path, "names.csv", legacy.export_rois_csv(document)))
    assert [s.name for s in seg.segments.values()] == [
        'Liver, left "lobe"',
        'Lesion, left "lobe"',
        'Ruler, left "lobe"',
    ]
    assert [p.name for p in seg.points] == ['Marker, left "lobe"']


@pytest.mark.parametrize(
    ("kind", "count", "expected"),
    [
        ("Closed Polygon", 5, ContourKind.CLOSED_PLANAR),
        ("Open Polygon", 5, ContourKind.OPEN_PLANAR),
        ("Length", 2, ContourKind.OPEN_PLANAR),
        ("Point", 1, ContourKind.POINT),
        ("Something new", 5, ContourKind.CLOSED_PLANAR),  # as Horos re-imports: by count
        ("Something new", 2, ContourKind.OPEN_PLANAR),
        (11, 2, ContourKind.OPEN_PLANAR),  # a closed type with too few points
        (9, 200, ContourKind.CLOSED_PLANAR),
        (14, 2, ContourKind.OPEN_PLANAR),
        (19, 1, ContourKind.POINT),
    ],
)
def test_roi_types(kind: int | str, count: int, expected: ContourKind) -> None:
    from segio_plugins.osirix.reader import Roi, kind_of

    assert kind_of(Roi("x", kind), count) is expected


def test_keyed_archive_roi_file_on_its_one_image(scene: dict[str, Any], tmp_path: Path) -> None:
    """A bare NSKeyedArchiver ROI array (modern ``.roi``, unverified layout): pixel points."""
    rois = [r for r in legacy.scene(scene["geometry"]) if r.k == 2]
    path = _write(tmp_path, "slice.roi", legacy.keyed_archive(rois))
    assert default_registry().reader_for(path).name == "osirix"
    with (
        pytest.warns(UserWarning, match="pixel coordinates only"),
        pytest.warns(UserWarning, match="brush bitmap not decoded"),
    ):
        unplaced = segio.read(path)
    assert unplaced.provenance["unplaced"]
    with pytest.warns(UserWarning, match="brush bitmap not decoded"):
        seg = segio.read(path, reference=[scene["files"][2]])
    assert seg.provenance["osirix.variant"] == "keyed-archive"
    liver = seg.mask("Segment_1")
    assert liver.shape[0] == 1 and liver.sum() > 20


def test_hostile_keyed_archives_are_refused(tmp_path: Path) -> None:
    import plistlib
    from plistlib import UID

    def archive(objects: list[Any]) -> bytes:
        document = {"$archiver": "NSKeyedArchiver", "$version": 100000}
        document |= {"$top": {"root": UID(1)}, "$objects": ["$null", *objects]}
        return plistlib.dumps(document, fmt=plistlib.FMT_BINARY)

    array = {"$classname": "NSArray", "$classes": ["NSArray", "NSObject"]}
    cycle = archive([{"$class": UID(2), "NS.objects": [UID(1)]}, array])
    with pytest.raises(ReadError, match="nests too deeply"):
        segio.read(_write(tmp_path, "cycle.roi", cycle))
    # 60 levels of arrays that hold the next one twice: 2**60 leaves if expanded
    levels = [{"$class": UID(61), "NS.objects": [UID(n + 2), UID(n + 2)]} for n in range(59)]
    levels.append({"$class": UID(61), "NS.objects": []})
    bomb = archive([*levels, array])
    with pytest.raises(ReadError, match="more than"):
        segio.read(_write(tmp_path, "bomb.roi", bomb))


# -- the committed fixtures (fixtures/legacy/, made by fixtures/generate.py) ----------------------

COMMITTED = FIXTURES / "legacy"
EXPECTED = json.loads((COMMITTED / "expected.json").read_text())["osirix"]
FULL_EXPORTS = [
    "export_rois.json",
    "export_rois.xml",
    "export_rois_binary.plist",
    "export_rois.csv",
    "export_rois_old.csv",
    "roi_info.json",
]
#: Point ROIs are point annotations, not segments.
SEGMENTS = [name for name in EXPECTED["segments"] if name not in EXPECTED["points"]]
VOXELS = {name: n for name, n in EXPECTED["voxels"].items() if name not in EXPECTED["points"]}


def _assert_expected_points(seg: segio.Segmentation) -> None:
    got: dict[str, list[list[float]]] = {}
    for point in seg.points:
        got.setdefault(point.name, []).append(point.position.tolist())
    assert list(got) == list(EXPECTED["points"])
    for name, positions in EXPECTED["points"].items():
        np.testing.assert_allclose(got[name], positions, atol=1e-5)


@pytest.mark.parametrize("name", FULL_EXPORTS)
def test_committed_export_matches_the_expectation(name: str) -> None:
    """Names, contour kinds and counts, and voxels from an independent even-odd count."""
    path = COMMITTED / name
    assert default_registry().reader_for(path).name == "osirix"
    contours = _read(path)
    assert [s.name for s in contours.segments.values()] == SEGMENTS
    _assert_expected_points(contours)
    for segment in contours.segments.values():
        group = contours.contours[segment.id]
        assert len(group) == EXPECTED["contours"][segment.name]
        assert sorted({c.kind.value for c in group}) == EXPECTED["kinds"][segment.name]
    on_grid = _read(path, reference=COMMITTED / "series")
    assert on_grid.geometry is not None
    np.testing.assert_allclose(on_grid.geometry.ijk_to_lps, EXPECTED["ijk_to_lps"], atol=1e-5)
    counts = {on_grid.segments[i].name: n for i, n in on_grid.voxel_counts().items()}
    assert counts == VOXELS
    _assert_expected_points(on_grid)


def test_committed_pixel_only_variants() -> None:
    """ROI SRs, the keyed-archive .roi and Horos XML: placed through the images they name."""
    series = COMMITTED / "series"
    voxels: dict[str, int] = {}
    for k in (1, 2, 3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)  # annotations on some slices
            seg = segio.read(COMMITTED / f"roi_sr_{k}.dcm", reference=series)
        # The brush (slice 2) is a bitmap in the archive: skipped and said so, no point.
        said = any("brush bitmap not decoded" in str(w.message) for w in caught)
        assert said == (k == 2)
        for segment_id, n in seg.voxel_counts().items():
            name = seg.segments[segment_id].name
            voxels[name] = voxels.get(name, 0) + n
    expected = {name: 0 if name in EXPECTED["archive_skips"] else n for name, n in VOXELS.items()}
    assert voxels == expected
    files = sorted(series.glob("*.dcm"))
    with pytest.warns(UserWarning, match="brush bitmap not decoded"):
        archive = segio.read(COMMITTED / "slice_2.roi", reference=[files[2]])
    on_slice_2 = {archive.segments[i].name: n for i, n in archive.voxel_counts().items()}
    assert on_slice_2["Lesion"] == 0 and on_slice_2["Liver"] > 20
    lesion = next(s.id for s in archive.segments.values() if s.name == "Lesion")
    assert not archive.contours.get(lesion)  # in particular no POINT annotation
    for name in ("horos_roi.xml", "horos_roi_array.xml", "horos_roi_large.xml"):
        assert default_registry().reader_for(COMMITTED / name).name == "osirix"
        horos = segio.read(COMMITTED / name, reference=[files[1]])
        assert horos.voxel_counts()["Segment_1"] == EXPECTED["horos_voxels"]
    with pytest.raises(ReadError, match="typedstream"):
        segio.read(COMMITTED / "native.rois_series")


def test_horos_roi_array_on_several_images_is_not_piled_onto_one() -> None:
    """``Slice`` differs between the ROIs: one image cannot hold them (spec §1.4)."""
    path = COMMITTED / "horos_roi_array_slices.xml"
    files = sorted((COMMITTED / "series").glob("*.dcm"))
    with pytest.raises(ReadError, match="span several images"):
        segio.read(path, reference=[files[1]])
    with pytest.raises(ReadError, match="names no image"):
        segio.read(path, reference=COMMITTED / "series")


def test_large_horos_xml_is_sniffed_by_its_data_keys() -> None:
    from segio_plugins.osirix.register import sniff

    data = (COMMITTED / "horos_roi_large.xml").read_bytes()
    assert data.index(b"<key>ROIPoints</key>") > 4096  # beyond the sniffed head
    assert sniff(data[:4096])


def test_infinite_numbers_are_read_errors(scene: dict[str, Any], tmp_path: Path) -> None:
    document = {"Images": [{"ROIs": [{"Name": "x", "Type": 1e400, "Point_mm": ["(1, 2, 3)"]}]}]}
    text = json.dumps(document)  # Python writes the infinite float as Infinity
    assert "Infinity" in text
    seg = segio.read(_write(tmp_path, "inf.json", text.encode()))  # unknown type: by count
    assert [p.name for p in seg.points] == ["x"] and not seg.segments  # one point: a point
    csv = legacy.export_rois_csv(scene["document"]).decode().splitlines()
    header = csv[0].split(",")
    cells = csv[1].split(",")
    cells[header.index("RoiType")] = "inf"
    path = _write(tmp_path, "inf.csv", "\n".join([csv[0], ",".join(cells)]).encode())
    with pytest.raises(ReadError, match="line 2"):
        segio.read(path)
    rois = [r for r in legacy.scene(scene["geometry"]) if r.k == 1]
    archive = legacy.keyed_archive(rois).replace(b"\x23\x40\x26", b"\x23\x7f\xf0")
    path = _write(tmp_path, "inf.roi", archive)
    with pytest.raises(ReadError, match="type"):
        segio.read(path, reference=[scene["files"][1]])


def test_duplicate_rois_from_fused_viewers_do_not_cancel(tmp_path: Path) -> None:
    document = json.loads((COMMITTED / "export_rois.json").read_text())
    for image in document["Images"]:
        image["ROIs"] = image["ROIs"] * 2
    path = _write(tmp_path, "twice.json", json.dumps(document).encode())
    with pytest.warns(UserWarning, match="duplicate ROI"):
        seg = _read(path, reference=COMMITTED / "series")
    counts = {seg.segments[i].name: n for i, n in seg.voxel_counts().items()}
    assert counts == VOXELS
    _assert_expected_points(seg)  # the point's copy is dropped too


def test_a_multi_frame_uid_without_frame_is_ambiguous(shared_data: Path) -> None:
    from segio_plugins.osirix.reader import Roi, build

    from segio.dicom.series import read_image_series

    series = read_image_series(shared_data / "dcmqi/data/segmentations/23x38x3/multiframe")
    uid = next(f.sop_instance_uid for f in series.frames if f is not None)
    roi = Roi("x", 11, points_px=np.array([[1.0, 1.0], [5.0, 1.0], [5.0, 5.0]]), image_uid=uid)
    with pytest.raises(ReadError, match="ambiguous image reference"):
        build([roi], Path("x.xml"), series)


# -- folders of ROI SR objects (OsiriX MD writes one per ROI) and `segio info` ------------------


def test_sr_folder_is_one_segmentation(scene: dict[str, Any], tmp_path: Path) -> None:
    """One SR per ROI, beside the images in one folder: ROIs of one name on three images
    make one segment, placed exactly where the Export ROIs JSON of the same scene puts
    them; the point ROI is a point; the images are left out, and said so."""
    import shutil

    rois = legacy.scene(scene["geometry"])
    folder = tmp_path / "study"
    (folder / "sr").mkdir(parents=True)
    for name, data in legacy.roi_sr_per_roi(rois, scene["uids"], scene["study"]).items():
        _write(folder / "sr", name, data)
    for file in scene["files"]:
        shutil.copy(file, folder)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = segio.read(folder, reference=scene["series"])
        contours = segio.read(folder / "sr", format="osirix", reference=None)
    messages = [str(w.message) for w in caught]
    assert any("5 file(s) that are not OsiriX ROI SR objects left out" in m for m in messages)
    assert any("brush bitmap not decoded" in m for m in messages)
    assert seg.provenance["osirix.variant"] == "roi-sr-folder"
    assert [s.name for s in seg.segments.values()] == ["Liver", "Lesion", "Ruler"]
    counts = {seg.segments[i].name: n for i, n in seg.voxel_counts().items()}
    expected = legacy.inside_counts(scene["geometry"], rois)
    assert counts == {"Liver": expected["Liver"], "Lesion": 0, "Ruler": 0}  # brush: bitmap
    assert [p.name for p in seg.points] == ["Marker"]
    source = _read(_write(tmp_path, "a.json", legacy.export_rois_json(scene["document"])))
    assert float(np.max(np.abs(seg.points[0].position - source.points[0].position))) < 1e-5
    # Without the series: listed with their images, not placed.
    assert contours.provenance["unplaced"]
    with pytest.raises(ValidationError, match="reference"):
        contours.validate()


def test_committed_sr_folder_matches_the_expectation() -> None:
    folder = COMMITTED / "roi_sr_folder"
    assert default_registry().reader_for(folder).name == "osirix"
    with (
        pytest.warns(UserWarning, match="brush bitmap not decoded"),
        pytest.warns(UserWarning, match=ANNOTATIONS),
    ):
        seg = segio.read(folder, reference=COMMITTED / "series")
    counts = {seg.segments[i].name: n for i, n in seg.voxel_counts().items()}
    assert counts == {n: 0 if n in EXPECTED["archive_skips"] else v for n, v in VOXELS.items()}
    _assert_expected_points(seg)


@pytest.mark.parametrize("target", ["roi_sr_folder", "roi_sr_2.dcm"])
def test_info_lists_the_rois_of_an_sr_without_reference(target: str) -> None:
    """Names, types, images and point counts, from the archive alone (no series)."""
    from segio.cli import cli

    path = COMMITTED / target
    runner = CliRunner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.invoke(cli, ["info", "--json", str(path)])
        text = runner.invoke(cli, ["info", str(path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    rois = summary["unplaced"]["rois"]
    wanted = EXPECTED["sr_folder"]
    if target != "roi_sr_folder":
        wanted = [r for r in wanted if r["image_uid"] == EXPECTED["image_uids"][2]]
    assert [{k: r[k] for k in ("name", "type", "image_uid")} for r in rois] == wanted
    points = {r["name"]: r["points"] for r in rois}
    assert points["Liver"] == 24 or target != "roi_sr_folder"
    assert all(r["points"] == (0 if r["type"] == "Brush" else r["points"]) for r in rois)
    assert "pixel coordinates only" in summary["unplaced"]["reason"]
    assert text.exit_code == 0
    for roi in wanted:
        assert roi["name"] in text.output and roi["image_uid"] in text.output
    assert "not placed" in text.output


def test_info_shows_the_images_of_each_segment_and_the_points() -> None:
    """With millimetre ROIs (or a reference), ``info`` shows each segment's contours and
    the images they lie on, and the point annotations with their positions."""
    from segio.analysis.summary import summarize
    from segio.cli import cli

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summarize(segio.read(COMMITTED / "export_rois.json"))
        text = CliRunner().invoke(
            cli,
            ["info", str(COMMITTED / "roi_sr_folder"), "--reference", str(COMMITTED / "series")],
        )
    liver = next(s for s in summary["segments"] if s["name"] == "Liver")
    assert (liver["contours"], liver["images"]) == (4, 3)
    (marker,) = summary["points"]
    assert marker["name"] == "Marker" and summary["unplaced"] is None
    np.testing.assert_allclose(marker["position_lps"], EXPECTED["points"]["Marker"][0])
    assert text.exit_code == 0, text.output
    assert "1 point annotation(s)" in text.output and "Marker" in text.output
    assert "not placed" not in text.output
