"""SliceOmatic .tag files: real pairs, header variants, geometry, densities, writer, CLI."""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from pathlib import Path

import legacy  # fixtures/legacy.py, on pytest's pythonpath
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segio
from segio.errors import GeometryError, ReadError, SegioError, WriteError
from segio.geometry import Geometry
from segio.model import Layer, Segmentation
from segio.registry import default_registry
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import grid, small_segmentation

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PAIRS = [("SlicerSandbox", "test01.dcm.tag", "test01.dcm"), ("barbell2-light", "10.tag", "10.dcm")]


def _hu(image: Path) -> np.ndarray:
    import pydicom

    ds = pydicom.dcmread(image)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    return np.asarray(ds.pixel_array, dtype=np.float64) * slope + intercept


def _plane(image: Path) -> tuple[np.ndarray, np.ndarray]:
    import pydicom

    ds = pydicom.dcmread(image, stop_before_pixels=True)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    return np.array(ds.ImagePositionPatient, dtype=float), np.cross(iop[:3], iop[3:])


# -- the real pairs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "tag", "image"), PAIRS)
def test_real_tag_takes_its_companion_geometry(
    folder: str, tag: str, image: str, shared_data: Path
) -> None:
    from segio.dicom.series import read_image_series

    seg = segio.read(shared_data / folder / tag)
    assert seg.provenance["format"] == "sliceomatic"
    companion = read_image_series([shared_data / folder / image]).geometry
    assert seg.geometry == companion  # exact, not the header's 4 decimals
    # Every voxel centre lies in the plane of the image (distance computed, not assumed).
    origin, normal = _plane(shared_data / folder / image)
    corners = seg.geometry.ijk_to_points([[0, 0, 0], [511, 0, 0], [0, 511, 0], [511, 511, 0]])
    distance = float(np.max(np.abs((corners - origin) @ normal)))
    assert distance < 0.01, distance
    # The header alone agrees within its rounding (4 decimals).
    data = (shared_data / folder / tag).read_bytes()
    from segio_plugins.sliceomatic.tagfile import parse_header

    header = parse_header(data).geometry()
    assert header.shape == companion.shape
    assert float(np.max(np.abs(header.ijk_to_points([511, 511, 0]) - corners[3]))) < 0.05


def test_tissue_densities_on_the_companion_ct(shared_data: Path) -> None:
    """Alberta labels on CT: muscle positive, fat negative (spec §2.2: +45.7/-74.2/-92.6)."""
    seg = segio.read(shared_data / "barbell2-light" / "10.tag", preset="alberta")
    names = {s.name: s.id for s in seg.segments.values()}
    assert list(names) == ["Muscle", "IMAT", "VAT", "SAT"]
    for image in ("10.dcm", "10_raw.dcm"):  # JPEG lossless and uncompressed: same pixels
        hu = _hu(shared_data / "barbell2-light" / image)
        means = {n: float(hu[seg.mask(i)[0]].mean()) for n, i in names.items() if n != "IMAT"}
        assert means["Muscle"] > 0 and means["VAT"] < 0 and means["SAT"] < 0, means
        assert means == pytest.approx({"Muscle": 45.7, "VAT": -74.2, "SAT": -92.6}, abs=0.1)
    assert seg.voxel_counts()["Label_2"] == 0  # IMAT: named by the preset, not drawn here


def test_tissue_density_of_the_slicer_sample(shared_data: Path) -> None:
    seg = segio.read(shared_data / "SlicerSandbox" / "test01.dcm.tag", preset="alberta")
    hu = _hu(shared_data / "SlicerSandbox" / "test01.dcm")  # JPEG 2000 lossless
    muscle = seg.mask("Label_1")[0]
    assert float(hu[muscle].mean()) == pytest.approx(39.5, abs=0.1)
    assert float(hu[~muscle].mean()) == pytest.approx(-432.7, abs=0.1)


