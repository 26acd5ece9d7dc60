"""Write SliceOmatic ``.tag`` files: one 8-bit label per voxel, as SliceOmatic reads them.

A tag belongs to one DICOM image file (SliceOmatic's convention, also Slicer's importer).
With ``reference`` (the series the segmentation was drawn on) the writer produces one
``<image file name>.tag`` per image, in the folder given as output, with the image's exact
geometry and its ``chksum`` (sum of the stored pixel values mod 2³², which SliceOmatic
uses to recognise the image); a single-image series may be written to a ``.tag`` path
directly. Without it, one file holds every slice (``z`` = slice count) and the header
carries the geometry, in full precision where ``%.4f`` would round it.

What a tag cannot hold is refused, not dropped: overlapping segments (one label per
voxel), label values above 255 (``type:BYTE``), fractional layers. Names, colours and
terminology are not stored (the format has no place for them): the ``labels`` option
writes them to a segio-json label table beside, which the reader's ``labels=`` takes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ValidationError, WriteError
from segio.files import OutputFiles
from segio.geometry import Geometry
from segio.model import Segmentation

from .tagfile import format_header, image_chksum

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
_LINE_ENDS = {"lf": "\n", "crlf": "\r\n"}


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    reference: PathArg | None = None,
    line_end: str = "lf",
    labels: str | os.PathLike[str] | None = None,
) -> None:
    """Write ``segmentation`` as tag file(s); see the module docstring."""
    ending = _LINE_ENDS.get(str(line_end).strip().lower())
    if ending is None:
        raise ValidationError(f"line_end must be lf or crlf, got {line_end!r}", path=path)
    array = label_array(segmentation, path)
    if labels is not None:
        _label_table(segmentation, Path(labels), files)
    _write_tags(array, segmentation.require_geometry(), path, files, reference, ending)


def _label_table(segmentation: Segmentation, target: Path, files: OutputFiles) -> None:
    """The names, colours and codes the tag cannot hold, as a segio-json label table."""
    from segio.labeltables import LabelEntry, write_label_table

    entries = [
        LabelEntry(
            s.label_value, s.name, s.color, terminology=s.terminology, id=s.id,
            properties=dict(s.properties),
        )
        for s in segmentation.segments.values()
    ]  # fmt: skip
    write_label_table(files.stage(target), entries, format="segio-json")


def _write_tags(
    labels: NDArray[np.uint8],
    grid: Geometry,
    path: Path,
    files: OutputFiles,
    reference: PathArg | None,
    ending: str,
) -> None:
    if reference is None:
        files.stage(path).write_bytes(
            format_header(grid, labels.shape, line_end=ending) + labels.tobytes()
        )
        return
    from segio.dicomseries import read_image_series

    series = read_image_series(reference)
    labels = _on_grid(labels, grid, series.geometry)
    images = _images(series)
    single = len(images) == 1 and path.name.lower().endswith(".tag") and not path.is_dir()
    folder = path.parent if single else path
    created = False
    if not single and not folder.exists():
        folder.mkdir(parents=True)
        created = True
    try:
        for file, k in images:
            target = path if single else folder / f"{file.name}.tag"
            plane = series.geometry.cropped((k, 0, 0), (1, *series.geometry.shape[1:]))
            header = format_header(
                plane, (1, *labels.shape[1:]), chksum=image_chksum(file), line_end=ending
            )
            files.stage(target).write_bytes(header + labels[k : k + 1].tobytes())
    except BaseException:
        if created:
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
        raise


def label_array(segmentation: Segmentation, path: Path) -> NDArray[np.uint8]:
    """The one uint8 labelmap a tag holds; WriteError for what it cannot hold."""
    if any(layer.is_fractional for layer in segmentation.layers):
        raise WriteError(
            "a tag holds labels, not fractions", path=path, hint="threshold the segmentation first"
        )
    if len(segmentation.layers) > 1:
        segmentation = segmentation.pack_layers()
        if len(segmentation.layers) > 1:
            raise WriteError(
                "segments overlap; a tag holds one label per voxel",
                path=path,
                hint="write the overlapping segments to separate files (--segments)",
            )
    too_big = [s.name for s in segmentation.segments.values() if s.label_value > 255]
    if too_big:
        raise WriteError(
            f"label values above 255 ({', '.join(too_big[:5])}); a tag stores bytes",
            path=path,
            hint="renumber the labels 1..255",
        )
    grid = segmentation.require_geometry()
    if not segmentation.layers:
        return np.zeros(grid.shape, dtype=np.uint8)
    array = segmentation.layers[0].array
    lut = np.zeros(int(array.max(initial=0)) + 1, dtype=np.uint8)
    for segment in segmentation.segments.values():
        if segment.label_value < lut.size:
            lut[segment.label_value] = segment.label_value
    return np.ascontiguousarray(lut[array])


def _on_grid(labels: NDArray[np.uint8], source: Geometry, grid: Geometry) -> NDArray[np.uint8]:
    """The labels on the reference grid (nearest neighbour when the grids differ)."""
    if source.is_close(grid, atol=1e-4):
        return labels
    from segio.converters.resample import resample
    from segio.model import Layer, Segment

    warnings.warn(
        f"the segmentation grid {source!r} differs from the reference series grid "
        f"{grid!r}; resampled (nearest neighbour) onto the series",
        stacklevel=4,
    )
    values = [int(v) for v in np.unique(labels) if v]
    moved = resample(
        Segmentation(
            [Segment(f"v{v}", f"v{v}", label_value=v) for v in values], [Layer(labels, source)]
        ),
        grid,
    )
    return label_array(moved, Path())


def _images(series: Any) -> list[tuple[Path, int]]:
    """Each image file of the series with its slice k (by position, never by file order)."""
    import pydicom

    result = []
    for file in series.files:
        ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["ImagePositionPatient"])
        if "ImagePositionPatient" not in ds:
            continue
        k = float(series.geometry.points_to_ijk([float(v) for v in ds.ImagePositionPatient])[2])
        result.append((Path(file), round(k)))
    return sorted(result, key=lambda item: item[1])
