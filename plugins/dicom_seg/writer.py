"""DICOM SEG writer: BINARY, LABELMAP and FRACTIONAL Segmentation objects, fast.

Why segio writes SEG itself instead of calling highdicom: highdicom builds a pydicom
Dataset per frame and encodes frame by frame, which takes seconds for a CT with tens of
segments (thousands of frames). This writer builds the same object with pydicom, but
does the work once per distinct piece: pixels are selected, bit-packed and RLE-encoded
block-wise with numpy, and every Per-Frame Functional Groups item is joined from pieces
pydicom encoded once per slice and once per segment (:mod:`.encode`). The file is
streamed to disk, so peak memory stays near one block of frames.

What it writes, after PS3.3 A.51 / C.8.20 and Supplement 243 (spec
``dicom-seg-and-rtstruct.md`` §1, §3): the grid of the source series (the segmentation is
resampled onto it, with a warning, when it lies elsewhere); per-frame references to the
source image of each frame; patient, study and frame of reference copied from the source;
segments with their codes and CIELab colours (:func:`.segments.segment_item`), numbered
1..N in segment order. LABELMAP pixels are segment numbers; value 0 is background,
declared both as Pixel Padding Value and as segment 0 "Background" (DCM 125040), as
highdicom and dcmqi write it. Empty frames are left out unless asked for.

Transfer syntaxes: Explicit VR Little Endian (``none``), Deflated Explicit VR Little
Endian (``deflate``), RLE Lossless, JPEG-LS Lossless and JPEG 2000 Lossless. 1-bit BINARY
frames take only ``none``, ``deflate`` and ``jpeg2000``: RLE of 1-bit frames is still
being clarified (pydicom PR #2216/#2266) and JPEG-LS has no 1-bit mode.
"""

from __future__ import annotations

import datetime
import re
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from segio_plugins.dicom_seg import encode
from segio_plugins.dicom_seg.segments import ALGORITHM_NAME, code_item, segment_item

from segio.converters.resample import resample
from segio.dicomseries import ImageSeries, read_image_series
from segio.errors import WriteError
from segio.files import OutputFiles
from segio.model import Segment, Segmentation
from segio.terminology import Code, Terminology

