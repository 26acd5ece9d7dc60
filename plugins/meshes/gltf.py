"""glTF 2.0, as ``.glb`` (one binary file) or ``.gltf`` (JSON with the buffer inlined).

Coordinates follow glTF (§3.4: right-handed, +Y up, +Z forward, metres) so web viewers show
the patient upright: from segio's LPS millimetres, glTF ``X = L``, ``Y = S``, ``Z = A = -P``
(rotation, determinant +1, winding kept), times 0.001 for metres; OpenAnatomy uses the
same "LSA" mapping through a root matrix, segio bakes it into the vertices so no viewer can
skip it. ``units=mm`` keeps millimetres (same axes). The file records the units in
``asset.extras.segio`` and the reader undoes exactly that; for other files it assumes the
glTF convention (metres, LSA axes). Read options ``units=mm axes=lps`` read the pre-2023
OpenAnatomy exports, whose vertices are LPS millimetres without a root matrix.

One node and one mesh per segment, both named after it; a PBR material whose
``baseColorFactor`` is the segment colour and opacity (``alphaMode: BLEND`` below 1);
``POSITION`` and ``NORMAL`` float32 with min/max, ``uint32`` indices; node ``extras`` keep
the segment id and terminology. ``hierarchy=true`` puts segments under parent nodes per
terminology category and type (as OpenAnatomy's folders); ``quantize=true`` writes
KHR_mesh_quantization (see :func:`build`). A segment without triangles is a node without
mesh (its extras keep it, colour included). Checked with the Khronos glTF Validator.

Reading an untrusted file is :mod:`.gltfparse`.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from segio._version import __version__
from segio.errors import reading
from segio.fileio.outputs import OutputFiles
from segio.model import Segmentation
from segio.surfaces import vertex_normals

from .common import Part, choice, flag, parts_of, to_segmentation
from .gltfparse import (
    BIN_CHUNK,
    GLB_MAGIC,
    JSON_CHUNK,
    LPS_TO_GLTF,
    SCALE,
    load,
    parts_of_document,
)

_BYTE, _SHORT, _UINT16, _FLOAT, _UINT32 = 5120, 5122, 5123, 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    units: str = "m",
    hierarchy: object = False,
    quantize: object = False,
) -> None:
    """A GLB (``.glb``) or a self-contained glTF (``.gltf``) with one node per segment."""
    unit = choice(units, "units", tuple(SCALE))
    parts = parts_of(segmentation)
    document, arrays = buffers(
        parts, unit, flag(hierarchy, "hierarchy"), quantize=flag(quantize, "quantize")
    )
    if path.suffix.lower() == ".glb":
        with files.stage(path).open("wb") as stream:
            write_glb(stream, document, arrays)
        return
    if "buffers" in document:  # none when every segment is empty
        data = base64.b64encode(b"".join(_padded(arrays))).decode("ascii")
        document["buffers"][0]["uri"] = "data:application/octet-stream;base64," + data
    payload = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
    files.stage(path).write_bytes(payload)


def _generator() -> str:
    return f"segio {__version__}"


def build(
    parts: list[Part], unit: str, hierarchy: bool, *, quantize: bool = False
) -> tuple[dict[str, Any], bytes]:
    """The glTF JSON document and its binary buffer (see :func:`buffers`)."""
    document, arrays = buffers(parts, unit, hierarchy, quantize=quantize)
    return document, b"".join(_padded(arrays))


def buffers(
    parts: list[Part], unit: str, hierarchy: bool, *, quantize: bool = False
) -> tuple[dict[str, Any], list[NDArray[Any]]]:
    """The glTF JSON document and the arrays of its binary buffer, in order (each view
    starts 4-byte aligned: :func:`_padded` adds the padding).

    With ``quantize`` (KHR_mesh_quantization) positions are int16 on each segment's bounding
    box, undone by the node's translation and a uniform scale (one step, 1/65534 of the
    box's longest side, on every axis: glTF turns normals by the inverse transpose of the
    node matrix, so a non-uniform scale would bend the shading), normals normalised int8
    and indices uint16 when they fit: half the size, read natively by three.js.
    """
    chunks: list[NDArray[Any]] = []
    size = 0
    views: list[dict[str, Any]] = []
    accessors: list[dict[str, Any]] = []

    def add(
        array: NDArray[Any],
        kind: str,
        component: int,
        target: int,
        bounds: bool,
        normalized: bool = False,
    ) -> int:
        nonlocal size
        view: dict[str, Any] = {"buffer": 0, "byteOffset": size, "target": target}
        rows = np.ascontiguousarray(array)
        data = rows
        if rows.ndim == 2 and rows.itemsize * rows.shape[1] % 4:  # vertex rows: 4-byte aligned
            data = np.zeros((len(rows), 4), rows.dtype)  # VEC3 of 1- or 2-byte numbers
            data[:, : rows.shape[1]] = rows
            view["byteStride"] = data.itemsize * data.shape[1]
        view["byteLength"] = data.nbytes
        views.append(view)
        chunks.append(data)
        size += data.nbytes + -data.nbytes % 4  # the next view starts 4-byte aligned
        accessor: dict[str, Any] = {
            "bufferView": len(views) - 1,
            "componentType": component,
            "count": len(array),
            "type": kind,
        }
        if normalized:
            accessor["normalized"] = True
        if bounds:  # per column: numpy reduces a narrow (n, 3) table slowly along axis 0
            cast = int if rows.dtype.kind in "iu" else float
            columns = [rows[:, c] for c in range(rows.shape[1])] if rows.ndim == 2 else [rows]
            accessor["min"] = [cast(column.min()) for column in columns]
            accessor["max"] = [cast(column.max()) for column in columns]
        accessors.append(accessor)
        return len(accessors) - 1

    nodes: list[dict[str, Any]] = []
    meshes: list[dict[str, Any]] = []
    materials: list[dict[str, Any]] = []
    for part in parts:
        extras: dict[str, Any] = {"segment_id": part.id}
        if part.terminology is not None:
            extras["terminology"] = part.terminology.to_slicer()
        if part.opacity is not None and part.opacity != 1.0:
            extras["opacity"] = part.opacity
        node: dict[str, Any] = {"name": part.name, "extras": extras}
        nodes.append(node)
        if part.surface.is_empty:  # no mesh, no material: the colour goes with the extras
            extras["color"] = list(part.color or (1.0, 1.0, 1.0))
            continue
        surface = part.surface
        normals = _unit_normals(
            vertex_normals(surface.vertices, surface.faces)
            if surface.normals is None
            else surface.normals
        )
        if quantize:
            points = _turned(surface.vertices, SCALE[unit], np.float64)
            # One step for all axes: a non-uniform node scale would bend the shading
            # normals, which glTF transforms by its inverse transpose.
            low, high = points.min(axis=0), points.max(axis=0)
            extent = float((high - low).max())
            step = extent / 65534.0 if extent > 0 else 1.0
            codes = np.round((points - low) / step) - 32767
            node["translation"] = [float(x) for x in low + 32767 * step]
            node["scale"] = [step, step, step]
            position = add(codes.astype(np.int16), "VEC3", _SHORT, _ARRAY_BUFFER, True)
            normal = add(
                np.round(normals * 127).astype(np.int8), "VEC3", _BYTE, _ARRAY_BUFFER, False, True
            )
        else:
            position = add(
                _turned(surface.vertices, SCALE[unit], np.float32),
                "VEC3",
                _FLOAT,
                _ARRAY_BUFFER,
                True,
            )
            normal = add(normals.astype(np.float32), "VEC3", _FLOAT, _ARRAY_BUFFER, True)
        small = quantize and len(surface.vertices) <= 65535
        indices = add(
            part.surface.faces.astype(np.uint16 if small else np.uint32).ravel(),
            "SCALAR",
            _UINT16 if small else _UINT32,
            _ELEMENT_ARRAY_BUFFER,
            False,
        )
        r, g, b = part.color or (1.0, 1.0, 1.0)
        alpha = 1.0 if part.opacity is None else float(part.opacity)
        material: dict[str, Any] = {
            "name": part.name,
            "pbrMetallicRoughness": {
                "baseColorFactor": [r, g, b, alpha],
                "metallicFactor": 0.0,
                "roughnessFactor": 0.6,
            },
        }
        if alpha < 1.0:
            material["alphaMode"] = "BLEND"
        materials.append(material)
        meshes.append(
            {
                "name": part.name,
                "primitives": [
                    {
                        "attributes": {"POSITION": position, "NORMAL": normal},
                        "indices": indices,
                        "material": len(materials) - 1,
                        "mode": 4,
                    }
                ],
            }
        )
        node["mesh"] = len(meshes) - 1
    roots = list(range(len(nodes)))
    if hierarchy:
        roots = _folders(parts, nodes)
    document: dict[str, Any] = {
        "asset": {
            "version": "2.0",
            "generator": _generator(),
            "extras": {"segio": {"units": unit, "axes": "LSA", "source_space": "LPS"}},
        },
        "scene": 0,
        "scenes": [{"name": "segmentation", "nodes": roots}],
        "nodes": nodes,
    }
    if quantize:
        document["extensionsUsed"] = document["extensionsRequired"] = ["KHR_mesh_quantization"]
    if meshes:
        document.update(
            meshes=meshes,
            materials=materials,
            accessors=accessors,
            bufferViews=views,
            buffers=[{"byteLength": size}],
        )
    return document, chunks


def _turned(vertices: NDArray[np.float64], scale: float, dtype: type) -> NDArray[Any]:
    """``vertices @ (LPS_TO_GLTF * scale).T`` as ``dtype``, column by column.

    The matrix only permutes and negates axes, so each column is one product (the same
    double as the matrix product gives, then rounded to ``dtype``): no matrix product and
    no float64 temporary of the whole table. Four times faster on millions of vertices.
    """
    out: NDArray[Any] = np.empty(vertices.shape, dtype)
    for row, weights in enumerate(LPS_TO_GLTF):
        (column,) = np.flatnonzero(weights)
        np.multiply(
            vertices[:, column], weights[column] * scale, out=out[:, row], casting="same_kind"
        )
    out += 0.0  # -0.0 becomes 0.0, as the matrix product's sum of zeros gives it
    return out


def _unit_normals(normals: NDArray[Any]) -> NDArray[np.float64]:
    """Surface normals turned to glTF's axes and made unit length (in float64, as the
    Khronos validator wants them unit), ``+Y`` where a normal is zero."""
    turned = _turned(normals, 1.0, np.float64)
    length = np.sqrt(turned[:, 0] * turned[:, 0] + turned[:, 1] * turned[:, 1] + turned[:, 2] ** 2)
    zero = length == 0
    turned /= np.where(zero, 1.0, length)[:, None]
    if zero.any():
        turned[zero] = (0.0, 1.0, 0.0)
    return turned


def _padded(arrays: list[NDArray[Any]]) -> Iterator[bytes | memoryview]:
    """The buffer's bytes: each array, then zeros to the next multiple of 4 bytes."""
    for array in arrays:
        yield np.ascontiguousarray(array).data.cast("B")
        if array.nbytes % 4:
            yield bytes(-array.nbytes % 4)


