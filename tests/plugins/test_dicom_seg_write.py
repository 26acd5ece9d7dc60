"""DICOM SEG writer: valid for dciodvfy, read back voxel for voxel by highdicom, dcmqi and segio.

Source series are made here with pydicom (an oblique, anisotropic 7 x 13 x 11 grid whose
frames hold 143 bits, so BINARY bits straddle frames, and an axial 6 x 40 x 36 one for
JPEG 2000, which needs 32 x 32 frames); segmentations are ``segio.testing`` ones put on
their grid. dciodvfy 20260927 is built without zlib and cannot read any deflated file
(pydicom's own included), so a deflated SEG is checked after inflating its dataset.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from segio_plugins.dicom_seg.encode import SYNTAXES

import segio
from segio.converters.fractional_to_labelmap import to_binary
from segio.converters.resample import resample
from segio.dicom.series import read_image_series
from segio.errors import WriteError
from segio.geometry import Geometry
from segio.model import Layer, Segment, Segmentation
from segio.representations import Representation
from segio.testing.compare import assert_same_segmentation
from segio.testing.synthetic import grid, synthetic_segmentation

BIN = Path(sys.executable).parent
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
KINDS = ("binary", "labelmap", "fractional")
CODECS = ("none", "deflate", "rle", "jpegls", "jpeg2000")
VALID = [
    (k, c) for k in KINDS for c in CODECS if k != "binary" or c in ("none", "deflate", "jpeg2000")
]
#: What dcmqi 1.5.7 decodes (its DCMTK has no JPEG-LS or JPEG 2000 codec).
DCMQI_VALID = [(k, c) for k, c in VALID if c in ("none", "deflate", "rle")]


# -- source series and helpers ---------------------------------------------------------------


def _image(geometry: Geometry, study: str, series: str, frame_of_reference: str) -> Dataset:
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^Jane", "P7", "", "F"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference, ""
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20250102", "0930", "S1", "A9"
    ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber = "Ref^Doc", "CT", 3
    ds.Rows, ds.Columns = geometry.shape[1], geometry.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def write_series(folder: Path, geometry: Geometry, *, skip: tuple[int, ...] = ()) -> Path:
    """One single-frame CT file per slice of ``geometry`` but ``skip``."""
    folder.mkdir(parents=True)
    uids = generate_uid(), generate_uid(), generate_uid()
    spacing = geometry.spacing
    for k, position in enumerate(geometry.slice_positions()):
        if k in skip:
            continue
        ds = _image(geometry, *uids)
        ds.SOPClassUID, ds.SOPInstanceUID, ds.InstanceNumber = CT_IMAGE, generate_uid(), k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in geometry.image_orientation()]
        ds.PixelSpacing, ds.SliceThickness = [float(spacing[1]), float(spacing[0])], spacing[2]
        ds.PixelData = np.zeros(geometry.shape[1:], np.int16).tobytes()
        _save(ds, folder / f"ct{k:03d}.dcm")
    return folder


def write_multiframe(folder: Path, geometry: Geometry) -> Path:
    """One Enhanced CT instance holding every slice, frames in reverse order."""
    folder.mkdir(parents=True)
    ds = _image(geometry, generate_uid(), generate_uid(), generate_uid())
    ds.SOPClassUID, ds.SOPInstanceUID, ds.InstanceNumber = ENHANCED_CT_IMAGE, generate_uid(), 1
    ds.NumberOfFrames = geometry.shape[0]
    shared = Dataset()
    shared.PlaneOrientationSequence = [Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = list(geometry.image_orientation())
    shared.PixelMeasuresSequence = [Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = [geometry.spacing[1], geometry.spacing[0]]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for position in geometry.slice_positions()[::-1]:
        frame = Dataset()
        frame.PlanePositionSequence = [Dataset()]
        frame.PlanePositionSequence[0].ImagePositionPatient = list(position)
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.zeros(geometry.shape, np.int16).tobytes()
    _save(ds, folder / "enhanced.dcm")
    return folder


def _save(ds: Dataset, path: Path) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def oblique(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_series(tmp_path_factory.mktemp("series") / "oblique", grid("oblique"))


@pytest.fixture(scope="module")
def axial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_series(tmp_path_factory.mktemp("series") / "axial", grid("axial", (6, 40, 36)))


def on_series(folder: Path, **options: Any) -> Segmentation:
    """A 5-segment synthetic segmentation on the grid of the series in ``folder``."""
    options.setdefault("n_segments", 5)
    return synthetic_segmentation(geometry=read_image_series(folder).geometry, **options)


def fractional(folder: Path, maximum: int = 255) -> Segmentation:
    """Two overlapping fractional segments with every value from 0 to ``maximum``."""
    geometry = read_image_series(folder).geometry
    rng = np.random.default_rng(5)
    layers = []
    for index in range(2):
        array = np.zeros(geometry.shape, np.uint8)
        box = (slice(1 + index, 5 + index), slice(2, 11), slice(1 + 3 * index, 9 + index))
        array[box] = rng.integers(0, maximum + 1, array[box].shape)
        layers.append(Layer(array, geometry, max_fraction=maximum))
    segments = [
        Segment(f"s{n}", name, color, layer=n)
        for n, (name, color) in enumerate([("tumour", (0.9, 0.2, 0.1)), ("edema", (0.2, 0.4, 1.0))])
    ]
    return Segmentation(segments, layers, source_representation=Representation.FRACTIONAL_LABELMAP)


def write(segmentation: Segmentation, path: Path, reference: Path, **options: Any) -> Path:
    segio.write(segmentation, path, format="dicom-seg", reference=reference, **options)
    return path


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's "Error" lines; a deflated file is checked through an inflated copy."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    if ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99":
        raw = path.read_bytes()
        start = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
        body = zlib.decompress(raw[start:], -zlib.MAX_WBITS)
        meta = DicomBytesIO()
        meta.is_little_endian, meta.is_implicit_VR = True, False
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        write_file_meta_info(meta, ds.file_meta)
        path = path.with_suffix(".inflated.dcm")
        path.write_bytes(raw[:132] + meta.getvalue() + body)
    result = subprocess.run(
        [str(BIN / "dciodvfy"), str(path)], capture_output=True, text=True, check=False
    )
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]


def masks_by_source(path: Path, reference: Path, count: int) -> NDArray[Any]:
    """highdicom's pixels, ``(k, j, i, segment)``, in the order of the source slices."""
    seg = hd.seg.segread(path)
    uids = [f.sop_instance_uid for f in read_image_series(reference).frames if f is not None]
    return np.asarray(
        seg.get_pixels_by_source_instance(
            uids,
            segment_numbers=list(range(1, count + 1)),
            assert_missing_frames_are_empty=True,
            rescale_fractional=False,
        )
    )


