"""Reference images: the grid a segmentation is written on, and the series it cites.

Every format with a ``reference`` option reads it here, so that a reference means one
thing everywhere: a DICOM series (a folder, one file or a list of files), a NIfTI or
NRRD image, or any segmentation segio reads, taken as its image grid; for DICOM also the
UIDs a derived object (SEG, RTSTRUCT, SliceOmatic tag) cites. An image file is read by
segio's reader for it; one that is not a segmentation (a CT in NRRD) by the
``read_grid(path) -> Geometry`` its reader's module may offer, or by nibabel.

A reference that cannot serve is refused with the reason, never used: a writer that must
cite a series asks :func:`cited_series`, which refuses images without SOP Instance,
Series or Study UIDs (a SEG citing empty UIDs is written, but no other tool can read it
back).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segio.dicom.series import ImageSeries, read_image_series
from segio.errors import ReadError, SegioError, ValidationError
from segio.geometry import Geometry

PathLike = str | os.PathLike[str]
#: What a ``reference`` option may be: a path, DICOM files, or a reference already read.
ReferenceLike = PathLike | Sequence[PathLike]
#: File endings tried as a DICOM series before anything else (DICOM files often have none).
_DICOM_SUFFIXES = ("", ".dcm", ".ima", ".dicom")


@dataclass(frozen=True)
class Reference:
    """A reference image read once: its grid, and for a DICOM series the series itself."""

    path: Path  #: what the user named (the first file of a list)
    geometry: Geometry
    series: ImageSeries | None = None

    def __fspath__(self) -> str:
        """The path, so a Reference passes wherever a reference path is expected."""
        return os.fspath(self.path)


def read_reference(reference: Reference | ReferenceLike) -> Reference:
    """The grid (and DICOM series, if it is one) of ``reference``; a Reference as it is.

    A folder, a list of files, or a file named like DICOM is read as a DICOM image series
    first; a file that is not an image series (a NIfTI or NRRD image, a SEG, a seg.nrrd)
    gives the grid segio reads from it, or else nibabel's.
    """
    if isinstance(reference, Reference):
        return reference
    if not isinstance(reference, str | os.PathLike):
        files = [Path(item) for item in reference]
        if not files:
            raise ReadError("the reference names no file", hint="pass a series folder or files")
        series = read_image_series(files)
        return Reference(files[0], series.geometry, series)
    path = Path(reference)
    if not path.exists():
        raise ReadError("the reference image does not exist", path=path)
    if path.is_dir() or path.suffix.lower() in _DICOM_SUFFIXES or _is_dicom(path):
        try:
            series = read_image_series(path)
        except ReadError:
            if path.is_dir():
                raise
        else:
            return Reference(path, series.geometry, series)
    return Reference(path, _image_geometry(path))


def reference_paths(reference: Any) -> list[Path]:
    """The files or folder a ``reference`` option names, without reading them: for the
    inputs a write must never replace."""
    if isinstance(reference, Reference):
        return [reference.path]
    items = reference if isinstance(reference, list | tuple) else [reference]
    return [Path(item) for item in items if isinstance(item, str | os.PathLike) and item]


def cited_series(
    reference: Reference | ReferenceLike, what: str, *, uids: bool = True
) -> ImageSeries:
    """The DICOM series that ``what`` (say "a DICOM SEG") will cite.

    Refused, naming the reference, when it is not a DICOM image series or (with ``uids``,
    for objects that cite by UID) when its images lack a SOP Class or SOP Instance UID, or
    the series a Series or Study Instance UID: the object would be written, but it could
    not be matched to its images again.
    """
    found = read_reference(reference)
    if found.series is None:
        raise ValidationError(
            f"{what} cites the DICOM image series it was drawn on; this reference is not "
            "a DICOM series",
            path=found.path,
            hint="pass the folder (or files) of the DICOM series",
        )
    series = found.series
    if not uids:
        return series
    missing = []
    if not series.study_instance_uid.strip():
        missing.append("Study Instance UID")
    if not series.series_instance_uid.strip():
        missing.append("Series Instance UID")
    frames = [f for f in series.frames if f is not None]
    empty = [f for f in frames if not f.sop_instance_uid.strip() or not f.sop_class_uid.strip()]
    if empty:
        names = ", ".join(sorted({f.file.name for f in empty if f.file is not None})[:3])
        missing.append(
            f"SOP Class/Instance UID of {len(empty)} of {len(frames)} images"
            + (f" ({names})" if names else "")
        )
    if missing:
        raise ValidationError(
            f"the reference series has no {', no '.join(missing)}; {what} citing it could "
            "not be matched to its images by any reader",
            path=found.path,
            hint="use the series as the scanner or archive stored it (its UIDs intact)",
        )
    return series


def _is_dicom(path: Path) -> bool:
    """A file with the DICOM preamble and magic (whatever its name)."""
    from segio.fileio.inputs import open_input

    try:
        with open_input(path) as stream:
            return bool(stream.read(132)[128:132] == b"DICM")
    except SegioError:
        return False


def _image_geometry(path: Path) -> Geometry:
    """The grid of an image file: as segio reads it; else from the ``read_grid(path)``
    function its reader's module may offer (NRRD does: a CT is not a labelmap); else as
    nibabel reads it."""
    from segio.io import read

    try:
        geometry = read(path).geometry
    except SegioError as exc:
        geometry = _declared_grid(path) or _nibabel_geometry(path, exc)
    if geometry is None:
        raise ReadError("the reference has no image grid", path=path)
    return geometry


def _declared_grid(path: Path) -> Geometry | None:
    """``read_grid(path)`` of the module of the reader of ``path``, when it has one."""
    from segio.registry import default_registry, load

    try:
        spec = default_registry().reader_for(path)
        if spec.reader is None:
            return None
        module = spec.reader.partition(":")[0]
        function = load(f"{module}:read_grid", requires=spec.requires, install=spec.install)
    except (SegioError, AttributeError):
        return None
    found = function(path)
    return found if isinstance(found, Geometry) else None


def _nibabel_geometry(path: Path, error: SegioError) -> Geometry:
    """A NIfTI image segio does not read as a segmentation (a CT in floats, say)."""
    try:
        import nibabel
    except ImportError:
        raise error from None
    try:
        image: Any = nibabel.load(path)
        shape = tuple(int(n) for n in (*image.shape, 1, 1)[:3])
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception:  # nibabel raises many kinds for files it does not know
        raise error from None
    # nibabel indexes (i, j, k); segio's arrays are (k, j, i).
    return Geometry.from_ras(affine, shape[::-1])
