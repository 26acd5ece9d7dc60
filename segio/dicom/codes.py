"""DICOM code sequence items <-> :class:`~segio.terminology.Code`, for every DICOM format.

SEG segment descriptions and RTSTRUCT observations carry the same coded entries; both
plugins read and write them here (pydicom is imported only when an item is built).
"""

from __future__ import annotations

from typing import Any

from segio.terminology import Code


def code_from_item(item: Any) -> Code:
    """A normalised Code from a code sequence item (CodeValue, or Long/URN Code Value).

    Raises ValidationError when the item has no scheme or no value.
    """
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue") or ""
    return Code(
        str(item.get("CodingSchemeDesignator", "")), str(value), str(item.get("CodeMeaning", ""))
    ).normalized()


def code_item(code: Code) -> Any:
    """A code sequence item for ``code`` (LongCodeValue when longer than 16 characters)."""
    from pydicom.dataset import Dataset

    item = Dataset()
    if len(code.value) > 16:
        item.LongCodeValue = code.value
    else:
        item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning[:64]
    return item
