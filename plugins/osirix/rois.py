"""One OsiriX/Horos ROI of any export variant, before placement, and what its type means.

Every variant (Export ROIs XML/JSON/CSV, ROI-window exports, keyed archives in ROI SR
objects) is first normalised to a list of :class:`Roi`; :mod:`.placement` then puts them
in LPS mm. The ToolMode numbers are horos ``DCMView.h``'s (``tMesure`` 5 ... ``tOvalAngle``
31); the type names are those of the ROI-info JSON's ``DataSummary.Type``.
"""

from __future__ import annotations

import math
import plistlib
import re
import xml.parsers.expat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
from numpy.typing import NDArray

from segio.contours import ContourKind
from segio.errors import ReadError, one_line

#: ToolMode values (horos ``DCMView.h``) whose ROI encloses a region.
CLOSED_TYPES = frozenset({6, 9, 11, 15, 20})
#: ToolMode values whose shape is a bitmap in archives (tPlain brush, tLayerROI).
BRUSH_TYPES = frozenset({20, 24})
#: ToolMode values that mark a single point (t3Dpoint, t2DPoint).
POINT_TYPES = frozenset({16, 19})
#: Type names of the ROI-info JSON (``DataSummary.Type``), lower case.
_CLOSED_NAMES = frozenset(
    {"closed polygon", "pencil", "brush", "oval", "rectangle", "roi", "cpolygon", "plain"}
)
_POINT_NAMES = frozenset({"point", "2d point", "3d point", "2dpoint", "3dpoint"})
_OPEN_NAMES = frozenset(
    {"open polygon", "opolygon", "length", "line", "measure", "angle", "dynamic angle"}
    | {"arrow", "text", "axis", "curved roi", "tagt"}
)
#: ToolMode names (horos ``DCMView.h``), for listings (``segio info``).
TYPE_NAMES = {
    5: "Length",
    6: "Rectangle",
    8: "Cross",
    9: "Oval",
    10: "Open Polygon",
    11: "Closed Polygon",
    12: "Angle",
    13: "Text",
    14: "Arrow",
    15: "Pencil",
    16: "3D Point",
    19: "Point",
    20: "Brush",
    24: "Layer",
    26: "Axis",
    27: "Dynamic Angle",
    28: "Curved ROI",
    29: "TAGT",
    30: "Ball",
    31: "Oval Angle",
}
SUPPORTED = (
    "the Export ROIs plugin output (XML, JSON or CSV), the ROI window's Export (XML or "
    "JSON) or the OsiriX ROI SR DICOM objects"
)
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: What plistlib raises on a broken property list (its own exception wraps only some).
_PLIST_ERRORS = (
    plistlib.InvalidFileException,
    xml.parsers.expat.ExpatError,
    ValueError,
    OverflowError,
    IndexError,
    LookupError,  # an XML declaration naming an unknown encoding ("U0F-8")
)


@dataclass
class Roi:
    """One ROI of any variant, before placement."""

    name: str
    type: int | str | None
    points_mm: NDArray[np.float64] | None = None  # (N, 3) LPS
    points_px: NDArray[np.float64] | None = None  # (N, 2) x = column, y = row
    image_uid: str | None = None
    color: tuple[float, float, float] | None = None
    #: The viewer's image index (ROI-window exports): never used to place, only to notice
    #: ROIs that lie on several images.
    slice: int | None = None
    #: An archived brush: its shape is a bitmap segio does not decode.
    brush_bitmap: bool = False

    @property
    def has_mm(self) -> bool:
        """True when the ROI is in patient coordinates already (no image needed)."""
        return self.points_mm is not None and len(self.points_mm) > 0

    @property
    def point_count(self) -> int:
        for points in (self.points_mm, self.points_px):
            if points is not None and len(points):
                return len(points)
        return 0


def type_name(kind: int | str | None) -> str:
    """The ROI type as OsiriX names it ("Closed Polygon", "Point"), or ``type N``."""
    if isinstance(kind, str):
        return kind
    if kind is None:
        return "unknown"
    return TYPE_NAMES.get(kind, f"type {kind}")


def bounded(
    parse: Callable[[], Any],
    what: str,
    path: Path | None,
    errors: tuple[type[Exception], ...] = (),
) -> Any:
    """``parse()``; Python's recursion limit (a document nested thousands deep: JSON and
    binary plists are parsed recursively) and ``errors`` become a :class:`ReadError`.

    It is raised outside the handler, so no RecursionError or OverflowError (a lying
    binary plist offset) hangs behind it: the parser's failure is the file's fault.
    """
    try:
        return parse()
    except RecursionError:
        problem = "nests too deeply to read"
    except errors as exc:
        problem = f"is not valid: {one_line(exc) or type(exc).__name__}"
    raise ReadError(f"{what} {problem}", path=path)


def parse_points(strings: Sequence[Any], n: int, what: str) -> NDArray[np.float64]:
    """``"(x, y, z)"``, ``"[x,y]"`` or ``"{x, y}"`` strings as an ``(N, n)`` array, at once."""
    if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
        raise ReadError(f"{what} must be a list of point strings")
    text = " ; ".join(strings).encode()
    values = _NUMBER.findall(text)
    if len(values) != n * len(strings):
        raise ReadError(f"{what}: expected {n} numbers per point")
    return np.array(values, dtype=np.float64).reshape(-1, n)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _finite(value: Any) -> TypeGuard[int | float]:
    """A JSON/plist number that is a usable ROI type (not a bool, NaN or Infinity)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def kind_of(roi: Roi, count: int) -> ContourKind:
    """CLOSED_PLANAR for region types, POINT or OPEN_PLANAR for the rest."""
    kind = roi.type
    if isinstance(kind, str):
        lowered = kind.strip().lower()
        if lowered in _CLOSED_NAMES:
            closed = True
        elif lowered in _POINT_NAMES:
            return ContourKind.POINT
        elif lowered in _OPEN_NAMES:
            closed = False
        else:  # an unknown name: as Horos re-imports, by the number of points
            closed = count >= 3
    elif kind is None:
        closed = count >= 3
    elif kind in POINT_TYPES:
        return ContourKind.POINT
    else:
        closed = kind in CLOSED_TYPES
    if closed and count >= 3:
        return ContourKind.CLOSED_PLANAR
    return ContourKind.POINT if count == 1 else ContourKind.OPEN_PLANAR
