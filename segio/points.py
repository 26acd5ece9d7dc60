"""Point annotations: single positions in LPS millimetres that belong to no volume.

RTSTRUCT POINT ROIs (isocentres, markers: RTROIInterpretedType MARKER or ISOCENTER), OsiriX
point ROIs and 3D Slicer markups fiducials mark a place, not a region. Kept as segments
they would be written as empty segments by every labelmap format, and rasterising a
point gives no voxel worth keeping. So the model keeps them beside the segments, in
:attr:`segio.model.Segmentation.points`, with any source representation:

* a writer that can hold points writes them (RTSTRUCT as POINT ROIs, ``.mrk.json`` as a
  fiducial list); its :class:`~segio.hookspecs.FormatSpec` says so with ``points=True``;
* every other writer leaves them out, and :func:`warn_unwritten` says which were left out,
  in one warning (called by :func:`segio.write`).

Each annotation is one point. Several points of one ROI (an RTSTRUCT ROI with several
POINT contours, OsiriX points sharing a name on several images) are several annotations
with the same ``name``; RTSTRUCT writes them back as one ROI (see its writer).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from segio.errors import LimitError, ValidationError
from segio.terminology import Terminology

if TYPE_CHECKING:
    from segio.hookspecs import FormatSpec
    from segio.model import Segmentation

#: Names listed in the warning about points a format cannot hold, before "and N more".
LISTED = 10
#: Most point annotations read from one file. A POINT contour should hold one point (and
#: an OsiriX point ROI has one); each annotation is a Python object (about 0.5 kB, 10 µs),
#: so one contour of millions of "points" is refused instead of making millions of them.
MAX_POINTS = 100_000


@dataclass(frozen=True, eq=False)
class PointAnnotation:
    """One point: where it is (LPS mm), what it is called, how it looks, what it means.

    ``name`` is the ROI (or segment, or fiducial) name it came with and the label it is
    written with; ``image_uid`` the SOP Instance UID of the image it was placed on, when
    the file says; ``properties`` free text kept as it is (``DICOM.ROINumber``,
    ``DICOM.RTROIInterpretedType``, ...), as for a :class:`~segio.model.Segment`.
    """

    name: str
    position: NDArray[np.float64]
    color: tuple[float, float, float]
    terminology: Terminology | None
    image_uid: str | None
    properties: Mapping[str, str]

    def __init__(
        self,
        name: str,
        position: ArrayLike,
        color: Iterable[float] = (0.5, 0.5, 0.5),
        terminology: Terminology | None = None,
        image_uid: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise ValidationError(f"a point's name must be text, got {name!r}")
        try:
            where = np.array(position, dtype=np.float64, copy=True).reshape(-1) + 0.0  # no -0
        except (TypeError, ValueError):
            where = np.zeros(0)
        if where.shape != (3,) or not np.all(np.isfinite(where)):
            raise ValidationError(
                f"point {name!r}: the position must be three finite numbers (LPS mm), "
                f"got {position!r}"
            )
        where.flags.writeable = False
        try:
            rgb = tuple(float(c) for c in color)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise ValidationError(f"point {name!r}: colour must be three numbers in 0..1")
        if terminology is not None and not isinstance(terminology, Terminology):
            raise ValidationError(f"point {name!r}: terminology must be a Terminology")
        if image_uid is not None and not isinstance(image_uid, str):
            raise ValidationError(f"point {name!r}: image UID must be text")
        kept = dict(properties or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in kept.items()):
            raise ValidationError(f"point {name!r}: properties must map text to text")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "position", where)
        object.__setattr__(self, "color", (rgb[0], rgb[1], rgb[2]))
        object.__setattr__(self, "terminology", terminology)
        object.__setattr__(self, "image_uid", image_uid or None)
        object.__setattr__(self, "properties", kept)

    def __repr__(self) -> str:
        x, y, z = self.position.tolist()
        return f"PointAnnotation({self.name!r}, ({x:g}, {y:g}, {z:g}) LPS)"


def check_count(count: int, path: str | os.PathLike[str] | None = None) -> None:
    """LimitError when a file holds more than :data:`MAX_POINTS` point annotations."""
    if count > MAX_POINTS:
        raise LimitError(
            f"more than {MAX_POINTS:,} point annotations ({count:,})",
            path=path,
            hint="a point ROI holds one point; the file is corrupt or crafted",
        )


def positions(points: Iterable[PointAnnotation]) -> NDArray[np.float64]:
    """The positions of ``points`` as one ``(N, 3)`` array (LPS mm)."""
    found = [p.position for p in points]
    return np.stack(found) if found else np.zeros((0, 3))


def names_text(points: Iterable[PointAnnotation]) -> str:
    """The distinct names, in order, as a short list for a message."""
    names = list(dict.fromkeys(repr(p.name) for p in points))
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def warn_unwritten(segmentation: Segmentation, spec: FormatSpec) -> None:
    """One warning listing the point annotations a format leaves out, if there are any.

    Called by :func:`segio.write` before the writer runs: a format without points (any
    labelmap or mesh) writes the segments and nothing for the points, never an empty
    segment in their place, and the user learns where they can go instead.
    """
    if not segmentation.points or spec.points:
        return
    count = len(segmentation.points)
    warnings.warn(
        f"{count} point annotation(s) not written ({names_text(segmentation.points)}): "
        f"the {spec.name} format holds no points; write them to RTSTRUCT or to 3D Slicer "
        "markups (.mrk.json)",
        stacklevel=3,
    )
