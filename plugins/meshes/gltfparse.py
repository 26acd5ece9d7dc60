"""Reading glTF 2.0 (``.glb`` or ``.gltf``): the container, buffers, accessors and nodes.

The writer and its conventions are in :mod:`.gltf`; the constants here are the format's
(chunk types, component types) and the axes and units both sides agree on.

Untrusted files: a buffer URI is read only when it names a regular file in the glTF's
folder or below it (percent escapes decoded first; URLs, absolute paths, ``../`` and links
out of the folder refused), a ``data:`` URI no longer than its ``byteLength``; image URIs
are never opened. Accessor counts are compared with their buffer views, node hierarchies
must be trees, and what nodes instancing one mesh produce counts against
``SEGIO_MAX_MEMORY`` (see :func:`_buffers` and :func:`parts_of_document`).
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.errors import ReadError
from segio.fileio.limits import check_allocation
from segio.terminology import Terminology

from .common import (
    Part,
    checked_metadata,
    checked_surface,
    choice,
    load_json,
    read_file,
    read_reference,
)

#: LPS -> glTF axes (X = L, Y = S, Z = A); orthonormal, so its inverse is its transpose.
LPS_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
#: Millimetres per unit of each ``units`` option.
SCALE = {"m": 0.001, "mm": 1.0}
#: numpy type of each accessor component type, and the width of each accessor type.
COMPONENTS = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
GLB_MAGIC = b"glTF"
JSON_CHUNK, BIN_CHUNK = 0x4E4F534A, 0x004E4942


def load(path: Path) -> tuple[dict[str, Any], bytes | None]:
    """The JSON document and the BIN chunk (None for a ``.gltf`` or a GLB without one)."""
    data = read_file(path)
    if data[:4] == GLB_MAGIC:
        version_, length = struct.unpack_from("<II", data, 4)
        if version_ != 2:
            raise ReadError(f"GLB version {version_}; only glTF 2.0 is read", path=path)
        if length != len(data):
            raise ReadError(
                f"the GLB header says {length} bytes, the file has {len(data)} (truncated?)",
                path=path,
            )
        offset, document, blob = 12, None, None
        while offset < len(data):
            size, kind = struct.unpack_from("<II", data, offset)
            chunk = data[offset + 8 : offset + 8 + size]
            if len(chunk) != size:
                raise ReadError("a GLB chunk runs past the end (truncated?)", path=path)
            if kind == JSON_CHUNK and document is None:
                document = load_json(chunk, "glTF JSON")
            elif kind == BIN_CHUNK and blob is None:
                blob = chunk
            offset += 8 + size
        if not isinstance(document, dict):
            raise ReadError("the GLB has no JSON chunk", path=path)
        return document, blob
    document = load_json(data, "glTF JSON")
    if not isinstance(document, dict) or "asset" not in document:
        raise ReadError("a JSON file without a glTF 'asset'", path=path)
    return document, None


def _buffers(document: dict[str, Any], blob: bytes | None, path: Path) -> list[bytes]:
    """Every buffer's bytes, exactly ``byteLength`` of them.

    A buffer is the GLB's BIN chunk, a ``data:`` URI (base64 no longer than the declared
    length needs, so the JSON cannot hide more) or a file named by a relative URI, read
    only when it is a regular file in the glTF's folder or below it
    (:func:`segio.fileio.inputs.referenced_file`: absolute paths, ``../`` and ``%2e%2e/``
    escapes, links out of the folder, URLs, FIFOs and devices are refused, naming the URI).
    Image URIs are never opened: segio reads geometry, not textures.
    """
    result = []
    for n, buffer in enumerate(_list(document, "buffers")):
        declared = _count(buffer.get("byteLength"), f"buffer {n} byteLength")
        uri = buffer.get("uri")
        if uri is None:
            if blob is None or n != 0:
                raise ReadError(f"buffer {n} has no data", path=path)
            data = blob
        elif not isinstance(uri, str):
            raise ReadError(f"buffer {n} has a uri that is not text", path=path)
        elif uri.startswith("data:"):
            data = _data_uri(uri, declared, n, path)
        else:
            data = read_reference(path, uri, what=f"buffer {n}", url=True, size=declared)
        if len(data) < declared:
            raise ReadError(f"buffer {n} is shorter than its byteLength (truncated?)", path=path)
        result.append(data[:declared])
    return result


def _data_uri(uri: str, declared: int, n: int, path: Path) -> bytes:
    """The bytes of a base64 ``data:`` URI, refused when longer than ``declared`` needs."""
    header, _, text = uri.partition(",")
    if not header.endswith(";base64"):
        raise ReadError(f"buffer {n} is a data URI that is not base64", path=path)
    if len(text) > 4 * (declared // 3 + 1) + 4:
        raise ReadError(
            f"buffer {n}: its data URI holds {len(text) * 3 // 4} bytes but its byteLength "
            f"declares {declared}",
            path=path,
        )
    return base64.b64decode(text, validate=True)


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key!r} is not a list")
    return value


def _count(value: object, what: str) -> int:
    """A non-negative whole number from the JSON (not a bool, not a float)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def _item(document: dict[str, Any], key: str, index: object) -> Any:
    """``document[key][index]``; an index out of range or not a whole number (Python would
    take -1 as the last one) is a ValueError naming the reference."""
    items = _list(document, key)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(items):
        raise ValueError(f"a reference to {key}[{index!r}] is out of range (0..{len(items) - 1})")
    item = items[index]
    if not isinstance(item, dict):
        raise ValueError(f"{key}[{index}] is not an object")
    return item


