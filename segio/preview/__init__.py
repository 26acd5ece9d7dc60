"""Pictures of segmentations: ``segio snapshot`` (slices, a 3D view and a legend as a PNG).

Needs Pillow (the ``preview`` extra) to compose and write the picture; the 3D view is
rendered by numpy alone, so no display, X server or GPU is needed.
"""

from __future__ import annotations

from segio.preview.snapshot import snapshot, snapshot_image

__all__ = ["snapshot", "snapshot_image"]
