"""3MF (3D Manufacturing Format, core spec 1.x) for 3D printing: named, coloured bodies.

Coordinates: LPS millimetres by default (``coordinate_system=ras`` for RAS), in a model
declared ``unit="millimeter"``; printing software places the parts on its build plate
itself. The package is a zip with ``[Content_Types].xml``, ``_rels/.rels`` and
``3D/3dmodel.model``: one ``<object type="model">`` per segment, named after it, with its
own mesh and a ``pid``/``pindex`` into one ``<basematerials>`` group whose ``displaycolor``
(``#RRGGBB``, or ``#RRGGBBAA`` below full opacity) is the segment colour; one
``<build><item>`` per object. 3MF requires closed, consistently oriented meshes with outward
normals (§4.1): segio's closed surfaces are. Segments without triangles cannot be objects
and are left out with a warning. The space, segment ids and terminology are kept in model
``<metadata>`` (``segio:...``) for the reader; colours come back to 8 bits.

Reading follows the build: one segment per ``<item>``, its ``transform`` applied, and an
object made of ``<components>`` (other tools' assemblies) becomes one segment holding its
parts, each moved by its component transform; mirroring transforms flip the winding back.

Untrusted packages: only the model part is read (relationships, thumbnails and other
parts are never followed, inside the zip or out of it), inflated within the size the zip
declares and :data:`PARSE_FACTOR` times that within ``SEGIO_MAX_MEMORY``; a package of
more than :data:`MAX_ENTRIES` entries, component cycles, nesting deeper than
:data:`MAX_DEPTH` and builds that would place more than the memory limit are refused
before anything is built.
"""

from __future__ import annotations

import io
import json
import re
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError, WriteError, reading
from segio.fileio.limits import check_allocation, check_payload
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.terminology import Terminology

from .common import (
    SPACES,
    Part,
    checked_metadata,
    checked_surface,
    choice,
    load_json,
    part_metadata,
    parts_of,
    read_file,
    rgb8,
    to_segmentation,
    xml_root,
)

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
SEGIO = "https://github.com/segio/3mf"
MODEL = "3D/3dmodel.model"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" '
    'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Target="/{MODEL}" Id="rel0" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    "</Relationships>"
)
_HEX = re.compile(r"^#([0-9a-fA-F]{6})([0-9a-fA-F]{2})?$")


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    coordinate_system: str = "lps",
) -> None:
    """One 3MF package: a named, coloured object and a build item per segment.

    The vertex and triangle rows are Python's ``'%.17g'`` and ``'%d'`` text byte for byte,
    made by numpy (:mod:`.numtext`) in threads and deflated in threads while they are made
    (:mod:`.zipstream`): the 165 MB model of a 24-segment CT segmentation (two million
    triangles) takes under a second instead of ten, holding a few megabytes of text at a
    time instead of the whole model.
    """
    space = choice(coordinate_system, "coordinate_system", SPACES)
    parts = parts_of(segmentation, space)
    empty = [p.name for p in parts if p.surface.is_empty]
    if empty:
        warnings.warn(
            f"{path}: 3MF objects need triangles; segments left out: " + ", ".join(empty),
            stacklevel=2,
        )
    parts = [p for p in parts if not p.surface.is_empty]
    if not parts:
        raise WriteError("no segment has a triangle; 3MF cannot hold an empty mesh", path=path)
    meta = {
        "space": space.upper(),
        "segments": [part_metadata(p) for p in parts],
    }
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{CORE}" xmlns:segio="{SEGIO}">',
        '<metadata name="Application">segio</metadata>',
        f'<metadata name="segio:segments" preserve="1">{_escape(json.dumps(meta))}</metadata>',
        "<resources>",
        '<basematerials id="1">',
    ]
    for part in parts:
        r, g, b = rgb8(part.color or (1.0, 1.0, 1.0))
        opacity = 1.0 if part.opacity is None else float(part.opacity)
        alpha = "" if opacity == 1.0 else f"{round(opacity * 255):02X}"
        lines.append(
            f'<base name="{_escape(part.name)}" displaycolor="#{r:02X}{g:02X}{b:02X}{alpha}"/>'
        )
    lines.append("</basematerials>")
    # Bytes of the model at most (24 per coordinate, 16 digits per index): past 2 GiB the
    # zip needs ZIP64 headers, which must be chosen before the entry is written.
    most = sum(
        len(p.surface.vertices) * (3 * 24 + 40) + len(p.surface.faces) * (3 * 16 + 40)
        for p in parts
    )
    with zipfile.ZipFile(files.stage(path), "w", zipfile.ZIP_DEFLATED, compresslevel=1) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _RELS)
        # Imported here: reading a 3MF needs neither (nor their tables and thread pools).
        from .zipstream import deflated_entry, in_order

        with deflated_entry(package, MODEL, large=most >= ZIP64_FROM) as stream:
            for text in in_order(_model_jobs("\n".join(lines), parts)):
                stream.write(text)


