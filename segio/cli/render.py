"""Terminal tables for ``segio info`` and ``segio formats`` (imports rich).

Every string that comes from a file (names, terminology, the path) is given to rich as
:class:`~rich.text.Text`, never as markup: a segment named ``[/bold]`` would otherwise be
a markup error, and ``[link=...]`` a hidden link. Control characters are shown escaped
(:func:`segio.cli.printable`), so names cannot send escape sequences to the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from segio.cli import printable


def _console() -> Console:
    """A console; when piped, wide enough that names are never cut."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def render_info(summary: dict[str, Any]) -> None:
    console = _console()
    grid = summary["geometry"]
    title = f"{summary['file']}  ({summary['format']}, {summary['layers']} layer(s)"
    title += ", overlapping)" if summary["overlapping"] else ")"
    console.print(Text(printable(title), style="bold"))
    if grid is not None:
        console.print(
            Text(
                f"grid {' x '.join(str(n) for n in grid['size_ijk'])} voxels, "
                f"spacing {_vector(grid['spacing'])} mm, "
                f"origin {_vector(grid['origin_lps'])} LPS"
            )
        )
        console.print(
            Text("axes (LPS) " + "  ".join(_vector(axis) for axis in grid["directions_lps"]))
        )
    rows = [_segment_cells(segment) for segment in summary["segments"]]
    if len(rows) > PLAIN_ABOVE:
        _print_plain(rows)
    else:
        table = Table(show_lines=False)
        for column in ("", *_COLUMNS):
            table.add_column(column, justify="right" if column in _RIGHT else "left")
        for segment, cells in zip(summary["segments"], rows, strict=True):
            table.add_row(Text("██", style=segment["color_hex"]), *(Text(c) for c in cells))
        console.print(table)
    _print_points_and_rois(console, summary)


def _print_points_and_rois(console: Console, summary: dict[str, Any]) -> None:
    """The point annotations, and the ROIs of a file whose ROIs could not be placed."""
    points = summary.get("points") or []
    if points:
        table = Table(title=f"{len(points)} point annotation(s)", title_justify="left")
        for column in ("", "name", "position (LPS mm)", "image"):
            table.add_column(column)
        for point in points[:PLAIN_ABOVE]:
            cells = [point["name"], _vector(point["position_lps"]), point["image_uid"] or ""]
            table.add_row(
                Text("██", style=point["color_hex"]), *(Text(printable(c)) for c in cells)
            )
        console.print(table)
    unplaced = summary.get("unplaced")
    if unplaced:
        console.print(Text(printable(unplaced["reason"]), style="yellow"))
        rois = unplaced["rois"]
        table = Table(title=f"{len(rois)} ROI(s), not placed", title_justify="left")
        for column in ("name", "type", "image", "points"):
            table.add_column(column, justify="right" if column == "points" else "left")
        for roi in rois[:PLAIN_ABOVE]:
            keys = ("name", "type", "image_uid", "points")
            cells = ["" if roi.get(key) is None else str(roi[key]) for key in keys]
            table.add_row(*(Text(printable(c)) for c in cells))
        console.print(table)


#: Above this many segments ``info`` prints plain aligned lines: rich measures every cell
#: in Python, which took 44 s for 65,535 segments; plain lines take well under a second.
PLAIN_ABOVE = 1000
_COLUMNS = ("id", "name", "layer", "label", "colour", "terminology", "voxels", "extent i,j,k")
_RIGHT = {"layer", "label", "voxels"}


def _segment_cells(segment: dict[str, Any]) -> list[str]:
    extent = segment["extent"]
    cells = [
        segment["id"],
        segment["name"],
        "" if segment["layer"] is None else str(segment["layer"]),
        "" if segment["label"] is None else str(segment["label"]),
        segment["color_hex"],
        _terminology(segment["terminology"]),
        _size(segment),
        ("empty" if segment["contours"] is None and segment["triangles"] is None else "")
        if extent is None
        else " ".join(f"{extent[a][0]}-{extent[a][1]}" for a in ("i", "j", "k")),
    ]
    return [printable(c) for c in cells]


def _print_plain(rows: list[list[str]]) -> None:
    """The segment table as aligned plain text, in one write."""
    widths = [max(len(column), *(len(r[n]) for r in rows)) for n, column in enumerate(_COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if column in _RIGHT else cell.ljust(width)
            for cell, width, column in zip(cells, widths, _COLUMNS, strict=True)
        ).rstrip()

    sys.stdout.write("\n".join([line(_COLUMNS), *(line(r) for r in rows)]) + "\n")


def _size(segment: dict[str, Any]) -> str:
    """Voxels for a labelmap, contours or triangles for the shapes without voxels."""
    if segment["contours"] is not None:
        images = segment.get("images")
        return f"{segment['contours']} contours" + (f", {images} images" if images else "")
    if segment["triangles"] is not None:
        closed = segment.get("surface_closed", True) is not False
        return f"{segment['triangles']:,} triangles" + ("" if closed else ", open")
    return f"{segment['voxels']:,}"


def render_formats(rows: list[dict[str, Any]]) -> None:
    """Formats, then label tables, then the plugins left out (in red, with the reason)."""
    console = _console()
    table = Table()
    for column in ("format", "suffixes", "read", "write", "installed", "description"):
        table.add_column(column)
    for row in (r for r in rows if r["kind"] == "format"):
        cells = [
            row["name"],
            " ".join(row["suffixes"]),
            "yes" if row["read"] else "",
            "yes" if row["write"] else "",
            "yes" if row["installed"] else row["install"],
            row["description"],
        ]
        table.add_row(*(Text(printable(c)) for c in cells))
    console.print(table)
    title = "label tables (-O sidecar=NAME, -I labels=FILE; with codes: -I terminology=FILE)"
    tables = Table(title=title, title_justify="left")
    for column in ("label table", "sidecar", "write", "description"):
        tables.add_column(column)
    for row in (r for r in rows if r["kind"] == "label-table"):
        cells = [row["name"], " ".join(row["suffixes"]), "yes" if row["write"] else ""]
        tables.add_row(*(Text(printable(c)) for c in [*cells, row["description"]]))
    console.print(tables)
    for row in (r for r in rows if r["kind"] == "broken-plugin"):
        text = f"broken plugin {row['name']} ({row['description']}): {row['broken']}"
        console.print(Text(printable(text), style="red"))


def _vector(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


def _terminology(codes: dict[str, list[str]] | None) -> str:
    if not codes:
        return ""
    text = codes["type"][2]
    if "type_modifier" in codes:
        text += f", {codes['type_modifier'][2]}"
    if "region" in codes:
        text += f" in {codes['region'][2]}"
    return f"{text} ({codes['category'][2]})"