def _folders(parts: list[Part], nodes: list[dict[str, Any]]) -> list[int]:
    """Parent nodes category -> type (from terminology); segments without one stay at the top."""
    roots: list[int] = []
    folders: dict[tuple[str, ...], int] = {}
    for n, part in enumerate(parts):
        term = part.terminology
        if term is None:
            roots.append(n)
            continue
        path = (term.category.meaning, term.type.meaning)
        parent: int | None = None
        for depth in range(1, len(path) + 1):
            key = path[:depth]
            if key not in folders:
                nodes.append({"name": key[-1], "children": []})
                folders[key] = len(nodes) - 1
                if parent is None:
                    roots.append(folders[key])
                else:
                    nodes[parent]["children"].append(folders[key])
            parent = folders[key]
        assert parent is not None
        nodes[parent]["children"].append(n)
    return roots


def glb(document: dict[str, Any], blob: bytes) -> bytes:
    """GLB container: 12-byte header, JSON chunk (space-padded), BIN chunk (zero-padded)."""
    stream = io.BytesIO()
    write_glb(stream, document, [np.frombuffer(blob, np.uint8)] if blob else [])
    return stream.getvalue()


def write_glb(stream: BinaryIO, document: dict[str, Any], arrays: list[NDArray[Any]]) -> None:
    """The GLB container into ``stream``: 12-byte header, JSON chunk (space-padded), BIN
    chunk (the arrays, each zero-padded to 4 bytes) written from the arrays' own memory."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)
    size = sum(array.nbytes + -array.nbytes % 4 for array in arrays)
    total = 12 + 8 + len(text) + (8 + size if arrays else 0)
    stream.write(GLB_MAGIC + struct.pack("<II", 2, total))
    stream.write(struct.pack("<II", len(text), JSON_CHUNK) + text)
    if arrays:
        stream.write(struct.pack("<II", size, BIN_CHUNK))
        for piece in _padded(arrays):
            stream.write(piece)


def read(
    path: Path, *, reference: Any = None, units: str | None = None, axes: str | None = None
) -> Segmentation:
    """One segment per node with a mesh (or with segio extras), world transforms applied."""
    with reading(path, "glTF"):
        document, blob = load(path)
        parts = parts_of_document(document, blob, path, units, axes)
        return to_segmentation(parts, path, reference=reference)