def _model_jobs(head: str, parts: list[Part]) -> Iterator[Callable[[], bytes]]:
    """The model text as jobs for :func:`in_order`: literal text, and the vertex and
    triangle rows of each object in runs of :data:`ROWS` rows."""
    yield partial(str.encode, head)
    for n, part in enumerate(parts):
        yield partial(
            str.encode,
            f'\n<object id="{n + 2}" type="model" name="{_escape(part.name)}" '
            f'pid="1" pindex="{n}"><mesh><vertices>\n',
        )
        vertices, faces = part.surface.vertices, part.surface.faces
        for start in range(0, len(vertices), ROWS):
            yield partial(_text, _VERTEX, vertices[start : start + ROWS], True)
        yield partial(bytes, b"\n</vertices><triangles>\n")
        for start in range(0, len(faces), ROWS):
            yield partial(_text, _TRIANGLE, faces[start : start + ROWS], False)
        yield partial(bytes, b"\n</triangles></mesh></object>")
    items = "\n".join(f'<item objectid="{n + 2}"/>' for n in range(len(parts)))
    yield partial(str.encode, f"\n</resources><build>\n{items}\n</build></model>\n")


def _text(pieces: tuple[bytes, ...], table: NDArray[Any], floats: bool) -> bytes:
    from .numtext import rows

    return b"".join(rows(pieces, table, floats=floats))


#: Rows of a table formatted by one job (a few megabytes of text).
ROWS = 1 << 16
#: Model bytes (at most) from which the zip gets ZIP64 headers: zipfile refuses an entry
#: past 2 GiB without them, and must know before it writes the entry's header.
ZIP64_FROM = 2**31 - 2**26
#: The text around a vertex's and a triangle's numbers (3MF core spec, 4.1.1 and 4.1.2).
_VERTEX = (b'<vertex x="', b'" y="', b'" z="', b'"/>\n')
_TRIANGLE = (b'<triangle v1="', b'" v2="', b'" v3="', b'"/>\n')


def read(path: Path, *, reference: Any = None) -> Segmentation:
    """One segment per object of the build, named and coloured as the file says."""
    with reading(path, "3MF"):
        parts, space = _parse(path)
        return to_segmentation(parts, path, space=space, reference=reference)


#: Most entries a package may hold: a model, its relationships, thumbnails and textures
#: come to a few; thousands are a zip crafted to make the reader index them all.
MAX_ENTRIES = 1024
#: Bytes of memory parsing one byte of model XML takes at most (the element tree of the
#: non-mesh part, the regular-expression matches of the vertex and triangle lists, the
#: arrays): the model's declared size times this is checked against the memory limit
#: before it is inflated, so a bomb that the zip's header declares honestly is refused too.
PARSE_FACTOR = 16
#: Deepest nesting of components (other tools' assemblies nest a few levels).
MAX_DEPTH = 64
_EOCD = b"PK\x05\x06"