def _code(item: Any) -> tuple[str, str]:
    return str(item.CodingSchemeDesignator), str(item.CodeValue)


def assert_descriptions(path: Path, segmentation: Segmentation) -> None:
    """highdicom sees every segment's number, label and codes as we meant them."""
    seg = hd.seg.segread(path)
    for number, segment in enumerate(segmentation.segments.values(), start=1):
        item = seg.get_segment_description(number)
        assert item.segment_label == segment.name
        term = segment.terminology
        assert term is not None
        assert _code(item.SegmentedPropertyCategoryCodeSequence[0]) == term.category.key
        kind = item.SegmentedPropertyTypeCodeSequence[0]
        assert _code(kind) == term.type.key
        modifier = kind.get("SegmentedPropertyTypeModifierCodeSequence")
        assert (_code(modifier[0]) if modifier else None) == (
            term.type_modifier.key if term.type_modifier else None
        )
        region = item.get("AnatomicRegionSequence")
        assert (_code(region[0]) if region else None) == (term.region.key if term.region else None)
        if region:
            inner = region[0].get("AnatomicRegionModifierSequence")
            want = term.region_modifier.key if term.region_modifier else None
            assert (_code(inner[0]) if inner else None) == want


# -- validity and interoperability -------------------------------------------------------------


