"""A plan of edits, applied in one fixed order: what ``segio convert`` builds from its
options and ``segio.convert(edits=...)`` takes, so that ``segio batch`` can apply one plan
to many files.

The order (docs/editing.md) is:

1. **segments**: select, drop, rename, recolour, terminology from a table;
2. **grid**: resample, crop, pad;
3. **layers and labels**: flatten, pack layers, relabel from a table, relabel.

Every key in the plan names a segment as it is when the plan starts (after merging
inputs): ``rename={"liver": "Liver"}`` and ``relabel={"liver": 5}`` both mean the segment
that was called ``liver``. A key that names a segment the plan also drops is refused.
Step 1 changes no voxel; :meth:`Edits.run` returns the segmentation after it as well, so
a conversion report compares it with the output and shows what steps 2 and 3 and the
output format cost.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from segio.errors import ValidationError
from segio.geometry import Geometry
from segio.model import Color, Segmentation
from segio.operations.keys import UnknownSegmentError, parse_color, resolve, resolve_keys
from segio.operations.labels import (
    FLATTEN_RULES,
    checked_label,
    flatten,
    relabel,
    relabel_from_table,
)
from segio.operations.merge import packed
from segio.operations.segments import ColorLike, keep, recolor, rename, set_terminology

__all__ = ["RESAMPLE_MODES", "EditResult", "Edits"]

PathLike = str | os.PathLike[str]
RESAMPLE_MODES = ("nearest", "quality")
V = TypeVar("V")


class EditResult(NamedTuple):
    """A plan's outcome: ``named`` after step 1 (same voxels as the input), ``edited``
    after every step."""

    named: Segmentation
    edited: Segmentation


@dataclass
class Edits:
    """The edits of one conversion; fields left at their default do nothing.

    ``select``/``drop`` are key lists (:mod:`segio.operations.keys`); ``rename``,
    ``recolor`` and ``relabel`` map a key to the new name, colour (``#rrggbb``,
    ``"r,g,b"`` 0..255, or 0..1 numbers) or label value. ``resample`` is a Geometry, a
    reference image path or a spacing text (``"0.5"``, ``"1,1,2.5"`` mm along i, j, k);
    ``crop`` a margin in voxels (None: no crop); ``pad`` voxels on every side, or per
    axis (i, j, k); ``flatten`` a rule of :data:`~segio.operations.labels.FLATTEN_RULES`.
    """

    select: Sequence[str] = ()
    drop: Sequence[str] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    recolor: Mapping[str, ColorLike] = field(default_factory=dict)
    terminology: PathLike | None = None
    resample: Geometry | PathLike | None = None
    resample_mode: str = "nearest"
    crop: int | None = None
    pad: int | tuple[int, int, int] | None = None
    flatten: str | None = None
    pack_layers: bool = False
    relabel_table: PathLike | None = None
    relabel: Mapping[str, int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check what can be checked without the segmentation, so a typo fails before
        a large file is read."""
        self.select = [self.select] if isinstance(self.select, str) else list(self.select)
        self.drop = [self.drop] if isinstance(self.drop, str) else list(self.drop)
        self._colors: dict[str, Color] = {k: parse_color(c) for k, c in self.recolor.items()}
        self._labels = {key: checked_label(value, key) for key, value in self.relabel.items()}
        if self.flatten is not None and self.flatten not in FLATTEN_RULES:
            raise ValidationError(
                f"unknown flatten rule {self.flatten!r}",
                hint="use one of " + ", ".join(FLATTEN_RULES),
            )
        if self.resample_mode not in RESAMPLE_MODES:
            raise ValidationError(
                f"unknown resample mode {self.resample_mode!r}",
                hint="use " + " or ".join(RESAMPLE_MODES),
            )
        if self.crop is not None and (isinstance(self.crop, bool) or self.crop < 0):
            raise ValidationError(f"the crop margin must be voxels >= 0, got {self.crop!r}")
        pads = (self.pad,) if isinstance(self.pad, int) else (self.pad or ())
        if self.pad is not None and (
            len(pads) not in (1, 3) or any(isinstance(n, bool) or n < 0 for n in pads)
        ):
            raise ValidationError(f"pad must be voxels >= 0 (one or i,j,k), got {self.pad!r}")

    @property
    def is_empty(self) -> bool:
        """True when the plan changes nothing."""
        return self == Edits()

    def apply(self, segmentation: Segmentation) -> Segmentation:
        """A new segmentation with every edit applied (the input is not changed)."""
        return self.run(segmentation).edited

    def run(self, segmentation: Segmentation) -> EditResult:
        """:meth:`apply`, also returning the segmentation after step 1."""
        ids = self._resolved(segmentation)
        named = self._segments(segmentation, ids)
        return EditResult(named, self._voxels(named, ids))

    def _resolved(self, segmentation: Segmentation) -> _Ids:
        """Every key as the id it names before any edit, and the ids that stay."""
        kept = list(segmentation.segments)
        if self.select:
            kept = resolve_keys(segmentation, self.select)
        dropped = set(resolve_keys(segmentation, self.drop)) if self.drop else set()
        kept = [key for key in kept if key not in dropped]
        if self.select and not kept:
            raise ValidationError("the plan selects segments and then drops all of them")
        return _Ids(
            kept,
            _by_id(segmentation, self.rename, kept, "renamed", {}),
            _by_id(segmentation, self._colors, kept, "recoloured", self.rename),
            _by_id(segmentation, self._labels, kept, "relabelled", self.rename),
        )

    def _segments(self, segmentation: Segmentation, ids: _Ids) -> Segmentation:
        result = segmentation
        if self.select or self.drop:
            result = keep(segmentation, ids.kept)
        if ids.names:
            result = rename(result, ids.names)
        if ids.colors:
            result = recolor(result, ids.colors)
        if self.terminology is not None:
            result = set_terminology(result, self.terminology)
        return result if result is not segmentation else segmentation.copy()

    def _voxels(self, segmentation: Segmentation, ids: _Ids) -> Segmentation:
        result = segmentation
        if self.resample is not None:
            from segio.converters.resample import resample, target_geometry

            target = (
                self.resample
                if isinstance(self.resample, Geometry)
                else target_geometry(self.resample, result)
            )
            result = resample(result, target, mode=self.resample_mode)
        if self.crop is not None:
            from segio.converters.resample import crop_to_segments

            result = crop_to_segments(result, margin=self.crop)
        if self.pad is not None:
            from segio.converters.resample import pad

            result = pad(result, self.pad)
        if self.flatten is not None:
            result = flatten(result, self.flatten)
        if self.pack_layers:
            result = packed(result if result is not segmentation else result.copy())
        if self.relabel_table is not None:
            result = relabel_from_table(result, self.relabel_table)
        if ids.labels:
            result = relabel(result, ids.labels)
        return result


class _Ids(NamedTuple):
    """A plan's keys resolved before any edit: ids stay valid whatever a segment is
    called later (ids never change within a plan)."""

    kept: list[str]
    names: dict[str, str]
    colors: dict[str, Color]
    labels: dict[str, int]


def _by_id(
    segmentation: Segmentation,
    values: Mapping[str, V],
    kept: list[str],
    done: str,
    renames: Mapping[str, str],
) -> dict[str, V]:
    """``values`` keyed by the ids their keys name; a dropped segment is refused."""
    by_id: dict[str, V] = {}
    for key, value in values.items():
        try:
            found = resolve(segmentation, key).id
        except UnknownSegmentError as exc:
            renamed = [old for old, new in renames.items() if new == key]
            if not renamed:
                raise
            raise ValidationError(
                f"{exc.reason}: keys name segments as they were read, before --rename",
                path=exc.path,
                hint=f"use {renamed[0]!r}",
            ) from None
        if found not in kept:
            raise ValidationError(
                f"segment {key!r} is left out by the selection (--segments/--drop), "
                f"so it cannot also be {done}",
                path=segmentation.provenance.get("source_path"),
                hint="keep the segment or leave it as it is",
            )
        by_id[found] = value
    return by_id
