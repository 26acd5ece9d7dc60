"""Default segment colours, for formats that carry none.

Colours are picked by index from a fixed palette so the same file always gets the
same colours, and neighbouring labels get clearly different hues.
"""

from __future__ import annotations

import colorsys

# Twelve well-separated hues; after that the golden-angle sequence keeps spreading them.
_PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.902, 0.376, 0.310),
    (0.306, 0.604, 0.847),
    (0.486, 0.753, 0.361),
    (0.957, 0.757, 0.259),
    (0.659, 0.435, 0.804),
    (0.251, 0.753, 0.737),
    (0.945, 0.537, 0.698),
    (0.620, 0.478, 0.318),
    (0.549, 0.835, 0.894),
    (0.843, 0.875, 0.302),
    (0.475, 0.518, 0.945),
    (0.902, 0.608, 0.424),
)


def color_for_index(index: int) -> tuple[float, float, float]:
    """A distinct, reproducible RGB colour (0..1) for the ``index``-th segment."""
    if index < len(_PALETTE):
        return _PALETTE[index]
    hue = (index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.9)
    return (round(r, 6), round(g, 6), round(b, 6))