@pytest.mark.parametrize(("kind", "codec"), VALID)
def test_dciodvfy_accepts_and_highdicom_reads_every_type(
    kind: str, codec: str, oblique: Path, axial: Path, tmp_path: Path
) -> None:
    reference = axial if codec == "jpeg2000" else oblique
    segmentation = on_series(reference, overlapping=kind != "labelmap", empty_segments=1)
    path = write(segmentation, tmp_path / "s.dcm", reference, seg_type=kind, compression=codec)
    assert dciodvfy_errors(path) == []
    segments = list(segmentation.segments.values())
    pixels = masks_by_source(path, reference, len(segments))
    scale = 255 if kind == "fractional" else 1
    for index, segment in enumerate(segments):
        assert np.array_equal(pixels[..., index], segmentation.mask(segment.id) * scale)
    assert_descriptions(path, segmentation)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.SegmentsOverlap == ("YES" if kind != "labelmap" else "NO")
    assert ds.file_meta.TransferSyntaxUID == SYNTAXES[codec]


@pytest.mark.parametrize("codec", ["none", "rle", "jpegls"])
def test_fractional_values_and_occupancy_survive(oblique: Path, tmp_path: Path, codec: str) -> None:
    segmentation = fractional(oblique, maximum=100)
    segmentation.extras["dicom-seg"] = {"SegmentationFractionalType": "OCCUPANCY"}
    path = write(
        segmentation, tmp_path / "f.dcm", oblique, seg_type="fractional", compression=codec
    )
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert (ds.SegmentationFractionalType, ds.MaximumFractionalValue) == ("OCCUPANCY", 100)
    pixels = masks_by_source(path, oblique, 2)
    for index, layer in enumerate(segmentation.layers):
        assert np.array_equal(pixels[..., index], layer.array)
    back = segio.read(path, format="dicom-seg", reference=oblique)
    for index, layer in enumerate(back.layers):
        assert layer.max_fraction == 100
        assert np.array_equal(layer.array, segmentation.layers[index].array)


def test_fractional_source_as_binary_is_thresholded_at_half(oblique: Path, tmp_path: Path) -> None:
    segmentation = fractional(oblique)
    path = write(segmentation, tmp_path / "b.dcm", oblique)
    pixels = masks_by_source(path, oblique, 2)
    for index, segment in enumerate(segmentation.segments.values()):
        assert np.array_equal(pixels[..., index], segmentation.mask(segment.id))


def test_binary_bits_straddle_frames(oblique: Path, tmp_path: Path) -> None:
    """13 x 11 = 143 bits per frame: frames are packed back to back, LSB first."""
    segmentation = on_series(oblique)
    path = write(segmentation, tmp_path / "b.dcm", oblique)
    ds = pydicom.dcmread(path)
    bits = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")
    frames = bits[: ds.NumberOfFrames * 143].reshape(-1, 13, 11)
    masks = {n: segmentation.mask(s.id) for n, s in enumerate(segmentation.segments.values(), 1)}
    for frame, group in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        number, position = (int(v) for v in group.FrameContentSequence[0].DimensionIndexValues)
        assert np.array_equal(frame, masks[number][position - 1])
    packed = (ds.NumberOfFrames * 143 + 7) // 8
    assert len(ds.PixelData) == packed + packed % 2


@pytest.mark.parametrize(("kind", "codec"), DCMQI_VALID)
def test_dcmqi_reads_voxels_labels_and_codes(
    kind: str, codec: str, oblique: Path, tmp_path: Path
) -> None:
    segmentation = on_series(oblique)
    path = write(segmentation, tmp_path / "s.dcm", oblique, seg_type=kind, compression=codec)
    out = tmp_path / "dcmqi"
    out.mkdir()
    command = [str(BIN / "segimage2itkimage"), "--inputDICOM", str(path)]
    command += ["--outputDirectory", str(out), "--outputType", "nrrd"]
    subprocess.run(command, capture_output=True, check=True)
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    grid_ = segmentation.require_geometry()
    by_name = {s.name: s for s in segmentation.segments.values()}
    seen = []
    for index, entries in enumerate(meta["segmentAttributes"], start=1):
        image = segio.read(out / f"{index}.nrrd", format="nrrd")
        array = resample(image, grid_).layers[0].array
        for entry in entries:
            segment = by_name[entry["SegmentLabel"]]
            seen.append(segment.name)
            mask = segmentation.mask(segment.id)
            if kind == "fractional":
                assert np.array_equal(array, mask * 255)
            else:
                assert np.array_equal(array == entry["labelID"], mask)
            term = segment.terminology
            assert term is not None
            for key, code in (
                ("SegmentedPropertyCategoryCodeSequence", term.category),
                ("SegmentedPropertyTypeCodeSequence", term.type),
                ("SegmentedPropertyTypeModifierCodeSequence", term.type_modifier),
                ("AnatomicRegionSequence", term.region),
                ("AnatomicRegionModifierSequence", term.region_modifier),
            ):
                got = entry.get(key)
                found = (got["CodingSchemeDesignator"], got["CodeValue"]) if got else None
                assert found == (None if code is None else code.key), key
            rgb = np.array(entry["recommendedDisplayRGBValue"])
            assert np.abs(rgb - np.array(segment.color) * 255).max() <= 1.5
    assert sorted(seen) == sorted(by_name)


