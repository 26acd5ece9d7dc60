"""NIfTI labelmaps through nibabel, with names and colours from a label-table sidecar.

Geometry: NIfTI stores an IJK -> RAS affine; nibabel picks the sform, else the qform, as
the NIfTI standard says. segio converts to LPS at once. We write both sform and qform with
the "scanner" code (what ITK and 3D Slicer write), the qform only when the grid has no
shear (a quaternion cannot hold one), and the label intent.

Overlapping segments need several layers: written as one 4D image (4th axis = layer, the
default) or as one 3D file per layer (``layers="split"``), each with its own sidecar.
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
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError, SegioError, WriteError, one_line, reading
from segio.fileio import fastinflate
from segio.fileio.inputs import open_input
from segio.fileio.limits import check_allocation, check_payload
from segio.fileio.outputs import OutputFiles
from segio.geometry import Geometry
from segio.labels.segments import (
    DEFAULT_SIDECAR,
    integer_labels,
    label_entries,
    read_labelmap_segmentation,
    storage_dtype,
    write_sidecar,
)
from segio.labels.tables import LabelEntry
from segio.labels.tables.caret_xml import parse_caret_xml
from segio.model import Segmentation

_SCANNER = 1  # NIFTI_XFORM_SCANNER_ANAT
#: ``intent_name`` of a 4D image segio wrote: its 4th axis holds layers (of overlapping
#: segments). NIfTI's 4th axis is time; an image without the mark is read as layers too,
#: with a warning, unless its label table places labels in layers.
LAYER_MARKER = "segio layers"
_GZIP_LEVEL = 1  # nibabel's default: labelmaps compress well even at level 1
_HEAD = 540  # a NIfTI-2 header; a NIfTI-1 header is 348 bytes (+ 4 of extension flag)
#: Bytes a .nii.gz may hold after its voxels (padding) before it is taken for a bomb.
_TRAILING = 1 << 20
#: NIfTI datatype codes that hold no labels: complex (32, 1792, 2048) and RGB(A) (128, 2304).
_COMPLEX, _RGB = {32, 1792, 2048}, {128, 2304}


@dataclass(frozen=True)
class _Layout:
    """What a NIfTI header says about its data, parsed from its bytes before nibabel runs."""

    version: int
    shape: tuple[int, ...]
    datatype: int
    itemsize: int
    offset: int
    slope: float
    inter: float

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.itemsize


def read(path: Path, *, labels: str | Path | None = None) -> Segmentation:
    """Read a .nii or .nii.gz labelmap; the header is checked against the file first."""
    # nibabel, gzip and numpy raise many kinds of exception for a bad file.
    with _nibabel_messages(path), reading(path, "NIfTI"):
        image, data = _load(path)
        arrays = _layers(data, path)
        geometry = _geometry(image, arrays[0].shape, path)
        entries = _header_labels(image, path)
        marked = _intent_name(image) == LAYER_MARKER
    assumed = (
        None
        if marked
        else f"{path}: the image is 4D ({len(arrays)} volumes) without segio's layer marker; its "
        "fourth axis was taken as layers of overlapping segments (if it is time or channels, "
        "split it into 3D files and read those)"
    )
    return read_labelmap_segmentation(
        arrays, geometry, path, labels=labels, fallback_entries=entries, assumed_layers=assumed
    )


def _intent_name(image: Any) -> str:
    name = image.header["intent_name"].item()
    return str(name.decode("latin-1") if isinstance(name, bytes) else name).rstrip("\0 ")


@contextmanager
def _nibabel_messages(path: Path) -> Iterator[None]:
    """Fold what nibabel logs and warns into one warning naming the user's file.

    nibabel reports header fixes (``pixdim[1,2,3] should be non-zero; setting 0 dims to
    1``) on its ``nibabel.global`` logger, which prints to stderr by itself: those lines
    would reach the user unattributed and unformatted.
    """
    import nibabel  # noqa: F401  (its first import adds the stderr handler replaced here)

    logger = logging.getLogger("nibabel.global")
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(one_line(record.getMessage()))

    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [Collect()], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        logger.handlers, logger.propagate = handlers, propagate
    for caught_warning in caught:  # nibabel's are folded; segio's own pass through as they are
        if f"{os.sep}nibabel{os.sep}" in caught_warning.filename:
            records.append(one_line(caught_warning.message))
        else:
            warnings.warn_explicit(
                caught_warning.message,
                caught_warning.category,
                caught_warning.filename,
                caught_warning.lineno,
            )
    if records:
        unique = list(dict.fromkeys(records))
        shown = "; ".join(unique[:5]) + ("; ..." if len(unique) > 5 else "")
        warnings.warn(f"{path}: nibabel: {shown}", stacklevel=3)


def _load(path: Path) -> tuple[Any, NDArray[np.integer]]:
    """Header and labels, read only after the header's claims are checked against the file.

    nibabel would allocate whatever the header declares (a 360-byte file can declare
    3.6 GB) and inflate a .nii.gz as far as it goes; here the declared size is compared with
    what the file (compressed: at most 1032 times its size) can hold and with
    ``SEGIO_MAX_MEMORY`` first, and a .nii.gz is inflated no further than its header,
    voxels and a little padding: reading to its end also makes gzip verify its CRC, which
    nibabel, stopping after the voxels, never does.

    A .nii.gz is inflated by the fastest engine installed (:mod:`segio.fileio.fastinflate`)
    as a fast path only: when anything goes wrong with it, the standard library's gzip
    reads the file again and its result or error counts.
    """
    return fastinflate.zlib_decides(lambda engine: _load_with(path, fastinflate.gzip_file(engine)))


def _load_with(path: Path, gzip_file: type[gzip.GzipFile]) -> tuple[Any, NDArray[np.integer]]:
    import nibabel

    with open_input(path) as raw:
        size = os.fstat(raw.fileno()).st_size
        compressed = raw.read(2) == b"\x1f\x8b"  # by content, not by name
        raw.seek(0)
        stream: Any = gzip_file(fileobj=raw, mode="rb") if compressed else raw
        try:
            layout = _layout(stream.read(_HEAD), path)
            declared = layout.offset + layout.nbytes
            check_payload(declared, size, "the NIfTI header", compressed=compressed, path=path)
            _check_scaling(layout, path)
            stream.seek(0)
            image_class = nibabel.Nifti2Image if layout.version == 2 else nibabel.Nifti1Image
            holder = nibabel.FileHolder(filename=str(path), fileobj=stream)
            image: Any = image_class.from_file_map({"image": holder, "header": holder})
            unscaled = np.asarray(image.dataobj.get_unscaled())
            if compressed:
                _drain(stream, path)
        finally:
            if compressed:
                stream.close()
    return image, _labels(unscaled, layout, path)


def _layout(head: bytes, path: Path) -> _Layout:
    """Parse the fields that size the data from a NIfTI-1 or NIfTI-2 header's bytes."""
    for order in "<>":
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348:
            version, magic = 1, head[344:348]
            dims = struct.unpack(order + "8h", head[40:56])
            datatype = struct.unpack(order + "h", head[70:72])[0]
            offset, slope, inter = struct.unpack(order + "3f", head[108:120])
            break
        if len(head) >= _HEAD and struct.unpack(order + "i", head[:4])[0] == _HEAD:
            version, magic = 2, head[4:8]
            datatype = struct.unpack(order + "h", head[12:14])[0]
            dims = struct.unpack(order + "8q", head[16:80])
            (offset,) = struct.unpack(order + "q", head[168:176])
            slope, inter = struct.unpack(order + "2d", head[176:192])
            break
    else:
        raise ReadError("not a NIfTI file (no NIfTI-1 or NIfTI-2 header)", path=path)
    if magic in (b"ni1\0", b"ni2\0"):
        raise ReadError(
            "this is the header of a NIfTI pair (.hdr + .img), which segio does not read",
            path=path,
            hint="convert it to a single .nii file",
        )
    if not 1 <= dims[0] <= 7:
        raise ReadError(f"the header gives {dims[0]} dimensions; NIfTI allows 1 to 7", path=path)
    shape = tuple(int(n) for n in dims[1 : dims[0] + 1])
    if min(shape) < 1:
        raise ReadError(f"the image size {shape} is not positive", path=path)
    itemsize = _itemsize(datatype, path)
    if not (math.isfinite(offset) and 0 <= offset < 1 << 62):
        raise ReadError(f"the voxel offset {offset} is not usable", path=path)
    return _Layout(version, shape, datatype, itemsize, int(offset), slope, inter)


