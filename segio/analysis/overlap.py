"""How much two segmentations overlap: Dice and Jaccard coefficients.

Two masks on one grid overlap by voxel counts, so the coefficients need no geometry:
a voxel count on a shared grid is a volume in voxel units. :func:`dice` and
:func:`jaccard` compare one pair of masks; :func:`label_overlap` compares every label
of two label arrays in one pass (three histograms, no mask per label), which is what a
comparison of two segmentations with a hundred segments needs.

Both coefficients are 1.0 when both masks are empty: two segmentations that agree a
structure is absent agree perfectly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["LabelOverlap", "dice", "jaccard", "label_overlap"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]

#: Voxels handled per step of :func:`label_overlap`: bounds its temporary arrays.
_CHUNK_VOXELS = 1 << 22


def _counts(a_mask: ArrayLike, b_mask: ArrayLike) -> tuple[int, int, int]:
    """(|A|, |B|, |A∩B|) of two masks of one shape."""
    a = np.asarray(a_mask, dtype=bool)
    b = np.asarray(b_mask, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return int(np.count_nonzero(a)), int(np.count_nonzero(b)), int(np.count_nonzero(a & b))


def dice(a_mask: ArrayLike, b_mask: ArrayLike) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two masks; 1.0 when both are empty."""
    size_a, size_b, both = _counts(a_mask, b_mask)
    total = size_a + size_b
    return 1.0 if total == 0 else 2.0 * both / total


def jaccard(a_mask: ArrayLike, b_mask: ArrayLike) -> float:
    """Jaccard index |A∩B| / |A∪B| of two masks; 1.0 when both are empty."""
    size_a, size_b, both = _counts(a_mask, b_mask)
    union = size_a + size_b - both
    return 1.0 if union == 0 else both / union


@dataclass(frozen=True)
class LabelOverlap:
    """Voxel counts of each label in two label arrays, and the coefficients they give.

    Arrays are aligned with :attr:`labels`: ``voxels_a[n]`` voxels carry ``labels[n]`` in
    the first array, ``voxels_b[n]`` in the second, ``voxels_both[n]`` in both.
    """

    labels: IntArray
    voxels_a: IntArray
    voxels_b: IntArray
    voxels_both: IntArray

    @property
    def dice(self) -> FloatArray:
        """Dice coefficient per label (1.0 where the label is in neither array)."""
        total = self.voxels_a + self.voxels_b
        return _ratio(2 * self.voxels_both, total)

    @property
    def jaccard(self) -> FloatArray:
        """Jaccard index per label (1.0 where the label is in neither array)."""
        union = self.voxels_a + self.voxels_b - self.voxels_both
        return _ratio(self.voxels_both, union)

    def as_dict(self) -> dict[int, dict[str, float]]:
        """``{label: {"dice", "jaccard", "voxels_a", "voxels_b", "voxels_both"}}``, JSON-ready."""
        dices, jaccards = self.dice, self.jaccard
        return {
            int(label): {
                "dice": float(dices[n]),
                "jaccard": float(jaccards[n]),
                "voxels_a": int(self.voxels_a[n]),
                "voxels_b": int(self.voxels_b[n]),
                "voxels_both": int(self.voxels_both[n]),
            }
            for n, label in enumerate(self.labels)
        }


def _ratio(numerator: IntArray, denominator: IntArray) -> FloatArray:
    out = np.ones(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def label_overlap(
    a_labels: NDArray[np.integer[Any]],
    b_labels: NDArray[np.integer[Any]],
    labels: Sequence[int] | ArrayLike | None = None,
) -> LabelOverlap:
    """Overlap of every label of two label arrays of one shape, in one pass.

    ``labels`` are the values compared (default: every non-zero value in either array).
    Each voxel is looked up once per array, so the cost does not grow with the number of
    labels; the arrays are read in chunks, so the memory used beyond them is bounded.
    """
    a = np.asarray(a_labels)
    b = np.asarray(b_labels)
    if a.shape != b.shape:
        raise ValueError(f"label array shapes differ: {a.shape} vs {b.shape}")
    for array in (a, b):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"label arrays must hold integers, got {array.dtype}")
    if labels is None:
        wanted = np.union1d(_present(a), _present(b))
        wanted = wanted[wanted != 0]
    else:
        wanted = np.unique(np.asarray(labels, dtype=np.int64))
    n = len(wanted)
    size_a = np.zeros(n + 1, dtype=np.int64)
    size_b = np.zeros(n + 1, dtype=np.int64)
    both = np.zeros(n + 1, dtype=np.int64)
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    for start in range(0, flat_a.size, _CHUNK_VOXELS):
        stop = start + _CHUNK_VOXELS
        index_a = _compact(flat_a[start:stop], wanted)
        index_b = _compact(flat_b[start:stop], wanted)
        size_a += np.bincount(index_a, minlength=n + 1)
        size_b += np.bincount(index_b, minlength=n + 1)
        both += np.bincount(index_a[index_a == index_b], minlength=n + 1)
    return LabelOverlap(wanted.astype(np.int64), size_a[1:], size_b[1:], both[1:])


def _present(array: NDArray[np.integer[Any]]) -> IntArray:
    """The values in an integer array (a histogram for small types: no sort)."""
    if array.dtype.itemsize <= 2 and array.dtype.kind == "u":
        return np.flatnonzero(np.bincount(array.reshape(-1))).astype(np.int64)
    return np.unique(array).astype(np.int64)


def _compact(values: NDArray[np.integer[Any]], wanted: IntArray) -> NDArray[np.intp]:
    """Each value's position in ``wanted`` plus one, or 0 for a value not wanted."""
    if not len(wanted):
        return np.zeros(values.shape, dtype=np.intp)
    where = np.searchsorted(wanted, values)
    where = np.minimum(where, len(wanted) - 1)
    found = wanted[where] == values
    return np.where(found, where + 1, 0).astype(np.intp)