# -- round trips through segio ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "overlapping"),
    [
        ("binary", False),
        ("binary", True),
        ("labelmap", False),
        ("fractional", False),
        ("fractional", True),
    ],
)
def test_seg_nrrd_round_trip(kind: str, overlapping: bool, oblique: Path, tmp_path: Path) -> None:
    """.seg.nrrd -> SEG -> .seg.nrrd keeps voxels, names, terminology and colours."""
    segio.write(on_series(oblique, overlapping=overlapping), tmp_path / "a.seg.nrrd")
    source = segio.read(tmp_path / "a.seg.nrrd")
    write(
        source,
        tmp_path / "b.dcm",
        oblique,
        seg_type=kind,
        compression="rle" if kind != "binary" else "none",
    )
    back = segio.read(tmp_path / "b.dcm", format="dicom-seg", reference=oblique)
    if kind == "fractional":
        back = to_binary(back)
    segio.write(back, tmp_path / "c.seg.nrrd")
    final = segio.read(tmp_path / "c.seg.nrrd")
    # SEG has no segment ids and no place for Slicer's free-text tags; colours are CIELab.
    assert_same_segmentation(
        source, final, check_ids=False, check_properties=False, color_atol=1 / 255
    )


def test_labelmap_refuses_overlapping_segments(oblique: Path, tmp_path: Path) -> None:
    segmentation = on_series(oblique, overlapping=True)
    with pytest.raises(WriteError, match=r"overlap.*seg_type=binary") as error:
        write(segmentation, tmp_path / "l.dcm", oblique, seg_type="labelmap")
    names = [s.name for s in segmentation.segments.values()]
    assert sum(repr(name) in str(error.value) for name in names) == 2
    assert not (tmp_path / "l.dcm").exists()


def test_labelmap_numbers_background_and_16_bits(oblique: Path, tmp_path: Path) -> None:
    """300 segments: 16-bit pixels equal to segment numbers, 0 = Pixel Padding Value."""
    geometry = read_image_series(oblique).geometry
    labels = np.zeros(geometry.shape, np.uint16)
    labels.reshape(-1)[:600] = np.repeat(np.arange(1000, 1300), 2)  # labels are not numbers
    segments = [Segment(f"s{n}", f"structure {n}", label_value=1000 + n) for n in range(300)]
    segmentation = Segmentation(segments, [Layer(labels, geometry)])
    for codec in ("none", "rle"):
        # "structure 7" names no coded concept: generic Tissue, all 300 in one warning
        with pytest.warns(UserWarning, match=r"^300 segment\(s\) have no code.* and 280 more;"):
            path = write(
                segmentation,
                tmp_path / f"{codec}.dcm",
                oblique,
                seg_type="labelmap",
                compression=codec,
            )
        assert dciodvfy_errors(path) == []
        ds = pydicom.dcmread(path)
        assert (ds.BitsAllocated, ds.PixelPaddingValue, ds.SegmentSequence[0].SegmentNumber) == (
            16,
            0,
            0,
        )
        assert ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "125040"
        assert ds.SegmentSequence[300].SegmentedPropertyTypeCodeSequence[0].CodeValue == "85756007"
        positions = [
            int(g.FrameContentSequence[0].DimensionIndexValues)
            for g in ds.PerFrameFunctionalGroupsSequence
        ]
        expected = np.where(labels > 0, labels - 999, 0)[np.array(positions) - 1]
        assert np.array_equal(ds.pixel_array.reshape(expected.shape), expected)


