"""DICOM image series: slices and frames placed on one regular grid.

Shared by every DICOM format (SEG, RTSTRUCT, ...): a segmentation that references an
image series lives on that series' grid. pydicom is imported only when a series is read.

Geometry comes from Image Orientation/Position (Patient) and Pixel Spacing, never from
Slice Thickness; the grid through the slice positions is :func:`segio.geometry.slice_grid`
(a grid rule, also used by the contour rasteriser, so it lives with the geometry).

It is also where every DICOM reader of segio opens files, because the files are untrusted:
:func:`dicom_files` lists only regular files inside a folder (no FIFO, device, or link out
of it), :func:`read_dataset` is pydicom behind a guard (the deflated dataset inflated within
a limit, all values converted at once, every exception a :class:`ReadError` naming the
file), and :func:`check_pixel_data` compares what a header declares of its frames with
what the Pixel Data can hold before any decoder runs.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segio import progress
from segio.dicom import walker as dicomfast
from segio.errors import GeometryError, ReadError, one_line
from segio.fileio.inputs import check_regular, folder_files, open_input, read_input
from segio.fileio.limits import check_allocation, check_payload
from segio.geometry import Geometry, slice_grid


@dataclass(frozen=True)
class SourceFrame:
    """One 2D image of the source: an instance, and a frame of it when multi-frame."""

    sop_class_uid: str
    sop_instance_uid: str
    frame_number: int | None  # 1-based, None for a single-frame instance
    file: Path | None = None  # the file that holds it


@dataclass
class ImageSeries:
    """A DICOM image series as a grid: which source frame lies on each slice k."""

    geometry: Geometry
    frames: list[SourceFrame | None]  # per slice k; None where the grid has a gap
    frame_of_reference_uid: str | None
    study_instance_uid: str
    series_instance_uid: str
    header: Any  # the first instance's header (a pydicom Dataset or a dicomfast.Header)
    files: list[Path]

    @property
    def dataset(self) -> Any:
        """The first instance as a pydicom Dataset (patient, study, equipment to copy).

        Loaded on first use: reading a series for its grid needs only the fast headers.
        """
        if hasattr(self.header, "dir"):  # already pydicom's
            return self.header
        # Writers copy a few attributes from it: only those are ever converted.
        dataset = read_dataset(self.header.filename, stop_before_pixels=True, convert=())
        dataset.filename = self.header.filename
        self.header = dataset
        return dataset


def dicom_files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files of a folder (recursively, hidden ones skipped) or an explicit list.

    Only regular files are taken: in a folder, FIFOs, devices and links out of it are left
    out (:func:`segio.fileio.inputs.folder_files`); a named file that is not regular is refused.
    """
    if isinstance(path, (str, os.PathLike)):
        root = Path(path)
        if root.is_dir():
            return folder_files(root)
        if not root.exists() and not root.is_symlink():
            raise ReadError("no such file or folder", path=root)
        check_regular(root)
        return [root]
    files = [Path(p) for p in path]
    for file in files:
        check_regular(file)
    return files


def read_dataset(
    file: str | os.PathLike[str],
    *,
    data: bytes | None = None,
    stop_before_pixels: bool = False,
    specific_tags: list[Any] | None = None,
    force: bool = False,
    convert: Collection[str] | None = None,
) -> Any:
    """pydicom's Dataset of ``file`` (or of its bytes ``data``), read as untrusted input.

    pydicom alone would inflate a deflated dataset of any size, recurse as deep as a file
    nests its sequences, and raise anything from ValueError to RecursionError, some only
    when a value is first used. Here the file is read as bytes (a regular file only), a
    deflated dataset is inflated within :func:`segio.dicom.walker.deflated_limit`, the values
    the caller uses are converted at once (``convert``: these top-level keywords, nested
    values included; None: every value), and every failure is a one-line
    :class:`ReadError` naming the file; pydicom's warnings become one.
    """
    import pydicom

    if data is None:
        data = read_input(file)
    data = dicomfast.inflated_part10(data, file)
    problem: str | None = None
    truncated = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = pydicom.dcmread(
                io.BytesIO(data),
                stop_before_pixels=stop_before_pixels,
                specific_tags=specific_tags,
                force=force,
            )
            truncated = _cut_short(dataset)
            _convert(dataset, convert)  # errors surface here, not when a value is used
        except RecursionError:  # raised outside this handler: no RecursionError behind it
            problem = "its sequences nest too deeply to read"
        except MemoryError:
            raise
        except Exception as exc:  # pydicom raises many types on damaged files
            problem = f"{one_line(exc) or type(exc).__name__}"
    if problem is not None:
        raise ReadError(f"not a readable DICOM file: {problem}", path=file)
    if truncated:
        raise ReadError("the file is truncated (its last value is cut short)", path=file)
    _summarise(caught, file)
    return dataset