def _accessor(document: dict[str, Any], buffers: list[bytes], index: object) -> NDArray[Any]:
    accessor = _item(document, "accessors", index)
    if "sparse" in accessor:
        raise ValueError("sparse accessors are not supported")
    if accessor.get("componentType") not in COMPONENTS or accessor.get("type") not in WIDTH:
        raise ValueError(f"accessor {index}: unknown componentType or type")
    dtype = np.dtype(COMPONENTS[accessor["componentType"]])
    width = WIDTH[accessor["type"]]
    count = _count(accessor.get("count"), f"accessor {index} count")
    view = _item(document, "bufferViews", accessor.get("bufferView"))
    buffer = view.get("buffer")
    if isinstance(buffer, bool) or not isinstance(buffer, int) or not 0 <= buffer < len(buffers):
        raise ValueError(f"a buffer view refers to a missing buffer {buffer!r}")
    data = buffers[buffer]
    view_start = _count(view.get("byteOffset", 0), "a bufferView byteOffset")
    view_end = view_start + _count(view.get("byteLength"), "a bufferView byteLength")
    start = view_start + _count(accessor.get("byteOffset", 0), f"accessor {index} byteOffset")
    stride = _count(view.get("byteStride", 0), "a bufferView byteStride") or dtype.itemsize * width
    if stride < dtype.itemsize * width:
        raise ValueError(f"accessor {index}: byteStride {stride} is shorter than an element")
    # Compared before anything is allocated: the count is a claim, the view is the data.
    end = start + stride * (count - 1) + dtype.itemsize * width if count else start
    if end > view_end or end > len(data):
        raise ValueError(
            f"accessor {index} declares {count} elements, which run past its buffer view"
        )
    raw = np.frombuffer(data, np.uint8, end - start, start) if count else np.zeros(0, np.uint8)
    rows = (
        np.lib.stride_tricks.as_strided(
            raw, shape=(count, dtype.itemsize * width), strides=(stride, 1)
        )
        if count
        else np.zeros((0, dtype.itemsize * width), np.uint8)
    )
    values = np.ascontiguousarray(rows).view(dtype).reshape(count, width).astype(np.float64)
    if accessor.get("normalized"):
        values = values / np.iinfo(dtype).max if dtype.kind in "ui" else values
        values = np.maximum(values, -1.0)
    return values


