"""DICOM image geometry: slices and frames placed on one regular grid.

Shared by every DICOM format (SEG, RTSTRUCT, ...): a segmentation that references an
image series lives on that series' grid. pydicom is imported only when a series is read.

Geometry comes from Image Orientation/Position (Patient) and Pixel Spacing, never from
Slice Thickness. The row direction (first IOP vector) is the i axis with the column
spacing (PixelSpacing[1]); the column direction is the j axis with the row spacing
(PixelSpacing[0]). Slices are sorted along the normal; irregular spacing is allowed when
every slice falls on a multiple of the smallest gap (the missing slices become empty
grid slices, as highdicom does), otherwise it is a :class:`GeometryError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.errors import GeometryError, ReadError
from segio.geometry import Geometry

#: Relative tolerance on slice positions, as a fraction of the slice step.
POSITION_TOLERANCE = 0.01


def slice_grid(
    positions: ArrayLike,
    orientation: ArrayLike,
    pixel_spacing: Sequence[float],
    shape_2d: tuple[int, int],
    *,
    default_spacing: float = 1.0,
) -> tuple[Geometry, NDArray[np.intp]]:
    """The regular grid through ``positions`` (N x 3 IPP) and each position's slice index k.

    Positions that coincide (frames of several segments at one place) share an index.
    ``shape_2d`` is (rows, columns); ``default_spacing`` is used along k for one slice.
    """
    points = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    iop = np.asarray(orientation, dtype=np.float64).reshape(6)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
        raise GeometryError(f"image orientation {iop.tolist()} is not two orthogonal unit vectors")
    distance = points @ normal
    order = np.argsort(distance, kind="stable")
    unique = [order[0]]
    for index in order[1:]:
        if distance[index] - distance[unique[-1]] > 1e-4:
            unique.append(index)
    levels = distance[unique]
    if len(unique) == 1:
        step = normal * default_spacing
        indices = np.zeros(len(points), dtype=np.intp)
    else:
        gaps = np.diff(levels)
        unit = float(gaps.min())
        slot = np.round((levels - levels[0]) / unit)
        if np.any(np.abs(levels - levels[0] - slot * unit) > POSITION_TOLERANCE * unit):
            raise GeometryError(
                "the slices are not on a regular grid (gaps "
                + ", ".join(f"{g:.4g}" for g in np.unique(np.round(gaps, 4)))
                + " mm)",
                hint="segio places slices on a grid whose spacing divides every gap",
            )
        # The step follows the slices (it may lean, for a tilted gantry), not the normal.
        first, last = points[unique[0]], points[unique[-1]]
        step = (last - first) / slot[-1]
        predicted = first + np.outer(slot, step)
        if np.any(np.linalg.norm(points[unique] - predicted, axis=1) > POSITION_TOLERANCE * unit):
            raise GeometryError("the slice positions do not lie on one straight line")
        indices = np.round((distance - levels[0]) / unit).astype(np.intp)
    matrix = np.eye(4)
    matrix[:3, 0] = row * float(pixel_spacing[1])
    matrix[:3, 1] = col * float(pixel_spacing[0])
    matrix[:3, 2] = step
    matrix[:3, 3] = points[unique[0]]
    rows, columns = shape_2d
    return Geometry(matrix, (int(indices.max()) + 1, rows, columns)), indices


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
        import pydicom

        dataset = pydicom.dcmread(self.header.filename, stop_before_pixels=True)
        dataset.filename = self.header.filename
        self.header = dataset
        return dataset


def dicom_files(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The files of a folder (recursively, hidden ones skipped) or an explicit list."""
    if isinstance(path, (str, os.PathLike)):
        root = Path(path)
        if root.is_dir():
            return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        if root.is_file():
            return [root]
        raise ReadError("no such file or folder", path=root)
    return [Path(p) for p in path]


def read_image_series(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> ImageSeries:
    """The image series in a folder or list of files (one series; SEG/RTSTRUCT ignored)."""
    images: dict[str, list[Any]] = {}
    for file in dicom_files(path):
        dataset = _header(file)
        if dataset is None:
            continue
        if "Rows" not in dataset or dataset.get("Modality") in ("SEG", "RTSTRUCT", "SR"):
            continue
        images.setdefault(str(dataset.get("SeriesInstanceUID", "")), []).append(dataset)
    where = path if isinstance(path, (str, os.PathLike)) else None
    if not images:
        raise ReadError("no DICOM image found", path=where, hint="point to the image series")
    if len(images) > 1:
        raise ReadError(
            f"{len(images)} image series found; a segmentation references one",
            path=where,
            hint="point to the folder or the files of one series",
        )
    ((series_uid, datasets),) = images.items()
    return _series(datasets, series_uid)


#: Bytes read first for an image header; the rest only when the header is longer.
_HEAD = 16384


def _header(file: Path) -> Any | None:
    """The header of one file (everything before the pixel data); None if it is not DICOM.

    The struct walker reads the first kilobytes of a plain little-endian file
    (:func:`segio.dicomfast.read_part10`); anything it does not take goes to pydicom.
    """
    from segio import dicomfast

    try:
        with file.open("rb") as stream:
            head = stream.read(_HEAD)
            try:
                header = dicomfast.read_part10(head, stop=dicomfast.PIXEL_DATA, cut=True)
            except dicomfast.MalformedError:
                header = dicomfast.read_part10(head + stream.read(), stop=dicomfast.PIXEL_DATA)
        header.filename = str(file)
        return header
    except Exception:  # a speed path: whatever it cannot read, pydicom reads
        pass
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(file, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return None
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
                    SourceFrame(
                        str(dataset.SOPClassUID),
                        str(dataset.SOPInstanceUID),
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
        study_instance_uid=str(first.StudyInstanceUID),
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
