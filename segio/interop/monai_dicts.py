"""MONAI-style dicts <-> :class:`~segio.model.Segmentation`, without MONAI or torch.

A MONAI dictionary pipeline holds ``{"label": array, "label_meta_dict": {...}}`` (or a
``MetaTensor`` whose ``.meta`` holds the same keys). The keys read and written here are
MONAI's documented ones (``monai.utils.enums.MetaKeys``): ``affine`` and
``original_affine`` map the voxel index ``(i, j, k)`` to millimetres in ``space``, which is
``"RAS"`` unless the meta says ``"LPS"`` (MONAI's readers convert to RAS by default);
``spatial_shape`` is ``(i, j, k)``; ``original_channel_dim`` is ``"no_channel"`` for a
labelmap loaded without one. Arrays are channel first: ``(C, i, j, k)``.

A multi-channel label is ambiguous (one mask per channel, or a one-hot encoding whose
channel 0 is the background), so :func:`from_monai` asks (``onehot_background``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from segio.errors import GeometryError, ValidationError
from segio.interop.numpy_arrays import PerSegment, Space, from_numpy, to_numpy
from segio.model import Color, Segmentation
from segio.terminology import Terminology


def _meta(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = data.get(f"{key}_meta_dict")
    if found is None:
        found = getattr(data.get(key), "meta", None)
    if not isinstance(found, Mapping) or "affine" not in found:
        raise GeometryError(
            f"{key!r}: no affine in {key + '_meta_dict'!r} nor in the tensor's .meta",
            hint="load it with MONAI's LoadImaged, or add {'affine': 4x4 RAS matrix}",
        )
    return found


def from_monai(
    data: Mapping[str, Any],
    *,
    key: str = "label",
    onehot_background: bool | None = None,
    names: PerSegment[str] | None = None,
    colors: PerSegment[Color] | None = None,
    terminologies: PerSegment[Terminology] | None = None,
) -> Segmentation:
    """A segmentation from ``data[key]`` and its meta: a labelmap ``(i, j, k)`` or
    ``(1, i, j, k)``, or ``(C, i, j, k)`` masks, where ``onehot_background`` says whether
    channel 0 is the background (dropped) or a segment. Tensors are read through numpy (on
    the CPU); a batch (5D, or a batched affine) is refused: pass one item."""
    if key not in data:
        raise ValidationError(
            f"no {key!r} in the dict (keys: {', '.join(map(str, data))})",
            hint="pass key= with the label's key",
        )
    meta = _meta(data, key)
    array = np.asarray(data[key])
    affine = np.asarray(meta["affine"], dtype=np.float64)
    if affine.shape != (4, 4) or array.ndim not in (3, 4):
        raise GeometryError(
            f"{key!r}: expected one (C, i, j, k) item with a 4x4 affine, got an array of "
            f"shape {array.shape} and an affine of shape {affine.shape}",
            hint="decollate the batch first (monai.data.decollate_batch)",
        )
    space = str(getattr(meta.get("space"), "value", meta.get("space") or "RAS")).upper()
    if space not in ("RAS", "LPS"):
        raise GeometryError(f"{key!r}: unknown space {space!r} in the meta", hint="RAS or LPS")
    in_space: Space = "LPS" if space == "LPS" else "RAS"
    if array.ndim == 3 or array.shape[0] == 1:
        labelmap = array if array.ndim == 3 else array[0]
        return from_numpy(
            labelmap,
            affine,
            axes="ijk",
            space=in_space,
            names=names,
            colors=colors,
            terminologies=terminologies,
        )
    if onehot_background is None:
        raise ValidationError(
            f"{key!r} has {array.shape[0]} channels: is channel 0 the background?",
            hint="pass onehot_background=True (one-hot, as AsDiscrete(to_onehot=...)) "
            "or False (one mask per channel)",
        )
    masks = array[1:] if onehot_background else array
    return from_numpy(
        masks,
        affine,
        axes="ijk",
        space=in_space,
        masks=True,
        names=names,
        colors=colors,
        terminologies=terminologies,
    )


def to_monai(seg: Segmentation, *, key: str = "label", masks: bool = False) -> dict[str, Any]:
    """``{key: array, key + "_meta_dict": meta}`` as MONAI's ``LoadImaged`` followed by
    ``EnsureChannelFirstd`` gives them: a ``(1, i, j, k)`` labelmap (or ``(n, i, j, k)``
    boolean masks, one per segment, when ``masks``) and a RAS affine. Wrap the array in a
    ``MetaTensor`` yourself if the pipeline wants one."""
    arrays = to_numpy(seg, axes="ijk", space="RAS", masks=masks)
    array = arrays.array if masks else arrays.array[np.newaxis]
    meta: dict[str, Any] = {
        "affine": arrays.affine,
        "original_affine": arrays.affine.copy(),
        "spatial_shape": np.array(array.shape[1:]),
        "space": "RAS",
        "original_channel_dim": 0 if masks else "no_channel",
    }
    source = seg.provenance.get("source_path")
    if source:
        meta["filename_or_obj"] = source
    return {key: array, f"{key}_meta_dict": meta}
