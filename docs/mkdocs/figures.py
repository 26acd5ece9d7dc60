"""The coordinates page's picture, drawn as SVG by hand (no plotting library, so the file is
byte-for-byte reproducible): ``python docs/mkdocs/figures.py`` writes
``docs/images/coordinates.svg``; ``tests/test_docs.py`` checks the committed file is what
this script draws.

Left: the patient axes, LPS (segio, DICOM, ITK) against RAS (NIfTI, 3D Slicer's display),
for a patient lying supine, head first, seen from the feet as a CT viewer shows a slice.
Right: a grid of voxels, its index axes i (columns), j (rows), k (slices), the array order
``[k, j, i]`` and the matrix ``ijk_to_lps`` whose columns are the axis vectors.
"""

from __future__ import annotations

import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "images" / "coordinates.svg"
LPS = "#1f5fbf"
RAS = "#c0392b"
INK = "#222222"
GRID = "#888888"


def _arrow(x1: float, y1: float, x2: float, y2: float, color: str, dashed: bool = False) -> str:
    """A line with a filled head at (x2, y2)."""
    angle = math.atan2(y2 - y1, x2 - x1)
    size = 9.0
    left = (x2 - size * math.cos(angle - 0.4), y2 - size * math.sin(angle - 0.4))
    right = (x2 - size * math.cos(angle + 0.4), y2 - size * math.sin(angle + 0.4))
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
        f'stroke-width="2"{dash}/>'
        f'<polygon points="{x2:.1f},{y2:.1f} {left[0]:.1f},{left[1]:.1f} '
        f'{right[0]:.1f},{right[1]:.1f}" fill="{color}"/>'
    )


def _text(x: float, y: float, text: str, color: str = INK, size: int = 14, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" fill="{color}" font-size="{size}" '
        f'font-family="sans-serif"{extra}>{text}</text>'
    )


def _patient_axes() -> list[str]:
    """LPS and RAS from one origin; the body's outline as an axial slice (feet view)."""
    ox, oy = 190.0, 190.0
    parts = [
        _text(30, 30, "Patient axes (supine, head first; seen from the feet)", size=15),
        # an axial slice of the body: the patient's left is on the viewer's right
        f'<ellipse cx="{ox}" cy="{oy}" rx="120" ry="70" fill="#f3ede4" stroke="{GRID}"/>',
        f'<ellipse cx="{ox}" cy="{oy - 62}" rx="14" ry="9" fill="#e5dccd" stroke="{GRID}"/>',
        _text(ox - 16, oy - 80, "nose", GRID, 11),
        _text(ox - 150, oy + 4, "right", GRID, 12),
        _text(ox + 128, oy + 4, "left", GRID, 12),
        # LPS: +x to the patient's left, +y posterior (down in this view), +z superior (away)
        _arrow(ox, oy, ox + 95, oy, LPS),
        _text(ox + 99, oy - 6, "+x L", LPS),
        _arrow(ox, oy, ox, oy + 58, LPS),
        _text(ox + 6, oy + 56, "+y P", LPS),
        f'<circle cx="{ox}" cy="{oy}" r="7" fill="none" stroke="{LPS}" stroke-width="2"/>',
        f'<line x1="{ox - 5}" y1="{oy - 5}" x2="{ox + 5}" y2="{oy + 5}" stroke="{LPS}" '
        'stroke-width="2"/>',
        f'<line x1="{ox - 5}" y1="{oy + 5}" x2="{ox + 5}" y2="{oy - 5}" stroke="{LPS}" '
        'stroke-width="2"/>',
        _text(ox + 10, oy + 20, "+z S (away, to the head)", LPS, 12),
        # RAS: x and y the other way, z the same
        _arrow(ox, oy, ox - 95, oy, RAS, dashed=True),
        _text(ox - 128, oy - 6, "+x R", RAS),
        _arrow(ox, oy, ox, oy - 48, RAS, dashed=True),
        _text(ox + 6, oy - 36, "+y A", RAS),
        _text(30, 300, "LPS: segio, DICOM, ITK, NRRD as segio writes it", LPS, 13),
        _text(30, 320, "RAS: NIfTI affines, 3D Slicer's display, .seg.vtm", RAS, 13),
        _text(30, 340, "(x, y, z) LPS = (−x, −y, z) RAS", INK, 13),
    ]
    return parts