def _cut_short(dataset: Any) -> bool:
    """Whether the last element read holds fewer bytes than its length says.

    pydicom returns a short last value as it is: a cut file must not pass as whole.
    """
    tags = list(dataset.keys())[-1:]
    for tag in tags:
        raw = dataset.get_item(tag)
        length, value = getattr(raw, "length", None), getattr(raw, "value", None)
        if isinstance(value, bytes) and isinstance(length, int) and length != 0xFFFFFFFF:
            return len(value) != length
    return False


def _convert(dataset: Any, keywords: Collection[str] | None) -> None:
    """Have pydicom convert the values of ``keywords`` (all when None), nested ones too."""
    if keywords is None:
        for _ in dataset.iterall():
            pass
        return
    for keyword in keywords:
        value = dataset.get(keyword)
        for item in value if keyword.endswith("Sequence") and value else ():
            for _ in item.iterall():
                pass


def _summarise(caught: list[warnings.WarningMessage], source: str | os.PathLike[str]) -> None:
    """Warnings caught while reading ``source`` as one warning: the first, and how many more.

    pydicom warns once per odd value, and a series has hundreds of files: the user gets one
    line, not hundreds.
    """
    if not caught:
        return
    first = one_line(caught[0].message)
    name = Path(source).name
    if len(caught) == 1:
        text = first if name in first else f"{first} [{name}]"
    else:
        text = f"{first} (and {len(caught) - 1} more warnings reading {name})"
    warnings.warn(text, stacklevel=3)


