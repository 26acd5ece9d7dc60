"""Segment terminology as DICOM coded entries.

A segment says *what* it is with codes from a coding scheme (SNOMED CT, DCM, ...), as
DICOM SEG does and as 3D Slicer stores in its ``TerminologyEntry`` tag. The pieces are
the segmented property category and type, an optional type modifier, and an optional
anatomic region with its own modifier (DICOM PS3.3 C.8.20.4, Slicer
``vtkSlicerTerminologiesModuleLogic``).

Codes compare by scheme and value; the meaning is informational (that is how DICOM and
Slicer match them). Legacy SNOMED-RT codes (``SRT``) are mapped to SNOMED CT (``SCT``)
on the way in, so that files from before 2020 match current ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from segio.errors import ValidationError

SLICER_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
DICOM_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

#: Codes that mean the same thing under two values; the first is the current one.
#: "Anatomical Structure" is 123037004 in CID 7150; 91723000 is the older concept
#: that some writers (and SRT T-D000A through older tables) still use.
_EQUIVALENT_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("SCT", "91723000"): ("SCT", "123037004"),
}


@dataclass(frozen=True, slots=True)
class Code:
    """One coded concept: coding scheme designator, code value and code meaning."""

    scheme: str
    value: str
    meaning: str

    def __post_init__(self) -> None:
        for field_name in ("scheme", "value", "meaning"):
            text = getattr(self, field_name)
            if not isinstance(text, str):
                raise ValidationError(f"code {field_name} must be text, got {text!r}")
        if not self.scheme or not self.value:
            raise ValidationError(
                f"code {self.scheme}^{self.value}^{self.meaning} needs a scheme and a value"
            )

    def matches(self, other: Code) -> bool:
        """True when both name the same concept (scheme and value; meaning ignored)."""
        return self.normalized().key == other.normalized().key

    @property
    def key(self) -> tuple[str, str]:
        return (self.scheme, self.value)

    def normalized(self) -> Code:
        """The current SNOMED CT form of a legacy SNOMED-RT or superseded code."""
        code = self
        if code.scheme == "SRT":
            sct = _srt_to_sct().get(code.value)
            if sct is not None:
                code = replace(code, scheme="SCT", value=sct)
        if code.key in _EQUIVALENT_CODES:
            scheme, value = _EQUIVALENT_CODES[code.key]
            code = replace(code, scheme=scheme, value=value)
        return code

    def __str__(self) -> str:
        return f"{self.scheme}^{self.value}^{self.meaning}"


@lru_cache(maxsize=1)
def _srt_to_sct() -> dict[str, str]:
    """pydicom's SNOMED-RT to SNOMED CT table, loaded only when an SRT code appears."""
    try:
        from pydicom.sr._snomed_dict import mapping
    except ImportError:  # pragma: no cover - pydicom is a dependency
        return {}
    return dict(mapping["SRT"])


@dataclass(frozen=True, slots=True)
class Terminology:
    """What a segment depicts, as DICOM Segmented Property codes.

    ``category`` and ``type`` are required (DICOM Type 1); the modifier and the anatomic
    region are optional. ``context`` and ``region_context`` name the Slicer terminology
    context the codes were picked from; they are kept for round trips only.
    """

    category: Code
    type: Code
    type_modifier: Code | None = None
    region: Code | None = None
    region_modifier: Code | None = None
    context: str = SLICER_CONTEXT
    region_context: str = ANATOMIC_CONTEXT

    def __post_init__(self) -> None:
        if not isinstance(self.category, Code) or not isinstance(self.type, Code):
            raise ValidationError("terminology needs a category code and a type code")
        if self.region_modifier is not None and self.region is None:
            raise ValidationError("terminology has a region modifier but no region")

    def normalized(self) -> Terminology:
        """The same terminology with every code in its current form."""

        def norm(code: Code | None) -> Code | None:
            return code.normalized() if code is not None else None

        return replace(
            self,
            category=self.category.normalized(),
            type=self.type.normalized(),
            type_modifier=norm(self.type_modifier),
            region=norm(self.region),
            region_modifier=norm(self.region_modifier),
        )

    def matches(self, other: Terminology) -> bool:
        """True when every code names the same concept (meanings and contexts ignored)."""

        def same(a: Code | None, b: Code | None) -> bool:
            if a is None or b is None:
                return a is b
            return a.matches(b)

        return (
            same(self.category, other.category)
            and same(self.type, other.type)
            and same(self.type_modifier, other.type_modifier)
            and same(self.region, other.region)
            and same(self.region_modifier, other.region_modifier)
        )

    # -- 3D Slicer's TerminologyEntry string -----------------------------------------

    def to_slicer(self) -> str:
        """Serialise as Slicer's ``TerminologyEntry`` tag value (7 ``~``-separated parts)."""
        for context in (self.context, self.region_context):
            if any(c in context for c in "~|"):
                raise ValidationError(
                    f"terminology context {context!r} contains '~' or '|', which Slicer's "
                    "terminology string cannot hold"
                )
        for code in self.codes():
            for text in (code.scheme, code.value, code.meaning):
                if any(c in text for c in "~^|"):
                    raise ValidationError(
                        f"code {code} contains '~', '^' or '|', which Slicer's "
                        "terminology string cannot hold"
                    )

        def part(code: Code | None) -> str:
            return "^^" if code is None else str(code)

        return "~".join(
            [
                self.context,
                part(self.category),
                part(self.type),
                part(self.type_modifier),
                self.region_context,
                part(self.region),
                part(self.region_modifier),
            ]
        )

    @classmethod
    def from_slicer(cls, text: str) -> Terminology:
        """Parse Slicer's ``TerminologyEntry`` string; raise ``ValidationError`` if malformed.

        Follows Slicer's reader: exactly 7 parts; category and type must each be a full
        code; modifier, region and region modifier are taken only when complete.
        """
        parts = text.split("~")
        if len(parts) != 7:
            raise ValidationError(
                f"terminology entry {text!r} has {len(parts)} '~'-separated parts, expected 7"
            )
        context, category, type_, modifier, region_context, region, region_mod = parts
        category_code = _parse_code(category)
        type_code = _parse_code(type_)
        if category_code is None or type_code is None:
            raise ValidationError(f"terminology entry {text!r} lacks a category or a type")
        region_code = _parse_code(region)
        return cls(
            category=category_code,
            type=type_code,
            type_modifier=_parse_code(modifier),
            region=region_code,
            region_modifier=_parse_code(region_mod) if region_code is not None else None,
            context=context,
            region_context=region_context,
        ).normalized()

    def codes(self) -> list[Code]:
        """Every code present, in category, type, modifier, region, region modifier order."""
        candidates = (
            self.category,
            self.type,
            self.type_modifier,
            self.region,
            self.region_modifier,
        )
        return [code for code in candidates if code is not None]


def _parse_code(text: str) -> Code | None:
    pieces = text.split("^")
    if len(pieces) != 3 or not pieces[0] or not pieces[1]:
        return None
    return Code(pieces[0], pieces[1], pieces[2])


#: Slicer's default for a new segment: Tissue / Tissue.
DEFAULT_TISSUE = Terminology(
    category=Code("SCT", "85756007", "Tissue"),
    type=Code("SCT", "85756007", "Tissue"),
)
