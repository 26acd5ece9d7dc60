"""Exact comparison of two segmentations, saying precisely what differs.

A round trip is only lossless when every segment comes back with the same voxels, name,
colour, terminology and properties, however the writer packed segments into layers and
whichever label values it chose. :func:`assert_same_segmentation` checks all of that at
once and lists every difference (segment, field, how many voxels and where the first one
is), so a failing conformance case names its cause. Mesh formats hold closed surfaces, which
:func:`surface_difference` compares triangle by triangle, in any vertex order, within
float32 precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segio.model import Segment, Segmentation
from segio.surfaces import Surface
from segio.terminology import Terminology

__all__ = ["assert_same_segmentation", "surface_difference"]


def _describe_terminology(term: Terminology | None) -> str:
    return "none" if term is None else " / ".join(str(code) for code in term.codes())


def _terminology_difference(a: Terminology | None, b: Terminology | None) -> str | None:
    if a is None and b is None:
        return None
    if a is None or b is None or not a.matches(b):
        return f"terminology {_describe_terminology(a)} != {_describe_terminology(b)}"
    for field in ("category", "type", "type_modifier", "region", "region_modifier"):
        code_a, code_b = getattr(a, field), getattr(b, field)
        if code_a is not None and code_b is not None and code_a.meaning != code_b.meaning:
            return (
                f"terminology {field.replace('_', ' ')} meaning "
                f"{code_a.meaning!r} != {code_b.meaning!r}"
            )
    return None


def _segment_codes(array: NDArray[np.integer], pairs: Sequence[tuple[int, int]]) -> NDArray[Any]:
    """Replace each label by the code given in ``pairs`` ((label, code)); others become 0."""
    code_type = np.uint16 if len(pairs) < 65535 else np.uint32
    if array.dtype.itemsize <= 2:
        unsigned = array.view(np.dtype(f"u{array.dtype.itemsize}"))
        lut = np.zeros(1 << (8 * array.dtype.itemsize), dtype=code_type)
        for label, code in pairs:
            if label < lut.size:
                lut[label] = code
        return np.asarray(lut[unsigned])
    codes = np.zeros(array.shape, dtype=code_type)
    for label, code in pairs:
        codes[array == label] = code
    return codes


def _voxel_differences(
    a: Segmentation, b: Segmentation, pairs: Sequence[tuple[Segment, Segment]]
) -> list[str]:
    """Per segment: how many voxels are in one mask and not the other, and where first."""
    groups: dict[tuple[int, int], list[int]] = {}
    for n, (sa, sb) in enumerate(pairs):
        groups.setdefault((sa.layer, sb.layer), []).append(n)
    problems: dict[int, str] = {}
    for (layer_a, layer_b), members in groups.items():
        codes_a = _segment_codes(
            a.layers[layer_a].array,
            [(pairs[n][0].label_value, t + 1) for t, n in enumerate(members)],
        )
        codes_b = _segment_codes(
            b.layers[layer_b].array,
            [(pairs[n][1].label_value, t + 1) for t, n in enumerate(members)],
        )
        differ = codes_a != codes_b
        if not np.any(differ):
            continue
        where = np.flatnonzero(differ)
        in_a = codes_a.ravel()[where]
        in_b = codes_b.ravel()[where]
        only_a = np.bincount(in_a, minlength=len(members) + 1)
        only_b = np.bincount(in_b, minlength=len(members) + 1)
        for t, n in enumerate(members, start=1):
            count_a, count_b = int(only_a[t]), int(only_b[t])
            if count_a + count_b == 0:
                continue
            first = int(where[np.flatnonzero((in_a == t) | (in_b == t))[0]])
            k, j, i = np.unravel_index(first, codes_a.shape)
            problems[n] = (
                f"{count_a + count_b} voxel(s) differ ({count_a} only in a, {count_b} only "
                f"in b; first at k, j, i = {int(k)}, {int(j)}, {int(i)})"
            )
    return [f"{_who(n, pairs[n][0])}: {problems[n]}" for n in sorted(problems)]


def _who(n: int, segment: Segment) -> str:
    return f"segment {n} ({segment.name!r}, id {segment.id!r})"


def assert_same_segmentation(
    a: Segmentation,
    b: Segmentation,
    *,
    atol_mm: float = 1e-6,
    check_ids: bool = True,
    check_names: bool = True,
    check_terminology: bool = True,
    check_properties: bool = True,
    color_atol: float = 0.0,
    check_layers: bool = False,
    surface_rtol: float = 4 * float(np.finfo(np.float32).eps),
) -> None:
    """Raise AssertionError listing every difference between ``a`` and ``b``.

    Segments are matched by order (and must have the same ids when ``check_ids``). For
    each pair: name, colour (each channel within ``color_atol``), terminology (same codes
    by :meth:`Terminology.matches` and the same meanings), properties, and the voxels of
    the segment, which must be identical however the segments are packed into layers and
    whatever their label values. The grids must agree within ``atol_mm`` millimetres
    (:meth:`Geometry.is_close`). With ``check_layers`` the layer count and every segment's
    layer and label value must also be equal. The ``check_*`` switches exist for formats
    that cannot store a field at all; use them only with a stated reason.

    When both hold closed surfaces, each pair of meshes must have the same triangles with
    the same winding, whatever the vertex order, every vertex within ``surface_rtol``
    times the mesh's largest coordinate (default: float32 precision, what mesh files store).
    """
    segs_a = list(a.segments.values())
    segs_b = list(b.segments.values())
    if len(segs_a) != len(segs_b):
        raise AssertionError(
            f"segmentations differ: {len(segs_a)} segments vs {len(segs_b)} "
            f"(a: {[s.name for s in segs_a]}, b: {[s.name for s in segs_b]})"
        )
    pairs = list(zip(segs_a, segs_b, strict=True))
    problems: list[str] = []
    for n, (sa, sb) in enumerate(pairs):
        who = _who(n, sa)
        if check_ids and sa.id != sb.id:
            problems.append(f"{who}: id {sa.id!r} != {sb.id!r}")
        if check_names and sa.name != sb.name:
            problems.append(f"{who}: name {sa.name!r} != {sb.name!r}")
        gap = max(abs(x - y) for x, y in zip(sa.color, sb.color, strict=True))
        if gap > color_atol:
            problems.append(
                f"{who}: colour {sa.color!r} != {sb.color!r} "
                f"(differs by {gap:.3g}, color_atol {color_atol:g})"
            )
        if check_terminology:
            difference = _terminology_difference(sa.terminology, sb.terminology)
            if difference:
                problems.append(f"{who}: {difference}")
        if check_properties and sa.properties != sb.properties:
            keys = sorted(
                k
                for k in set(sa.properties) | set(sb.properties)
                if sa.properties.get(k) != sb.properties.get(k)
            )
            detail = ", ".join(
                f"{k!r}: {sa.properties.get(k)!r} != {sb.properties.get(k)!r}" for k in keys
            )
            problems.append(f"{who}: properties differ ({detail})")
        if check_layers and (sa.layer, sa.label_value) != (sb.layer, sb.label_value):
            problems.append(
                f"{who}: layer/label {sa.layer}/{sa.label_value} != {sb.layer}/{sb.label_value}"
            )
    if check_layers and len(a.layers) != len(b.layers):
        problems.append(f"layer count {len(a.layers)} != {len(b.layers)}")

    grid_a, grid_b = a.geometry, b.geometry
    same_shape = False
    if grid_a is None or grid_b is None:
        if grid_a is not grid_b:
            problems.append(f"geometry {grid_a!r} != {grid_b!r}")
    elif grid_a.shape != grid_b.shape:
        problems.append(f"grid shape (k, j, i) {grid_a.shape} != {grid_b.shape}")
    else:
        same_shape = True
        if not grid_a.is_close(grid_b, atol_mm):
            worst = float(np.max(np.abs(grid_a.ijk_to_lps - grid_b.ijk_to_lps)))
            problems.append(
                f"geometry differs by up to {worst:.3g} mm (atol_mm {atol_mm:g}): "
                f"{grid_a!r} vs {grid_b!r}; ijk_to_lps\n{grid_a.ijk_to_lps}\nvs\n"
                f"{grid_b.ijk_to_lps}"
            )
    if same_shape:
        problems.extend(_voxel_differences(a, b, pairs))
    if a.surfaces or b.surfaces:
        for n, (sa, sb) in enumerate(pairs):
            surface_a, surface_b = a.surfaces.get(sa.id), b.surfaces.get(sb.id)
            if surface_a is None or surface_b is None:
                problems.append(f"{_who(n, sa)}: a closed surface on one side only")
                continue
            difference = surface_difference(surface_a, surface_b, surface_rtol)
            if difference:
                problems.append(f"{_who(n, sa)}: {difference}")
    if problems:
        raise AssertionError("segmentations differ:\n  " + "\n  ".join(problems))


def surface_difference(a: Surface, b: Surface, rtol: float) -> str | None:
    """How two meshes differ (None when they are the same within ``rtol``), order-free.

    Each vertex of ``a`` is matched to the nearest vertex of ``b``; the triangles of ``a``
    so renumbered must be those of ``b``, each with the same winding (rotations allowed).
    """
    from scipy.spatial import cKDTree

    if len(a.faces) != len(b.faces) or len(a.vertices) != len(b.vertices):
        return (
            f"mesh has {len(a.vertices)} vertices / {len(a.faces)} triangles vs "
            f"{len(b.vertices)} / {len(b.faces)}"
        )
    if not len(a.faces):
        return None
    scale = max(1.0, float(np.abs(a.vertices).max()))
    distance, match = cKDTree(b.vertices).query(a.vertices)
    worst = float(distance.max())
    if worst > rtol * scale:
        where = a.vertices[int(np.argmax(distance))]
        return f"a vertex moved by {worst:.3g} mm (allowed {rtol * scale:.3g}) near {where}"
    if len(np.unique(match)) != len(match):
        return "two vertices collapsed into one"

    def canonical(faces: NDArray[np.int64]) -> NDArray[np.int64]:
        turn = np.argmin(faces, axis=1)[:, None]  # rotate the smallest index first
        rotated = np.take_along_axis(faces, (turn + np.arange(3)) % 3, axis=1)
        return rotated[np.lexsort(rotated.T[::-1])]

    renumbered, other = canonical(match[a.faces]), canonical(b.faces)
    if not np.array_equal(renumbered, other):
        flipped = canonical(match[a.faces][:, ::-1])
        if np.array_equal(flipped, other):
            return "every triangle's winding is reversed (normals point inwards)"
        return f"{int(np.any(renumbered != other, axis=1).sum())} triangle(s) differ"
    return None
