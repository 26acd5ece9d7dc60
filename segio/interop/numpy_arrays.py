"""numpy arrays <-> :class:`~segio.model.Segmentation`: a labelmap or a stack of masks plus
an affine.

Why both keywords are required: a bare array does not say whether its first axis is the
slice axis (``"kji"``, SimpleITK's and segio's order) or the column axis (``"ijk"``,
nibabel's and MONAI's order), nor whether its affine maps to LPS (DICOM, ITK) or RAS
(NIfTI, Slicer, MONAI). Guessing either one silently mirrors or transposes the anatomy, so
the caller names both, and the same two words read the arrays back out.

The affine always maps the voxel index ``(i, j, k, 1)`` to millimetres in ``space``,
whatever the array's axis order: ``i`` is the axis the array's order calls ``i``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.colors import color_for_index
from segio.errors import GeometryError, ValidationError
from segio.geometry import LPS_TO_RAS, Geometry
from segio.model import Color, Layer, Segment, Segmentation, unique_id
from segio.representations import Representation
from segio.terminology import Terminology

Axes = Literal["kji", "ijk"]
Space = Literal["LPS", "RAS"]
T = TypeVar("T")
_SLAB = 1 << 22  # voxels counted at a time (32 MB of 64-bit integers)

#: Per-segment values: keyed by label value (labelmap) or channel (mask stack), or a
#: sequence in the order of the labels present in the array / of the channels.
PerSegment = Mapping[int, T] | Sequence[T]


class NumpySegmentation(NamedTuple):
    """What :func:`to_numpy` returns; its fields are :func:`from_numpy`'s arguments.

    ``names``, ``colors`` and ``terminologies`` are keyed by label value (labelmap) or by
    channel (masks), and include empty segments, so a round trip keeps them.
    """

    array: NDArray[np.generic]
    affine: NDArray[np.float64]
    names: dict[int, str]
    colors: dict[int, Color]
    terminologies: dict[int, Terminology]


def _check_words(axes: str, space: str) -> None:
    if axes not in ("kji", "ijk"):
        raise ValidationError(
            f"axes must be 'kji' (array[k, j, i]) or 'ijk' (array[i, j, k]), got {axes!r}",
            hint="SimpleITK and segio arrays are 'kji'; nibabel and MONAI arrays are 'ijk'",
        )
    if space not in ("LPS", "RAS"):
        raise ValidationError(
            f"space must be 'LPS' or 'RAS', got {space!r}",
            hint="DICOM and ITK affines are LPS; NIfTI, Slicer and MONAI affines are RAS",
        )


def _geometry(affine: ArrayLike, space: str, shape_kji: tuple[int, ...]) -> Geometry:
    matrix = np.asarray(affine, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise GeometryError(
            f"affine must be a 4x4 matrix, got shape {matrix.shape}",
            hint="pass the (i, j, k) -> millimetres matrix, e.g. nibabel's img.affine",
        )
    return Geometry(matrix if space == "LPS" else LPS_TO_RAS @ matrix, shape_kji)


def _labels(array: NDArray[np.generic], what: str) -> NDArray[np.integer]:
    """An integer labelmap; whole-valued floats (labels saved as float32) are accepted."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    whole = np.issubdtype(array.dtype, np.integer)
    if not whole and (
        not np.issubdtype(array.dtype, np.floating) or not np.all(np.mod(array, 1) == 0)
    ):
        raise ValidationError(
            f"{what}: labels must be whole numbers, got {array.dtype} values with fractions",
            hint="threshold or round the array first (e.g. (prob > 0.5) for a mask)",
        )
    low = array.min(initial=0)
    high = array.max(initial=0)
    if low < 0:
        raise ValidationError(
            f"{what}: label values must be >= 0 (0 is background), got {low}",
            hint="shift or remap the labels before building the segmentation",
        )
    if not whole or array.dtype.kind == "i":
        array = array.astype(np.min_scalar_type(int(high)))
    return np.asarray(array, dtype=array.dtype)


def _present(labelmap: NDArray[np.integer]) -> list[int]:
    """The non-zero labels in the array, in increasing order (a count per value, unless the
    values are too large for a table of counts)."""
    high = int(labelmap.max(initial=0))
    if high > 1 << 16:
        return [int(v) for v in np.unique(labelmap) if v]
    # bincount casts to 64-bit integers: by slabs, so a CT labelmap does not grow eightfold.
    counts = np.zeros(high + 1, np.int64)
    flat = labelmap.reshape(-1)
    for start in range(0, flat.size, _SLAB):
        counts += np.bincount(flat[start : start + _SLAB], minlength=high + 1)
    return [int(v) + 1 for v in np.flatnonzero(counts[1:])]


def _per(values: PerSegment[T] | None, keys: Sequence[int], what: str) -> dict[int, T]:
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return {int(k): v for k, v in values.items()}
    if isinstance(values, str) or len(values) != len(keys):
        raise ValidationError(
            f"{what}: {len(values)} values for {len(keys)} segments",
            hint="give one per label present (in increasing order) or a {label: value} dict",
        )
    return dict(zip(keys, values, strict=True))