def _model_text(data: bytes, path: Path) -> bytes:
    """The 3D model part of a package, inflated within the limits.

    The number of entries is read from the zip's end record before :mod:`zipfile` indexes
    them (:data:`MAX_ENTRIES`). The model's inflated size declared in the zip is checked
    against its compressed size (deflate cannot exceed about 1032:1) and, times
    :data:`PARSE_FACTOR`, against ``SEGIO_MAX_MEMORY``; reading then stops one byte past
    the declared size, so a model inflating to more than its header says is refused
    whatever the header claims. Other parts (relationships, thumbnails, textures) are
    never read: nothing named inside the package is followed, inside or outside it.
    """
    end = data.rfind(_EOCD, max(0, len(data) - 65557))
    if end >= 0 and len(data) >= end + 22:
        (entries,) = struct.unpack_from("<H", data, end + 10)
        if MAX_ENTRIES < entries < 0xFFFF:  # 0xFFFF: ZIP64 keeps the count elsewhere
            raise ReadError(
                f"the package has {entries} entries; a 3MF has a few (at most {MAX_ENTRIES} "
                "are read)",
                path=path,
            )
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        infos = package.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ReadError(f"the package has {len(infos)} entries", path=path)
        names = {i.filename.lstrip("/").lower(): i for i in infos}
        info = names.get(MODEL.lower()) or next(
            (i for key, i in names.items() if key.endswith(".model")), None
        )
        if info is None:
            raise ReadError("a zip without a 3D model part (3D/3dmodel.model)", path=path)
        what = "the 3D model part"
        deflated = info.compress_type != zipfile.ZIP_STORED
        check_payload(info.file_size, info.compress_size, what, compressed=deflated, path=path)
        check_allocation(info.file_size * PARSE_FACTOR, f"parsing {what}", path=path)
        with package.open(info) as stream:
            text = stream.read(info.file_size + 1)
    if len(text) != info.file_size:
        raise ReadError(
            f"{what} inflates to more than the {info.file_size} bytes the zip declares",
            path=path,
            hint="the file is corrupt, or crafted as a decompression bomb",
        )
    return text


def _parse(path: Path) -> tuple[list[Part], str]:
    text, blocks = _cut_blocks(_model_text(read_file(path), path))
    root = xml_root(text, "3MF model")
    ns = {"m": root.tag[1:].partition("}")[0]} if root.tag.startswith("{") else {"m": ""}
    prefix = "m:" if ns["m"] else ""
    scale = {
        "micron": 0.001,
        "millimeter": 1.0,
        "centimeter": 10.0,
        "inch": 25.4,
        "foot": 304.8,
        "meter": 1000.0,
    }[root.get("unit", "millimeter")]
    meta: dict[str, Any] = {}
    for item in root.findall(f"{prefix}metadata", ns):
        if item.get("name") == "segio:segments":
            meta = load_json(item.text or "{}", "segio:segments metadata")
    palettes: dict[str, list[tuple[tuple[float, float, float], float]]] = {}
    resources = root.find(f"{prefix}resources", ns)
    if resources is None:
        raise ReadError("the model has no <resources>", path=path)
    for group in resources.findall(f"{prefix}basematerials", ns):
        palettes[group.get("id", "")] = [_color(b.get("displaycolor", "#FFFFFF")) for b in group]
    library = _Library(resources, blocks, prefix, ns)
    build = root.find(f"{prefix}build", ns)
    if build is not None:
        items = list(build)
    else:
        items = [ElementTree.Element("item", objectid=key or "") for key in library.objects]
    produced = sum(library.size(item.get("objectid")) for item in items)
    check_allocation(produced, "the meshes the build places", path=path)
    extra = meta.get("segments", [])
    parts = []
    for n, item in enumerate(items):
        element = library.element(item.get("objectid"))
        pieces = library.pieces(element, _transform(item.get("transform")))
        offsets = np.cumsum([0] + [len(v) for v, _ in pieces])
        vertices = np.concatenate([np.zeros((0, 3))] + [v for v, _ in pieces]) * scale
        faces = np.concatenate(
            [np.zeros((0, 3), np.int64)] + [f + offsets[k] for k, (_, f) in enumerate(pieces)]
        )
        painted = element
        if painted.get("pid") is None:  # an assembly: the colour of its first coloured body
            bodies = library.bodies(element)
            painted = next((o for o in bodies if o.get("pid") is not None), element)
        color: tuple[float, float, float] | None = None
        opacity: float | None = None
        palette = palettes.get(painted.get("pid", ""))
        if palette:
            color, opacity = palette[int(painted.get("pindex", "0"))]
        info = extra[n] if n < len(extra) else {}
        exact = info.get("color")
        if exact is not None and color is not None and rgb8(exact) == rgb8(color):
            color = (float(exact[0]), float(exact[1]), float(exact[2]))
        opacity, segment_id = checked_metadata(
            info["opacity"] if info.get("opacity") is not None else opacity, info.get("id")
        )
        term = info.get("terminology")
        parts.append(
            Part(
                name=element.get("name", ""),
                surface=checked_surface(vertices, faces, path, "3MF"),
                color=color,
                opacity=opacity,
                id=segment_id,
                terminology=Terminology.from_slicer(term) if term else None,
            )
        )
    return parts, "ras" if str(meta.get("space", "")).upper() == "RAS" else "lps"


