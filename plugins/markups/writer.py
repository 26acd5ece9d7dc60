"""Write point annotations as a 3D Slicer markups fiducial list (``.mrk.json``).

The layout is Slicer's markups schema v1.0.3 (Slicer/Slicer
``Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json``): one markup of
type ``Fiducial`` in the ``LPS`` coordinate system, in millimetres, with one control point
per point annotation, labelled with its name. The ``@schema`` id is the one Slicer itself
writes (still naming the ``master`` branch, for Slicer < 5.1; Slicer accepts any
``markups-schema-v1.x.y.json``). A markup has one colour: the points' colour, or the first
one's with a warning when they differ. Terminology and DICOM properties have no place in a
control point and are not written.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from segio.errors import WriteError
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.points import PointAnnotation, names_text

SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)
SUFFIX = ".mrk.json"
#: Control point orientation Slicer writes for a point list in LPS: the RAS identity.
ORIENTATION = [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]


def write(
    segmentation: Segmentation, path: Path, files: OutputFiles, *, name: str | None = None
) -> None:
    """Write the point annotations of ``segmentation`` at ``path`` (segments are not)."""
    points = segmentation.points
    if not points:
        raise WriteError(
            "the segmentation holds no point annotation; a markups file holds points only",
            path=path,
            hint="write the segments to a segmentation format (.seg.nrrd, DICOM SEG, ...)",
        )
    if segmentation.segments:
        warnings.warn(
            f"{len(segmentation.segments)} segment(s) not written to {path.name}: a markups "
            "file holds the point annotations only",
            stacklevel=3,
        )
    document = {"@schema": SCHEMA, "markups": [_fiducials(points, name or _name(points, path))]}
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)
    files.stage(path).write_text(text + "\n", encoding="utf-8")


def _name(points: list[PointAnnotation], path: Path) -> str:
    """The points' shared name, else the file name without ``.mrk.json``."""
    names = {p.name for p in points}
    if len(names) == 1:
        return names.pop()
    file = path.name
    return file[: -len(SUFFIX)] if file.lower().endswith(SUFFIX) else path.stem


def _fiducials(points: list[PointAnnotation], name: str) -> dict[str, Any]:
    colors = list(dict.fromkeys(p.color for p in points))
    if len(colors) > 1:
        warnings.warn(
            f"the points have {len(colors)} colours ({names_text(points)}); a markups point "
            "list has one: the first point's is used",
            stacklevel=4,
        )
    color = list(colors[0])
    return {
        "type": "Fiducial",
        "name": name,
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(points),
        "controlPoints": [
            {
                "id": str(number),
                "label": point.name,
                "description": "",
                "associatedNodeID": "",
                "position": point.position.tolist(),
                "orientation": ORIENTATION,
                "selected": True,
                "locked": False,
                "visibility": True,
                "positionStatus": "defined",
            }
            for number, point in enumerate(points, start=1)
        ],
        "measurements": [],
        "display": {
            "visibility": True,
            "opacity": 1.0,
            # Slicer shows control points in the selected colour (all are selected).
            "color": color,
            "selectedColor": color,
            "pointLabelsVisibility": True,
            "glyphType": "Sphere3D",
        },
    }
