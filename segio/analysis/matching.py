"""Which segment of one segmentation is which segment of another.

Two files of the same patient rarely agree on ids, and often not on label values (a
model's output numbers its classes, a hand segmentation in Slicer numbers in drawing
order), so a comparison pairs segments by what they mean before it measures anything.
The rules, in order; each one pairs only segments the earlier ones left unpaired:

1. ``map``: an explicit map, A segment (id or name) -> B segment (id or name).
2. ``name``: the same name.
3. ``name (case)``: the same name once case and surrounding spaces are ignored.
4. ``terminology``: the same coded type, type modifier, anatomic region and region
   modifier (:meth:`segio.terminology.Code.matches`: scheme and value, SRT normalised).
   Generic "Tissue" codes say nothing about a segment (writers put them on segments
   without codes), so they never pair.
5. ``label``: the same label value in the same layer, unless both segments carry
   (non-generic) codes that disagree: then they are known to be different structures.

A rule pairs a segment only when its key (name, codes, label) is unique among the
unpaired segments on both sides. A key shared by several segments on one side is left to
the later rules; if it is still unresolved at the end on *both* sides (two "Tumor" in A,
two "Tumor" in B, no label to tell them apart), the comparison is refused with the
reason: pairing them in some order would be a guess, and a row per possible pair would
count one segment several times. A segment unpaired at the end is reported as present on
one side only, which is a finding, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

from segio.errors import ValidationError
from segio.model import Segment, Segmentation
from segio.terminology import DEFAULT_TISSUE, Terminology

__all__ = ["RULES", "Match", "match_segments"]

#: The matching rules in the order they are tried (``Match.rule`` is one of these).
RULES = ("map", "name", "name (case)", "terminology", "label")

Key = Callable[[Segment], Hashable | None]


@dataclass(frozen=True)
class Match:
    """One row of a comparison: a segment of A, of B, or both, and the rule that paired
    them (empty for a segment present on one side only)."""

    a: str | None
    b: str | None
    rule: str = ""


def _codes(terminology: Terminology | None) -> tuple[Hashable, ...] | None:
    """What a terminology says a segment is, as comparable keys; None when it says
    nothing (no terminology, or generic Tissue)."""
    if terminology is None:
        return None
    norm = terminology.normalized()
    if norm.type.matches(DEFAULT_TISSUE.type) and norm.type_modifier is None:
        return None
    parts = (norm.type, norm.type_modifier, norm.region, norm.region_modifier)
    return tuple(None if code is None else code.key for code in parts)


def _name(segment: Segment) -> Hashable | None:
    return segment.name or None


def _folded(segment: Segment) -> Hashable | None:
    return segment.name.strip().casefold() or None


def _terminology(segment: Segment) -> Hashable | None:
    return _codes(segment.terminology)


def _label(segment: Segment) -> Hashable | None:
    return (segment.layer, segment.label_value)


_KEYS: tuple[tuple[str, Key], ...] = (
    ("name", _name),
    ("name (case)", _folded),
    ("terminology", _terminology),
    ("label", _label),
)


def _contradict(first: Segment, second: Segment) -> bool:
    """Both segments are coded, and not as the same structure."""
    codes_a, codes_b = _codes(first.terminology), _codes(second.terminology)
    return codes_a is not None and codes_b is not None and codes_a != codes_b


def _resolve(segmentation: Segmentation, key: str, side: str, where: str) -> Segment:
    try:
        return segmentation.segments[key]
    except KeyError as exc:
        known = ", ".join(repr(s.name) for s in list(segmentation.segments.values())[:8])
        reason = exc.args[0] if exc.args and exc.args[0] != key else "no such segment"
        raise ValidationError(
            f"segment map: {key!r} is not a segment of {side} ({where}): {reason}",
            hint=f"name a segment by id or unique name; {side} has {known}",
        ) from None


def match_segments(
    a: Segmentation,
    b: Segmentation,
    mapping: Mapping[str, str] | None = None,
    *,
    names: tuple[str, str] = ("A", "B"),
) -> list[Match]:
    """Pair the segments of ``a`` and ``b`` (rules in the module docstring).

    The result lists A's segments in A's order (paired or not), then B's unpaired
    segments in B's order. ``names`` say how the two sides are called in messages (file
    names). A map naming a segment that does not exist, or one segment twice, is a
    :class:`ValidationError`, as are names that stay ambiguous on both sides.
    """
    pairs: dict[str, tuple[str, str]] = {}  # A id -> (B id, rule)
    taken: set[str] = set()
    for key_a, key_b in (mapping or {}).items():
        first = _resolve(a, key_a, "A", names[0])
        second = _resolve(b, key_b, "B", names[1])
        if first.id in pairs or second.id in taken:
            twice = first.name if first.id in pairs else second.name
            raise ValidationError(
                f"segment map: {twice!r} is mapped twice",
                hint="map every segment to one segment of the other side",
            )
        pairs[first.id] = (second.id, "map")
        taken.add(second.id)
    unresolved: list[tuple[str, Hashable, list[Segment], list[Segment]]] = []
    for rule, key in _KEYS:
        left = [s for s in a.segments.values() if s.id not in pairs]
        right = [s for s in b.segments.values() if s.id not in taken]
        groups: dict[Hashable, tuple[list[Segment], list[Segment]]] = {}
        for side, segments in ((0, left), (1, right)):
            for segment in segments:
                value = key(segment)
                if value is not None:
                    groups.setdefault(value, ([], []))[side].append(segment)
        for value, (in_a, in_b) in groups.items():
            if len(in_a) == 1 and len(in_b) == 1:
                if rule == "label" and _contradict(in_a[0], in_b[0]):
                    continue
                pairs[in_a[0].id] = (in_b[0].id, rule)
                taken.add(in_b[0].id)
            elif in_a and in_b:
                unresolved.append((rule, value, in_a, in_b))
    for rule, _, in_a, in_b in unresolved:
        left_over = [s for s in in_a if s.id not in pairs]
        right_over = [s for s in in_b if s.id not in taken]
        if left_over and right_over:
            shown_a = ", ".join(repr(s.id) for s in left_over)
            shown_b = ", ".join(repr(s.id) for s in right_over)
            sample = left_over[0]
            what = (
                f"the codes of {sample.terminology.type.meaning!r}"
                if rule == "terminology" and sample.terminology is not None
                else f"{sample.name!r}"
            )
            raise ValidationError(
                f"cannot tell which segment is which: by {rule}, A ({names[0]}) segment(s) "
                f"{shown_a} and B ({names[1]}) segment(s) {shown_b} all match {what}",
                hint="pair them explicitly by id (segio compare --map A_ID=B_ID)",
            )
    rows = [
        Match(s.id, *pairs[s.id]) if s.id in pairs else Match(s.id, None)
        for s in a.segments.values()
    ]
    rows += [Match(None, s.id) for s in b.segments.values() if s.id not in taken]
    return rows
