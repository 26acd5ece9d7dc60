"""1-bit BINARY SEG frames straight into the labelmap layers, eight voxels at a time.

The plain path (:meth:`Frames.set_pixels` and :class:`~segio.labels.packing.FirstFitPacker`)
lists the flat index of every set voxel of a segment (8 bytes a voxel) and writes the
label through those indices. Here the unit is the packed byte: each non-zero byte of a
segment's frames (found with one comparison over its frames, which memory bandwidth
bounds) becomes eight voxels of a layer in one 64-bit word, ``label`` where its bits are
set, through a 256-entry table. The same words tell whether a layer already holds a voxel
under the segment (first fit, in Segment Sequence order, as the packer decides), so no
second pass and no voxel index list.

It needs frames that start on a byte (Rows x Columns a multiple of 8, as for every CT or
MR matrix) and at most :data:`MAX_LAYERS` layers; otherwise the caller uses the plain
path. The reader's tests compare both on every fixture.
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.fileio.limits import check_allocation

IntArray = NDArray[np.intp]
#: More layers than this (many overlapping segments) go to the plain path's packer, which
#: keeps per-voxel counts to avoid testing every layer.
MAX_LAYERS = 16


@lru_cache(maxsize=2)
def _bits(dtype: str) -> NDArray[Any]:
    """Byte value -> its eight voxels (0 or 1, first voxel = lowest bit), in ``dtype``."""
    values = np.arange(256, dtype=np.uint8)[:, None]
    return np.unpackbits(values, axis=1, bitorder="little").astype(dtype)


def set_bytes(
    packed: NDArray[np.uint8], chosen: IntArray, k: IntArray, frame_bytes: int
) -> tuple[IntArray, NDArray[np.uint8]]:
    """(index of the packed byte in a volume of ``frame_bytes`` per slice, its value) for
    every non-zero byte of frames ``chosen`` (in order), frame ``f`` going to slice ``k[f]``."""
    runs = np.split(chosen, np.flatnonzero(np.diff(chosen) != 1) + 1)
    where, values = [], []
    for run in runs:  # runs of consecutive frames: one per segment as writers order them
        first, stop = int(run[0]) * frame_bytes, (int(run[-1]) + 1) * frame_bytes
        chunk = packed[first:stop]
        found = np.flatnonzero(chunk.view(np.bool_))  # any non-zero byte is True
        slices = k[run]
        if np.all(np.diff(slices) == 1):  # consecutive slices: one offset for the run
            where.append(found + int(slices[0]) * frame_bytes)
        else:
            frame, byte = np.divmod(found, frame_bytes)
            where.append(slices[frame] * frame_bytes + byte)
        values.append(chunk[found])
    if len(where) == 1:
        return where[0], values[0]
    return np.concatenate(where), np.concatenate(values)


def binary_layers(
    packed: NDArray[np.uint8],
    frame_shape: tuple[int, int],
    segment: IntArray,
    k: IntArray,
    shape: tuple[int, int, int],
    numbers: list[int],
    dtype: Any,
) -> tuple[list[NDArray[Any]], dict[int, tuple[int, int]]] | None:
    """Layers of ``shape`` and where each segment went (layer, label = its number), or
    None when this path does not apply (then nothing was kept).

    ``segment``/``k``: each frame's segment number and slice, no (segment, slice) twice.
    """
    rows, cols = frame_shape
    if (rows * cols) % 8 or sys.byteorder != "little":
        return None
    frame_bytes = rows * cols // 8
    width = np.dtype(dtype).itemsize  # 64-bit words per packed byte
    ones = _bits(np.dtype(dtype).str)
    covered = _words((ones * np.iinfo(dtype).max), width)
    layers: list[NDArray[Any]] = []
    words: list[NDArray[np.uint64]] = []
    order = np.argsort(segment, kind="stable")
    lows = np.searchsorted(segment[order], numbers, side="left")
    highs = np.searchsorted(segment[order], numbers, side="right")
    where: dict[int, tuple[int, int]] = {}
    for number, low, high in zip(numbers, lows, highs, strict=True):
        where[number] = (0, number)
        if low == high:
            continue
        index, values = set_bytes(packed, order[low:high], k, frame_bytes)
        if not index.size:
            continue
        under, target, current = covered[values], len(layers), None
        for n, layer in enumerate(words):  # first fit: the first layer free under the bits
            current = layer[index]
            if not np.any(current & under):
                target = n
                break
        if target == len(layers):
            if len(layers) == MAX_LAYERS:
                return None
            check_allocation(
                # the packer's estimate (and so its refusal, word for word)
                math.prod(shape) * (sum(a.itemsize for a in layers) + 2 + 1),
                f"{len(layers) + 1} overlapping labelmap layers",
            )
            layers.append(np.zeros(shape, dtype=dtype))
            words.append(_words(layers[-1], width))
            current = None
        label = _words(ones * np.asarray(number, dtype=ones.dtype), width)[values]
        words[target][index] = label if current is None else current | label
        where[number] = (target, number)
    return layers or [np.zeros(shape, dtype=dtype)], where


def _words(array: NDArray[Any], width: int) -> NDArray[np.uint64]:
    """``array`` as 64-bit words, ``width`` to a row (eight voxels of a packed byte): a
    flat array for one byte a voxel, where numpy indexes fastest."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint64)
    return flat if width == 1 else flat.reshape(-1, width)