def read_image_series(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> ImageSeries:
    """The image series in a folder or list of files (one series; SEG/RTSTRUCT ignored).

    Files that are not DICOM are skipped, and so are DICOM files that cannot be read (one
    warning for all of them); pydicom's warnings on the headers are summarised in one.
    """
    where = path if isinstance(path, (str, os.PathLike)) else None
    files = dicom_files(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, skipped = _image_headers(files)
    _summarise(caught, where or (files[0] if files else "the series"))
    if skipped:
        warnings.warn(
            f"{len(skipped)} unreadable DICOM file(s) skipped (first: {skipped[0]})", stacklevel=2
        )
    if not images:
        raise ReadError("no DICOM image found", path=where, hint="point to the image series")
    if len(images) > 1:
        raise ReadError(
            f"{len(images)} image series found; a segmentation references one",
            path=where,
            hint="point to the folder or the files of one series",
        )
    ((series_uid, datasets),) = images.items()
    problem = None
    try:
        return _series(datasets, series_uid)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        problem = f"{type(exc).__name__}: {one_line(exc)}"
    raise ReadError(f"malformed image header ({problem})", path=datasets[0].filename)


def _image_headers(files: list[Path]) -> tuple[dict[str, list[Any]], list[ReadError]]:
    """The image headers by Series Instance UID, and the errors of unreadable files."""
    images: dict[str, list[Any]] = {}
    skipped: list[ReadError] = []
    for file in progress.track(files, "reading DICOM headers"):
        try:
            dataset = _header(file)
        except ReadError as exc:  # one broken file is skipped, as a non-DICOM one is
            skipped.append(exc)
            continue
        if dataset is None:
            continue
        if "Rows" not in dataset or dataset.get("Modality") in ("SEG", "RTSTRUCT", "SR"):
            continue
        images.setdefault(str(dataset.get("SeriesInstanceUID") or ""), []).append(dataset)
    return images, skipped


#: What the series reader uses of an image header (the rest is never converted, so an odd
#: value in an unused attribute costs nothing, not even a warning).
HEADER_KEYWORDS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
    "FrameOfReferenceUID", "Modality", "Rows", "Columns", "NumberOfFrames",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "ImagerPixelSpacing",
    "SliceThickness", "SpacingBetweenSlices", "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
)  # fmt: skip
#: Bytes read first for an image header; the rest only when the header is longer.
_HEAD = 16384


def _header(file: Path) -> Any | None:
    """The header of one file (everything before the pixel data); None if it is not DICOM.

    The struct walker reads the first kilobytes of a plain little-endian file
    (:func:`segio.dicom.walker.read_part10`); anything it does not take goes to pydicom
    (:func:`read_dataset`), the reason logged (:func:`segio.dicom.walker.fall_back`), as
    does everything with ``SEGIO_DICOM_FAST=0``. A file that is DICOM but broken (a bomb,
    a lie) is a :class:`ReadError`; a file that is not DICOM at all is skipped.
    """
    fast = dicomfast.fast_path()
    with open_input(file) as stream:
        head = stream.read(_HEAD)
        try:
            if not fast:
                raise dicomfast.MalformedError("not walked")
            header = dicomfast.read_part10(head, stop=dicomfast.PIXEL_DATA, cut=True)
        except Exception:  # a speed path: whatever it cannot read, the whole file is for
            data = head + stream.read()
        else:
            header.filename = str(file)
            return header
    reason: object = f"{dicomfast.FAST_SWITCH}=0"
    if fast:
        try:
            header = dicomfast.read_part10(
                dicomfast.inflated_part10(data, file), stop=dicomfast.PIXEL_DATA
            )
        except ReadError:
            raise
        except Exception as exc:  # MalformedError, struct.error, ...: pydicom decides
            reason = exc
        else:
            header.filename = str(file)
            return header
    if data[128:132] != b"DICM":
        return None
    dicomfast.fall_back(file, "the image header", reason)
    dataset = read_dataset(file, data=data, stop_before_pixels=True, convert=HEADER_KEYWORDS)
    dataset.filename = str(file)
    return dataset


def _series(datasets: list[Any], series_uid: str) -> ImageSeries:
    positions, orientations, frames = [], [], []
    for dataset in datasets:
        for number, position, orientation, spacing in _frame_planes(dataset):
            positions.append(position)
            orientations.append(orientation)
            frames.append(
                (
                    SourceFrame(  # UIDs may be missing: writers refuse them, a grid does not
                        str(dataset.get("SOPClassUID") or ""),
                        str(dataset.get("SOPInstanceUID") or ""),
                        number,
                        Path(dataset.filename),
                    ),
                    spacing,
                )
            )
    first = datasets[0]
    if not positions:
        raise ReadError("the images have no position in space", path=first.filename)
    if not np.allclose(orientations, orientations[0], atol=1e-4):
        raise GeometryError(
            "the images of the series have different orientations", path=first.filename
        )
    spacing = frames[0][1]
    geometry, slots = slice_grid(
        positions,
        orientations[0],
        spacing,
        (int(first.Rows), int(first.Columns)),
        default_spacing=float(
            first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        ),
    )
    by_slice: list[SourceFrame | None] = [None] * geometry.shape[0]
    for (frame, _), k in zip(frames, slots, strict=True):
        by_slice[int(k)] = frame
    return ImageSeries(
        geometry=geometry,
        frames=by_slice,
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID"))
        if "FrameOfReferenceUID" in first
        else None,
        study_instance_uid=str(first.get("StudyInstanceUID") or ""),
        series_instance_uid=series_uid,
        header=first,
        files=[Path(d.filename) for d in datasets],
    )


def _frame_planes(dataset: Any) -> list[tuple[int | None, list[float], list[float], list[float]]]:
    """(frame number, IPP, IOP, PixelSpacing) of each frame of an instance."""
    if "PerFrameFunctionalGroupsSequence" in dataset:
        shared = dataset.get("SharedFunctionalGroupsSequence", [None])[0]
        planes: list[tuple[int | None, list[float], list[float], list[float]]] = []
        for number, group in enumerate(dataset.PerFrameFunctionalGroupsSequence, start=1):
            position = _functional(group, shared, "PlanePositionSequence", "ImagePositionPatient")
            orientation = _functional(
                group, shared, "PlaneOrientationSequence", "ImageOrientationPatient"
            )
            spacing = _functional(group, shared, "PixelMeasuresSequence", "PixelSpacing")
            if position is None or orientation is None or spacing is None:
                return []
            planes.append(
                (
                    number,
                    [float(v) for v in position],
                    [float(v) for v in orientation],
                    [float(v) for v in spacing],
                )
            )
        return planes
    if "ImagePositionPatient" not in dataset or "ImageOrientationPatient" not in dataset:
        return []
    spacing = dataset.get("PixelSpacing") or dataset.get("ImagerPixelSpacing") or [1.0, 1.0]
    return [
        (
            None,
            [float(v) for v in dataset.ImagePositionPatient],
            [float(v) for v in dataset.ImageOrientationPatient],
            [float(v) for v in spacing],
        )
    ]


def _functional(group: Any, shared: Any, sequence: str, keyword: str) -> Any:
    for source in (group, shared):
        if source is not None and sequence in source and keyword in source[sequence][0]:
            return source[sequence][0][keyword]
    return None


# -- pixel data: what a header declares, checked before decoding ----------------------------

#: Transfer syntaxes whose frames are JPEG 2000 (or HTJ2K) codestreams.
_J2K = frozenset(
    {
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    }
)
#: JPEG markers that start a frame header (SOF0..SOF15 but DHT, JPG, DAC; SOF55 of JPEG-LS).
_SOF = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7})
DEFLATED_IMAGE_FRAME = "1.2.840.10008.1.2.8.1"
_NATIVE = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
)