def _itemsize(datatype: int, path: Path) -> int:
    from nibabel.nifti1 import data_type_codes

    if datatype in _COMPLEX or datatype in _RGB:
        kind = "complex" if datatype in _COMPLEX else "RGB colour"
        raise ReadError(
            f"the image has {kind} values (NIfTI datatype {datatype}); a labelmap holds whole "
            "numbers",
            path=path,
            hint="is this an image rather than a segmentation?",
        )
    dtypes: Any = data_type_codes.dtype
    try:
        return int(dtypes[datatype].itemsize)
    except KeyError:
        raise ReadError(f"unknown NIfTI datatype {datatype}", path=path) from None


def _drain(stream: IO[bytes], path: Path) -> None:
    """Inflate what follows the voxels (so gzip checks its CRC), but at most _TRAILING."""
    left = _TRAILING
    while chunk := stream.read(min(1 << 20, left + 1)):
        left -= len(chunk)
        if left < 0:
            raise ReadError(
                f"the gzip stream holds more than {_TRAILING} bytes after the voxels its "
                "header declares",
                path=path,
                hint="the header is wrong, or the file is crafted as a decompression bomb",
            )


def _labels(data: NDArray[Any], layout: _Layout, path: Path) -> NDArray[np.integer]:
    """The labels: stored values scaled by ``scl_slope``/``scl_inter`` as the header says.

    NIfTI: a slope of 0 means no scaling (NaN too, as nibabel reads it); otherwise the
    value is ``stored * slope + inter``, which must be a whole number >= 0 to be a label.
    Whole slopes and intercepts on integers are applied in integers (exactly); others in
    float64, then checked whole by :func:`integer_labels`.
    """
    slope, inter = layout.slope, layout.inter
    if not _scales(layout) or (slope == 1 and inter == 0):
        labels = integer_labels(data, path)
    elif data.dtype.kind in "iu" and slope.is_integer() and inter.is_integer() and data.size:
        labels = _scaled_integers(data, int(slope), int(inter), path)
    else:
        check_allocation(data.size * 8, "the scaled voxel values", path=path)
        labels = integer_labels(data.astype(np.float64) * slope + inter, path)
    if labels.dtype.kind == "i" or not labels.dtype.isnative:
        top = int(labels.max(initial=0))
        labels = labels.astype(np.promote_types(np.uint8, np.min_scalar_type(top)))
    return labels


