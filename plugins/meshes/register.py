"""Entry point of the mesh plugin: declarations and sniffers only (nothing heavy imported).

Every format reads and writes closed surfaces; a labelmap is converted on the way (through
the registered converters), and the ``reference`` read option gives the grid a labelmap
writer puts the voxels on (``segio convert out.stl seg.nrrd --reference ct/``). The readers
and writers need only numpy; the ``mesh`` extra brings VTK for the surface converters.
"""

from __future__ import annotations

import math
import struct

from segio.hookspecs import FormatSpec, hookimpl
from segio.representations import Representation

SURFACE = frozenset({Representation.CLOSED_SURFACE})
POLYGONAL = frozenset({Representation.CLOSED_SURFACE, Representation.PLANAR_CONTOURS})
_REFERENCE = {
    "reference": "image grid for a labelmap target: a DICOM series folder or any image or "
    "segmentation file segio (or nibabel) reads",
}
_SPACE = {"coordinate_system": "lps (default, as 3D Slicer) or ras; recorded in the file"}
_OBJ_KEYS = {b"v", b"vn", b"vt", b"vp", b"f", b"o", b"g", b"s", b"l", b"p", b"usemtl", b"mtllib"}


def sniff_stl(head: bytes) -> bool:
    """ASCII STL (``solid`` then ``facet``), or binary STL: Slicer's header or valid records.

    A binary STL header is any 80 bytes, so other binary files are recognised by their
    first triangles: a non-zero count, unit (or zero) normals and finite, sane coordinates,
    which random bytes essentially never give.
    """
    if head.startswith(b"3D Slicer output. SPACE="):
        return True
    text = head.lstrip()
    if text[:5].lower() == b"solid" and b"facet" in head and b"\0" not in head[:1024]:
        return True
    if len(head) < 134:
        return False
    count = int(struct.unpack_from("<I", head, 80)[0])
    records = min(count, (len(head) - 84) // 50, 16)
    for n in range(records):
        values = struct.unpack_from("<12f", head, 84 + 50 * n)
        if not all(math.isfinite(v) and abs(v) < 1e7 for v in values):
            return False
        length = math.sqrt(sum(v * v for v in values[:3]))
        if not (length == 0.0 or abs(length - 1.0) < 1e-2):
            return False
    return records > 0


def sniff_obj(head: bytes) -> bool:
    """Text whose complete lines are all OBJ statements, at least one a vertex."""
    if b"\0" in head:
        return False
    lines = head.splitlines()[:-1] if len(head) >= 4096 else head.splitlines()
    keys = [line.split(None, 1)[0] for line in lines if line.strip()]
    return b"v" in keys and all(key in _OBJ_KEYS or key.startswith(b"#") for key in keys)


def sniff_ply(head: bytes) -> bool:
    return head.startswith((b"ply\n", b"ply\r\n")) and b"format " in head[:200]


def sniff_vtk(head: bytes) -> bool:
    """Legacy VTK (``# vtk DataFile``) or VTK XML PolyData (``<VTKFile type="PolyData"``)."""
    if head.startswith(b"# vtk DataFile"):
        return b"POLYDATA" in head[:1024]
    return b"<VTKFile" in head[:512] and b'type="PolyData"' in head[:1024]


def sniff_vtm(head: bytes) -> bool:
    """A VTK XML multiblock index (``<VTKFile type="vtkMultiBlockDataSet"``)."""
    return b"<VTKFile" in head[:512] and b'type="vtkMultiBlockDataSet"' in head[:1024]


#: Top-level glTF properties; any of them opens the JSON (writers order keys differently).
_GLTF_KEYS = (b'"asset"', b'"accessors"', b'"bufferViews"', b'"meshes"', b'"scenes"')


def sniff_gltf(head: bytes) -> bool:
    """GLB magic, or a JSON object with a glTF top-level property near its start."""
    if head.startswith(b"glTF"):
        return True
    text = head.lstrip()
    return text.startswith(b"{") and any(key in head for key in _GLTF_KEYS)


def sniff_3mf(head: bytes) -> bool:
    """A zip whose first entries include the 3D model part."""
    return head.startswith(b"PK\x03\x04") and b"3dmodel.model" in head.lower()


def _spec(
    name: str,
    description: str,
    suffixes: tuple[str, ...],
    module: str,
    sniff: object,
    read_options: dict[str, str] | None = None,
    write_options: dict[str, str] | None = None,
    representations: frozenset[Representation] = SURFACE,
    points: bool = False,
) -> FormatSpec:
    return FormatSpec(
        name=name,
        description=description,
        suffixes=suffixes,
        reader=f"segio_plugins.meshes.{module}:read",
        writer=f"segio_plugins.meshes.{module}:write",
        sniff=sniff,  # type: ignore[arg-type]
        writes=representations,
        extra="mesh",
        read_options={**_REFERENCE, **(read_options or {})},
        write_options=write_options or {},
        points=points,
    )


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        _spec(
            "stl",
            "STL mesh (binary or ASCII), one file per segment or merged, LPS/RAS tagged",
            (".stl",),
            "stl",
            sniff_stl,
            write_options={
                **_SPACE,
                "ascii": "true: ASCII STL with one named solid per segment (default binary)",
                "merge": "true: all segments in one file (default: <stem>_<segment name>.stl "
                "per segment, as 3D Slicer)",
            },
        ),
        _spec(
            "obj",
            "Wavefront OBJ + MTL: one named object and material (colour, opacity) per segment",
            (".obj",),
            "obj",
            sniff_obj,
            write_options=dict(_SPACE),
        ),
        _spec(
            "ply",
            "Stanford PLY (binary): all segments, per-face segment index, vertex colours",
            (".ply",),
            "ply",
            sniff_ply,
            write_options=dict(_SPACE),
        ),
        _spec(
            "vtk",
            "VTK PolyData, legacy .vtk or XML .vtp, segment ids with names and colours",
            (".vtk", ".vtp"),
            "vtkpoly",
            sniff_vtk,
            write_options=dict(_SPACE),
        ),
        _spec(
            "seg-vtm",
            "3D Slicer segmentation of closed surfaces or planar contours: .seg.vtm index "
            "and one .vtp per segment (names, colours, terminology), RAS",
            (".seg.vtm", ".vtm"),
            "segvtm",
            sniff_vtm,
            write_options={
                "compress": "false: ASCII pieces, as Slicer with compression off "
                "(default true: binary, zlib)",
            },
            representations=POLYGONAL,
            points=True,
        ),
        _spec(
            "gltf",
            "glTF 2.0 (.glb or .gltf) for web viewers: named nodes, PBR colours, metres, Y up",
            (".glb", ".gltf"),
            "gltf",
            sniff_gltf,
            read_options={
                "units": "m or mm: units of a file segio did not write (default m, glTF's)",
                "axes": "lsa (glTF convention, default) or lps (pre-2023 OpenAnatomy exports)",
            },
            write_options={
                "units": "m (default, glTF convention) or mm",
                "hierarchy": "true: parent nodes per terminology category and type",
                "quantize": "true: KHR_mesh_quantization (int16 positions, int8 normals)",
            },
        ),
        _spec(
            "3mf",
            "3MF for 3D printing: named, coloured bodies in millimetres",
            (".3mf",),
            "threemf",
            sniff_3mf,
            write_options=dict(_SPACE),
        ),
    ]
