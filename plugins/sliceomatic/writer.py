"""Write SliceOmatic ``.tag`` files: one 8-bit label per voxel, as SliceOmatic reads them.

A tag belongs to one DICOM image file (SliceOmatic's convention, also Slicer's importer).
With ``reference`` (the series the segmentation was drawn on) the writer produces one
``<image file name>.tag`` per image, in the folder given as output, with the image's exact
geometry and its ``chksum`` (sum of the stored pixel values mod 2³², which SliceOmatic
uses to recognise the image); a single-image series may be written to a ``.tag`` path
directly; a multi-frame reference, or labels on a slice the series has no image for, are
refused before anything is created. Without it, one file holds every slice (``z`` = slice
count) and the header carries the geometry, in full precision where ``%.4f`` would round
it; the header's slice axis is ``dir_h × dir_v``, so a left-handed grid is written with its
slices reversed and a sheared one is refused.

What a tag cannot hold is refused, not dropped: overlapping segments (one label per
voxel), label values above 255 (``type:BYTE``), fractional layers. Names, colours and
terminology are not stored (the format has no place for them): the ``labels`` option
writes them to a segio-json label table beside, which the reader's ``labels=`` takes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from segio.errors import ValidationError, WriteError
from segio.fileio.outputs import OutputFiles, made_folder
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
    from segio.labels.tables import LabelEntry, write_label_table

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
        labels, grid = _right_handed(labels, grid, path)
        files.stage(path).write_bytes(
            format_header(grid, labels.shape, line_end=ending) + labels.tobytes()
        )
        return
    from segio.reference import cited_series

    from .reader import image_slices

    series = cited_series(reference, "a SliceOmatic tag", uids=False)
    if any(frame is not None and frame.frame_number is not None for frame in series.frames):
        raise WriteError(
            "the reference is a multi-frame image; a tag belongs to one single-frame image",
            path=path,
            hint="write without reference (one tag holding every slice)",
        )
    labels = _on_grid(labels, grid, series.geometry, path)
    images = image_slices(series)
    filled = {k for _, k in images}
    labelled = np.flatnonzero(labels.reshape(len(labels), -1).any(axis=1))
    missing = [int(k) for k in labelled if int(k) not in filled]
    if missing:
        raise WriteError(
            f"labelled voxels on slice(s) {missing[:5]} where the reference series has no image",
            path=path,
            hint="pass the complete series the segmentation was drawn on",
        )
    if not images:
        raise WriteError("the reference series has no image file to name a tag after", path=path)
    single = len(images) == 1 and path.name.lower().endswith(".tag") and not path.is_dir()
    folder = path.parent if single else path
    # every check is done: only an I/O error can follow
    with contextlib.nullcontext() if single else made_folder(folder, parents=True):
        for file, k in images:
            target = path if single else folder / f"{file.name}.tag"
            plane = series.geometry.cropped((k, 0, 0), (1, *series.geometry.shape[1:]))
            header = format_header(
                plane, (1, *labels.shape[1:]), chksum=image_chksum(file), line_end=ending
            )
            files.stage(target).write_bytes(header + labels[k : k + 1].tobytes())


def _right_handed(
    labels: NDArray[np.uint8], grid: Geometry, path: Path
) -> tuple[NDArray[np.uint8], Geometry]:
    """The labels on a grid whose k axis is ``dir_h × dir_v``, the only one a header holds.

    The reader rebuilds the slice axis as the normal of the image plane: a left-handed grid
    is written with its slices reversed (origin on the last one); a slanted one cannot be.
    """
    if labels.shape[0] < 2:
        return labels, grid
    direction = grid.direction
    normal = np.cross(direction[:, 0], direction[:, 1])
    normal /= np.linalg.norm(normal)
    along = float(direction[:, 2] @ normal)
    if abs(abs(along) - 1.0) > 1e-6:
        raise WriteError(
            "the slice axis is not perpendicular to the image plane (a sheared grid); a "
            "tag header can only hold slices stacked along the plane's normal",
            path=path,
            hint="resample the segmentation onto an unsheared grid, or pass --reference IMAGE "
            "(reference= in Python)",
        )
    if along > 0:
        return labels, grid
    last = labels.shape[0] - 1
    matrix = grid.ijk_to_lps.copy()
    matrix[:3, 3] = grid.ijk_to_points([0, 0, last])
    matrix[:3, 2] = -matrix[:3, 2]
    return np.ascontiguousarray(labels[::-1]), Geometry(matrix, grid.shape)


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


def _on_grid(
    labels: NDArray[np.uint8], source: Geometry, grid: Geometry, path: Path
) -> NDArray[np.uint8]:
    """The labels on the reference grid (segio.write has put them there; a direct call
    may not have): by index on a shared lattice, else nearest neighbour with a warning."""
    if source.is_close(grid, atol=1e-4):
        return labels
    from segio.converters.resample import onto_grid
    from segio.model import Layer, Segment

    values = [int(v) for v in np.unique(labels) if v]
    moved = onto_grid(
        Segmentation(
            [Segment(f"v{v}", f"v{v}", label_value=v) for v in values], [Layer(labels, source)]
        ),
        grid,
        what="the grid of the reference series",
    )
    return label_array(moved, path)