SEG_TYPES = ("binary", "labelmap", "fractional")
SYNTAXES = {
    "none": "1.2.840.10008.1.2.1",
    "deflate": "1.2.840.10008.1.2.1.99",
    "rle": "1.2.840.10008.1.2.5",
    "jpegls": "1.2.840.10008.1.2.4.80",
    "jpeg2000": "1.2.840.10008.1.2.4.90",
}
BINARY_SYNTAXES = ("none", "deflate", "jpeg2000")
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
SOURCE_PURPOSE = Code("DCM", "121322", "Source image for image processing operation")
SEGMENTATION_DERIVATION = Code("DCM", "113076", "Segmentation")
BACKGROUND = Code("DCM", "125040", "Background")
#: Patient, study and clinical-trial attributes copied from the source (Type 2 ones always).
TYPE2_COPIED = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)  # fmt: skip
OPTIONAL_COPIED = (
    "IssuerOfPatientID", "OtherPatientIDsSequence", "PatientAge", "PatientSize", "PatientWeight",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "StudyDescription", "IssuerOfAccessionNumberSequence", "ClinicalTrialSponsorName",
    "ClinicalTrialProtocolID", "ClinicalTrialProtocolName", "ClinicalTrialSiteID",
    "ClinicalTrialSiteName", "ClinicalTrialSubjectID", "ClinicalTrialSubjectReadingID",
    "ClinicalTrialTimePointID", "ClinicalTrialTimePointDescription",
)  # fmt: skip
_CS = re.compile(r"[A-Z0-9_ ]{1,16}")


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    reference: Any = None,
    seg_type: str = "binary",
    compression: str = "none",
    omit_empty_frames: bool | str = True,
    series_description: str | None = None,
    series_number: int | str | None = None,
    content_label: str | None = None,
    content_description: str | None = None,
    content_creator: str | None = None,
    algorithm_type: str | None = None,
    algorithm_name: str | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    manufacturer: str | None = None,
) -> None:
    """Write ``segmentation`` as one DICOM SEG instance that references ``reference``."""
    kind = _choice(seg_type, SEG_TYPES, "seg_type")
    codec = _choice(compression, tuple(SYNTAXES), "compression")
    if kind == "binary" and codec not in BINARY_SYNTAXES:
        raise WriteError(
            f"a BINARY SEG (1 bit per pixel) cannot be compressed with {codec}",
            path=path,
            hint=f"use compression {', '.join(BINARY_SYNTAXES)}, or seg_type=labelmap or "
            f"fractional (8-bit frames) with {codec}",
        )
    omit = _flag(omit_empty_frames, "omit_empty_frames")
    if reference is None:
        raise WriteError(
            "DICOM SEG needs the source image series it segments",
            path=path,
            hint="pass the series folder or files: --reference DIR on the command line, "
            "reference=DIR in Python",
        )
    series = read_image_series(reference)
    grid = series.geometry
    if codec == "jpeg2000" and min(grid.shape[1:]) < 32:
        raise WriteError(
            f"JPEG 2000 cannot encode frames of {grid.shape[1]} x {grid.shape[2]} pixels "
            "(openjpeg needs at least 32 x 32)",
            path=path,
            hint="use compression none, deflate or rle",
        )
    own = segmentation.require_geometry()
    if not own.is_close(grid, atol=1e-3):
        warnings.warn(
            f"the segmentation grid {own!r} is not the grid of the reference series "
            f"{grid!r}; resampled onto the series grid (nearest neighbour)",
            stacklevel=3,
        )
        segmentation = resample(segmentation, grid)
    segments = list(segmentation.segments.values())
    if not segments:
        raise WriteError("the segmentation has no segment; a DICOM SEG needs one", path=path)
    sources = [_source(segmentation, s) for s in segments]
    fractions = kind == "fractional"
    present, unclean = encode.presence(sources, any_fraction=fractions)
    has_source = np.array([frame is not None for frame in series.frames])
    _check_gaps(present, has_source, segments, path)
    pair = encode.overlap(sources, present, any_fraction=fractions)
    if pair is not None and kind == "labelmap":
        raise WriteError(
            f"segments {segments[pair[0]].name!r} and {segments[pair[1]].name!r} overlap; "
            "a LABELMAP SEG holds one segment per pixel",
            path=path,
            hint="use seg_type=binary",
        )
    wanted = present & has_source if omit else np.broadcast_to(has_source, present.shape)
    if kind == "labelmap":
        wanted = wanted.any(axis=0, keepdims=True)
    if not wanted.any():  # nothing to show: keep every frame, as highdicom does
        wanted = np.broadcast_to(has_source, wanted.shape)
    frames = [(int(i), int(k)) for i, k in zip(*np.nonzero(wanted), strict=True)]

    bits = 1 if kind == "binary" else 8 if kind == "fractional" or len(segments) < 256 else 16
    if len(segments) > 65535:
        raise WriteError(f"{len(segments)} segments: a SEG holds at most 65535", path=path)
    max_value = _max_fraction(segmentation) if fractions else 255
    dtype = np.uint16 if bits == 16 else np.uint8
    rows, columns = grid.shape[1:]
    per_block = encode.block_frames(rows * columns * dtype().itemsize)
    if codec == "rle":
        per_block = max(1, encode.RLE_BLOCK_PIXELS // (rows * columns))
    blocks = encode.frame_blocks(
        kind, sources, frames, bool if bits == 1 else dtype, per_block=per_block,
        max_value=max_value, unclean=unclean,
    )  # fmt: skip
    options = {
        "series_description": series_description,
        "series_number": _number(series_number, series),
        "content_label": _content_label(content_label),
        "content_description": content_description,
        "content_creator": content_creator,
        "series_instance_uid": _uid(series_instance_uid, "series_instance_uid"),
        "sop_instance_uid": _uid(sop_instance_uid, "sop_instance_uid"),
        "manufacturer": manufacturer or "segio",
    }
    algorithm = _choice(algorithm_type, ALGORITHM_TYPES, "algorithm_type", upper=True)
    default_algorithm = algorithm or ("AUTOMATIC" if algorithm_name else "MANUAL")
    items = [
        _segment_item(s, n, default_algorithm, algorithm_name) for n, s in enumerate(segments, 1)
    ]
    if kind == "labelmap":
        background = Segment(
            "Background", "Background", (0.0, 0.0, 0.0), Terminology(BACKGROUND, BACKGROUND)
        )
        items.insert(0, segment_item(background, 0))
    dataset = _dataset(kind, series, items, frames, bits, options, segmentation, max_value)
    dataset.SegmentsOverlap = "NO" if kind == "labelmap" or pair is None else "YES"
    with Path(files.stage(path)).open("wb") as handle:
        _save(handle, dataset, _per_frame(kind, frames, series), blocks, kind, codec, bits)


# -- options ---------------------------------------------------------------------------------


def _choice(value: Any, allowed: Sequence[str], name: str, *, upper: bool = False) -> Any:
    if value is None and upper:
        return None
    text = str(value).strip()
    text = text.upper() if upper else text.lower()
    if text not in allowed:
        raise WriteError(f"unknown {name} {value!r}", hint=f"use one of {', '.join(allowed)}")
    return text


def _flag(value: bool | str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise WriteError(f"{name} must be true or false, got {value!r}")


def _number(value: int | str | None, series: ImageSeries) -> int:
    if value is None:
        source = str(series.dataset.get("SeriesNumber") or "").strip()
        return 1000 + int(source) if source.isdigit() and int(source) < 10**6 else 1000
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if not 0 <= number < 2**31:
        raise WriteError(f"series_number must be a whole number, got {value!r}")
    return number


def _content_label(value: str | None) -> str:
    label = "SEGMENTATION" if value is None else str(value).strip().upper()
    if not _CS.fullmatch(label):
        raise WriteError(
            f"content_label {value!r} is not a DICOM code string",
            hint="use up to 16 letters, digits, spaces or underscores, e.g. LIVER_SEG",
        )
    return label


def _uid(value: str | None, name: str) -> str:
    from pydicom.uid import UID, generate_uid

    if value is None:
        return str(generate_uid())
    if not UID(str(value)).is_valid:
        raise WriteError(f"{name} {value!r} is not a valid DICOM UID")
    return str(value)


# -- segments and checks ------------------------------------------------------------------------


def _source(segmentation: Segmentation, segment: Segment) -> encode.Source:
    layer = segmentation.layers[segment.layer]
    if layer.max_fraction is None:
        return encode.Source(layer.array, segment.label_value)
    half = max(1, (layer.max_fraction + 1) // 2)  # Segmentation.mask: at least half inside
    return encode.Source(layer.array, 1, threshold=half, max_fraction=layer.max_fraction)


def _max_fraction(segmentation: Segmentation) -> int:
    """Maximum Fractional Value: the layers' own if they share one that fits 8 bits."""
    maxima = {layer.max_fraction for layer in segmentation.layers}
    if len(maxima) == 1 and None not in maxima:
        (only,) = maxima
        if only is not None and only <= 255:
            return only
    if any(m is not None and m > 255 for m in maxima):
        warnings.warn(
            "fractions are rescaled to 0..255, the 8 bits of a FRACTIONAL SEG", stacklevel=4
        )
    return 255


def _segment_item(segment: Segment, number: int, algorithm: str, name: str | None) -> Any:
    item = segment_item(segment, number, default_algorithm=algorithm)
    if name and item.SegmentAlgorithmType != "MANUAL" and ALGORITHM_NAME not in segment.properties:
        item.SegmentAlgorithmName = name[:64]
    return item


def _check_gaps(
    present: NDArray[np.bool_], has_source: NDArray[np.bool_], segments: list[Segment], path: Path
) -> None:
    stray = present & ~has_source
    if stray.any():
        slices = np.flatnonzero(stray.any(axis=0))
        names = [segments[i].name for i in np.flatnonzero(stray.any(axis=1))]
        raise WriteError(
            f"segments {', '.join(map(repr, names[:5]))} have voxels on slices "
            f"k = {', '.join(map(str, slices[:10].tolist()))}, where the reference series "
            "has no image (a gap in its slice spacing); a SEG frame must reference one",
            path=path,
            hint="remove those voxels or use a series without gaps",
        )


# -- the dataset ---------------------------------------------------------------------------------


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return str(format_number_as_ds(float(value)))


def _dataset(
    kind: str,
    series: ImageSeries,
    items: list[Any],
    frames: list[tuple[int, int]],
    bits: int,
    options: dict[str, Any],
    segmentation: Segmentation,
    max_value: int,
) -> Any:
    """Every attribute but the Per-Frame Functional Groups and the Pixel Data."""
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    import segio

    source = series.dataset
    grid = series.geometry
    now = datetime.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = LABELMAP_SEGMENTATION_STORAGE if kind == "labelmap" else SEGMENTATION_STORAGE
    ds.SOPInstanceUID = options["sop_instance_uid"]
    ds.InstanceCreationDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.ContentTime = now.strftime("%H%M%S.%f")
    for keyword in TYPE2_COPIED:
        setattr(ds, keyword, source.get(keyword, ""))
    for keyword in OPTIONAL_COPIED:
        if keyword in source:
            setattr(ds, keyword, source[keyword].value)
    ds.StudyInstanceUID = series.study_instance_uid
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = options["series_instance_uid"]
    ds.SeriesNumber = options["series_number"]
    if options["series_description"]:
        ds.SeriesDescription = str(options["series_description"])[:64]
    ds.InstanceNumber = 1
    ds.Manufacturer = str(options["manufacturer"])[:64]
    ds.ManufacturerModelName = "segio"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = segio.__version__
    if series.frame_of_reference_uid:
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = source.get("PositionReferenceIndicator", "")
    instances = _instances(series)
    referenced = Dataset()
    referenced.SeriesInstanceUID = series.series_instance_uid
    referenced.ReferencedInstanceSequence = [_reference(c, i) for c, i in instances]
    ds.ReferencedSeriesSequence = [referenced]
    ds.SourceImageSequence = [_reference(c, i) for c, i in instances]
    # Image pixel, Segmentation Image
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows, ds.Columns = grid.shape[1], grid.shape[2]
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.NumberOfFrames = len(frames)
    ds.SegmentationType = kind.upper()
    if kind == "fractional":
        fraction = segmentation.extras.get("dicom-seg", {}).get("SegmentationFractionalType")
        occupancy = str(fraction).strip().upper() == "OCCUPANCY"
        ds.SegmentationFractionalType = "OCCUPANCY" if occupancy else "PROBABILITY"
        ds.MaximumFractionalValue = max_value
    if kind == "labelmap":
        ds.add_new(0x00280120, "US", 0)  # Pixel Padding Value: the background
    ds.ContentLabel = options["content_label"]
    ds.ContentDescription = str(options["content_description"] or "")[:64]
    ds.ContentCreatorName = str(options["content_creator"] or "")
    ds.SegmentSequence = items
    # Multi-frame Functional Groups and Dimensions
    spacing = grid.spacing
    normal = np.cross(grid.direction[:, 0], grid.direction[:, 1])
    measures = Dataset()
    measures.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    measures.SliceThickness = _ds(float(source.get("SliceThickness") or spacing[2]))
    measures.SpacingBetweenSlices = _ds(abs(float(grid.ijk_to_lps[:3, 2] @ normal)))
    orientation = Dataset()
    orientation.ImageOrientationPatient = [_ds(v) for v in grid.image_orientation()]
    shared = Dataset()
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    organization = str(generate_uid())
    ds.DimensionOrganizationSequence = [Dataset()]
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = organization
    pointers = [] if kind == "labelmap" else [(0x0062000B, 0x0062000A, "Referenced Segment Number")]
    pointers.append((0x00200032, 0x00209113, "Image Position Patient"))
    indices = []
    for pointer, group, label in pointers:
        index = Dataset()
        index.DimensionOrganizationUID = organization
        index.DimensionIndexPointer = pointer
        index.FunctionalGroupPointer = group
        index.DimensionDescriptionLabel = label
        indices.append(index)
    ds.DimensionIndexSequence = indices
    steps = np.diff([k for _, k in frames])
    if kind == "labelmap" and (steps.size == 0 or np.all(steps == steps[0])):
        ds.DimensionOrganizationType = "3D"
    return ds


def _instances(series: ImageSeries) -> list[tuple[str, str]]:
    """(SOP class, SOP instance) of every source instance that holds a slice, once."""
    seen: dict[str, str] = {}
    for frame in series.frames:
        if frame is not None:
            seen.setdefault(frame.sop_instance_uid, frame.sop_class_uid)
    return [(c, i) for i, c in seen.items()]


def _reference(sop_class: str, sop_instance: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _per_frame(kind: str, frames: list[tuple[int, int]], series: ImageSeries) -> bytes:
    """The encoded Per-Frame Functional Groups Sequence, joined from per-slice pieces.

    pydicom encodes every element; the constant ones (codes, flags) once, the varying
    ones (source instance, position, segment number) once per slice or segment.
    """
    from pydicom.dataset import Dataset

    element, item, sequence = encode.element, encode.item, encode.sequence
    constant = Dataset()
    constant.SpatialLocationsPreserved = "YES"
    constant.PurposeOfReferenceCodeSequence = [code_item(SOURCE_PURPOSE)]
    reference_tail = encode.encoded(constant)
    derivation_code = encode.encoded(_coded("DerivationCodeSequence"))
    positions = series.geometry.slice_positions()
    classes: dict[str, bytes] = {}
    slices: dict[int, tuple[bytes, bytes]] = {}
    for k in sorted({k for _, k in frames}):
        frame = series.frames[k]
        assert frame is not None
        if frame.sop_class_uid not in classes:
            classes[frame.sop_class_uid] = element(0x00081150, "UI", frame.sop_class_uid)
        reference = classes[frame.sop_class_uid] + element(0x00081155, "UI", frame.sop_instance_uid)
        if frame.frame_number is not None:
            reference += element(0x00081160, "IS", str(frame.frame_number))
        source = sequence(0x00082112, [item(reference + reference_tail)])
        derivation = sequence(0x00089124, [item(source + derivation_code)])
        position = element(0x00200032, "DS", [_ds(v) for v in positions[k]])
        slices[k] = derivation, sequence(0x00209113, [item(position)])
    values = 1 if kind == "labelmap" else 2
    # Frame Content Sequence > Dimension Index Values (UL): pieces before and after values
    index_tag = element(0x00209157, "UL", [0] * values)[:-4 * values]
    identification: dict[int, bytes] = {}
    body = []
    for index, k in frames:
        derivation, plane = slices[k]
        numbers = struct.pack(f"<{values}I", *((k + 1,) if values == 1 else (index + 1, k + 1)))
        content = sequence(0x00209111, [item(index_tag + numbers)])
        if kind == "labelmap":
            body.append(item(derivation + content + plane))
            continue
        if index not in identification:
            number = element(0x0062000B, "US", index + 1)
            identification[index] = sequence(0x0062000A, [item(number)])
        body.append(item(derivation + content + plane + identification[index]))
    return sequence(0x52009230, body)


def _coded(keyword: str) -> Any:
    from pydicom.dataset import Dataset

    dataset = Dataset()
    setattr(dataset, keyword, [code_item(SEGMENTATION_DERIVATION)])
    return dataset


# -- the file ------------------------------------------------------------------------------------


class _Sink:
    """Writes the dataset body, deflated (RFC 1951, no zlib header) when asked."""

    def __init__(self, handle: BinaryIO, deflate: bool) -> None:
        self.handle = handle
        self.size = 0
        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS) if deflate else None

    def write(self, data: Any) -> None:
        if self.deflater is not None:
            data = self.deflater.compress(data)
        self.handle.write(data)
        self.size += memoryview(data).nbytes

    def close(self) -> None:
        if self.deflater is not None:
            tail = self.deflater.flush()
            self.handle.write(tail + b"\x00" * ((self.size + len(tail)) % 2))


def _save(
    handle: BinaryIO,
    dataset: Any,
    per_frame: bytes,
    blocks: Iterator[NDArray[Any]],
    kind: str,
    codec: str,
    bits: int,
) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomFileLike
    from pydicom.filewriter import write_file_meta_info
    from pydicom.uid import generate_uid

    import segio

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = SYNTAXES[codec]
    meta.ImplementationClassUID = generate_uid(None, ["segio implementation"])
    meta.ImplementationVersionName = f"SEGIO_{segio.__version__}"[:16]
    handle.write(b"\x00" * 128 + b"DICM")
    fp = DicomFileLike(handle)
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_file_meta_info(fp, meta, enforce_standard=True)
    sink = _Sink(handle, codec == "deflate")
    sink.write(encode.encoded(dataset))
    sink.write(per_frame)
    frames, rows, columns = int(dataset.NumberOfFrames), int(dataset.Rows), int(dataset.Columns)
    if codec in ("none", "deflate"):
        length = (frames * rows * columns * bits + 7) // 8
        sink.write(
            encode.element_header(0x7FE00010, "OW" if bits == 16 else "OB", length + length % 2)
        )
        for chunk in encode.native(blocks, bits):
            sink.write(chunk)
        sink.write(b"\x00" * (length % 2))
    else:
        from pydicom.encaps import encapsulate

        encoded = list(_compressed(blocks, codec, bits))
        bot = sum(len(f) + len(f) % 2 + 8 for f in encoded) < 2**32
        sink.write(encode.element_header(0x7FE00010, "OB", encode.UNDEFINED))
        sink.write(encapsulate(encoded, has_bot=bot))
        sink.write(encode.SEQUENCE_DELIMITER)
    sink.close()


def _compressed(blocks: Iterator[NDArray[Any]], codec: str, bits: int) -> Iterator[bytes]:
    """Encoded frames: vectorised RLE, JPEG-LS (pyjpegls), JPEG 2000 (openjpeg)."""
    if codec == "rle":
        for block in blocks:
            yield from encode.rle_encode(block)
        return
    if bits == 1:  # pydicom 3.0 has no 1-bit JPEG 2000 encoder; openjpeg has
        from openjpeg.utils import encode_array

        for block in blocks:
            for frame in block:
                yield encode_array(
                    frame, bits_stored=1, photometric_interpretation=2, use_mct=False
                )
        return
    from pydicom.pixels import get_encoder

    encoder = get_encoder(SYNTAXES[codec])
    if not encoder.is_available:
        raise WriteError(
            f"{codec} compression needs a codec that is not installed",
            hint="pip install pyjpegls" if codec == "jpegls" else "pip install pylibjpeg-openjpeg",
        )
    for block in blocks:
        for frame in block:
            yield encoder.encode(
                frame, rows=frame.shape[0], columns=frame.shape[1], samples_per_pixel=1,
                bits_allocated=bits, bits_stored=bits, photometric_interpretation="MONOCHROME2",
                pixel_representation=0, number_of_frames=1,
            )  # fmt: skip
