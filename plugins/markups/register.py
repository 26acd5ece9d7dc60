"""Entry point of the 3D Slicer markups plugin: declarations only.

A ``.mrk.json`` file holds markups (point lists, lines, curves, planes, ROIs), not
segments. segio writes the point annotations of a segmentation (:mod:`segio.points`:
RTSTRUCT POINT ROIs, OsiriX point ROIs) as one fiducial list, so every representation is
accepted as it is: the segments are not converted, only counted in a warning.
"""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl
from segio.representations import Representation


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="markups",
            description="3D Slicer markups JSON: the point annotations as one fiducial "
            "(point) list in LPS (write only)",
            suffixes=(".mrk.json",),
            writer="segio_plugins.markups.writer:write",
            writes=frozenset(Representation),
            points=True,
            write_options={
                "name": "name of the point list (default: the points' name when they share "
                "one, else the file name)",
            },
        )
    ]