def _scales(layout: _Layout) -> bool:
    """Whether the header scales its values: a slope of 0 (or NaN) means it does not."""
    return not (layout.slope == 0 or math.isnan(layout.slope))


def _check_scaling(layout: _Layout, path: Path) -> None:
    if _scales(layout) and not (math.isfinite(layout.slope) and math.isfinite(layout.inter)):
        raise ReadError(
            f"scl_slope {layout.slope} and scl_inter {layout.inter} do not give finite values",
            path=path,
            hint="the header is corrupt",
        )


def _scaled_integers(
    data: NDArray[np.integer], slope: int, inter: int, path: Path
) -> NDArray[np.integer]:
    """``data * slope + inter`` exactly, in the smallest unsigned type that holds it."""
    ends = [int(data.min()) * slope + inter, int(data.max()) * slope + inter]
    low, high = min(ends), max(ends)
    if low < 0:
        raise ReadError(
            f"scl_slope {slope} and scl_inter {inter} make negative values, which cannot be "
            "segment labels",
            path=path,
        )
    if high >= 1 << 63:
        raise ReadError(f"scaled label values reach {high}, more than 64 bits", path=path)
    check_allocation(data.size * 8, "the scaled voxel values", path=path)
    scaled = data.astype(np.int64) * slope + inter
    return scaled.astype(np.promote_types(np.uint8, np.min_scalar_type(high)))


