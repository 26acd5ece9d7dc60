"""Axial, coronal and sagittal slices of a segmentation, with exact-colour outlines.

The planes are true LPS planes (normal S, P and L), not the index planes of the grid: on
an oblique grid a radiologist expects an axial slice to be axial. Each display pixel is a
square of ``mm_per_pixel`` mm whose centre is mapped into the grid and looked up by
nearest neighbour, so the aspect ratio follows the physical size whatever the spacing
and no value is ever blended: a label is read as it is stored.

Display convention is radiological, as on a reading station and in 3D Slicer:

- axial: seen from the feet, patient left on image right, anterior at the top;
- coronal: seen from the front, patient left on image right, superior at the top;
- sagittal: seen from the patient's left, anterior on image left, superior at the top.

Outlines are the boundary pixels of each segment's region on the display grid (a pixel of
the segment with a 4-neighbour outside it), painted with the segment's colour exactly as
8-bit RGB: no antialiasing, so the colour in the picture is the colour in the file. The
fill is the same colour blended over the background at :data:`FILL_ALPHA`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.geometry import Geometry
from segio.model import Segment, Segmentation

__all__ = ["FILL_ALPHA", "VIEWS", "Plane", "View", "grid_bounds", "rgb8", "slice_image"]

#: Opacity of the translucent fill inside each segment's outline.
FILL_ALPHA = 0.35
#: Grey of the segmentation's grid when no reference image is given; black outside it.
NEUTRAL = 56


@dataclass(frozen=True)
class View:
    """One of the three planes: image column and row directions in LPS, the axis fixed."""

    name: str
    right: tuple[float, float, float]  # LPS direction of increasing image column
    down: tuple[float, float, float]  # LPS direction of increasing image row
    axis: int  # LPS axis (0 x, 1 y, 2 z) held at the slice position
    # Letters at the left, right, top and bottom edges of the image.
    edges: tuple[str, str, str, str]


VIEWS = (
    View("axial", (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), 2, ("R", "L", "A", "P")),
    View("coronal", (1.0, 0.0, 0.0), (0.0, 0.0, -1.0), 1, ("R", "L", "S", "I")),
    View("sagittal", (0.0, 1.0, 0.0), (0.0, 0.0, -1.0), 0, ("A", "P", "S", "I")),
)


@dataclass(frozen=True)
class Plane:
    """Display pixels of one view: pixel ``(row, column)`` has its centre at
    ``corner + (column + 0.5) * mm * right + (row + 0.5) * mm * down`` (LPS mm)."""

    view: View
    corner: NDArray[np.float64]
    mm_per_pixel: float
    rows: int
    columns: int

    def points(self) -> NDArray[np.float64]:
        """LPS centres of every display pixel, ``(rows * columns, 3)``, row-major."""
        rows = (np.arange(self.rows) + 0.5) * self.mm_per_pixel
        columns = (np.arange(self.columns) + 0.5) * self.mm_per_pixel
        right, down = np.asarray(self.view.right), np.asarray(self.view.down)
        grid = (
            self.corner[np.newaxis, np.newaxis, :]
            + columns[np.newaxis, :, np.newaxis] * right
            + rows[:, np.newaxis, np.newaxis] * down
        )
        return np.asarray(grid.reshape(-1, 3))


def grid_bounds(geometry: Geometry) -> NDArray[np.float64]:
    """``[[min], [max]]`` LPS of the grid's voxels, their outer faces included."""
    k, j, i = geometry.shape
    corners = np.array(
        [[a, b, c] for a in (-0.5, i - 0.5) for b in (-0.5, j - 0.5) for c in (-0.5, k - 0.5)]
    )
    points = geometry.ijk_to_points(corners)
    return np.stack([points.min(axis=0), points.max(axis=0)])


def plane_for(
    view: View, bounds: NDArray[np.float64], position: NDArray[np.float64], size: int
) -> Plane:
    """The view's plane through ``position``, covering ``bounds`` and fitted into a
    ``size`` x ``size`` panel with square pixels (the longer side fills it)."""
    right, down = np.asarray(view.right), np.asarray(view.down)
    corners = np.array(
        [[x, y, z] for x in bounds[:, 0] for y in bounds[:, 1] for z in bounds[:, 2]]
    )
    across, along = corners @ right, corners @ down
    width, height = float(np.ptp(across)), float(np.ptp(along))
    mm = max(width, height, 1e-6) / size
    columns = max(1, min(size, round(width / mm)))
    rows = max(1, min(size, round(height / mm)))
    corner = across.min() * right + along.min() * down
    corner[view.axis] = position[view.axis]
    return Plane(view, corner, mm, rows, columns)


