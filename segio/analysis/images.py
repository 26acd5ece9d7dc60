"""The values of a reference image, for intensity statistics: NIfTI, NRRD or a DICOM series.

Everywhere else segio needs only a reference image's grid (:mod:`segio.reference`); the
intensities of ``segio stats --reference`` need its voxels too. Files are untrusted, as
for every reader: what a header declares is checked against what the file can hold and
against ``SEGIO_MAX_MEMORY`` before anything is allocated, and every failure is one
:class:`~segio.errors.ReadError` naming the file.

- **DICOM series** (a folder, or a file with the DICOM magic): the grid is the series'
  (:func:`segio.dicom.series.read_image_series`, the rule every DICOM reader of segio
  uses); each file is read through :func:`segio.dicom.series.read_dataset` with its Pixel
  Data checked by :func:`~segio.dicom.series.check_pixel_data`, and the stored values are
  mapped through Rescale Slope and Intercept (per frame for enhanced multi-frame images)
  into the modality's units (Hounsfield units for CT). Slices the grid has but the series
  lacks are NaN, which the statistics leave out.
- **NIfTI**: nibabel, values scaled by ``scl_slope``/``scl_inter``; the grid from its
  IJK -> RAS affine by :meth:`Geometry.from_ras` (as the NIfTI reader and
  :mod:`segio.reference` do).
- **NRRD**: the payload and the grid through segio's own NRRD codec, the one its NRRD
  reader uses (loaded through the registry, as :mod:`segio.reference` loads ``read_grid``):
  pynrrd would inflate a gzip payload without bound, and the NRRD spaces (RAS, LPS,
  scanner-xyz) are converted to LPS in one place only.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio import progress
from segio.errors import ReadError, one_line, reading
from segio.fileio.inputs import open_input
from segio.fileio.limits import check_allocation, check_payload
from segio.geometry import Geometry

__all__ = ["read_image"]

PathLike = str | os.PathLike[str]
#: Values above this need float64 to stay exact (float32 holds integers up to 2**24).
_FLOAT32_EXACT = float(1 << 24)


def read_image(path: PathLike) -> tuple[NDArray[Any], Geometry]:
    """The voxel values ``[k, j, i]`` and the grid of a NIfTI or NRRD image or a DICOM
    image series (folder or one of its files)."""
    where = Path(path)
    if not where.exists():
        raise ReadError("the reference image does not exist", path=where)
    kind = _kind(where)
    if kind == "dicom":
        return _dicom(where)
    if kind == "nifti":
        return _nifti(where)
    if kind == "nrrd":
        return _nrrd(where)
    raise ReadError(
        "not an image segio reads values from",
        path=where,
        hint="give a NIfTI (.nii, .nii.gz) or NRRD image, or a DICOM series folder",
    )


def _kind(path: Path) -> str | None:
    """What the file is, by its content (names lie): dicom, nifti, nrrd or None."""
    if path.is_dir():
        return "dicom"
    with open_input(path, what="the reference image") as stream:
        head = stream.read(540)
    if head[:2] == b"\x1f\x8b":  # a gzip stream: a .nii.gz (look inside)
        try:
            with open_input(path) as stream, gzip.GzipFile(fileobj=stream) as inner:
                head = inner.read(540)
        except (OSError, EOFError):
            return None
    if head[:7] == b"NRRD000":
        return "nrrd"
    if head[128:132] == b"DICM":
        return "dicom"
    for order in "<>":
        if len(head) >= 4 and struct.unpack(order + "i", head[:4])[0] in (348, 540):
            return "nifti"
    return None


# -- NIfTI ------------------------------------------------------------------------------


def _nifti(path: Path) -> tuple[NDArray[Any], Geometry]:
    with _nibabel_log(path), reading(path, "NIfTI"):
        return _nifti_values(path)


@contextmanager
def _nibabel_log(path: Path) -> Iterator[None]:
    """What nibabel logs while reading (header fixes) as one warning naming ``path`` when
    the read succeeds; nothing when it fails, as the error says what is wrong."""
    import nibabel  # noqa: F401  (its first import installs the handler replaced here)

    logger = logging.getLogger("nibabel.global")
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(one_line(record.getMessage()))

    # Filters too: the command line folds this logger's records into its warnings.
    handlers, filters, propagate = logger.handlers[:], logger.filters[:], logger.propagate
    logger.handlers, logger.filters, logger.propagate = [Collect()], [], False
    try:
        yield
    finally:
        logger.handlers, logger.filters, logger.propagate = handlers, filters, propagate
    if messages:
        warnings.warn(f"{path}: nibabel: " + "; ".join(dict.fromkeys(messages)), stacklevel=4)


def _nifti_values(path: Path) -> tuple[NDArray[Any], Geometry]:
    import nibabel

    with open_input(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == b"\x1f\x8b"
    image: Any = nibabel.load(os.fspath(path))
    dtype = np.dtype(image.header.get_data_dtype())
    if dtype.kind not in "iuf":
        raise ReadError(
            f"the image holds {dtype} values, not numbers statistics can use", path=path
        )
    declared = int(image.header.get_data_offset()) + math.prod(image.shape) * dtype.itemsize
    check_payload(declared, size, "the NIfTI header", compressed=compressed, path=path)
    shape = _three_dimensions(tuple(int(n) for n in image.shape), path)
    check_allocation(math.prod(shape) * 8, "the image values", path=path)
    data = np.asanyarray(image.dataobj).reshape(shape)  # nibabel's (i, j, k)
    values = data.T  # segio's (k, j, i), a view
    return values, Geometry.from_ras(image.affine, values.shape)


def _three_dimensions(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """``shape`` as three axes (i, j, k): trailing axes of 1 dropped, a 2D image one slice."""
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 3:
        raise ReadError(
            f"the image has {math.prod(shape[3:])} volumes (shape {shape}); statistics "
            "need one 3D image",
            path=path,
            hint="split the series and give one volume",
        )
    full = (*shape, 1, 1)[:3]
    return (full[0], full[1], full[2])


# -- NRRD -------------------------------------------------------------------------------


def _nrrd(path: Path) -> tuple[NDArray[Any], Geometry]:
    from segio.registry import default_registry, load

    spec = default_registry().reader_for(path)
    if spec.reader is None or spec.name not in ("nrrd", "seg-nrrd"):
        raise ReadError("no NRRD reader is installed", path=path)
    module = spec.reader.partition(":")[0]
    package = module.rpartition(".")[0]
    needs, install = spec.requires, spec.install
    read_header = load(f"{package}.nrrdfile:read_header", requires=needs, install=install)
    read_data = load(f"{package}.nrrddata:read_data", requires=needs, install=install)
    read_grid = load(f"{module}:read_grid", requires=needs, install=install)
    with reading(path, "NRRD"):
        header = read_header(path)
        geometry: Geometry = read_grid(path)
        if math.prod(header.sizes) != math.prod(geometry.shape):
            raise ReadError(
                f"the image has {len(header.sizes)} axes of sizes {header.sizes}; statistics "
                "need one scalar 3D image",
                path=path,
            )
        if np.dtype(header.dtype).kind not in "iuf":
            raise ReadError(f"the image holds {header.dtype} values", path=path)
        values = read_data(path, header)
        return values.reshape(geometry.shape), geometry


# -- DICOM ------------------------------------------------------------------------------


def _dicom(path: Path) -> tuple[NDArray[Any], Geometry]:
    from segio.dicom.series import read_image_series

    series = read_image_series(path)
    geometry = series.geometry
    check_allocation(math.prod(geometry.shape) * 8, "the image values", path=path)
    values: NDArray[Any] = np.full(geometry.shape, np.nan, dtype=np.float32)
    by_file: dict[Path, list[tuple[int, int | None]]] = {}
    for k, frame in enumerate(series.frames):
        if frame is not None and frame.file is not None:
            by_file.setdefault(frame.file, []).append((k, frame.frame_number))
    for file, slices in progress.track(by_file.items(), "reading DICOM images"):
        pixels, dataset = _pixels(file, geometry.shape[1:])
        for k, number in slices:
            index = 0 if number is None else number - 1
            if not 0 <= index < len(pixels):
                raise ReadError(f"frame {number} is missing from the pixel data", path=file)
            slope, intercept = _rescale(dataset, number, file)
            plane = pixels[index].astype(np.float64) * slope + intercept
            exact = float(slope).is_integer() and float(intercept).is_integer()
            if values.dtype == np.float32 and not (
                exact and float(np.abs(plane).max(initial=0.0)) < _FLOAT32_EXACT
            ):
                values = values.astype(np.float64)
            values[k] = plane
    return values, geometry


def _pixels(file: Path, plane: tuple[int, ...]) -> tuple[NDArray[Any], Any]:
    """The frames of one image file as ``(frames, rows, columns)``, and its dataset."""
    from segio.dicom.series import check_pixel_data, read_dataset

    dataset = read_dataset(file, convert=_USED)
    layout = check_pixel_data(dataset, file)
    if layout.samples != 1:
        raise ReadError(
            f"the image has {layout.samples} samples per pixel (colour); statistics need "
            "one value per voxel",
            path=file,
        )
    if (layout.rows, layout.columns) != plane:
        raise ReadError(
            f"the image is {layout.rows} x {layout.columns} pixels, the series grid "
            f"{plane[0]} x {plane[1]}",
            path=file,
        )
    with reading(file, "DICOM image"):
        pixels = np.asarray(dataset.pixel_array)
    return pixels.reshape(layout.frames, layout.rows, layout.columns), dataset


#: What :func:`_pixels` and :func:`_rescale` use of an image's dataset.
_USED = (
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "BitsAllocated",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
)


def _rescale(dataset: Any, number: int | None, file: Path) -> tuple[float, float]:
    """Rescale Slope and Intercept of a frame: its own functional group, the shared one,
    or the top-level attributes (1 and 0 when there are none)."""
    holders = []
    if number is not None:
        for name, index in (
            ("PerFrameFunctionalGroupsSequence", number - 1),
            ("SharedFunctionalGroupsSequence", 0),
        ):
            groups = dataset.get(name)
            if groups and 0 <= index < len(groups):
                transform = groups[index].get("PixelValueTransformationSequence")
                if transform:
                    holders.append(transform[0])
    holders.append(dataset)
    for holder in holders:
        if "RescaleSlope" in holder or "RescaleIntercept" in holder:
            try:
                slope = float(holder.get("RescaleSlope") or 1.0)
                intercept = float(holder.get("RescaleIntercept") or 0.0)
            except (TypeError, ValueError):
                slope = intercept = math.nan
            if not (math.isfinite(slope) and math.isfinite(intercept)):
                raise ReadError("the Rescale Slope or Intercept is not a number", path=file)
            return slope, intercept
    return 1.0, 0.0
