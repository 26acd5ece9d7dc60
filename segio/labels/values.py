"""Label-array helpers with memory bounded by the image, whatever the label values.

Counting, histogramming and renumbering label values run a slab of about a million voxels
at a time, and a value above :data:`DENSE_LABEL_LIMIT` is mapped to a compact code before
anything is sized by it: a labelmap from a file may hold 4294967295 in one voxel, and that
must cost no more than a label 1. The model's statistics, the readers that find which
labels a file uses and the resampler all count through here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import NDArray

from segio.fileio.limits import check_allocation

#: Highest label value counted with a dense histogram (8 MiB of counts); above it the
#: present values are mapped to compact codes first, so a single voxel of 4294967295 never
#: makes anything allocate an array sized by the value.
DENSE_LABEL_LIMIT = 1 << 20
_SLAB = 1 << 20  # voxels converted at a time: temporaries stay a few MB


def voxel_slabs(labels: NDArray[np.integer]) -> Iterator[NDArray[np.integer]]:
    """The voxels of ``labels`` as flat chunks of about a million values (views if possible).

    Whole-array numpy operations that make temporaries (``bincount`` converting to intp,
    comparisons, ``isfinite``) run on these instead, so their memory stays a few MB.
    """
    flat = labels.reshape(labels.shape[0], -1) if labels.ndim else labels.reshape(1, 1)
    step = max(1, _SLAB // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], step):
        yield flat[start : start + step].ravel()


def label_histogram(labels: NDArray[np.integer], top: int) -> NDArray[np.int64]:
    """Voxel count of every value 0..top (values outside are ignored), in slabs.

    ``np.bincount`` converts its input to intp; doing it a slab at a time keeps that copy
    to a few MB instead of eight times the labelmap. The result has ``top + 1`` entries:
    callers with label values from a file use :func:`label_counts`, which never sizes an
    array by a value.
    """
    check_allocation((top + 3) * 8, f"a histogram of labels 0..{top}")
    # Bin 0 collects negative values, bin top + 2 everything above top; both are dropped.
    histogram = np.zeros(top + 3, dtype=np.int64)
    for chunk in voxel_slabs(labels):
        if chunk.dtype.kind == "i" or int(chunk.max(initial=0)) > top:
            chunk = np.clip(chunk, -1, top + 1).astype(np.intp) + 1
            histogram += np.bincount(chunk, minlength=top + 3)
        else:
            histogram[1 : top + 3] += np.bincount(chunk, minlength=top + 2)
    return histogram[1 : top + 2]


def _codes(chunk: NDArray[np.integer], table: NDArray[np.integer]) -> NDArray[np.intp]:
    """1 + the index in ``table`` (sorted) of each voxel's value; 0 where it is not listed."""
    at = np.searchsorted(table, chunk)
    listed = table[np.minimum(at, len(table) - 1)] == chunk
    return np.where(listed, at + 1, 0)


def _value_table(
    labels: NDArray[np.integer], values: Sequence[int]
) -> tuple[NDArray[np.integer], dict[int, int]]:
    """The values that ``labels``' type can hold, sorted, and each one's code (1-based)."""
    info = np.iinfo(labels.dtype)
    kept = sorted({int(v) for v in values if info.min <= int(v) <= info.max})
    return np.array(kept, dtype=labels.dtype), {v: n + 1 for n, v in enumerate(kept)}


def label_counts(labels: NDArray[np.integer], values: Sequence[int]) -> NDArray[np.int64]:
    """Voxel count of each of ``values``, in their order, with memory bounded by the image.

    Small values use :func:`label_histogram`; when the largest is above
    :data:`DENSE_LABEL_LIMIT` the voxels are first mapped to the index of their value
    among ``values`` (a sorted search), so a label such as 4294967295 costs no more than
    a label 1.
    """
    wanted = [int(v) for v in values]
    top = max(wanted, default=0)
    if top <= DENSE_LABEL_LIMIT:
        histogram = label_histogram(labels, max(top, 0))
        return np.array([histogram[v] if v >= 0 else 0 for v in wanted], dtype=np.int64)
    table, code = _value_table(labels, wanted)
    counts = np.zeros(len(table) + 1, dtype=np.int64)
    if len(table):
        for chunk in voxel_slabs(labels):
            counts += np.bincount(_codes(chunk, table), minlength=len(table) + 1)
    return np.array([counts[code[v]] if v in code else 0 for v in wanted], dtype=np.int64)


def compact_labels(
    labels: NDArray[np.integer], values: list[int]
) -> tuple[NDArray[np.integer], list[int]]:
    """A labelmap that ``scipy.ndimage`` can index by label, and each value's new label.

    Small values are used as they are (negative voxels cleared); a value above
    :data:`DENSE_LABEL_LIMIT` would make ``find_objects`` allocate a list of that length,
    so the voxels are then renumbered 1..n in the order of the sorted values.
    """
    if max(values) <= DENSE_LABEL_LIMIT:
        if labels.dtype.kind == "i" and labels.size and labels.min() < 0:
            labels = np.where(labels < 0, 0, labels)
        return labels, values
    table, code = _value_table(labels, values)
    compact = np.empty(labels.shape, dtype=np.min_scalar_type(max(len(table), 1)))
    flat = compact.reshape(-1)
    start = 0
    for chunk in voxel_slabs(labels):
        flat[start : start + chunk.size] = _codes(chunk, table) if len(table) else 0
        start += chunk.size
    # A value the type cannot hold has no voxels: any code above the table finds nothing.
    return compact, [code.get(v, len(table) + 1) for v in values]