def sample(
    geometry: Geometry, array: NDArray[Any] | None, points: NDArray[np.float64]
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Nearest-neighbour values of ``array`` (on ``geometry``) at LPS ``points``, and
    which points fall inside the grid (the others read 0); with no array, the values
    are the inside flags."""
    ijk = np.rint(geometry.points_to_ijk(points)).astype(np.int64)
    k, j, i = geometry.shape
    inside = (
        (ijk[:, 0] >= 0)
        & (ijk[:, 0] < i)
        & (ijk[:, 1] >= 0)
        & (ijk[:, 1] < j)
        & (ijk[:, 2] >= 0)
        & (ijk[:, 2] < k)
    )
    if array is None:
        return inside, inside
    values = np.zeros(len(points), dtype=array.dtype)
    hit = ijk[inside]
    values[inside] = array[hit[:, 2], hit[:, 1], hit[:, 0]]
    return values, inside


def rgb8(color: tuple[float, float, float]) -> tuple[int, int, int]:
    """A segment's colour as the 8-bit RGB a PNG stores."""
    r, g, b = (round(min(max(float(c), 0.0), 1.0) * 255) for c in color)
    return r, g, b


def _segment_index(
    segmentation: Segmentation, plane: Plane, chosen: list[Segment]
) -> list[NDArray[np.int32]]:
    """Per layer, the ``(rows, columns)`` image of which chosen segment (1-based index
    into ``chosen``; 0 none) each display pixel shows."""
    points = plane.points()
    images = []
    by_layer: dict[int, list[tuple[int, Segment]]] = {}
    for number, segment in enumerate(chosen, start=1):
        by_layer.setdefault(segment.layer, []).append((number, segment))
    for index, members in sorted(by_layer.items()):
        layer = segmentation.layers[index]
        values, _ = sample(layer.geometry, layer.array, points)
        found = np.zeros(len(points), dtype=np.int32)
        if layer.max_fraction is not None:  # one segment: at least half inside
            inside = (values.astype(np.int64) * 2 >= layer.max_fraction) & (values > 0)
            found[inside] = members[0][0]
        else:
            for number, segment in members:
                found[values == segment.label_value] = number
        images.append(found.reshape(plane.rows, plane.columns))
    return images


def boundary(labels: NDArray[np.int32]) -> NDArray[np.bool_]:
    """Pixels of a segment with a 4-neighbour that is not of it (image edge included)."""
    padded = np.pad(labels, 1, constant_values=0)
    centre = padded[1:-1, 1:-1]
    differs = (
        (padded[:-2, 1:-1] != centre)
        | (padded[2:, 1:-1] != centre)
        | (padded[1:-1, :-2] != centre)
        | (padded[1:-1, 2:] != centre)
    )
    return np.asarray(differs & (centre > 0))


def slice_image(
    segmentation: Segmentation,
    plane: Plane,
    chosen: list[Segment],
    background: NDArray[np.uint8],
) -> NDArray[np.uint8]:
    """The plane's RGB image: ``background`` (grey, ``(rows, columns)``) with every
    chosen segment filled translucently and outlined in its exact colour."""
    palette = np.zeros((len(chosen) + 1, 3), dtype=np.float64)
    for number, segment in enumerate(chosen, start=1):
        palette[number] = rgb8(segment.color)
    image = np.repeat(background[:, :, np.newaxis].astype(np.float64), 3, axis=2)
    layers = _segment_index(segmentation, plane, chosen)
    for labels in layers:
        filled = labels > 0
        image[filled] = (1 - FILL_ALPHA) * image[filled] + FILL_ALPHA * palette[labels[filled]]
    result = np.rint(image).astype(np.uint8)
    for labels in layers:  # outlines last, so a fill never tints one
        edge = boundary(labels)
        result[edge] = palette[labels[edge]].astype(np.uint8)
    return result
