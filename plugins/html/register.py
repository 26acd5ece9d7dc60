"""Entry point of the HTML viewer plugin: the declaration only (nothing heavy imported)."""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl
from segio.representations import Representation


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="html",
            description="Self-contained 3D viewer page (three.js inlined, meshes embedded): "
            "segment list, visibility, opacity, terminology folders; opens from disk",
            suffixes=(".html", ".htm"),
            writer="segio_plugins.html.page:write",
            writes=frozenset({Representation.CLOSED_SURFACE}),
            extra="mesh",  # a labelmap becomes surfaces through the VTK converters
            write_options={
                "title": "page title (default: the file name without its suffix)",
                "folders": "true (default): folders by terminology category and type where "
                "segments have terminology; false: one flat list",
            },
        )
    ]
