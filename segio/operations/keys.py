"""Segment keys: how the API and the command line name a segment (docs/editing.md).

One grammar everywhere. A *key* is, tried in this order:

1. a segment **id**, exactly (``Segment_3``); ids are unique, so this never fails twice;
2. a segment **name**, exactly (``Neoplasm, Primary``); when two segments share the name,
   the key is refused with their ids, never resolved to one of them at random;
3. ``label:N`` (the segment with label value N; refused when segments of several layers
   have it) or ``layer:L:label:N``.

A *key list* (``--segments``/``--drop``, :func:`resolve_list`) is a key, or, when the whole
text is no key, keys separated by commas: ``liver,spleen`` works as it did, and a name
with a comma is still selected whole. An unknown key is a :class:`ValidationError` that
lists the closest ids and names (:mod:`difflib`) and points at ``segio info``.

``KEY=VALUE`` options (rename, colour, relabel) split at the *last* ``=``: a key may hold
``=``, a new name may not (the API takes any name).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

from segio.errors import ValidationError
from segio.model import Color, Segment, Segmentation

__all__ = [
    "UnknownSegmentError",
    "parse_color",
    "parse_pair",
    "resolve",
    "resolve_keys",
    "resolve_list",
]

_LABEL = re.compile(r"(?:layer:(\d+):)?label:(\d+)")
_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


class UnknownSegmentError(ValidationError):
    """A key that names no segment (as opposed to one that names several)."""


def resolve(segmentation: Segmentation, key: str) -> Segment:
    """The one segment ``key`` names (id, then name, then ``label:``), or a
    ValidationError saying why none or which ones."""
    if not isinstance(key, str) or not key:
        raise ValidationError(f"a segment key must be non-empty text, got {key!r}")
    segments = segmentation.segments
    by_id = segments._by_id.get(key)
    if by_id is not None:
        return by_id
    named = [s for s in segments.values() if s.name == key]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(repr(s.id) for s in named)
        raise ValidationError(
            f"{len(named)} segments are named {key!r} (ids {ids})",
            path=_source(segmentation),
            hint="name one by its id (segio info shows ids)",
        )
    found = _by_label(segmentation, key)
    if found is not None:
        return found
    raise _unknown(segmentation, key)


def resolve_list(segmentation: Segmentation, text: str) -> list[Segment]:
    """The segments of a key list: ``text`` as one key when it is one, else its
    comma-separated parts (empty parts ignored), each a key."""
    try:
        return [resolve(segmentation, text)]
    except UnknownSegmentError as whole:
        parts = [part.strip() for part in text.split(",")]
        if "," not in text or not any(parts):
            raise whole from None
    return [resolve(segmentation, part) for part in parts if part]


def resolve_keys(
    segmentation: Segmentation, keys: Iterable[str], *, lists: bool = True
) -> list[str]:
    """Ids of the segments ``keys`` name, in order, each once (a repeat is ignored).

    A bare string is one key list, not its characters. With ``lists`` each item is a key
    list (:func:`resolve_list`), else a single key.
    """
    items = [keys] if isinstance(keys, str) else list(keys)
    ids: dict[str, None] = {}
    for item in items:
        found = resolve_list(segmentation, item) if lists else [resolve(segmentation, item)]
        ids.update((segment.id, None) for segment in found)
    return list(ids)


def _by_label(segmentation: Segmentation, key: str) -> Segment | None:
    """The segment of ``label:N`` / ``layer:L:label:N``; None when ``key`` is neither."""
    match = _LABEL.fullmatch(key)
    if match is None:
        return None
    if not segmentation.layers:
        raise ValidationError(
            f"{key!r}: the segments are {segmentation.source_representation.value.lower()}s, "
            "which have no label values",
            path=_source(segmentation),
            hint="name the segment by id or name",
        )
    layer = None if match.group(1) is None else int(match.group(1))
    value = int(match.group(2))
    found = [
        s
        for s in segmentation.segments.values()
        if s.label_value == value and (layer is None or s.layer == layer)
    ]
    if len(found) > 1:
        where = ", ".join(f"layer:{s.layer}:label:{value} ({s.name!r})" for s in found)
        raise ValidationError(
            f"{key!r} names segments in {len(found)} layers",
            path=_source(segmentation),
            hint=f"use one of {where}",
        )
    if not found:
        raise _unknown(segmentation, key)
    return found[0]


def _unknown(segmentation: Segmentation, key: str) -> UnknownSegmentError:
    segments = list(segmentation.segments.values())
    choices = [s.id for s in segments] + [s.name for s in segments]
    close = difflib.get_close_matches(key, choices, n=4, cutoff=0.6)
    if not close:  # a case slip is the usual mistake: "Liver" for "liver"
        close = [c for c in choices if c.casefold() == key.casefold()][:4]
    hint = f"did you mean {', '.join(repr(c) for c in dict.fromkeys(close))}? " if close else ""
    return UnknownSegmentError(
        f"no segment has the id or name {key!r}",
        path=_source(segmentation),
        hint=hint + "segio info FILE lists ids and names",
    )


def _source(segmentation: Segmentation) -> str | None:
    """The file(s) a segmentation came from, for messages (several after a merge)."""
    provenance = segmentation.provenance
    return provenance.get("merged_from") or provenance.get("source_path")


# -- KEY=VALUE texts of the command line -------------------------------------------------


def parse_pair(text: str, what: str) -> tuple[str, str]:
    """``KEY=VALUE`` split at the last ``=`` (a key may contain ``=``)."""
    key, equals, value = text.rpartition("=")
    if not equals or not key:
        raise ValidationError(f"{what} {text!r} is not KEY=VALUE", hint="e.g. liver=Liver")
    return key, value


def parse_color(text: str | Sequence[float]) -> Color:
    """A colour from ``#rrggbb``, ``r,g,b`` (integers 0..255) or three numbers 0..1."""
    if not isinstance(text, str):
        try:
            rgb = tuple(float(c) for c in text)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise ValidationError(f"a colour must be three numbers in 0..1, got {text!r}")
        return (rgb[0], rgb[1], rgb[2])
    spec = text.strip()
    hexa = _HEX.fullmatch(spec)
    if hexa is not None:
        digits = hexa.group(1)
        r, g, b = (int(digits[n : n + 2], 16) for n in (0, 2, 4))
        return (r / 255, g / 255, b / 255)
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        r, g, b = (int(p) for p in parts)
        return (r / 255, g / 255, b / 255)
    raise ValidationError(
        f"colour {text!r} is neither #rrggbb nor r,g,b",
        hint="e.g. #e06040 or 224,96,64 (integers 0..255)",
    )