def _node_matrix(node: dict[str, Any]) -> NDArray[np.float64]:
    if "matrix" in node:
        return np.array(node["matrix"], dtype=np.float64).reshape(4, 4).T  # column-major
    x, y, z, w = node.get("rotation", [0.0, 0.0, 0.0, 1.0])
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation * np.array(node.get("scale", [1.0, 1.0, 1.0]))
    matrix[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return matrix


def parts_of_document(
    document: dict[str, Any], blob: bytes | None, path: Path, units: str | None, axes: str | None
) -> list[Part]:
    required = set(document.get("extensionsRequired", [])) - {"KHR_mesh_quantization"}
    if required:
        raise ReadError(
            "the file needs the glTF extension(s) " + ", ".join(sorted(required)),
            path=path,
            hint="decompress it first (e.g. gltf-transform copy in.glb out.glb)",
        )
    declared = document.get("asset", {}).get("extras", {}).get("segio", {})
    unit = choice(units or declared.get("units", "m"), "units", tuple(SCALE))
    axis = choice(axes or "lsa", "axes", ("lsa", "lps"))
    to_lps = np.eye(4)
    to_lps[:3, :3] = (LPS_TO_GLTF.T if axis == "lsa" else np.eye(3)) / SCALE[unit]
    buffers = _buffers(document, blob, path)
    nodes = _list(document, "nodes")
    if _list(document, "scenes"):
        scene = _item(document, "scenes", document.get("scene", 0))
        roots = list(scene.get("nodes", []))
    else:
        children = {c for node in nodes for c in node.get("children", [])}
        roots = [n for n in range(len(nodes)) if n not in children]
    parts: list[Part] = []
    decoded: dict[int, NDArray[np.float64]] = {}  # accessors shared by instances, read once
    produced = 0
    stack = [(n, np.eye(4)) for n in reversed(roots)]
    visited: set[int] = set()
    while stack:
        index, parent = stack.pop()
        node = _item(document, "nodes", index)
        if index in visited:  # glTF 2.0 §3.5.3: the hierarchy is a set of disjoint trees
            raise ReadError(
                f"node {index} is reached twice (a cycle, or a child shared by two parents); "
                "glTF node hierarchies must be trees",
                path=path,
            )
        visited.add(index)
        world = parent @ _node_matrix(node)
        stack.extend((c, world) for c in reversed(node.get("children", [])))
        extras = node.get("extras") if isinstance(node.get("extras"), dict) else {}
        if "mesh" not in node and "segment_id" not in extras:
            continue
        part = _part(document, buffers, node, extras, to_lps @ world, path, decoded)
        # A mesh may be placed by any number of nodes: what they produce is counted
        # against the memory limit as it grows, not trusted to stay near the file's size.
        produced += part.surface.vertices.nbytes + part.surface.faces.nbytes
        check_allocation(produced, "the meshes the nodes place", path=path)
        parts.append(part)
    return parts


def _part(
    document: dict[str, Any],
    buffers: list[bytes],
    node: dict[str, Any],
    extras: dict[str, Any],
    matrix: NDArray[np.float64],
    path: Path,
    decoded: dict[int, NDArray[np.float64]],
) -> Part:
    def values(index: object) -> NDArray[np.float64]:
        key = index if isinstance(index, int) and not isinstance(index, bool) else -1
        if key not in decoded:
            decoded[key] = _accessor(document, buffers, index)
        return decoded[key]

    vertices: list[NDArray[np.float64]] = []
    faces: list[NDArray[np.int64]] = []
    color: tuple[float, float, float] | None = None
    opacity: float | None = None
    name = str(node.get("name", ""))
    if "mesh" in node:
        mesh = _item(document, "meshes", node["mesh"])
        name = name or str(mesh.get("name", ""))
        count = 0
        for primitive in mesh["primitives"]:
            mode = primitive.get("mode", 4)
            if mode not in (4, 5, 6):
                continue
            points = values(primitive["attributes"]["POSITION"])
            if "indices" in primitive:
                order = values(primitive["indices"]).astype(np.int64).ravel()
            else:
                order = np.arange(len(points))
            triangles = _triangles(order, mode)
            vertices.append(points @ matrix[:3, :3].T + matrix[:3, 3])
            faces.append(triangles + count)
            count += len(points)
            if color is None and "material" in primitive:
                material = _item(document, "materials", primitive["material"])
                factor = material.get("pbrMetallicRoughness", {}).get(
                    "baseColorFactor", [1.0, 1.0, 1.0, 1.0]
                )
                color = (float(factor[0]), float(factor[1]), float(factor[2]))
                opacity = float(factor[3])
    if np.linalg.det(matrix[:3, :3]) < 0:
        faces = [f[:, ::-1] for f in faces]
    surface = checked_surface(
        np.concatenate(vertices) if vertices else np.zeros((0, 3)),
        np.concatenate(faces) if faces else np.zeros((0, 3), np.int64),
        path,
        "glTF",
    )
    if "opacity" in extras:
        opacity = extras["opacity"]
    opacity, segment_id = checked_metadata(opacity, extras.get("segment_id"))
    if color is None and isinstance(extras.get("color"), list) and len(extras["color"]) == 3:
        color = (float(extras["color"][0]), float(extras["color"][1]), float(extras["color"][2]))
    term = extras.get("terminology")
    return Part(
        name=name,
        surface=surface,
        color=color,
        opacity=opacity,
        id=segment_id,
        terminology=Terminology.from_slicer(term) if term else None,
    )


def _triangles(order: NDArray[np.int64], mode: int) -> NDArray[np.int64]:
    if mode == 4:
        if len(order) % 3:
            raise ValueError("a TRIANGLES primitive with a vertex count not divisible by 3")
        return order.reshape(-1, 3)
    n = np.arange(max(len(order) - 2, 0))
    if mode == 5:  # strip: every other triangle flips to keep the winding
        even = n % 2 == 0
        a = np.where(even, order[n], order[n + 1])
        b = np.where(even, order[n + 1], order[n])
        return np.stack([a, b, order[n + 2]], axis=1)
    return np.stack([np.full(len(n), order[0]), order[n + 1], order[n + 2]], axis=1)
