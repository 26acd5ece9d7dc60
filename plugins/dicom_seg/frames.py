"""The frames of a DICOM SEG: decode them all at once, then say where each one goes.

Why not ``ds.pixel_array`` everywhere: for uncompressed data (by far the most common SEG
encoding) numpy views the whole Pixel Data in one call, where pydicom's generic path
copies and converts. 1-bit BINARY frames are bit-packed *across* frame boundaries when
rows × columns is not a multiple of 8 (PS3.5 8.1.1; dcmqi's 23×38×3 fixture), so they are
one bit stream, never split frame by frame; and they stay packed: the set pixels of a
segment are found from the non-zero bytes only, so empty areas cost one byte per eight
pixels instead of a full boolean volume of every frame. Compressed transfer syntaxes go
through pydicom's decoders (pylibjpeg plugins for RLE, JPEG-LS, JPEG 2000), and Deflated
Image Frame Compression (DICOM 2025a, 1-bit SEG frames; pydicom 3.0 cannot decode it) is
inflated here: one raw-deflate fragment per frame, each frame padded to whole bytes, and
none inflated past its frame size (a decompression bomb stops there). The frame count and
size come from :func:`segio.dicom.series.check_pixel_data`, which has checked them against
the Pixel Data before any frame is decoded.

Placement turns each frame's position into a slice index of one grid (the SEG's own, or
the source series' with ``reference=``); tiles of slide-microscopy SEGs are put together
into the total pixel matrix with one fancy-indexing assignment and a reshape, not tile by
tile.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.dicom.series import (
    DEFLATED_IMAGE_FRAME,
    PixelLayout,
    encapsulated_frames,
    read_image_series,
)
from segio.errors import GeometryError, MissingDependencyError, ReadError
from segio.fileio.deflate import RAW, inflate
from segio.fileio.limits import check_grid
from segio.geometry import Geometry, slice_grid
from segio.progress import track

BIG_ENDIAN = "1.2.840.10008.1.2.2"
#: Transfer syntaxes of native little-endian Pixel Data (the dataset deflated or not).
NATIVE_LITTLE_ENDIAN = frozenset(
    {"", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99"}
)
_HINT = "the file is truncated or not a valid DICOM SEG"
IntArray = NDArray[np.intp]
Reference = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
#: How far (in voxels) a frame may lie off its slice of the grid (own or reference).
GRID_TOLERANCE = 0.05


class Frames:
    """The frames ``(count, rows, columns)``: an array, or native 1-bit data still packed."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        *,
        values: NDArray[Any] | None = None,
        packed: NDArray[np.uint8] | None = None,
    ) -> None:
        self.shape = shape
        self._values = values
        self._packed = packed

    def dense(self) -> NDArray[Any]:
        """All frames as one array: bool (1 bit), uint8 or uint16 (8 or 16 bits)."""
        if self._values is None:
            assert self._packed is not None
            count = self.shape[0] * self.shape[1] * self.shape[2]
            unpacked = np.unpackbits(self._packed, bitorder="little", count=count)
            self._values = unpacked.view(np.bool_).reshape(self.shape)
        return self._values

    def set_pixels(self, chosen: IntArray) -> IntArray:
        """Flat indices of the non-zero pixels in the stack of frames ``chosen``."""
        size = self.shape[1] * self.shape[2]
        runs = np.split(chosen, np.flatnonzero(np.diff(chosen) != 1) + 1)
        parts, offset = [], 0
        for run in runs:  # runs of consecutive frames; usually one per segment
            first, stop = int(run[0]), int(run[-1]) + 1
            if self._packed is None:
                found = np.flatnonzero(self.dense()[first:stop])
            else:
                found = _set_bits(self._packed, first * size, stop * size)
            parts.append(found + offset * size)
            offset += stop - first
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)