def _transform(text: str | None) -> NDArray[np.float64]:
    """A 3MF ``transform`` (12 numbers, §3.3) as a 4x4 matrix for row vectors.

    3MF multiplies row vectors from the left: ``p' = [x, y, z, 1] @ M`` with ``M`` the
    numbers as four rows of three (the last row is the translation).
    """
    matrix = np.eye(4)
    if text is None or not text.strip():
        return matrix
    numbers = [float(word) for word in text.split()]
    if len(numbers) != 12 or not all(np.isfinite(numbers)):
        raise ValueError(f"a transform needs 12 finite numbers, got {text!r}")
    matrix[:, :3] = np.reshape(numbers, (4, 3))
    return matrix


class _Library:
    """The objects of a model: each mesh parsed once, assemblies checked before use.

    Components may nest (an assembly of assemblies) and may place one object many times;
    they may also, in a crafted file, refer to themselves, form a cycle, nest thousands
    deep or double at every level (2^40 copies from 40 objects). :meth:`size` walks the
    references once per object (memoised), refusing cycles and nesting deeper than
    :data:`MAX_DEPTH`, so the reader knows what the build would produce before it builds.
    """

    def __init__(
        self,
        resources: ElementTree.Element,
        blocks: list[bytes],
        prefix: str,
        ns: dict[str, str],
    ) -> None:
        self.objects = {o.get("id"): o for o in resources.findall(f"{prefix}object", ns)}
        self.blocks, self.prefix, self.ns = blocks, prefix, ns
        self._meshes: dict[str | None, tuple[NDArray[np.float64], NDArray[np.int64]]] = {}
        self._sizes: dict[str | None, int] = {}

    def element(self, object_id: str | None) -> ElementTree.Element:
        found = self.objects.get(object_id)
        if found is None:
            raise ValueError(f"a reference to a missing object {object_id}")
        return found

    def components(self, element: ElementTree.Element) -> list[ElementTree.Element]:
        path = f"{self.prefix}components/{self.prefix}component"
        return list(element.iterfind(path, self.ns))

    def mesh(self, object_id: str | None) -> tuple[NDArray[np.float64], NDArray[np.int64]] | None:
        """An object's own mesh (vertices, faces) parsed once, or None for an assembly."""
        if object_id not in self._meshes:
            mesh = self.element(object_id).find(f"{self.prefix}mesh", self.ns)
            if mesh is None:
                return None
            table = partial(_table, mesh, blocks=self.blocks, prefix=self.prefix, ns=self.ns)
            points = table("vertices", "vertex", ("x", "y", "z")).astype(np.float64)
            faces = table("triangles", "triangle", ("v1", "v2", "v3")).astype(np.int64)
            if faces.size and (faces.min() < 0 or faces.max() >= len(points)):
                raise ValueError(f"a triangle refers to a vertex outside 0..{len(points) - 1}")
            self._meshes[object_id] = (points, faces)
        return self._meshes[object_id]

    def size(self, object_id: str | None, trail: tuple[str | None, ...] = ()) -> int:
        """Bytes of vertices and faces that placing ``object_id`` produces."""
        if object_id in trail:
            raise ValueError(f"object {object_id} contains itself (its components form a cycle)")
        if len(trail) >= MAX_DEPTH:
            raise ValueError(f"components nest more than {MAX_DEPTH} deep")
        if object_id not in self._sizes:
            own = self.mesh(object_id)
            if own is not None:
                self._sizes[object_id] = own[0].nbytes + own[1].nbytes
            else:
                inner = (*trail, object_id)
                children = self.components(self.element(object_id))
                self._sizes[object_id] = sum(self.size(c.get("objectid"), inner) for c in children)
        return self._sizes[object_id]

    def pieces(
        self, element: ElementTree.Element, matrix: NDArray[np.float64]
    ) -> list[tuple[NDArray[np.float64], NDArray[np.int64]]]:
        """Vertices and faces of an object in build coordinates: its own mesh, or its
        components' meshes moved by their transforms (nested assemblies included); call
        after :meth:`size` has checked the references."""
        own = self.mesh(element.get("id"))
        if own is not None:
            points = own[0] @ matrix[:3, :3] + matrix[3, :3]
            triangles = own[1][:, ::-1] if np.linalg.det(matrix[:3, :3]) < 0 else own[1]
            return [(points, triangles)]  # a mirror turns the faces inside out, hence ::-1
        found = []
        for component in self.components(element):
            child = self.element(component.get("objectid"))
            inner = _transform(component.get("transform")) @ matrix
            found += self.pieces(child, inner)
        return found

    def bodies(self, element: ElementTree.Element) -> list[ElementTree.Element]:
        """The objects an assembly's components refer to, in order (one level)."""
        found = (self.objects.get(c.get("objectid")) for c in self.components(element))
        return [child for child in found if child is not None]


