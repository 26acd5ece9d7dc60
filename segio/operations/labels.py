"""Edits of label values and layers: relabel (explicit values or a label table) and
flatten (overlapping layers into one, by a stated rule).

Label values and overlaps belong to voxels, so these work on a binary labelmap: a
surface, contour or fractional source is first converted (with a warning,
:func:`segio.operations.layers.needs_voxels`). Label values are per layer, as in Slicer:
two segments may share a value in different layers, never in one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import numpy as np

from segio.errors import ValidationError
from segio.labels.values import label_counts
from segio.model import Layer, Segment, Segmentation
from segio.operations.keys import resolve
from segio.operations.layers import copied_segment, needs_voxels, rebuilt, remap, smallest_type
from segio.terminology import Code, Terminology

__all__ = ["FLATTEN_RULES", "checked_label", "flatten", "relabel", "relabel_from_table"]

#: Largest label value an edit gives (uint32, what every labelmap format here can hold).
MAX_LABEL = int(np.iinfo(np.uint32).max)
#: Which segment keeps a voxel that several segments claim, by rule name.
FLATTEN_RULES = {
    "first": "the segment earlier in the segment order",
    "last": "the segment later in the segment order",
    "smallest": "the segment with fewer voxels (small structures inside big ones survive)",
    "largest": "the segment with more voxels",
}


def relabel(segmentation: Segmentation, values: Mapping[str, int]) -> Segmentation:
    """A new segmentation where each segment ``key`` has label value ``values[key]``.

    Layers are kept (overlapping segments stay in their layers). Values are checked per
    layer after every change, so swapping two values works and a value that another
    segment of the layer keeps is refused naming both. Voxels of values no segment
    claims are cleared (they could otherwise join a segment given their value).
    """
    source = needs_voxels(segmentation, "relabel")
    wanted = {resolve(source, key).id: checked_label(value, key) for key, value in values.items()}
    return relabel_ids(source, wanted)


def relabel_ids(segmentation: Segmentation, wanted: Mapping[str, int]) -> Segmentation:
    """:func:`relabel` of a binary labelmap by segment ids."""
    members = segmentation._members_by_layer()
    layers = []
    for index, layer in enumerate(segmentation.layers):
        inside = members.get(index, [])
        final: dict[int, Segment] = {}
        for segment in inside:
            value = wanted.get(segment.id, segment.label_value)
            other = final.setdefault(value, segment)
            if other is not segment:
                raise ValidationError(
                    f"segments {other.name!r} ({other.id}) and {segment.name!r} ({segment.id}) "
                    f"would both have label {value} in layer {index}",
                    path=segmentation.provenance.get("source_path"),
                    hint="give one of them another value (label values are per layer)",
                )
        if any(wanted.get(s.id, s.label_value) != s.label_value for s in inside):
            mapping = {s.label_value: wanted.get(s.id, s.label_value) for s in inside}
            array = remap(layer.array, mapping, clear_others=True)
        else:
            array = layer.array.copy()
        layers.append(Layer(array, layer.geometry))
    segments = [
        copied_segment(s, label_value=wanted.get(s.id, s.label_value))
        for s in segmentation.segments.values()
    ]
    return rebuilt(segmentation, segments, layers)


def checked_label(value: object, key: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValidationError(f"segment {key!r}: label value {value!r} is not a whole number")
    if not 1 <= int(value) <= MAX_LABEL:
        raise ValidationError(
            f"segment {key!r}: label value {value} is outside 1..{MAX_LABEL}",
            hint="0 is the background",
        )
    return int(value)


def relabel_from_table(segmentation: Segmentation, table: str | os.PathLike[str]) -> Segmentation:
    """Label values from a label table file (any format segio reads), as Slicer's
    ``GetLabelValuesFromColorNode`` assigns them when exporting with a colour table.

    Each segment takes the value of the first entry whose terminology names the same
    concept (type, type modifier, region and region modifier codes; the category is a
    grouping and is ignored), else whose name equals the segment's (exactly, else
    ignoring case when that finds one entry). Unmatched segments get new values above
    the table's largest, in segment order, and a warning lists them.
    """
    from segio.labels.tables import read_label_table

    entries = read_label_table(table)
    source = needs_voxels(segmentation, "relabel from a label table")
    by_name: dict[str, int] = {}
    by_folded: dict[str, list[int]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, entry.value)
        by_folded.setdefault(entry.name.casefold(), []).append(entry.value)
    coded = [(e.terminology, e.value) for e in entries if e.terminology is not None]
    top = max((e.value for e in entries), default=0)
    wanted: dict[str, int] = {}
    unmatched: list[str] = []
    for segment in source.segments.values():
        term = segment.terminology
        value = next((v for t, v in coded if term is not None and _same_concept(t, term)), None)
        if value is None:
            value = by_name.get(segment.name)
        if value is None and len(set(by_folded.get(segment.name.casefold(), []))) == 1:
            value = by_folded[segment.name.casefold()][0]
        if value is None:
            top += 1
            value = top
            unmatched.append(f"{segment.name!r} -> {value}")
        wanted[segment.id] = value
    if unmatched:
        more = f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else ""
        warnings.warn(
            f"the label table {os.fspath(table)} has no entry for {len(unmatched)} "
            f"segment(s), given new values above its own: {', '.join(unmatched[:10])}{more}",
            stacklevel=2,
        )
    return relabel_ids(source, {k: checked_label(v, k) for k, v in wanted.items()})


def _same_concept(a: Terminology, b: Terminology) -> bool:
    def same(x: Code | None, y: Code | None) -> bool:
        return (x is None and y is None) or (x is not None and y is not None and x.matches(y))

    return (
        same(a.type, b.type)
        and same(a.type_modifier, b.type_modifier)
        and same(a.region, b.region)
        and same(a.region_modifier, b.region_modifier)
    )


def flatten(segmentation: Segmentation, rule: str = "first") -> Segmentation:
    """A new segmentation with every segment in ONE layer; where segments overlapped,
    the voxel goes to the segment ``rule`` prefers (:data:`FLATTEN_RULES`; ties go to
    the earlier segment).

    Each segment keeps its label value unless an earlier segment (in segment order) has
    it already; it then takes the next value above all of them, and a warning lists the
    changes. Another warning gives the voxels each segment lost to the rule. Computed
    per layer, not per segment: a few passes over the grid whatever the segment count.
    """
    if rule not in FLATTEN_RULES:
        raise ValidationError(
            f"unknown flatten rule {rule!r}", hint="use one of " + ", ".join(FLATTEN_RULES)
        )
    source = needs_voxels(segmentation, "flatten")
    order = list(source.segments.values())
    if len(source.layers) <= 1:
        return rebuilt(
            source,
            [copied_segment(s) for s in order],
            [Layer(layer.array.copy(), layer.geometry) for layer in source.layers],
        )
    before = source.voxel_counts()
    ranked = _ranked(order, before, rule)
    n = len(order)
    # Code of a segment: n - its rank, so the preferred one has the highest code and a
    # voxel keeps the largest code over all layers (background 0).
    code = {segment.id: n - rank for rank, segment in enumerate(ranked)}
    code_type = smallest_type(n)
    best = np.zeros(source.require_geometry().shape, code_type)
    for index, members in source._members_by_layer().items():
        mapping = {s.label_value: code[s.id] for s in members}
        codes = remap(source.layers[index].array, mapping, clear_others=True)
        np.maximum(best, codes.astype(code_type, copy=False), out=best)
    values = _flat_values(order)
    table = np.zeros(n + 1, smallest_type(max(values.values(), default=0)))
    for segment in order:
        table[code[segment.id]] = values[segment.id]
    flat = table[best]
    after = label_counts(flat, [values[s.id] for s in order])
    lost = [
        (s, before[s.id] - int(count))
        for s, count in zip(order, after.tolist(), strict=True)
        if before[s.id] > count
    ]
    if lost:
        shown = [
            f"{s.name!r} {count} of {before[s.id]}"
            + (" (now empty)" if count == before[s.id] else "")
            for s, count in lost[:10]
        ]
        more = f" and {len(lost) - 10} more" if len(lost) > 10 else ""
        warnings.warn(
            f"flatten (rule {rule!r}) gave each overlapping voxel to one segment; voxels lost: "
            + ", ".join(shown)
            + more,
            stacklevel=2,
        )
    segments = [copied_segment(s, layer=0, label_value=values[s.id]) for s in order]
    return rebuilt(source, segments, [Layer(flat, source.require_geometry())])


def _ranked(order: list[Segment], counts: Mapping[str, int], rule: str) -> list[Segment]:
    """Segments from the most preferred to the least (a stable sort: ties keep order)."""
    if rule == "first":
        return order
    if rule == "last":
        return order[::-1]
    if rule == "smallest":
        return sorted(order, key=lambda s: counts[s.id])
    return sorted(order, key=lambda s: -counts[s.id])


def _flat_values(order: list[Segment]) -> dict[str, int]:
    """Label values in one layer: each segment's own unless taken, then the next free."""
    values: dict[str, int] = {}
    taken: set[int] = set()
    top = max((s.label_value for s in order), default=0)
    changed = []
    for segment in order:
        value = segment.label_value
        if value in taken:
            top += 1
            value = top
            changed.append(f"{segment.name!r} {segment.label_value} -> {value}")
        taken.add(value)
        values[segment.id] = value
    if changed:
        more = f" and {len(changed) - 10} more" if len(changed) > 10 else ""
        warnings.warn(
            "flatten gave new label values to segments whose value an earlier segment of "
            f"another layer has: {', '.join(changed[:10])}{more}",
            stacklevel=3,
        )
    return values