@dataclass(frozen=True)
class PixelLayout:
    """What a header says of its frames: count, rows, columns, samples and bits per sample."""

    frames: int
    rows: int
    columns: int
    samples: int
    bits: int

    @property
    def frame_pixels(self) -> int:
        return self.rows * self.columns * self.samples

    @property
    def native_bytes(self) -> int:
        """Bytes of uncompressed Pixel Data (1-bit frames packed across frame boundaries)."""
        return (self.frames * self.frame_pixels * self.bits + 7) // 8

    @property
    def decoded_bytes(self) -> int:
        """Bytes of the decoded array (at least one byte a pixel)."""
        return self.frames * self.frame_pixels * max(1, self.bits // 8)


def _count(ds: Any, keyword: str, default: int | None = None) -> int:
    """A count attribute (Rows, Number of Frames, ...) as a positive integer, or ReadError."""
    value = ds.get(keyword)
    if value in (None, "") and default is not None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = 0
    if number < 1:
        raise ReadError(f"{keyword} is {value!r}, not a positive whole number")
    return number


def check_pixel_data(ds: Any, path: str | os.PathLike[str]) -> PixelLayout:
    """The frame layout ``ds`` declares, refused unless its Pixel Data can hold it.

    Native data must be all there; deflated frames can grow at most 1032 times; encapsulated
    frames (RLE, JPEG, JPEG-LS, JPEG 2000) need an item each, and a JPEG family codestream
    may not claim more pixels than Rows x Columns (its decoder would allocate what it says).
    Every decoded size is checked against ``SEGIO_MAX_MEMORY``. Raises :class:`ReadError`
    (or :class:`~segio.errors.LimitError`) naming ``path``.
    """
    try:
        layout = PixelLayout(
            _count(ds, "NumberOfFrames", 1),
            _count(ds, "Rows"),
            _count(ds, "Columns"),
            _count(ds, "SamplesPerPixel", 1),
            _count(ds, "BitsAllocated"),
        )
    except ReadError as exc:
        raise ReadError(exc.reason, path=path) from None
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    pixels = ds.get("PixelData")
    held = len(pixels) if isinstance(pixels, (bytes, bytearray, memoryview)) else 0
    what = (
        f"{layout.frames} frame(s) of {layout.rows} x {layout.columns} x {layout.samples} "
        f"at {layout.bits} bit(s)"
    )
    if syntax == DEFLATED_IMAGE_FRAME:
        check_payload(layout.native_bytes, held, what, compressed=True, path=path)
    elif _encapsulated(syntax):
        check_allocation(layout.decoded_bytes, what, path=path)
        _check_codestreams(pixels, layout, syntax, path)
    else:
        check_payload(layout.native_bytes, held, what, path=path)
    check_allocation(layout.decoded_bytes, what, path=path)
    return layout


def _encapsulated(syntax: str) -> bool:
    if not syntax or syntax in _NATIVE:
        return False  # without importing pydicom (0.25 s), which only the rest needs
    from pydicom.uid import UID

    return bool(UID(syntax).is_encapsulated)


def encapsulated_frames(pixels: Any, count: int, path: str | os.PathLike[str]) -> list[bytes]:
    """The ``count`` frames of encapsulated Pixel Data; ReadError when it holds fewer."""
    from pydicom.encaps import generate_frames

    data = bytes(pixels) if pixels is not None else b""
    if count > len(data) // 8:  # every frame needs an item header at least
        raise ReadError(
            f"Number of Frames is {count} but the Pixel Data ({len(data)} bytes) cannot hold "
            "that many frames",
            path=path,
        )
    try:
        frames = list(generate_frames(data, number_of_frames=count))
    except Exception as exc:  # pydicom raises ValueError and friends for broken items
        raise ReadError(
            f"cannot split the encapsulated frames: {one_line(exc)}", path=path
        ) from exc
    if len(frames) != count:
        raise ReadError(
            f"{len(frames)} encapsulated frame(s) for Number of Frames {count}", path=path
        )
    return frames


def _check_codestreams(
    pixels: Any, layout: PixelLayout, syntax: str, path: str | os.PathLike[str]
) -> None:
    """Refuse JPEG family frames whose codestream claims more than the header's frame."""
    family = (
        "j2k" if syntax in _J2K else "jpeg" if syntax.startswith("1.2.840.10008.1.2.4.") else ""
    )
    frames = encapsulated_frames(pixels, layout.frames, path)
    if not family:
        return
    for number, frame in enumerate(frames, start=1):
        size = _j2k_size(frame) if family == "j2k" else _jpeg_size(frame)
        if size is None:
            raise ReadError(f"frame {number} has no readable codestream header", path=path)
        width, height, components = size
        if width * height * components > layout.frame_pixels or width > layout.columns:
            raise ReadError(
                f"frame {number} is a {width} x {height} x {components} codestream, larger than "
                f"the {layout.columns} x {layout.rows} x {layout.samples} frames the header "
                "declares",
                path=path,
                hint="the file is corrupt, or crafted to make the decoder allocate too much",
            )


def _j2k_size(frame: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG 2000 codestream's SIZ marker segment."""
    at = frame.find(b"\xff\x4f\xff\x51")
    if at < 0 or at + 42 > len(frame):
        return None
    xsiz, ysiz, x0, y0 = struct.unpack_from(">IIII", frame, at + 8)
    (components,) = struct.unpack_from(">H", frame, at + 40)
    return max(xsiz - x0, 0), max(ysiz - y0, 0), components


def _jpeg_size(frame: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from the frame header of a JPEG or JPEG-LS stream.

    Marker segments are walked from SOI to the first SOF (never into entropy-coded data).
    """
    if frame[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(frame):
        if frame[pos] != 0xFF:
            return None
        marker = frame[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack_from(">H", frame, pos + 2)
        if marker in _SOF:
            if pos + 10 > len(frame):
                return None
            height, width = struct.unpack_from(">HH", frame, pos + 5)
            return width, height, frame[pos + 9]
        if marker == 0xDA or length < 2:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None
