"""Edits of which segments there are and how they are called: select, drop, rename,
recolour, terminology, split. They work on every source representation (labelmaps,
fractional labelmaps, contours, surfaces): none of them needs voxels.

Keys follow :mod:`segio.operations.keys`. Point annotations are not segments: every
operation keeps them (``segio.io.select_segments`` once dropped them).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

from segio.errors import ValidationError
from segio.model import Layer, Segment, Segmentation
from segio.operations.keys import parse_color, resolve, resolve_keys
from segio.operations.layers import copied_segment, rebuilt, remap, smallest_type, with_segments

__all__ = ["drop", "iter_split", "recolor", "rename", "select", "set_terminology", "split"]

ColorLike = str | Sequence[float]


def select(segmentation: Segmentation, keys: Iterable[str] | str) -> Segmentation:
    """A new segmentation with only the segments ``keys`` name, in that order.

    Each item of ``keys`` is a key list (a key, or comma-separated keys when the whole
    text names no segment). The voxels of the others are cleared, so no labelmap writer
    can leak them; a layer left without segments is removed. Points are kept.
    """
    ids = resolve_keys(segmentation, keys)
    if not ids:
        raise ValidationError(
            "no segment was selected",
            path=segmentation.provenance.get("source_path"),
            hint="name at least one segment (segio info lists them)",
        )
    return keep(segmentation, ids)


def drop(segmentation: Segmentation, keys: Iterable[str] | str) -> Segmentation:
    """A new segmentation without the segments ``keys`` name (voxels cleared); the others
    keep their order. Dropping every segment is allowed: the result is empty."""
    gone = set(resolve_keys(segmentation, keys))
    return keep(segmentation, [key for key in segmentation.segments if key not in gone])


def keep(segmentation: Segmentation, ids: Sequence[str]) -> Segmentation:
    """The segments of ``ids`` (existing ids, each once) in this order; see :func:`select`."""
    kept = set(ids)
    members = segmentation._members_by_layer()
    layers: list[Layer] = []
    moved: dict[int, int] = {}
    for index, layer in enumerate(segmentation.layers):
        inside = members.get(index, [])
        if not any(s.id in kept for s in inside):
            continue
        gone = {s.label_value: 0 for s in inside if s.id not in kept}
        array = remap(layer.array, gone, clear_others=False) if gone else layer.array.copy()
        moved[index] = len(layers)
        layers.append(Layer(array, layer.geometry, max_fraction=layer.max_fraction))
    if segmentation.layers and not layers:  # every segment dropped: keep the grid
        first = segmentation.layers[0]
        empty = np.zeros(first.array.shape, first.array.dtype)
        layers.append(Layer(empty, first.geometry, max_fraction=first.max_fraction))
    segments = [segmentation.segments[key] for key in ids]
    return rebuilt(
        segmentation,
        [copied_segment(s, layer=moved[s.layer] if layers else s.layer) for s in segments],
        layers,
        contours={k: v for k, v in segmentation.contours.items() if k in kept},
        surfaces={k: v for k, v in segmentation.surfaces.items() if k in kept},
    )


def rename(segmentation: Segmentation, names: Mapping[str, str]) -> Segmentation:
    """A new segmentation where each segment ``key`` is called ``names[key]``.

    An empty name is refused (``--rename liver=`` is a slip). A name another segment
    already has is allowed, as in Slicer, with a warning: that name no longer selects
    either segment; their ids still do.
    """
    new = {resolve(segmentation, key).id: name for key, name in names.items()}
    for key, name in new.items():
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(
                f"segment {key!r}: the new name must be non-empty text, got {name!r}",
                hint="KEY=NEW_NAME",
            )
    segments = [
        copied_segment(s, name=new.get(s.id, s.name)) for s in segmentation.segments.values()
    ]
    seen: dict[str, str] = {}
    for segment in segments:
        other = seen.setdefault(segment.name, segment.id)
        if other != segment.id and (segment.id in new or other in new):
            warnings.warn(
                f"segments {other!r} and {segment.id!r} are both named {segment.name!r} "
                "now; name them by id from here on",
                stacklevel=2,
            )
    return with_segments(segmentation, segments)


def recolor(segmentation: Segmentation, colors: Mapping[str, ColorLike]) -> Segmentation:
    """A new segmentation with ``colors[key]`` for each segment ``key``: ``#rrggbb``,
    ``"r,g,b"`` (integers 0..255) or three numbers in 0..1."""
    new = {resolve(segmentation, key).id: parse_color(color) for key, color in colors.items()}
    return with_segments(
        segmentation,
        [copied_segment(s, color=new.get(s.id, s.color)) for s in segmentation.segments.values()],
    )


def set_terminology(segmentation: Segmentation, table: str | os.PathLike[str]) -> Segmentation:
    """A new segmentation whose segments take their codes from ``table``, a label table
    with codes (Slicer CSV, segio-json, dcmqi JSON, ...) matched by name or label value
    (:func:`segio.labels.catalogue.apply_table`)."""
    from segio.labels.catalogue import apply_table

    return apply_table(segmentation.copy(), table)


def split(segmentation: Segmentation) -> list[tuple[Segment, Segmentation]]:
    """One segmentation per segment, in order: ``(segment, piece)`` pairs.

    Each piece holds its segment alone (one layer, its label value kept, on the same
    grid) and every point annotation. All pieces are in memory at once: to write many
    large pieces, :func:`iter_split` makes one at a time.
    """
    return list(iter_split(segmentation))


def iter_split(segmentation: Segmentation) -> Iterator[tuple[Segment, Segmentation]]:
    """:func:`split`, one piece at a time. A piece's labelmap is filled inside its
    segment's bounding box only (a zeroed array costs nothing until written)."""
    boxes = segmentation.extents() if segmentation.layers else {}
    for segment in segmentation.segments.values():
        layers: list[Layer] = []
        if segmentation.layers:
            source = segmentation.layers[segment.layer]
            if source.is_fractional:
                array = source.array.copy()
            else:
                array = np.zeros(source.array.shape, smallest_type(segment.label_value))
                box = boxes.get(segment.id)
                if box is not None:
                    where = tuple(slice(low, high + 1) for low, high in box)
                    inside = source.array[where] == segment.label_value
                    array[where][inside] = segment.label_value
            layers = [Layer(array, source.geometry, max_fraction=source.max_fraction)]
        piece = rebuilt(
            segmentation,
            [copied_segment(segment, layer=0)],
            layers,
            contours={k: v for k, v in segmentation.contours.items() if k == segment.id},
            surfaces={k: v for k, v in segmentation.surfaces.items() if k == segment.id},
        )
        yield piece.segments[segment.id], piece