def _voxel_grid() -> list[str]:
    """Three slices of 4 x 3 voxels drawn in an oblique projection, with i, j, k."""
    x0, y0 = 500.0, 130.0
    cell_i, cell_j = 34.0, 26.0  # on screen: i to the right, j down
    dk = (26.0, -22.0)  # on screen: k back and up
    columns, rows, slices = 4, 3, 3
    parts = [_text(430, 30, "Voxels: array[k, j, i]", size=15)]
    for k in reversed(range(slices)):
        sx, sy = x0 + k * dk[0], y0 + k * dk[1]
        fill = "#eef3fb" if k else "#dce7f7"
        parts.append(
            f'<rect x="{sx:.1f}" y="{sy:.1f}" width="{columns * cell_i:.1f}" '
            f'height="{rows * cell_j:.1f}" fill="{fill}" stroke="{GRID}"/>'
        )
        for i in range(1, columns):
            x = sx + i * cell_i
            parts.append(
                f'<line x1="{x:.1f}" y1="{sy:.1f}" x2="{x:.1f}" y2="{sy + rows * cell_j:.1f}" '
                f'stroke="{GRID}" stroke-width="0.7"/>'
            )
        for j in range(1, rows):
            y = sy + j * cell_j
            parts.append(
                f'<line x1="{sx:.1f}" y1="{y:.1f}" x2="{sx + columns * cell_i:.1f}" y2="{y:.1f}" '
                f'stroke="{GRID}" stroke-width="0.7"/>'
            )
    # voxel (i, j, k) = (2, 1, 0) highlighted; its centre is where ijk_to_lps puts (2, 1, 0)
    vx, vy = x0 + 2 * cell_i, y0 + 1 * cell_j
    parts.append(
        f'<rect x="{vx:.1f}" y="{vy:.1f}" width="{cell_i:.1f}" height="{cell_j:.1f}" '
        f'fill="#f5b041" stroke="{INK}"/>'
    )
    parts.append(
        f'<circle cx="{vx + cell_i / 2:.1f}" cy="{vy + cell_j / 2:.1f}" r="3" fill="{INK}"/>'
    )
    parts.append(
        _text(vx - 40, y0 + rows * cell_j + 52, "array[0, 1, 2]: i = 2, j = 1, k = 0", size=12)
    )
    parts.append(
        f'<line x1="{vx + cell_i / 2:.1f}" y1="{vy + cell_j:.1f}" x2="{vx + 10:.1f}" '
        f'y2="{y0 + rows * cell_j + 39:.1f}" stroke="{INK}" stroke-width="0.8"/>'
    )
    # origin: the centre of voxel (0, 0, 0)
    cx, cy = x0 + cell_i / 2, y0 + cell_j / 2
    parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{LPS}"/>')
    parts.append(_text(385, 84, "origin:", LPS, 12))
    parts.append(_text(385, 99, "centre of voxel (0, 0, 0)", LPS, 12))
    parts.append(
        f'<line x1="470" y1="104" x2="{cx - 4:.1f}" y2="{cy - 3:.1f}" stroke="{LPS}" '
        'stroke-width="0.8"/>'
    )
    # index axes
    bottom = y0 + rows * cell_j
    parts.append(_arrow(x0, bottom + 18, x0 + columns * cell_i, bottom + 18, INK))
    parts.append(_text(x0 + columns * cell_i + 6, bottom + 23, "i (column)"))
    parts.append(_arrow(x0 - 16, y0, x0 - 16, bottom, INK))
    parts.append(_text(x0 - 68, bottom + 4, "j (row)"))
    corner = (x0 + columns * cell_i + 6, bottom + 2)
    end = (corner[0] + 3.4 * dk[0], corner[1] + 3.4 * dk[1])
    parts.append(_arrow(corner[0], corner[1], end[0], end[1], INK))
    parts.append(_text(end[0] + 6, end[1] + 4, "k (slice)"))
    lines = [
        "shape = (k, j, i) = (3, 3, 4); size_ijk = (4, 3, 3)",
        "ijk_to_lps · (i, j, k, 1) = voxel centre in LPS mm",
        "its columns: i axis, j axis, k axis (direction × spacing), origin",
        "DICOM: row direction = i axis, column direction = j axis",
    ]
    for n, line in enumerate(lines):
        parts.append(_text(430, 300 + 20 * n, line, size=12))
    return parts


def coordinates_svg() -> str:
    body = "\n".join(_patient_axes() + _voxel_grid())
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="820" height="385" '
        'viewBox="0 0 820 385" role="img" aria-label="LPS and RAS patient axes; voxel '
        'indices i, j, k and the array order [k, j, i]">\n'
        '<rect width="820" height="385" fill="white"/>\n'
        f"{body}\n</svg>\n"
    )


if __name__ == "__main__":
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(coordinates_svg(), encoding="utf-8")
    print(f"wrote {OUT}")