def test_chksum_is_the_sum_of_the_stored_pixels(shared_data: Path, tmp_path: Path) -> None:
    from segio_plugins.sliceomatic.tagfile import image_chksum

    assert image_chksum(shared_data / "SlicerSandbox" / "test01.dcm") == 0x09E62542
    # A tag whose chksum names another image is read, with a warning.
    shutil.copy(shared_data / "barbell2-light" / "10_raw.dcm", tmp_path / "10.dcm")
    data = (shared_data / "barbell2-light" / "10.tag").read_bytes()
    (tmp_path / "10.tag").write_bytes(legacy.tag_variant(data, "chksum", chksum=0x1234))
    with pytest.warns(UserWarning, match="chksum 00001234 does not match 10.dcm"):
        segio.read(tmp_path / "10.tag")
    right = image_chksum(tmp_path / "10.dcm")
    (tmp_path / "10.tag").write_bytes(legacy.tag_variant(data, "chksum", chksum=right))
    segio.read(tmp_path / "10.tag")  # no warning


def test_a_header_off_its_image_is_reported(shared_data: Path, tmp_path: Path) -> None:
    shutil.copy(shared_data / "barbell2-light" / "10_raw.dcm", tmp_path / "10.dcm")
    data = (shared_data / "barbell2-light" / "10.tag").read_bytes()
    (tmp_path / "10.tag").write_bytes(data.replace(b"org_x:-207.0000", b"org_x:-206.9000", 1))
    with pytest.warns(UserWarning, match=r"header geometry is up to 0\.1\d* mm off"):
        seg = segio.read(tmp_path / "10.tag")
    assert seg.geometry is not None and seg.geometry.origin[0] == -207.0  # the image's
    (tmp_path / "10.tag").write_bytes(data.replace(b"org_x:-207.0000", b"org_x:-207.0040", 1))
    segio.read(tmp_path / "10.tag")  # within rounding: silent


# -- header variants (§4.3): same segmentation as their source ------------------------------------


@pytest.fixture
def source(shared_data: Path, tmp_path: Path) -> tuple[bytes, Segmentation]:
    """10.tag alone (no companion image): the header gives the geometry."""
    data = (shared_data / "barbell2-light" / "10.tag").read_bytes()
    (tmp_path / "alone.tag").write_bytes(data)
    return data, segio.read(tmp_path / "alone.tag")


@pytest.mark.parametrize("kind", ["crlf", "upper", "comma", "tabs", "comments", "chksum"])
def test_header_variant_imports_like_its_source(
    kind: str, source: tuple[bytes, Segmentation], tmp_path: Path
) -> None:
    data, expected = source
    path = tmp_path / f"{kind}.tag"
    path.write_bytes(legacy.tag_variant(data, kind, chksum=0x09E62542))
    assert default_registry().reader_for(path).name == "sliceomatic"
    assert_same_segmentation(expected, segio.read(path))
    renamed = tmp_path / f"{kind}-noext"
    renamed.write_bytes(path.read_bytes())
    assert default_registry().reader_for(renamed).name == "sliceomatic"


def test_multi_slice_tag(source: tuple[bytes, Segmentation], tmp_path: Path) -> None:
    data, expected = source
    path = tmp_path / "multi.tag"
    path.write_bytes(legacy.tag_variant(data, "multi"))
    seg = segio.read(path)
    assert seg.geometry is not None and seg.geometry.shape == (3, 512, 512)
    # k steps by epais (3.0 in 10.tag) along dir_h x dir_v
    np.testing.assert_allclose(seg.geometry.ijk_to_lps[:3, 2], [0, 0, 3.0])
    for k in range(3):
        assert np.array_equal(seg.layers[0].array[k], expected.layers[0].array[0])


def test_labels_above_127_are_not_negative(
    source: tuple[bytes, Segmentation], tmp_path: Path
) -> None:
    data, expected = source
    path = tmp_path / "high.tag"
    path.write_bytes(legacy.tag_variant(data, "high_labels"))
    seg = segio.read(path)
    assert [s.label_value for s in seg.segments.values()] == [129, 133, 135]
    for a, b in zip(expected.segments.values(), seg.segments.values(), strict=True):
        assert np.array_equal(expected.mask(a.id), seg.mask(b.id))