def _set_bits(packed: NDArray[np.uint8], start: int, stop: int) -> IntArray:
    """Positions (from ``start``) of the 1 bits in bits ``start:stop`` of little-endian data."""
    low = start // 8
    chunk = packed[low : (stop + 7) // 8]
    nonzero = np.flatnonzero(chunk)
    hits = np.flatnonzero(np.unpackbits(chunk[nonzero], bitorder="little"))
    found: IntArray = (nonzero[hits >> 3] + low) * 8 + (hits & 7) - start
    if start % 8 or stop % 8:  # frames that start or end inside a byte
        found = found[(found >= 0) & (found < stop - start)]
    return found


def decode_frames(ds: Any, path: Path, layout: PixelLayout) -> Frames:
    """All frames, decoded at once (1-bit native frames stay packed)."""
    if "PixelData" not in ds:
        raise ReadError("the SEG has no Pixel Data", path=path, hint=_HINT)
    bits = layout.bits
    if bits not in (1, 8, 16) or layout.samples != 1:
        raise ReadError(
            f"unsupported pixel format: {bits} bits allocated, {layout.samples} samples per pixel",
            path=path,
            hint="a SEG has one sample of 1, 8 or 16 bits",
        )
    shape = (layout.frames, layout.rows, layout.columns)
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax == DEFLATED_IMAGE_FRAME:
        return Frames(shape, values=_deflated_frames(ds, shape, bits, path))
    if syntax not in NATIVE_LITTLE_ENDIAN and syntax != BIG_ENDIAN:
        from pydicom.uid import UID

        if UID(syntax).is_encapsulated:
            return Frames(shape, values=_pydicom_frames(ds, shape, bits, UID(syntax), path))
    raw = ds.PixelData  # bytes (pydicom) or a buffer (fastparse): viewed, not copied
    if bits == 1:
        _check_length(raw, shape, bits, path)
        packed = np.frombuffer(raw, dtype=np.uint8, count=(math.prod(shape) + 7) // 8)
        return Frames(shape, packed=packed)
    return Frames(
        shape, values=unpack_native(raw, shape, bits, path, big_endian=syntax == BIG_ENDIAN)
    )


def _check_length(raw: bytes, shape: tuple[int, int, int], bits: int, path: Path) -> int:
    count = math.prod(shape)
    needed = (count + 7) // 8 if bits == 1 else count * (bits // 8)
    if len(raw) < needed:
        raise ReadError(
            f"Pixel Data holds {len(raw)} bytes, {shape[0]} frames of {shape[1]}x{shape[2]} "
            f"at {bits} bit(s) need {needed}",
            path=path,
            hint=_HINT,
        )
    return needed


def unpack_native(
    raw: bytes, shape: tuple[int, int, int], bits: int, path: Path, *, big_endian: bool = False
) -> NDArray[Any]:
    """Native (uncompressed) Pixel Data of ``shape`` frames; extra bytes are ignored."""
    needed = _check_length(raw, shape, bits, path)
    count = math.prod(shape)
    if bits == 1:
        packed = np.frombuffer(raw, dtype=np.uint8, count=needed)
        bits_out = np.unpackbits(packed, bitorder="little", count=count)
        return bits_out.view(np.bool_).reshape(shape)
    dtype = np.dtype(np.uint8) if bits == 8 else np.dtype(">u2" if big_endian else "<u2")
    values = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def _deflated_frames(ds: Any, shape: tuple[int, int, int], bits: int, path: Path) -> NDArray[Any]:
    frame_shape = (1, shape[1], shape[2])
    size = (shape[1] * shape[2] * bits + 7) // 8
    decoded = []
    fragments = encapsulated_frames(ds.PixelData, shape[0], path)
    for number, fragment in enumerate(track(fragments, "decoding SEG frames"), 1):
        # One inflate per frame (the codec's unit, not a voxel loop), never past the frame.
        raw = inflate(
            fragment, size + 1, wbits=RAW, exact=False, what=f"deflated frame {number}", path=path
        )
        decoded.append(unpack_native(raw, frame_shape, bits, path))
    return np.concatenate(decoded) if decoded else np.zeros(shape, dtype=np.uint8)


def _pydicom_frames(
    ds: Any, shape: tuple[int, int, int], bits: int, syntax: Any, path: Path
) -> NDArray[Any]:
    from pydicom.pixels.decoders.base import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise ReadError(f"no decoder exists for transfer syntax {syntax.name}", path=path) from exc
    if not decoder.is_available:
        raise MissingDependencyError(
            f"decoding {syntax.name} needs a plugin that is not installed "
            f"({', '.join(decoder.missing_dependencies)})",
            path=path,
            hint="pip install 'segio[dicom]'",
        )
    try:
        values = np.asarray(ds.pixel_array)
    except Exception as exc:  # codecs raise anything from ValueError to RuntimeError
        raise ReadError(f"cannot decode the {syntax.name} frames: {exc}", path=path) from exc
    if values.size != shape[0] * shape[1] * shape[2]:
        raise ReadError(
            f"decoded {values.size} pixels, expected {shape[0]} frames of {shape[1]}x{shape[2]}",
            path=path,
            hint=_HINT,
        )
    values = values.reshape(shape)
    if bits == 1:
        mask: NDArray[np.bool_] = values != 0
        return mask
    result: NDArray[Any] = values.astype(np.uint8 if bits == 8 else np.uint16, copy=False)
    return result


# -- placing the frames ------------------------------------------------------------------


@dataclass
class Placement:
    """Where the frames go: a grid, and per frame its segment (0 for LABELMAP) and slice."""

    geometry: Geometry
    segment: IntArray
    k: IntArray
    tiles: tuple[IntArray, IntArray] | None = None  # tile row, tile column (tiled SEGs)
    reference: Geometry | None = None


def functional(group: Any, shared: Any, sequence: str, keyword: str) -> Any:
    """A functional group attribute of one frame: per-frame first, then shared."""
    for source in (group, shared):
        if source is not None:
            items = source.get(sequence)
            if items and items[0].get(keyword) is not None:
                return items[0].get(keyword)
    return None


def tiled_placement(
    ds: Any,
    groups: list[Any],
    shared: Any,
    segment: IntArray,
    spacing: list[float],
    between: float,
    tiled_full: bool,
) -> Placement:
    """Tiles of a slide: each frame's tile row/column, and a grid over the total matrix."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    total = (int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns))
    origin = ds.TotalPixelMatrixOriginSequence[0]
    x0, y0 = (
        float(origin.XOffsetInSlideCoordinateSystem),
        float(origin.YOffsetInSlideCoordinateSystem),
    )
    z0 = origin.get("ZOffsetInSlideCoordinateSystem")
    count = len(groups)
    if tiled_full:
        across, down = math.ceil(total[1] / cols), math.ceil(total[0] / rows)
        focal = int(ds.get("TotalPixelMatrixFocalPlanes") or 1)
        channels = len(np.unique(segment))
        if count != channels * focal * across * down:
            raise ReadError(
                f"TILED_FULL: {count} frames, expected {channels} segment(s) x {focal} focal "
                f"plane(s) x {down}x{across} tiles"
            )
        index = np.arange(count) % (focal * across * down)
        tile = index % (across * down)
        z = float(z0 or 0.0) + (index // (across * down)) * between
        row0, col0 = (tile // across) * rows, (tile % across) * cols
    else:
        keys = (
            "RowPositionInTotalImagePixelMatrix",
            "ColumnPositionInTotalImagePixelMatrix",
            "ZOffsetInSlideCoordinateSystem",
        )
        table = [
            [functional(g, shared, "PlanePositionSlideSequence", key) for key in keys]
            for g in groups
        ]
        if any(row is None or col is None for row, col, _ in table):
            raise ReadError("a tile has no position in the total pixel matrix")
        row0 = np.asarray([row for row, _, _ in table], dtype=np.intp) - 1
        col0 = np.asarray([col for _, col, _ in table], dtype=np.intp) - 1
        z = np.asarray([float(v if v is not None else z0 or 0.0) for _, _, v in table])
    if np.any(row0 % rows) or np.any(col0 % cols) or row0.min() < 0 or col0.min() < 0:
        raise ReadError("tiles that are not on the tile grid are not supported")
    if np.any(row0 >= total[0]) or np.any(col0 >= total[1]):
        raise ReadError("a tile lies outside the total pixel matrix")
    points = np.column_stack([np.full(count, x0), np.full(count, y0), np.broadcast_to(z, count)])
    grid, k = slice_grid(points, ds.ImageOrientationSlide, spacing, total, default_spacing=between)
    return Placement(grid, segment, k, tiles=(row0 // rows, col0 // cols))


def refine_spacing(grid: Geometry, k: IntArray, between: float | None) -> tuple[Geometry, IntArray]:
    """Use Spacing Between Slices when the frames' smallest gap is a multiple of it.

    Sparse SEGs omit empty slices: frames 5 mm apart on a 2.5 mm series hold a gap slice.
    """
    if grid.shape[0] < 2 or not between or between <= 0:
        return grid, k
    ratio = float(grid.spacing[2]) / between
    what = f"a grid of {ratio * (grid.shape[0] - 1) + 1:.4g} slices {between:.4g} mm apart"
    if not ratio < 1e15:  # infinite, or too many slices for any memory: refused here
        check_grid((ratio * (grid.shape[0] - 1) + 1, *grid.shape[1:]), 1, what)
    factor = round(ratio)
    if factor < 2 or abs(ratio - factor) > 0.01:
        return grid, k
    matrix = grid.ijk_to_lps.copy()
    matrix[:3, 2] /= factor
    shape = ((grid.shape[0] - 1) * factor + 1, grid.shape[1], grid.shape[2])
    check_grid(shape, 1, what)
    return Geometry(matrix, shape), k * factor


def reference_placement(
    ds: Any,
    points: NDArray[np.float64],
    iop: NDArray[np.float64],
    spacing: list[float],
    shape_2d: tuple[int, int],
    segment: IntArray,
    reference: Reference,
) -> Placement:
    """Frames on the grid of the source series: each must lie on one of its slices."""
    series = read_image_series(reference)
    grid = series.geometry
    own_for, ref_for = ds.get("FrameOfReferenceUID"), series.frame_of_reference_uid
    hint = "read without --reference (reference= in Python) to use the SEG's own grid"
    if own_for and ref_for and str(own_for) != ref_for:
        raise GeometryError("the SEG and the reference have different Frames of Reference")
    axes = np.column_stack([iop[:3] * spacing[1], iop[3:] * spacing[0]])
    if shape_2d != grid.shape[1:] or not np.allclose(axes, grid.ijk_to_lps[:3, :2], atol=1e-3):
        raise GeometryError(
            f"the SEG frames ({shape_2d[0]}x{shape_2d[1]}) do not match the reference image "
            f"plane {grid!r}",
            hint=hint,
        )
    ijk = grid.points_to_ijk(points)
    k = np.round(ijk[:, 2]).astype(np.intp)
    off = np.abs(ijk - np.column_stack([np.zeros((len(k), 2)), k])).max(axis=1)
    bad = np.flatnonzero((off > GRID_TOLERANCE) | (k < 0) | (k >= grid.shape[0]))
    if bad.size:
        raise GeometryError(
            f"{bad.size} SEG frame(s) lie on no slice of the reference (first: frame "
            f"{int(bad[0]) + 1} at {points[bad[0]].round(3).tolist()})",
            hint=hint,
        )
    return Placement(grid, segment, k, reference=grid)


def assemble(
    frames: Frames, placement: Placement, seg_type: str, path: Path
) -> tuple[Frames, IntArray, IntArray]:
    """One full plane per (segment, slice): tiles put together, repeated frames merged."""
    depth = placement.geometry.shape[0]
    keys = placement.segment * depth + placement.k
    unique, inverse = np.unique(keys, return_inverse=True)
    if placement.tiles is None and unique.size == keys.size:
        return frames, placement.segment, placement.k
    if placement.tiles is None and seg_type == "LABELMAP":
        raise ReadError("two LABELMAP frames lie on the same plane", path=path)
    values = frames.dense()
    if placement.tiles is not None:
        rows, cols = values.shape[1:]
        total = placement.geometry.shape[1:]
        down, across = math.ceil(total[0] / rows), math.ceil(total[1] / cols)
        tiles = (unique.size, down, across, rows, cols)
        check_grid(tiles, values.dtype.itemsize, "the total pixel matrix", path=path)
        canvas = np.zeros(tiles, dtype=values.dtype)
        canvas[inverse, placement.tiles[0], placement.tiles[1]] = values
        planes = canvas.transpose(0, 1, 3, 2, 4).reshape(unique.size, down * rows, across * cols)
        planes = planes[:, : total[0], : total[1]]
    else:
        planes = np.zeros((unique.size, *values.shape[1:]), dtype=values.dtype)
        np.maximum.at(planes, inverse, values)  # union of repeated binary frames
    shape = (int(planes.shape[0]), int(planes.shape[1]), int(planes.shape[2]))
    return Frames(shape, values=planes), unique // depth, unique % depth