def from_numpy(
    array: ArrayLike,
    affine: ArrayLike,
    *,
    axes: Axes,
    space: Space,
    masks: bool = False,
    names: PerSegment[str] | None = None,
    colors: PerSegment[Color] | None = None,
    terminologies: PerSegment[Terminology] | None = None,
) -> Segmentation:
    """A segmentation from a 3D labelmap, or from a stack of masks when ``masks`` is true.

    A labelmap's non-zero values are its segments (plus any label named in ``names`` but
    absent, kept as an empty segment). A mask stack is ``(n, ...)``, channel first, each
    channel one segment; overlapping masks go to separate layers. Unnamed segments are
    called ``Segment_<label>`` (Slicer's default) and get segio's default colours.
    """
    _check_words(axes, space)
    data = np.asarray(array)
    spatial = data.shape[1:] if masks else data.shape
    if len(spatial) != 3:
        expected = "(n, x, y, z) mask stack" if masks else "3D labelmap"
        raise GeometryError(
            f"expected a {expected}, got an array of shape {data.shape}",
            hint="pass masks=True for a channel-first stack of masks",
        )
    if axes == "ijk":
        data = np.moveaxis(data, (-3, -2, -1), (-1, -2, -3))
    geometry = _geometry(affine, space, data.shape[-3:])
    if masks:
        return _from_masks(data, geometry, names, colors, terminologies)
    labelmap = np.ascontiguousarray(_labels(data, "labelmap"))
    present = _present(labelmap)
    named = _per(names, present, "names")
    keys = sorted(set(present) | set(named))
    painted = _per(colors, present, "colors")
    coded = _per(terminologies, present, "terminologies")
    segments: list[Segment] = []
    for index, label in enumerate(keys):
        name = named.get(label, f"Segment_{label}")
        segments.append(
            Segment(
                id=unique_id(name, [s.id for s in segments]),
                name=name,
                color=painted.get(label, color_for_index(index)),
                terminology=coded.get(label),
                label_value=label,
            )
        )
    return Segmentation(segments, [Layer(labelmap, geometry)])


def _from_masks(
    stack: NDArray[np.generic],
    geometry: Geometry,
    names: PerSegment[str] | None,
    colors: PerSegment[Color] | None,
    terminologies: PerSegment[Terminology] | None,
) -> Segmentation:
    channels = list(range(stack.shape[0]))
    named = _per(names, channels, "names")
    painted = _per(colors, channels, "colors")
    coded = _per(terminologies, channels, "terminologies")
    seg = Segmentation()
    for channel in channels:
        values = np.ascontiguousarray(stack[channel])  # one channel copied at a time
        if values.dtype != np.bool_ and not np.all((values == 0) | (values == 1)):
            raise ValidationError(
                f"mask {channel}: values must be 0/1 or booleans",
                hint="threshold probabilities first, or pass a labelmap with masks=False",
            )
        seg.add_mask(
            values.astype(bool),
            named.get(channel, f"Segment_{channel + 1}"),
            color=painted.get(channel, color_for_index(channel)),
            terminology=coded.get(channel),
            geometry=geometry,
        )
    return seg


def _binary_layers(seg: Segmentation) -> Segmentation:
    """The segmentation as binary labelmaps: fractions thresholded at one half (Slicer's
    rule), surfaces and contours rasterised, through the converter graph."""
    if seg.source_representation is not Representation.BINARY_LABELMAP:
        seg = seg.representation(Representation.BINARY_LABELMAP)
    return seg


def _mask_stack(seg: Segmentation, ordered: list[Segment], axes: Axes) -> NDArray[np.bool_]:
    """One boolean channel per segment, written in place in the asked order: at most one
    transposed copy per layer, then one comparison per segment, and no stacking copy (the
    104-segment stack of a CT grid is gigabytes)."""
    geometry = seg.require_geometry()
    shape = geometry.shape if axes == "kji" else geometry.size_ijk
    data = np.empty((len(ordered), *shape), bool)
    ordered_layers: dict[int, NDArray[np.integer]] = {}
    for channel, segment in enumerate(ordered):
        layer = seg.layers[segment.layer]
        if segment.layer not in ordered_layers:
            ordered_layers[segment.layer] = (
                layer.array if axes == "kji" else np.ascontiguousarray(layer.array.T)
            )
        np.equal(ordered_layers[segment.layer], segment.label_value, out=data[channel])
    return data


def to_numpy(
    seg: Segmentation, *, axes: Axes, space: Space, masks: bool = False
) -> NumpySegmentation:
    """The voxels as one labelmap (or a ``(n, ...)`` boolean stack when ``masks``), the
    ``(i, j, k) -> space`` affine, and the segments' names, colours and codes.

    A labelmap needs segments that do not overlap: they are packed into one layer first,
    and refused with the reason when they still overlap (ask for ``masks=True``).
    """
    _check_words(axes, space)
    seg = _binary_layers(seg)
    geometry = seg.require_geometry()
    ordered = list(seg.segments.values())
    if masks:
        data: NDArray[np.generic] = _mask_stack(seg, ordered, axes)
        keys = list(range(len(ordered)))
    else:
        if len(seg.layers) > 1:
            seg = seg.pack_layers()
            ordered = list(seg.segments.values())
        if len(seg.layers) > 1:
            raise ValidationError(
                "segments overlap, so one labelmap cannot hold them",
                hint="ask for masks=True to get one mask per segment",
            )
        array = seg.layers[0].array
        data = array.copy() if axes == "kji" else np.ascontiguousarray(array.T)
        keys = [s.label_value for s in ordered]
    affine = geometry.ijk_to_lps if space == "LPS" else geometry.ijk_to_ras
    return NumpySegmentation(
        array=data,
        affine=np.array(affine, dtype=np.float64),
        names={k: s.name for k, s in zip(keys, ordered, strict=True)},
        colors={k: s.color for k, s in zip(keys, ordered, strict=True)},
        terminologies={
            k: s.terminology
            for k, s in zip(keys, ordered, strict=True)
            if s.terminology is not None
        },
    )