# -- frames and references ------------------------------------------------------------------


def test_empty_frames_are_omitted_unless_asked(oblique: Path, tmp_path: Path) -> None:
    segmentation = on_series(oblique, empty_segments=1)
    masks = [segmentation.mask(s.id) for s in segmentation.segments.values()]
    filled = sum(int(np.any(m, axis=(1, 2)).sum()) for m in masks)
    path = write(segmentation, tmp_path / "a.dcm", oblique)
    assert pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames == filled
    path = write(segmentation, tmp_path / "b.dcm", oblique, omit_empty_frames="false")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.NumberOfFrames == 5 * 7
    assert len(ds.SegmentSequence) == 5
    empty = Segmentation(
        list(segmentation.segments.values())[:1],
        [Layer(np.zeros_like(segmentation.layers[0].array), segmentation.require_geometry())],
    )
    path = write(empty, tmp_path / "c.dcm", oblique)
    assert pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames == 7
    assert dciodvfy_errors(path) == []


def test_frames_reference_their_source_images(oblique: Path, tmp_path: Path) -> None:
    path = write(on_series(oblique), tmp_path / "s.dcm", oblique)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    sources = {}
    for file in oblique.iterdir():
        image = pydicom.dcmread(file, stop_before_pixels=True)
        sources[image.SOPInstanceUID] = image
    for group in ds.PerFrameFunctionalGroupsSequence:
        reference = group.DerivationImageSequence[0].SourceImageSequence[0]
        image = sources[reference.ReferencedSOPInstanceUID]
        assert reference.ReferencedSOPClassUID == image.SOPClassUID
        assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
        assert reference.SpatialLocationsPreserved == "YES"
        position = group.PlanePositionSequence[0].ImagePositionPatient
        assert np.allclose([float(v) for v in position], image.ImagePositionPatient, atol=1e-6)
    referenced = ds.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == next(iter(sources.values())).SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in referenced.ReferencedInstanceSequence} == set(
        sources
    )
    image = next(iter(sources.values()))
    for keyword in (
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "StudyID",
        "AccessionNumber",
        "FrameOfReferenceUID",
        "ReferringPhysicianName",
        "StudyDate",
    ):
        assert ds[keyword].value == image[keyword].value


def test_multiframe_source_frames_are_referenced_by_number(tmp_path: Path) -> None:
    geometry = grid("oblique")
    folder = write_multiframe(tmp_path / "enhanced", geometry)
    path = write(
        synthetic_segmentation(geometry=geometry, n_segments=3), tmp_path / "s.dcm", folder
    )
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for group in ds.PerFrameFunctionalGroupsSequence:
        k = int(group.FrameContentSequence[0].DimensionIndexValues[1]) - 1
        reference = group.DerivationImageSequence[0].SourceImageSequence[0]
        assert int(reference.ReferencedFrameNumber) == geometry.shape[0] - k  # reversed


def test_gaps_in_the_series_cannot_hold_voxels(tmp_path: Path) -> None:
    geometry = grid("oblique")
    folder = write_series(tmp_path / "gap", geometry, skip=(3,))
    segmentation = synthetic_segmentation(geometry=read_image_series(folder).geometry, n_segments=3)
    with pytest.raises(WriteError, match=r"k = 3\b.*no image"):
        write(segmentation, tmp_path / "a.dcm", folder)
    for layer in segmentation.layers:
        layer.array[3] = 0
    path = write(segmentation, tmp_path / "b.dcm", folder, omit_empty_frames=False)
    assert pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames == 3 * 6
    back = segio.read(path, format="dicom-seg", reference=folder)
    assert_same_segmentation(
        segmentation, back, check_ids=False, check_properties=False, color_atol=1 / 255
    )


