"""One picture of a segmentation: three slices, a 3D view and a legend, as a PNG.

Layout (3D Slicer's four-up): axial top left, 3D top right, coronal bottom left,
sagittal bottom right, each a ``size`` x ``size`` panel; the legend (colour swatch and
name of every segment shown) beside them. The slices are described in
:mod:`segio.preview.slices`, the 3D view in :mod:`segio.preview.render3d`.

The slices cross at ``position`` (LPS mm), by default the centre of the box that holds
the voxels of the segments shown; they cover the reference image when one is given (its
values windowed to grey), else the segmentation's grid (a neutral grey, black outside).
Pillow composes the picture and writes the PNG (the ``preview`` extra).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from segio.errors import MissingDependencyError, ValidationError, WriteError
from segio.geometry import Geometry
from segio.model import Segment, Segmentation
from segio.preview.slices import (
    NEUTRAL,
    VIEWS,
    Plane,
    grid_bounds,
    plane_for,
    rgb8,
    sample,
    slice_image,
)
from segio.representations import Representation

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DEFAULT_SIZE", "panel_boxes", "snapshot", "snapshot_image"]

PathLike = str | os.PathLike[str]
#: Side of each of the four panels, in pixels.
DEFAULT_SIZE = 320
#: Smallest panel side that leaves room for the labels.
MIN_SIZE = 64
MAX_SIZE = 4096
_GAP = 4
_BACKDROP = (16, 16, 16)
_TEXT = (220, 220, 220)
#: Percentiles of the reference values (on the three slices) mapped to black and white.
WINDOW_PERCENTILES = (1.0, 99.0)


def _pillow() -> Any:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise MissingDependencyError(
            "snapshots need Pillow, which is not installed",
            hint="pip install 'segio[preview]'",
        ) from exc
    return Image, ImageDraw, ImageFont


def snapshot(
    segmentation: Segmentation,
    output: PathLike,
    *,
    reference: tuple[NDArray[Any], Geometry] | None = None,
    position: Sequence[float] | str | None = None,
    size: int = DEFAULT_SIZE,
    segments: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
    force: bool = False,
) -> Path:
    """Write the snapshot PNG to ``output`` (atomically; an existing file only with
    ``force``) and return its path. Arguments as :func:`snapshot_image`."""
    picture = snapshot_image(
        segmentation,
        reference=reference,
        position=position,
        size=size,
        segments=segments,
        window=window,
    )
    from segio.fileio.outputs import OutputFiles

    target = Path(output)
    source = segmentation.provenance.get("source_path")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    with OutputFiles(force=force, main=target, inputs=[source] if source else []) as files:
        temporary = files.stage(target)
        try:
            temporary.write_bytes(buffer.getvalue())
        except OSError as exc:
            raise WriteError(f"cannot write the picture: {exc.strerror}", path=target) from exc
    return target


def snapshot_image(
    segmentation: Segmentation,
    *,
    reference: tuple[NDArray[Any], Geometry] | None = None,
    position: Sequence[float] | str | None = None,
    size: int = DEFAULT_SIZE,
    segments: Sequence[str] | None = None,
    window: tuple[float, float] | None = None,
) -> Image.Image:
    """The snapshot as a Pillow RGB image.

    ``reference`` is an image's values ``[k, j, i]`` and grid
    (:func:`segio.analysis.images.read_image`); ``position`` the LPS point where the
    slices cross, or a segment (id or name) whose centre they cross at; ``size`` the side
    of each panel in pixels; ``segments`` the ids or names shown (default: all);
    ``window`` the reference values shown black and white (default: the 1st and 99th
    percentiles of the values on the slices).
    """
    pil_image, pil_draw, pil_font = _pillow()
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ValidationError(
            f"a snapshot panel of {size} pixels is outside {MIN_SIZE}..{MAX_SIZE}",
            hint="give --size between those",
        )
    size = int(size)
    source = segmentation.provenance.get("source_path")
    chosen = _chosen(segmentation, segments)
    if len(chosen) < len(segmentation.segments):  # surfaces for these alone
        from segio.operations.segments import keep

        segmentation = keep(segmentation, [s.id for s in chosen])
        chosen = [segmentation.segments[s.id] for s in chosen]
    labelmap = _labelmap(segmentation, reference)
    shown = [labelmap.segments[s.id] for s in chosen]
    display = reference[1] if reference is not None else labelmap.require_geometry()
    bounds = grid_bounds(display)
    centre = _position(labelmap, shown, position, bounds, source)
    planes = [plane_for(view, bounds, centre, size) for view in VIEWS]
    backgrounds = _backgrounds(planes, labelmap.require_geometry(), reference, window)
    slices = [slice_image(labelmap, p, shown, b) for p, b in zip(planes, backgrounds, strict=True)]
    from segio.preview.render3d import render_surfaces

    surfaces = _surfaces(segmentation, labelmap, chosen)
    derived = segmentation.source_representation is not Representation.CLOSED_SURFACE
    colors = [rgb8(s.color) for s in chosen]
    view3d = render_surfaces(surfaces, colors, size, (0, 0, 0), cull=derived)

    font = _font(pil_font, max(10, size // 26))
    legend = _legend(pil_image, pil_draw, font, chosen, 2 * size + _GAP)
    width = 2 * size + _GAP + _GAP + legend.width
    picture = pil_image.new("RGB", (width + 2 * _GAP, 2 * size + 3 * _GAP), _BACKDROP)
    cells = list(panel_boxes(size).values())
    panels = [slices[0], view3d, slices[1], slices[2]]
    titles = [_title(planes[0]), "3D", _title(planes[1]), _title(planes[2])]
    draw = pil_draw.Draw(picture)
    for (x, y, _, _), panel, title in zip(cells, panels, titles, strict=True):
        draw.rectangle([x, y, x + size - 1, y + size - 1], fill=(0, 0, 0))
        dx, dy = (size - panel.shape[1]) // 2, (size - panel.shape[0]) // 2
        picture.paste(pil_image.fromarray(panel, "RGB"), (x + dx, y + dy))
        draw.text((x + 4, y + 3), title, fill=_TEXT, font=font)
    for (x, y, _, _), plane in zip([cells[0], cells[2], cells[3]], planes, strict=True):
        _edge_letters(draw, font, plane, x, y, size)
    picture.paste(legend, (2 * size + 2 * _GAP + _GAP, _GAP))
    return cast("Image.Image", picture)


def panel_boxes(size: int) -> dict[str, tuple[int, int, int, int]]:
    """``(left, top, right, bottom)`` of each view in the picture (right and bottom
    excluded, as Pillow's crop takes them); the legend starts right of the 3D view."""
    first, second = _GAP, size + 2 * _GAP
    return {
        name: (x, y, x + size, y + size)
        for name, (x, y) in zip(
            ("axial", "3d", "coronal", "sagittal"),
            [(first, first), (second, first), (first, second), (second, second)],
            strict=True,
        )
    }


def _chosen(segmentation: Segmentation, keys: Sequence[str] | None) -> list[Segment]:
    if keys is None:
        found = list(segmentation.segments.values())
    else:
        from segio.operations.keys import resolve_keys

        found = [segmentation.segments[key] for key in resolve_keys(segmentation, keys)]
    if not found:
        raise ValidationError(
            "there is no segment to show",
            path=segmentation.provenance.get("source_path"),
            hint="segio info lists the segments",
        )
    return found


def _labelmap(
    segmentation: Segmentation, reference: tuple[NDArray[Any], Geometry] | None
) -> Segmentation:
    """The segmentation as voxels: itself for a labelmap, else its binary labelmap
    (surfaces and contours rasterised on the reference grid when one is given)."""
    if segmentation.source_representation in (
        Representation.BINARY_LABELMAP,
        Representation.FRACTIONAL_LABELMAP,
    ):
        return segmentation
    grid = None if reference is None else reference[1]
    return segmentation.representation(Representation.BINARY_LABELMAP, geometry=grid)


def _surfaces(
    segmentation: Segmentation, labelmap: Segmentation, chosen: list[Segment]
) -> list[Any]:
    """The closed surface of each chosen segment: the source meshes when surfaces are
    the source, else the derived (cached) closed-surface representation."""
    if segmentation.source_representation is Representation.CLOSED_SURFACE:
        meshes = segmentation.surfaces
    else:
        meshes = labelmap.representation(Representation.CLOSED_SURFACE).surfaces
    from segio.surfaces import Surface

    empty = Surface(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    return [meshes.get(s.id, empty) for s in chosen]


def _position(
    labelmap: Segmentation,
    shown: list[Segment],
    position: Sequence[float] | str | None,
    bounds: NDArray[np.float64],
    source: str | None,
) -> NDArray[np.float64]:
    """Where the slices cross: given, the centre of a named segment, or of those shown."""
    if isinstance(position, str):
        from segio.operations.keys import resolve

        segment = resolve(labelmap, position)
        return _centre(labelmap, [segment], bounds, source, named=position)
    if position is None:
        return _centre(labelmap, shown, bounds, source)
    point = np.asarray([float(v) for v in position], dtype=np.float64)
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise ValidationError(f"a slice position is three numbers x,y,z, got {list(position)}")
    low, high = bounds
    if np.any(point < low) or np.any(point > high):
        box = ", ".join(f"{a:.1f}..{b:.1f}" for a, b in zip(low, high, strict=True))
        raise ValidationError(
            f"the slice position {', '.join(f'{v:g}' for v in point)} (LPS mm) is outside "
            f"the image",
            path=source,
            hint=f"give x, y, z within {box}",
        )
    return point


def _centre(
    labelmap: Segmentation,
    segments: list[Segment],
    bounds: NDArray[np.float64],
    source: str | None,
    named: str | None = None,
) -> NDArray[np.float64]:
    """Where the slices through ``segments`` cross.

    One segment: the centre of the LPS box holding its voxels. Several: on each axis
    independently, the centre of one of them chosen to cut the most segments' boxes
    (ties: the one nearest the centre of all of them), since the centre of several
    segments may lie between them and cut none (organs apart, lesions in a liver). The
    image's centre when all are empty; an empty named segment is refused.
    """
    extents = labelmap.extents()
    present = [box for box in (extents.get(s.id) for s in segments) if box is not None]
    if not present:
        if named is not None:
            raise ValidationError(
                f"segment {named!r} is empty: it has no centre to slice through",
                path=source,
                hint="give --position x,y,z or another segment",
            )
        return np.asarray((bounds[0] + bounds[1]) / 2)
    geometry = labelmap.require_geometry()
    corners = np.asarray(
        [
            [[i, j, k] for i in (i0, i1) for j in (j0, j1) for k in (k0, k1)]
            for (k0, k1), (j0, j1), (i0, i1) in present
        ],
        dtype=np.float64,
    )  # (segments, 8, 3)
    points = geometry.ijk_to_points(corners.reshape(-1, 3)).reshape(corners.shape)
    low, high = points.min(axis=1), points.max(axis=1)  # (segments, 3) LPS boxes
    centres = (low + high) / 2
    middle = (low.min(axis=0) + high.max(axis=0)) / 2
    # cuts[s, t, axis]: the plane at segment s's centre cuts segment t's box.
    cuts = (centres[:, None, :] >= low[None, :, :]) & (centres[:, None, :] <= high[None, :, :])
    count = cuts.sum(axis=1)  # (segments, 3)
    best = np.lexsort((np.abs(centres - middle), -count), axis=0)[0]
    return np.asarray(centres[best, np.arange(3)])


def _backgrounds(
    planes: list[Plane],
    grid: Geometry,
    reference: tuple[NDArray[Any], Geometry] | None,
    window: tuple[float, float] | None,
) -> list[NDArray[np.uint8]]:
    """Grey images of the planes: the windowed reference, or the grid in neutral grey."""
    if reference is None:
        grey = []
        for plane in planes:
            _, inside = sample(grid, None, plane.points())
            grey.append((inside * NEUTRAL).astype(np.uint8).reshape(plane.rows, plane.columns))
        return grey
    values, geometry = reference
    sampled = []
    for plane in planes:
        found, inside = sample(geometry, values, plane.points())
        image = found.astype(np.float64)
        image[~inside] = np.nan
        sampled.append(image.reshape(plane.rows, plane.columns))
    if window is None:
        finite = np.concatenate([s[np.isfinite(s)] for s in sampled])
        low, high = (
            np.percentile(finite, WINDOW_PERCENTILES) if finite.size else np.array([0.0, 1.0])
        )
    else:
        low, high = window
    span = float(high - low)
    grey = []
    for image in sampled:
        if span > 0:
            scaled = np.clip((image - low) / span, 0.0, 1.0) * 255
        else:  # a flat image: mid grey, so the outlines stand out
            scaled = np.where(np.isfinite(image), float(NEUTRAL * 2), np.nan)
        grey.append(np.nan_to_num(np.rint(scaled), nan=0.0).astype(np.uint8))
    return grey


def _font(ImageFont: Any, size: int) -> Any:
    """DejaVu Sans when the system has it (Latin, Greek, Cyrillic, Hebrew, Arabic...),
    else Pillow's own font (Latin only); neither draws CJK names (boxes instead)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _title(plane: Plane) -> str:
    """The view and where it cuts: ``Axial 12.5 mm S`` (LPS coordinate, signed by side)."""
    value = float(plane.corner[plane.view.axis])
    letters = ("RL", "AP", "IS")[plane.view.axis]
    side = letters[1] if value >= 0 else letters[0]
    return f"{plane.view.name.capitalize()} {abs(value):.1f} mm {side}"


def _edge_letters(draw: Any, font: Any, plane: Plane, x: int, y: int, size: int) -> None:
    """Patient directions at the middle of each edge of a slice panel."""
    left, right, top, bottom = plane.view.edges
    pad = 3
    height = font.getbbox("X")[3]
    draw.text((x + pad, y + size // 2 - height // 2), left, fill=_TEXT, font=font)
    draw.text(
        (x + size - pad - font.getlength(right), y + size // 2 - height // 2),
        right,
        fill=_TEXT,
        font=font,
    )
    title_end = x + 4 + font.getlength(_title(plane)) + 12
    top_y = y + pad if x + size // 2 > title_end else y + pad + height + 6  # below the title
    draw.text((x + size // 2, top_y), top, fill=_TEXT, font=font)
    draw.text((x + size // 2, y + size - pad - height - 2), bottom, fill=_TEXT, font=font)


def _legend(Image: Any, ImageDraw: Any, font: Any, segments: list[Segment], height: int) -> Any:
    """Swatch and name of each segment, in columns as tall as the panels."""
    line = int(font.getbbox("Ag")[3]) + 6
    swatch = line - 6
    per_column = max(1, height // line)
    columns = [segments[n : n + per_column] for n in range(0, len(segments), per_column)]
    widths = [
        swatch + 6 + int(max(font.getlength(s.name) for s in column)) + 12 for column in columns
    ]
    legend = Image.new("RGB", (sum(widths), height), _BACKDROP)
    draw = ImageDraw.Draw(legend)
    x = 0
    for column, width in zip(columns, widths, strict=True):
        for row, segment in enumerate(column):
            y = row * line + 3
            draw.rectangle([x, y, x + swatch - 1, y + swatch - 1], fill=rgb8(segment.color))
            draw.text((x + swatch + 6, y - 1), segment.name, fill=_TEXT, font=font)
        x += width
    return legend