_ATTRIBUTE = re.compile(rb'\b([xyz]|v[123])\s*=\s*"([^"]*)"')


def _cut_blocks(model: bytes) -> tuple[bytes, list[bytes]]:
    """The model with its vertex and triangle lists cut out (parsed apart, much faster).

    Each ``<vertices>...</vertices>`` (``<triangles>``) without a namespace prefix becomes
    ``<vertices segio-block="n"/>``; block ``n`` is then read with one regular expression.
    """
    blocks: list[bytes] = []
    pieces: list[bytes] = []
    at = 0
    while True:
        starts = [(model.find(b"<" + tag + b">", at), tag) for tag in (b"vertices", b"triangles")]
        found = [(start, tag) for start, tag in starts if start >= 0]
        if not found:
            break
        start, tag = min(found)
        body = start + len(tag) + 2
        end = model.find(b"</" + tag + b">", body)
        if end < 0:
            break  # left to the XML parser, which reports the broken file
        pieces += [model[at:start], b'<%s segio-block="%d"/>' % (tag, len(blocks))]
        blocks.append(model[body:end])
        at = end + len(tag) + 3
    pieces.append(model[at:])
    return b"".join(pieces), blocks


def _table(
    mesh: ElementTree.Element,
    section: str,
    item: str,
    keys: tuple[str, str, str],
    *,
    blocks: list[bytes],
    prefix: str,
    ns: dict[str, str],
) -> NDArray[Any]:
    """``(n, 3)`` attribute values of a mesh's vertices or triangles, as text."""
    element = mesh.find(f"{prefix}{section}", ns)
    if element is None:
        return np.zeros((0, 3), "S1")
    block_id = element.get("segio-block")
    if block_id is None:  # a prefixed namespace: the slow, general way
        rows = [[e.get(k) for k in keys] for e in element.iterfind(f"{prefix}{item}", ns)]
        return np.array(rows, dtype="S").reshape(-1, 3)
    block = blocks[int(block_id)]
    found = _ATTRIBUTE.findall(block)
    count = block.count(b"<" + item.encode())
    if len(found) == 3 * count and [n for n, _ in found] == [k.encode() for k in keys] * count:
        return np.array([value for _, value in found], dtype="S").reshape(-1, 3)
    wrapper = ElementTree.fromstring(b"<block>" + block + b"</block>")  # other attribute order
    rows = [[e.get(k) for k in keys] for e in wrapper if e.tag.endswith(item)]
    return np.array(rows, dtype="S").reshape(-1, 3)


def _color(text: str) -> tuple[tuple[float, float, float], float]:
    match = _HEX.match(text.strip())
    if match is None:
        raise ValueError(f"displaycolor {text!r} is not #RRGGBB or #RRGGBBAA")
    rgb = bytes.fromhex(match.group(1))
    alpha = int(match.group(2), 16) / 255 if match.group(2) else 1.0
    return (rgb[0] / 255, rgb[1] / 255, rgb[2] / 255), alpha