def test_a_cropped_grid_is_padded_exactly_without_a_warning(oblique: Path, tmp_path: Path) -> None:
    segmentation = on_series(oblique)
    series_grid = segmentation.require_geometry()
    cropped = resample(segmentation, series_grid.cropped((1, 2, 0), (5, 9, 11)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the voxels move by index: nothing to warn about
        path = write(cropped, tmp_path / "s.dcm", oblique)
    back = segio.read(path, format="dicom-seg", reference=oblique)
    assert_same_segmentation(
        resample(cropped, series_grid),
        back,
        check_ids=False,
        check_properties=False,
        color_atol=1 / 255,
    )


def test_a_grid_off_the_series_lattice_is_resampled_with_a_warning(
    oblique: Path, tmp_path: Path
) -> None:
    segmentation = on_series(oblique)
    series_grid = segmentation.require_geometry()
    matrix = series_grid.ijk_to_lps.copy()
    matrix[:3, 3] += 0.5 * matrix[:3, 0]  # half a voxel along i
    shifted = Segmentation(
        list(segmentation.segments.values()),
        [Layer(layer.array, Geometry(matrix, series_grid.shape)) for layer in segmentation.layers],
    )
    with pytest.warns(UserWarning, match="nearest neighbour"):
        write(shifted, tmp_path / "s.dcm", oblique)


# -- options ------------------------------------------------------------------------------------


def test_missing_reference_is_explained(oblique: Path, tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"source image series.*--reference DIR.*reference="):
        segio.write(on_series(oblique), tmp_path / "s.dcm", format="dicom-seg")


def test_options_appear_in_the_file(oblique: Path, tmp_path: Path) -> None:
    series_uid, sop_uid = generate_uid(), generate_uid()
    path = write(
        on_series(oblique, unicode_names=True),
        tmp_path / "s.dcm",
        oblique,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        series_description="Organs ✓",
        series_number="42",
        content_label="organs v2",
        content_description="automatic organs",
        content_creator="Doe^John",
        algorithm_type="automatic",
        algorithm_name="NetX 1.0",
        manufacturer="ACME",
    )
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert (ds.SeriesInstanceUID, ds.SOPInstanceUID) == (series_uid, sop_uid)
    assert ds.file_meta.MediaStorageSOPInstanceUID == sop_uid
    assert (ds.SeriesDescription, ds.SeriesNumber, ds.ContentLabel) == ("Organs ✓", 42, "ORGANS V2")
    assert (ds.ContentDescription, str(ds.ContentCreatorName)) == ("automatic organs", "Doe^John")
    assert (ds.Manufacturer, ds.SpecificCharacterSet) == ("ACME", "ISO_IR 192")
    assert ds.SoftwareVersions == segio.__version__
    assert {s.SegmentAlgorithmType for s in ds.SegmentSequence} == {"AUTOMATIC"}
    assert {s.SegmentAlgorithmName for s in ds.SegmentSequence} == {"NetX 1.0"}
    assert [s.SegmentLabel for s in ds.SegmentSequence] == [
        s.name for s in on_series(oblique, unicode_names=True).segments.values()
    ]
    assert dciodvfy_errors(path) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seg_type": "binary", "compression": "rle"}, r"none, deflate, jpeg2000"),
        ({"seg_type": "binary", "compression": "jpegls"}, r"seg_type=labelmap or fractional"),
        ({"seg_type": "labelmap", "compression": "jpeg2000"}, r"at least 32 x 32"),
        ({"seg_type": "tiled"}, r"unknown seg_type"),
        ({"compression": "zip"}, r"unknown compression"),
        ({"omit_empty_frames": "maybe"}, r"true or false"),
        ({"content_label": "liver-seg"}, r"code string"),
        ({"series_number": "two"}, r"whole number"),
        ({"sop_instance_uid": "1.2.abc"}, r"valid DICOM UID"),
        ({"algorithm_type": "guessed"}, r"unknown algorithm_type"),
    ],
)
def test_bad_options_are_refused(
    oblique: Path, tmp_path: Path, options: dict[str, str], message: str
) -> None:
    with pytest.raises(WriteError, match=message):
        write(on_series(oblique), tmp_path / "s.dcm", oblique, **options)