def _layers(data: NDArray[np.integer], path: Path) -> list[NDArray[np.integer]]:
    """nibabel's ``[i, j, k(, layer)]`` array as ``[k, j, i]`` views, one per layer."""
    while data.ndim > 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim == 3:
        return [data.T]
    if data.ndim == 4:
        return [data[..., n].T for n in range(data.shape[3])]
    raise ReadError(
        f"a labelmap has 2 to 4 dimensions, this image has shape {data.shape}", path=path
    )


def _geometry(image: Any, shape: tuple[int, ...], path: Path) -> Geometry:
    header = image.header
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    if sform_code and qform_code and not np.allclose(sform, qform, atol=1e-3):
        warnings.warn(
            f"{path}: sform and qform disagree; using the sform (the NIfTI rule, as nibabel)",
            stacklevel=3,
        )
    with reading(path, "NIfTI", catch=()):
        return Geometry.from_ras(image.affine, shape)


def _header_labels(image: Any, path: Path) -> list[LabelEntry]:
    """A label table in a header extension (TotalSegmentator's Caret XML), if any."""
    for extension in image.header.extensions:
        content = extension.get_content()
        if isinstance(content, bytes) and b"<LabelTable" in content:
            try:
                return parse_caret_xml(content)
            except SegioError as exc:
                warnings.warn(f"{path}: label table extension ignored: {exc.reason}", stacklevel=4)
    return []


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    sidecar: str = DEFAULT_SIDECAR,
    layers: str = "4d",
) -> None:
    geometry = segmentation.require_geometry()
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"
    dtype = storage_dtype(segmentation)
    arrays = [layer.array.astype(dtype, copy=False) for layer in segmentation.layers]
    if layers == "4d" or len(arrays) == 1:
        data = arrays[0].T if len(arrays) == 1 else np.stack(arrays, axis=0).T
        write_sidecar(segmentation, path, suffix, files, sidecar)
        _write_image(files.stage(path), data, geometry, compressed=suffix == ".nii.gz")
    elif layers == "split":
        entries = label_entries(segmentation)
        stem = path.name[: -len(suffix)]
        for index, array in enumerate(arrays):
            layer_path = path.with_name(f"{stem}_layer{index}{suffix}")
            own = [_in_layer_zero(e) for e in entries if e.layer == index]
            write_sidecar(segmentation, layer_path, suffix, files, sidecar, entries=own)
            _write_image(files.stage(layer_path), array.T, geometry, compressed=suffix == ".nii.gz")
    else:
        raise WriteError(f"layers must be '4d' or 'split', got {layers!r}", path=path)


def _in_layer_zero(entry: LabelEntry) -> LabelEntry:
    return LabelEntry(
        value=entry.value,
        name=entry.name,
        color=entry.color,
        opacity=entry.opacity,
        terminology=entry.terminology,
        layer=0,
        id=entry.id,
        properties=dict(entry.properties),
    )


def _write_image(
    target: Path, data: NDArray[np.integer], geometry: Geometry, *, compressed: bool
) -> None:
    import nibabel

    affine = geometry.ijk_to_ras
    image = nibabel.Nifti1Image(data, affine)
    header = image.header
    header.set_sform(affine, code=_SCANNER)
    if geometry.is_orthogonal:
        header.set_qform(affine, code=_SCANNER)
    else:
        header.set_qform(None, code=0)
    header.set_xyzt_units("mm")
    header.set_intent("label", name=LAYER_MARKER if data.ndim == 4 else "")
    header.set_data_dtype(data.dtype)
    with target.open("wb") as raw:
        stream: Any = (
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0)
            if compressed
            else raw
        )
        try:
            image.to_file_map({"image": nibabel.FileHolder(fileobj=stream)})
        finally:
            if compressed:
                stream.close()
