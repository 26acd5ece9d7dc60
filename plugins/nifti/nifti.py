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
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError, SegioError, WriteError
from segio.files import OutputFiles
from segio.geometry import Geometry
from segio.labelmaps import (
    DEFAULT_SIDECAR,
    label_entries,
    read_labelmap_segmentation,
    storage_dtype,
    write_sidecar,
)
from segio.labeltables import LabelEntry, parse_caret_xml
from segio.model import Segmentation

_SCANNER = 1  # NIFTI_XFORM_SCANNER_ANAT
_GZIP_LEVEL = 1  # nibabel's default: labelmaps compress well even at level 1


def read(path: Path, *, labels: str | Path | None = None) -> Segmentation:
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == b"\x1f\x8b"  # by content, not by name
            raw.seek(0)
            if compressed:
                with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                    image, data = _load(stream, path)
            else:
                image, data = _load(raw, path)
        arrays = _layers(data, path)
        geometry = _geometry(image, arrays[0].shape, path)
        entries = _header_labels(image, path)
    except SegioError:
        raise
    except Exception as exc:  # nibabel, gzip and numpy raise many kinds for a bad file
        raise ReadError(f"not a readable NIfTI file: {exc}", path=path) from exc
    return read_labelmap_segmentation(
        arrays, geometry, path, labels=labels, fallback_entries=entries
    )


def _load(stream: io.BufferedIOBase, path: Path) -> tuple[Any, NDArray[np.integer]]:
    """Header and labels from an open stream; a gzip stream is checked to its end.

    nibabel stops reading after the voxels, so it never sees a gzip file's CRC and length:
    a truncated or corrupted .nii.gz would pass. Reading the rest makes gzip verify them.
    """
    import nibabel

    head = stream.read(348)
    image_class = (
        nibabel.Nifti2Image if head[4:8] in (b"n+2\x00", b"ni2\x00") else nibabel.Nifti1Image
    )
    stream.seek(0)
    holder = nibabel.FileHolder(filename=str(path), fileobj=stream)
    image: Any = image_class.from_file_map({"image": holder, "header": holder})
    data = _labels(image, path)
    if isinstance(stream, gzip.GzipFile):
        while stream.read(1 << 20):
            pass
    return image, data


def _labels(image: Any, path: Path) -> NDArray[np.integer]:
    """The stored integers; scaling is applied only if it changes them (then must be whole)."""
    slope, inter = image.header.get_slope_inter()
    if slope in (None, 1.0) and inter in (None, 0.0):
        data = np.asarray(image.dataobj.get_unscaled())
    else:
        data = np.asarray(image.dataobj)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise ReadError(
                "the image has fractional values; a labelmap holds whole numbers",
                path=path,
                hint="is this an image or a probability map rather than a segmentation?",
            )
        data = data.astype(np.int64)
    if data.size and data.dtype.kind == "i" and data.min() < 0:
        raise ReadError(
            "the image has negative values, which cannot be segment labels",
            path=path,
            hint="is this an image rather than a segmentation?",
        )
    if data.dtype.kind == "i":
        data = data.astype(np.promote_types(np.uint8, np.min_scalar_type(int(data.max(initial=0)))))
    return data


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
    try:
        return Geometry.from_ras(image.affine, shape)
    except SegioError as exc:
        raise ReadError(exc.reason, path=path) from exc


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
    header.set_intent("label")
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
