"""MkDocs build hook: the format matrix, written from the registered ``FormatSpec``s.

The matrix page (``formats/matrix.md``) is generated at every build and never committed,
so it cannot go stale: a format, suffix or option added to a plugin's declaration appears
in the next build. Only segio's own formats are listed (the entry points named in
``pyproject.toml``), not whatever outside plugin happens to be installed where the site is
built. ``tests/test_docs.py`` imports :func:`matrix` to check what the page says.

Docstrings are written for Sphinx-style readers; :func:`on_page_content` turns their roles
into links of the API reference.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MATRIX = "formats/matrix.md"
#: A Sphinx role in a docstring as Markdown renders it (``:class:`~segio.model.Segment```).
_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):<code>(~?)([\w.]+)(\(\))?</code>"
)

#: Format name -> the page that describes it (relative to docs/formats/).
PAGES = {
    "seg-nrrd": "seg-nrrd.md",
    "nrrd": "labelmaps.md",
    "nifti": "labelmaps.md",
    "dicom-seg": "dicom-seg.md",
    "rtstruct": "rtstruct.md",
    "osirix": "osirix.md",
    "sliceomatic": "sliceomatic.md",
    "markups": "points.md",
    "stl": "meshes.md",
    "obj": "meshes.md",
    "ply": "meshes.md",
    "vtk": "meshes.md",
    "seg-vtm": "meshes.md",
    "gltf": "meshes.md",
    "3mf": "meshes.md",
    "html": "../html-viewer.md",
}


def builtin_registry() -> Any:
    """A registry of segio's own plugins, from the entry points in ``pyproject.toml`` (not
    from what is installed)."""
    from segio.registry import Registry

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    registry = Registry(load_entry_points=False)
    for name, target in project["project"]["entry-points"]["segio"].items():
        registry.register(importlib.import_module(target), name)
    return registry


def builtin_formats() -> dict[str, Any]:
    """segio's own formats by name."""
    return dict(sorted(builtin_registry().formats.items()))


def install(spec: Any, converters: list[Any]) -> str:
    """What to install for a format: its own extra, and for a format that holds no
    labelmap, the extra of the converters between it and labelmaps (VTK for meshes)."""
    from segio.representations import Representation

    cell = f"`segio[{spec.extra}]`" if spec.requires and spec.extra else "core"
    if Representation.BINARY_LABELMAP not in spec.writes:
        extras = sorted(
            {c.extra for c in converters if c.extra and {c.source, c.target} & spec.writes}
        )
        if extras:
            cell += "; labelmaps: " + ", ".join(f"`segio[{e}]`" for e in extras)
    return cell


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def matrix() -> str:
    """The Markdown of the format matrix page."""
    registry = builtin_registry()
    formats = dict(sorted(registry.formats.items()))
    converters = registry.converters
    lines = [
        "# Format matrix",
        "",
        "Generated from the `FormatSpec` each built-in format plugin declares (the same",
        "declarations `segio formats` lists), at every build of this site. Read and write",
        "options are passed as `-I name=value` and `-O name=value` on the command line, as",
        "keyword arguments in Python. *Reference* says whether writing needs the source",
        "image series (`--reference`); *folder* whether the reader also takes a folder;",
        "*writer takes* the representations the writer is given (others are converted first);",
        "*install* what `pip install` needs beyond segio's core.",
        "",
        "| format | suffixes | read | write | writer takes | folder | reference | points "
        "| install |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, spec in formats.items():
        page = PAGES.get(name)
        title = f"[`{name}`]({page})" if page else f"`{name}`"
        writes = ", ".join(sorted(r.value.lower() for r in spec.writes)) if spec.writer else ""
        row = [
            title,
            " ".join(f"`{s}`" for s in spec.suffixes),
            "yes" if spec.reader else "",
            "yes" if spec.writer else "",
            writes,
            "yes" if spec.directory else "",
            "required" if spec.reference_required else "",
            "yes" if spec.points else "",
            install(spec, converters),
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Options", ""]
    for name, spec in formats.items():
        lines += [f"### `{name}`", "", _cell(spec.description), ""]
        rows = [("read", k, v) for k, v in spec.read_options.items()]
        rows += [("write", k, v) for k, v in spec.write_options.items()]
        if not rows:
            lines += ["No options.", ""]
            continue
        lines += ["| side | option | meaning |", "|---|---|---|"]
        lines += [f"| {side} | `{key}` | {_cell(text)} |" for side, key, text in rows]
        lines.append("")
    return "\n".join(lines)


def on_files(files: Any, config: Any) -> Any:
    """Add the generated format matrix to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, MATRIX, content=matrix()))
    return files


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """The docstrings' Sphinx roles as links to the API reference where it documents the
    target (mkdocs-autorefs resolves them once every page is built), else as code; the
    ``::`` that opens a reST literal block as one colon."""

    def link(match: re.Match[str]) -> str:
        target = match.group(2)
        shown = target.rsplit(".", 1)[-1] if match.group(1) else target
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    return _ROLE.sub(link, html).replace("::</p>", ":</p>")  # reST's literal-block marker