def test_label_table_names_the_values(source: tuple[bytes, Segmentation], tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    table.write_text(
        "LabelValue,Name,Color_R,Color_G,Color_B,Color_A\n5,visceral fat,255,255,0,255\n"
    )
    seg = segio.read(tmp_path / "alone.tag", labels=table, preset="alberta")
    assert [s.name for s in seg.segments.values()] == ["Muscle", "IMAT", "visceral fat", "SAT"]
    assert seg.segments["Label_5"].color == (1.0, 1.0, 0.0)
    plain = segio.read(tmp_path / "alone.tag")
    assert [s.name for s in plain.segments.values()] == ["Label_1", "Label_5", "Label_7"]
    with pytest.raises(ReadError, match="unknown label preset"):
        segio.read(tmp_path / "alone.tag", preset="nope")


def test_garbage_and_truncated_tags(source: tuple[bytes, Segmentation], tmp_path: Path) -> None:
    data, _ = source
    header_end = data.index(b"\x0c")
    bad = {
        "cut_header": data[:100],
        "cut_body": data[: len(data) // 2],
        "one_short": data[:-1],
        "infinite_size": data.replace(b"x:512", b"x:inf", 1),
        "huge_size": data.replace(b"y:512", b"y:1e400", 1),
        "one_image_long": data + bytes(512 * 512),  # z:1 but two images: a wrong header
        "no_size": data.replace(b"x:512", b"q:512", 1),
        "bad_number": data.replace(b"y:512", b"y:5x2", 1),
        "zero_size": data.replace(b"z:1", b"z:0", 1),
        "short_type": data.replace(b"type:BYTE", b"type:SHORT", 1),
        "odd_type": data.replace(b"type:BYTE", b"type:FLOAT", 1),
        "random": np.random.default_rng(1).bytes(3000),
        "header_only": data[: header_end + 1],
    }
    for name, payload in bad.items():
        path = tmp_path / f"{name}.tag"
        path.write_bytes(payload)
        with pytest.raises(SegioError):
            segio.read(path, format="sliceomatic")


def test_short_tags_read_little_endian(source: tuple[bytes, Segmentation], tmp_path: Path) -> None:
    data, expected = source
    header, body = legacy.tag_parts(data)
    labels = np.frombuffer(body, dtype=np.uint8).astype("<u2") * 300
    path = tmp_path / "short.tag"
    path.write_bytes(header.replace("BYTE", "SHORT").encode() + b"\x0c" + labels.tobytes())
    seg = segio.read(path)
    assert [s.label_value for s in seg.segments.values()] == [300, 1500, 2100]
    assert np.array_equal(seg.mask("Label_300"), expected.mask("Label_1"))


# -- the writer, on an oblique, anisotropic, non-square series ------------------------------------


def _case() -> Segmentation:
    seg = small_segmentation("oblique", n_segments=3, terminology=False)
    assert seg.geometry is not None and seg.geometry.shape[1] != seg.geometry.shape[2]
    return seg


def test_write_per_image_with_reference_and_read_back(tmp_path: Path) -> None:
    seg = _case()
    assert seg.geometry is not None
    series = reference_series(seg.geometry, tmp_path / "series")
    written = segio.write(seg, tmp_path / "tags", format="sliceomatic", reference=series)
    names = sorted(p.name for p in written)
    assert names == [f"{k:04d}.dcm.tag" for k in range(seg.geometry.shape[0])]
    back = segio.read(tmp_path / "tags", reference=series)
    assert_same_segmentation(seg, back, **_NO_METADATA)
    # The headers alone (no reference) give the same grid and voxels.
    assert_same_segmentation(seg, segio.read(tmp_path / "tags"), **_NO_METADATA)
    # Each file is what SliceOmatic expects: key order of real files, one image, FF, bytes.
    first = (tmp_path / "tags" / "0000.dcm.tag").read_bytes()
    header, body = legacy.tag_parts(first)
    assert header.startswith("x:11    y:13    z:1      type:BYTE \norg_x:")
    assert "chksum:00000000" in header and "uid" not in header
    assert len(body) == 11 * 13


def test_write_next_to_the_images_and_read_the_folder(tmp_path: Path) -> None:
    """SliceOmatic's own layout: <image>.dcm.tag beside each <image>.dcm."""
    seg = _case()
    assert seg.geometry is not None
    series = reference_series(seg.geometry, tmp_path / "series")
    segio.write(seg, series, format="sliceomatic", reference=series)
    back = segio.read(series)  # the folder: companions give each tag its geometry
    assert back.provenance["format"] == "sliceomatic"
    assert_same_segmentation(seg, back, **_NO_METADATA)
    one = segio.read(series / "0003.dcm.tag")  # one tag: its companion 0003.dcm
    assert one.geometry is not None
    assert one.geometry.is_close(seg.geometry.cropped((3, 0, 0), (1, 13, 11)), 1e-6)
    assert np.array_equal(one.layers[0].array[0], seg.layers[0].array[3])


def test_write_without_reference_holds_every_slice(tmp_path: Path) -> None:
    for kind in ("oblique", "anisotropic", "lps_flipped"):
        seg = small_segmentation(kind, n_segments=3, terminology=False)
        path = tmp_path / f"{kind}.tag"
        segio.write(seg, path, line_end="crlf")
        assert b"\r\n" in path.read_bytes()[:200]
        assert_same_segmentation(seg, segio.read(path), **_NO_METADATA)


def _labels_at(seg: Segmentation, points: np.ndarray) -> np.ndarray:
    """The label of ``seg`` at each LPS point (its voxel by nearest index)."""
    assert seg.geometry is not None
    ijk = np.rint(seg.geometry.points_to_ijk(points)).astype(int)
    return seg.layers[0].array[ijk[:, 2], ijk[:, 1], ijk[:, 0]]


def test_left_handed_grid_is_written_with_its_slices_reversed(tmp_path: Path) -> None:
    shape = (4, 6, 5)
    geometry = Geometry(np.diag([0.8, 0.9, -2.0, 1.0]), shape)
    array = np.zeros(shape, np.uint8)
    array[0, 1:3, 1:4], array[1, 2:5, 0:2], array[3, 0:2, 2:5] = 1, 2, 3
    seg = Segmentation(
        [segio.model.Segment(f"Label_{v}", f"Label_{v}", label_value=v) for v in (1, 2, 3)],
        [Layer(array, geometry)],
    )
    segio.write(seg, tmp_path / "l.tag")
    back = segio.read(tmp_path / "l.tag")
    assert back.geometry is not None
    assert np.linalg.det(back.geometry.direction) > 0
    k, j, i = np.indices(shape).reshape(3, -1)
    points = geometry.ijk_to_points(np.column_stack([i, j, k]))
    assert np.array_equal(_labels_at(back, points), array.ravel())


def test_sheared_grid_is_refused_without_reference(tmp_path: Path) -> None:
    matrix = np.eye(4)
    matrix[:3, 2] = [0.6, 0.0, 2.0]  # the slice axis leans along i
    seg = Segmentation(
        [segio.model.Segment("a", "a", label_value=1)],
        [Layer(np.ones((3, 4, 5), np.uint8), Geometry(matrix, (3, 4, 5)))],
    )
    with pytest.raises(WriteError, match="not perpendicular") as caught:
        segio.write(seg, tmp_path / "s.tag")
    assert "s.tag" in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_multi_frame_reference_is_refused(shared_data: Path, tmp_path: Path) -> None:
    from segio.dicom.series import read_image_series

    multi = shared_data / "dcmqi" / "data" / "segmentations" / "23x38x3" / "multiframe"
    grid_ = read_image_series(multi).geometry
    seg = Segmentation(
        [segio.model.Segment("a", "a", label_value=1)],
        [Layer(np.ones(grid_.shape, np.uint8), grid_)],
    )
    with pytest.raises(WriteError, match="multi-frame"):
        segio.write(seg, tmp_path / "tags", format="sliceomatic", reference=multi)
    assert not (tmp_path / "tags").exists()


def test_labels_on_a_missing_image_are_refused(tmp_path: Path) -> None:
    seg = _case()
    assert seg.geometry is not None
    series = reference_series(seg.geometry, tmp_path / "series")
    k = next(k for k in range(1, seg.geometry.shape[0] - 1) if seg.layers[0].array[k].any())
    (series / f"{k:04d}.dcm").unlink()  # reference_series names file k so
    with pytest.raises(WriteError, match="no image"):
        segio.write(seg, tmp_path / "tags", format="sliceomatic", reference=series)
    assert not (tmp_path / "tags").exists()


def test_two_tags_on_one_image_are_refused_with_reference(tmp_path: Path) -> None:
    seg = _case()
    assert seg.geometry is not None
    series = reference_series(seg.geometry, tmp_path / "series")
    segio.write(seg, tmp_path / "tags", format="sliceomatic", reference=series)
    first = sorted((tmp_path / "tags").iterdir())[0]
    shutil.copy(first, first.with_name("copy.tag"))  # placed by its header: the same image
    with pytest.raises(GeometryError, match="same image"):
        segio.read(tmp_path / "tags", reference=series)


def test_write_a_single_image_to_a_tag_path(tmp_path: Path) -> None:
    seg = _case()
    assert seg.geometry is not None
    plane = seg.geometry.cropped((2, 0, 0), (1, 13, 11))
    single = Segmentation(
        list(seg.segments.values()), [Layer(seg.layers[0].array[2:3].copy(), plane)]
    )
    series = reference_series(plane, tmp_path / "one")
    path = tmp_path / "slice.dcm.tag"
    assert segio.write(single, path, reference=series) == [path]
    back = segio.read(path, reference=series)
    assert back.geometry is not None and back.geometry.is_close(plane, 1e-6)
    assert np.array_equal(back.layers[0].array, single.layers[0].array)


def test_label_table_keeps_what_the_tag_cannot(tmp_path: Path) -> None:
    seg = _case()
    written = segio.write(seg, tmp_path / "s.tag", labels=tmp_path / "s.labels.json")
    assert {p.name for p in written} == {"s.tag", "s.labels.json"}
    back = segio.read(tmp_path / "s.tag", labels=tmp_path / "s.labels.json")
    assert_same_segmentation(seg, back)


def test_writer_refuses_what_a_tag_cannot_hold(tmp_path: Path) -> None:
    overlapping = small_segmentation("axial", overlapping=True)
    with pytest.raises(WriteError, match="overlap"):
        segio.write(overlapping, tmp_path / "o.tag")
    big = _case()
    big.segments["Segment_1"].label_value = 300
    big.layers[0].array = big.layers[0].array.astype(np.uint16)
    big.layers[0].array[big.layers[0].array == 1] = 300
    with pytest.raises(WriteError, match="above 255"):
        segio.write(big, tmp_path / "b.tag")
    assert not list(tmp_path.glob("*.tag"))


def test_reference_mismatch_is_a_geometry_error(tmp_path: Path) -> None:
    seg = _case()
    segio.write(seg, tmp_path / "s.tag")
    other = reference_series(grid("axial", (3, 13, 11)), tmp_path / "other")
    with pytest.raises(GeometryError):
        segio.read(tmp_path / "s.tag", reference=other)
    wrong_size = reference_series(grid("axial", (3, 10, 10)), tmp_path / "small")
    with pytest.raises(GeometryError, match="pixels"):
        segio.read(tmp_path / "s.tag", reference=wrong_size)


def test_writer_pads_onto_a_larger_reference_exactly(tmp_path: Path) -> None:
    seg = _case()
    assert seg.geometry is not None
    target = Geometry(seg.geometry.ijk_to_lps, (seg.geometry.shape[0] + 2, 13, 11))
    series = reference_series(target, tmp_path / "series")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same lattice: padded by index, nothing to warn about
        segio.write(seg, tmp_path / "tags", reference=series, format="sliceomatic")
    back = segio.read(tmp_path / "tags", reference=series)
    assert back.geometry is not None and back.geometry.is_close(target, 1e-6)
    array = back.layers[0].array
    assert np.array_equal(array[: seg.geometry.shape[0]], seg.layers[0].array)
    assert not array[seg.geometry.shape[0] :].any()


_NO_METADATA = {
    "check_ids": False,
    "check_names": False,
    "check_terminology": False,
    "check_properties": False,
    "color_atol": 1.0,
}


# -- command line -------------------------------------------------------------------------------


def test_cli_convert_a_tag_to_nifti(shared_data: Path, tmp_path: Path) -> None:
    from segio.cli import cli

    out = tmp_path / "out.nii.gz"
    source = shared_data / "SlicerSandbox" / "test01.dcm.tag"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = CliRunner().invoke(cli, ["convert", str(source), str(out), "-I", "preset=alberta"])
    assert result.exit_code == 0, result.output
    back = segio.read(out)
    original = segio.read(source)
    assert back.geometry is not None and back.geometry.is_close(original.geometry, 1e-5)
    assert np.array_equal(back.mask(next(iter(back.segments))), original.mask("Label_1"))


# -- fuzzing: damaged headers give a SegioError, never a traceback ------------------------------


def test_bytes_after_the_labels_are_ignored_with_a_warning(
    source: tuple[bytes, Segmentation], tmp_path: Path
) -> None:
    data, expected = source
    path = tmp_path / "long.tag"
    path.write_bytes(data + b"\x07\x07")
    with pytest.warns(UserWarning, match="2 byte\\(s\\) after the"):
        seg = segio.read(path, format="sliceomatic")
    assert np.array_equal(seg.layers[0].array, expected.layers[0].array)


def test_header_fields_are_kept_in_provenance(tmp_path: Path) -> None:
    seg = _case()
    segio.write(seg, tmp_path / "s.tag")
    data = (tmp_path / "s.tag").read_bytes()
    end = data.index(b"\x0c")
    extra = b"uid:1.2.3  chksum:0001E240  mykey:abc\n* drawn by hand\n"
    (tmp_path / "x.tag").write_bytes(data[:end] + extra + data[end:])
    kept = json.loads(segio.read(tmp_path / "x.tag").provenance["sliceomatic.header"])
    assert kept["x.tag"]["fields"]["uid"] == "1.2.3"
    assert kept["x.tag"]["fields"]["chksum"] == "0001E240"
    assert kept["x.tag"]["fields"]["mykey"] == "abc"
    assert kept["x.tag"]["comments"] == ["drawn by hand"]


_SMALL: list[bytes] = []


def _small_tag() -> bytes:
    if not _SMALL:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "s.tag"
            segio.write(_case(), path)
            _SMALL.append(path.read_bytes())
    return _SMALL[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_tags_read_or_raise_segio_errors(data: st.DataObject) -> None:
    import tempfile

    payload = bytearray(_small_tag())
    header_end = payload.index(b"\x0c")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, header_end + 1))
        payload[at] = data.draw(st.sampled_from(b"0123456789-.:, \t\r\n*xyzXYZe\x0c\x00"))
    at = data.draw(st.integers(0, header_end))
    token = data.draw(st.sampled_from([b"", b"inf", b"-inf", b"nan", b"1e400", b"infinity"]))
    payload[at:at] = token
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(payload))))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.tag"
        path.write_bytes(bytes(payload[:cut]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(SegioError):
                segio.read(path, format="sliceomatic")


# -- the committed fixtures (fixtures/legacy/tag, made by fixtures/generate.py) -------------------

COMMITTED = FIXTURES / "legacy" / "tag"


@pytest.mark.parametrize("name", sorted(p.name for p in COMMITTED.glob("*.tag")))
def test_committed_tag_variants(name: str) -> None:
    import json

    expected = json.loads((COMMITTED.parent / "expected.json").read_text())["tag"]
    path = COMMITTED / name
    assert default_registry().reader_for(path).name == "sliceomatic"
    seg = segio.read(path)
    assert seg.geometry is not None
    np.testing.assert_allclose(seg.geometry.ijk_to_lps, expected["ijk_to_lps"], atol=1e-12)
    counts = {
        str(s.label_value): n
        for s, n in zip(seg.segments.values(), seg.voxel_counts().values(), strict=True)
    }
    if name == "multi.tag":
        assert seg.geometry.shape == (3, *expected["shape"][1:])
        assert counts == {v: 3 * n for v, n in expected["labels"].items()}
    elif name == "high_labels.tag":
        assert counts == {str(int(v) + 128): n for v, n in expected["labels"].items()}
    else:
        assert seg.geometry.shape == tuple(expected["shape"])
        assert counts == expected["labels"]


def test_a_single_image_reference_must_be_the_tags_image(tmp_path: Path) -> None:
    seg = _case()
    assert seg.geometry is not None
    series = reference_series(seg.geometry, tmp_path / "ct")
    segio.write(seg, tmp_path / "tags", format="sliceomatic", reference=series)
    tag = tmp_path / "tags" / "0002.dcm.tag"
    right = reference_series(seg.geometry.cropped((2, 0, 0), (1, 13, 11)), tmp_path / "right")
    wrong = reference_series(seg.geometry.cropped((4, 0, 0), (1, 13, 11)), tmp_path / "wrong")
    back = segio.read(tag, reference=right)  # matched by position (file names differ)
    assert np.array_equal(back.layers[0].array[0], seg.layers[0].array[2])
    with pytest.raises(GeometryError, match="no image of the reference series"):
        segio.read(tag, reference=wrong)
