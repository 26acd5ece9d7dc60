"""The viewer page: segments' meshes, names, colours and terminology in one HTML file.

Coordinates: the page's three.js world is segio's glTF convention in millimetres,
``X = L``, ``Y = S``, ``Z = A = -P`` (a rotation of LPS, so windings and normals keep
their sense): +Y is up, and the first view looks from the front (anterior), the
patient's left on the right of the screen.

Size: the meshes are stored quantised, as KHR_mesh_quantization does, then compressed.
Each segment's vertices become uint16 codes on its bounding box with one step for all
axes (1/65534 of the box's longest side, 0.005 mm for a 30 cm organ). Codes are
delta-coded along the vertex order and triangle indices along the index order (zigzag),
both split into byte planes; the whole buffer is gzip-compressed and base64 text. The
page inflates it with the browser's ``DecompressionStream`` and computes the normals
(``computeVertexNormals``). For the 24-segment 512 x 512 x 200 case this is a fifth of
the float GLB (docs/html-viewer.md). three.js is the pinned bundle of ``vendor/``,
gzip-compressed the same way and imported from a ``blob:`` URL.

Safety: every string from the segmentation (names, terminology, title) goes into the
page either HTML-escaped (the title) or inside a JSON block whose ``<``, ``>`` and ``&``
are ``\\u`` escapes, and the page's code puts it in the DOM as text only, so no name can
end a ``<script>`` or add markup. A Content-Security-Policy forbids any request other
than ``data:`` and ``blob:``: the page cannot reach the network even if a browser
extension or a later edit tried.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio._version import __version__
from segio.errors import ValidationError
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.terminology import Code, Terminology

from ..meshes.common import Part, flag, parts_of
from ..meshes.gltfparse import LPS_TO_GLTF

#: The pinned three.js release in ``vendor/`` (checked by the tests against the bundle).
THREE_VERSION = "0.187.0"
_BUNDLE = "three-viewer.min.js"
_LEVELS = 65534  # uint16 codes 0..65534 on each segment's bounding box
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src data: blob:"
)


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    title: str | None = None,
    folders: object = True,
) -> None:
    """One HTML file holding the viewer, three.js and every segment's mesh."""
    parts = parts_of(segmentation)
    name = path.stem if title is None else str(title)
    payload = page(parts, name, folders=flag(folders, "folders"))
    files.stage(path).write_bytes(payload.encode("utf-8"))


def page(parts: list[Part], title: str, *, folders: bool = True) -> str:
    """The complete HTML text."""
    segments, blob = encode(parts)
    if folders:
        for segment, path in zip(segments, folder_paths(parts), strict=True):
            segment["folder"] = path
    generator = f"segio {__version__}"
    metadata = {
        "title": title,
        "generator": generator,
        "three": THREE_VERSION,
        "axes": "X=L, Y=S, Z=A (mm)",
        "segments": segments,
    }
    template = _resource("template.html")
    fields = {
        "TITLE": html.escape(title),
        "CSP": _CSP,
        "GENERATOR": html.escape(generator),
        "METADATA": script_json(metadata),
        "MESHES": base64.b64encode(_gzip(blob)).decode("ascii"),
        "THREE": _three_bundle(),
        "VIEWER": _resource("viewer.js"),
    }
    # One pass: text put in (a title "@CSP@", a bundle's "@x@") is never scanned again.
    return re.sub(r"@([A-Z]+)@", lambda found: fields[found.group(1)], template)


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def encode(parts: list[Part]) -> tuple[list[dict[str, Any]], bytes]:
    """Each segment's description and the binary buffer of all meshes (see module doc).

    Per segment with triangles: the low then the high bytes of the delta-coded uint16
    vertex codes (``3 n`` bytes each), then the four byte planes of the zigzag-coded index
    deltas (``3 m`` bytes each); ``origin + code * step`` gives the vertex in millimetres.
    """
    described: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for part in parts:
        segment: dict[str, Any] = {
            "id": part.id,
            "name": part.name,
            "color": [round(float(c), 6) for c in (part.color or (1.0, 1.0, 1.0))],
            "opacity": 1.0 if part.opacity is None else float(part.opacity),
            "vertices": len(part.surface.vertices),
            "triangles": len(part.surface.faces),
        }
        if part.terminology is not None:
            segment["terminology"] = terminology_fields(part.terminology)
        described.append(segment)
        if part.surface.is_empty:
            continue
        points = part.surface.vertices @ LPS_TO_GLTF.T
        low = points.min(axis=0)
        extent = float((points.max(axis=0) - low).max())
        step = extent / _LEVELS if extent > 0 else 1.0
        codes = np.round((points - low) / step).astype(np.uint16)
        segment["origin"] = [float(x) for x in low]
        segment["step"] = step
        chunks += _planes(np.diff(codes, axis=0, prepend=np.uint16(0)), 2)
        indices = part.surface.faces.astype(np.int64).ravel()
        delta = np.diff(indices, prepend=0)
        chunks += _planes(((delta << 1) ^ (delta >> 63)).astype(np.uint32), 4)
    return described, b"".join(chunks)


def _planes(values: NDArray[Any], width: int) -> list[bytes]:
    """Little-endian byte planes: all first bytes, then all second bytes, ..."""
    data = np.ascontiguousarray(values, dtype=f"<u{width}").reshape(-1).view(np.uint8)
    return [data[k::width].tobytes() for k in range(width)]


def terminology_fields(term: Terminology) -> dict[str, str]:
    """Meaning and code of each part the terminology has, for the hover text."""
    fields: dict[str, str] = {}
    named: list[tuple[str, Code | None]] = [
        ("category", term.category),
        ("type", term.type),
        ("modifier", term.type_modifier),
        ("region", term.region),
        ("region modifier", term.region_modifier),
    ]
    for key, code in named:
        if code is not None:
            fields[key] = f"{code.meaning} ({code.scheme} {code.value})"
    return fields


def folder_paths(parts: list[Part]) -> list[list[str]]:
    """Folder of each segment: its category, then its type when several segments share
    both (left and right kidney under "Kidney"); none without terminology."""
    shared: dict[tuple[str, str], int] = {}
    for part in parts:
        if part.terminology is not None:
            key = (part.terminology.category.meaning, part.terminology.type.meaning)
            shared[key] = shared.get(key, 0) + 1
    paths: list[list[str]] = []
    for part in parts:
        term = part.terminology
        if term is None:
            paths.append([])
            continue
        key = (term.category.meaning, term.type.meaning)
        paths.append(list(key) if shared[key] > 1 else [key[0]])
    return paths


def _gzip(data: bytes) -> bytes:
    """gzip with no time stamp: the same segmentation gives the same page."""
    return gzip.compress(data, compresslevel=6, mtime=0)


@lru_cache(maxsize=1)
def _three_bundle() -> str:
    text = _resource(f"vendor/{_BUNDLE}")
    if f'="{THREE_VERSION.split(".")[1]}"' not in text[:2000]:
        raise ValidationError(
            f"the vendored three.js bundle is not release {THREE_VERSION}",
            hint="run plugins/html/vendor/build.py",
        )
    return base64.b64encode(_gzip(text.encode("utf-8"))).decode("ascii")


@lru_cache(maxsize=4)
def _resource(name: str) -> str:
    return resources.files("segio_plugins.html").joinpath(*name.split("/")).read_text("utf-8")
