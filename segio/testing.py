"""Synthetic segmentations, exact comparison and the conformance battery for format plugins.

Why this module exists
----------------------
segio promises lossless conversion: not a voxel, a name, a colour or a coded term may be
lost. That promise is only as good as the inputs it is tested with, and hand-made fixtures
are too kind: axis-aligned 1 mm grids, a handful of solid cubes, ASCII names, colours that
are multiples of 1/255. Real segmentations have oblique anisotropic grids, shells with
cavities, structures split into islands, structures cut by the image border, overlapping
segments in several layers, empty segments, names in any script, and colours stored with
full precision. This module generates such segmentations, compares two of them exactly,
and runs every format plugin (built-in or third party) through the same battery:

* :func:`grid`, :func:`synthetic_segmentation`, :func:`small_segmentation` make inputs,
  reproducibly from a seed and fast enough for 512x512x200 volumes with 104 segments
  (every ellipsoid is evaluated only inside its own bounding box).
* :func:`assert_same_segmentation` compares segment by segment, voxels included, no matter
  how the segments are packed into layers or which label values they carry, and says
  precisely what differs; :func:`dice` measures mask overlap.
* :func:`conformance_cases`, :func:`check_round_trip`, :func:`check_rejects_garbage` and
  :func:`check_sniffing` are what ``tests/test_conformance.py`` parametrizes over every
  installed format; a plugin author can call them from their own tests the same way.
* Mesh formats hold closed surfaces, not voxels: :func:`surface_segmentation` and
  :func:`surface_conformance_cases` are their cases, and :func:`assert_same_segmentation`
  compares surfaces triangle by triangle (:func:`surface_difference`, any vertex order,
  float32 precision).

It is a library module, not a test module: it imports neither pytest nor any format
library, so ``import segio.testing`` costs only numpy.
"""

from __future__ import annotations

import colorsys
import math
import shutil
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from segio.errors import SegioError
from segio.geometry import Geometry
from segio.io import read, write
from segio.model import Layer, Segment, Segmentation
from segio.registry import HEAD_SIZE, Registry, default_registry
from segio.representations import Representation
from segio.surfaces import Surface
from segio.terminology import DEFAULT_TISSUE, Code, Terminology

__all__ = [
    "FULL_SHAPE",
    "GRID_KINDS",
    "assert_same_segmentation",
    "check_rejects_garbage",
    "check_round_trip",
    "check_sniffing",
    "conformance_cases",
    "dice",
    "grid",
    "reference_series",
    "segment_names",
    "small_segmentation",
    "surface_conformance_cases",
    "surface_difference",
    "surface_segmentation",
    "synthetic_segmentation",
]

FloatArray = NDArray[np.float64]
Box = tuple[slice, slice, slice]

#: The grids :func:`grid` knows, each a trap for a different geometry bug.
GRID_KINDS: tuple[str, ...] = ("axial", "oblique", "anisotropic", "lps_flipped")

#: Small non-square default shapes ``(k, j, i)``: a transposed axis changes the shape.
_GRID_SHAPES: dict[str, tuple[int, int, int]] = {
    "axial": (12, 24, 20),
    "oblique": (7, 13, 11),
    "anisotropic": (10, 18, 22),
    "lps_flipped": (9, 20, 16),
}

#: Shape of a full-size CT segmentation, the default of :func:`synthetic_segmentation`.
FULL_SHAPE: tuple[int, int, int] = (200, 512, 512)

#: Inner/outer radius ratio of the cavity of a hollow segment.
_HOLE_RATIO = 0.5
#: Smallest radius (voxels) an ellipsoid needs before a cavity is carved into it.
_HOLE_MIN_RADIUS = 3.0


# -- grids -----------------------------------------------------------------------------


def _rotation(axis: Sequence[float] | FloatArray, degrees: float) -> FloatArray:
    """Rotation matrix about ``axis`` (Rodrigues' formula)."""
    unit = np.asarray(axis, dtype=np.float64)
    unit = unit / np.linalg.norm(unit)
    angle = math.radians(degrees)
    cross = np.array([[0.0, -unit[2], unit[1]], [unit[2], 0.0, -unit[0]], [-unit[1], unit[0], 0.0]])
    matrix = np.eye(3) + math.sin(angle) * cross + (1.0 - math.cos(angle)) * (cross @ cross)
    return np.asarray(matrix, dtype=np.float64)


def grid(kind: str = "axial", shape: Sequence[int] | None = None) -> Geometry:
    """A test grid of one of the :data:`GRID_KINDS`.

    ``"axial"``
        Identity directions, 1 mm voxels, origin (-100, -120, 50).
    ``"oblique"``
        Axes rotated by 25° about a non-principal axis, voxels 0.7 x 0.9 x 2.5 mm and a
        non-round origin: catches dropped directions, swapped spacings and rounding.
    ``"anisotropic"``
        Axis-aligned, voxels 0.4 x 0.6 x 3.0 mm: catches spacings applied to the wrong axis.
    ``"lps_flipped"``
        Directions diag(-1, -1, 1), as an image whose RAS matrix is the identity: catches
        LPS/RAS sign errors.

    ``shape`` is ``(k, j, i)``; by default a small non-square shape that differs per kind.
    """
    if kind not in _GRID_SHAPES:
        raise ValueError(f"unknown grid kind {kind!r}; expected one of {', '.join(GRID_KINDS)}")
    dims = _GRID_SHAPES[kind] if shape is None else tuple(int(n) for n in shape)
    if kind == "axial":
        return Geometry.from_spacing(dims, (1.0, 1.0, 1.0), (-100.0, -120.0, 50.0))
    if kind == "oblique":
        return Geometry.from_spacing(
            dims, (0.7, 0.9, 2.5), (-101.25, 37.5, -12.3), _rotation((1.0, 2.0, 3.0), 25.0)
        )
    if kind == "anisotropic":
        return Geometry.from_spacing(dims, (0.4, 0.6, 3.0), (-80.2, -64.8, 112.5))
    return Geometry.from_spacing(
        dims, (0.75, 0.75, 2.0), (120.5, 95.25, -40.0), np.diag([-1.0, -1.0, 1.0])
    )


# -- names, colours and terminology ------------------------------------------------------

_ANATOMY = Code("SCT", "123037004", "Anatomical Structure")
_ALTERED = Code("SCT", "49755003", "Morphologically Altered Structure")
_LEFT = Code("SCT", "7771000", "Left")
_RIGHT = Code("SCT", "24028007", "Right")
_SIDES = {"left": _LEFT, "right": _RIGHT}


def _anatomy(value: str, meaning: str, side: str | None = None) -> Terminology:
    return Terminology(_ANATOMY, Code("SCT", value, meaning), _SIDES[side] if side else None)


def _catalogue() -> list[tuple[str, Terminology]]:
    """Anatomical names (TotalSegmentator style) with their SNOMED CT codes, in order.

    The first entries are the ones small tests see: a plain organ, one with a laterality
    modifier, and a lesion with an anatomic region and region modifier.
    """
    entries: list[tuple[str, Terminology]] = [
        ("liver", _anatomy("10200004", "Liver")),
        ("kidney_left", _anatomy("64033007", "Kidney", "left")),
        ("spleen", _anatomy("78961009", "Spleen")),
        (
            "kidney_left_mass",
            Terminology(
                _ALTERED,
                Code("SCT", "4147007", "Mass"),
                region=Code("SCT", "64033007", "Kidney"),
                region_modifier=_LEFT,
            ),
        ),
        ("aorta", _anatomy("15825003", "Aorta")),
        ("kidney_right", _anatomy("64033007", "Kidney", "right")),
    ]
    singles = [
        ("pancreas", "15776009", "Pancreas"),
        ("gallbladder", "28231008", "Gallbladder"),
        ("stomach", "69695003", "Stomach"),
        ("inferior_vena_cava", "64131007", "Inferior vena cava"),
        ("esophagus", "32849002", "Esophagus"),
        ("trachea", "44567001", "Trachea"),
        ("heart_myocardium", "74281007", "Myocardium"),
        ("pulmonary_artery", "81040000", "Pulmonary artery"),
        ("brain", "12738006", "Brain"),
        ("urinary_bladder", "89837001", "Urinary bladder"),
        ("small_bowel", "30315005", "Small Intestine"),
        ("duodenum", "38848004", "Duodenum"),
        ("colon", "71854001", "Colon"),
        ("prostate", "41216001", "Prostate"),
        ("thyroid_gland", "69748006", "Thyroid"),
        ("spinal_cord", "2748008", "Spinal cord"),
        ("sacrum", "54735007", "Sacrum"),
        ("sternum", "56873002", "Sternum"),
        ("portal_vein", "32764006", "Portal vein"),
        ("superior_vena_cava", "48345005", "Superior vena cava"),
        ("heart_atrium_left", "82471001", "Left atrium"),
        ("heart_atrium_right", "73829009", "Right atrium"),
        ("heart_ventricle_left", "87878005", "Left ventricle"),
        ("heart_ventricle_right", "53085002", "Right ventricle"),
        ("face", "89545001", "Face"),
        ("skull", "89546000", "Skull"),
        ("costal_cartilages", "50016007", "Costal cartilage"),
    ]
    entries += [(name, _anatomy(value, meaning)) for name, value, meaning in singles]
    paired = [
        ("adrenal_gland", "23451007", "Adrenal gland"),
        ("lung", "39607008", "Lung"),
        ("femur", "71341001", "Femur"),
        ("humerus", "85050009", "Humerus"),
        ("scapula", "79601000", "Scapula"),
        ("clavicula", "51299004", "Clavicle"),
        ("gluteus_maximus", "206007", "Gluteus maximus muscle"),
        ("gluteus_medius", "78333006", "Gluteus medius muscle"),
        ("gluteus_minimus", "75297007", "Gluteus minimus muscle"),
        ("iliac_artery", "73634005", "Common iliac artery"),
        ("iliac_vena", "46027005", "Common iliac vein"),
    ]
    for side in ("left", "right"):
        entries += [(f"{name}_{side}", _anatomy(v, m, side)) for name, v, m in paired]
    ribs = [
        ("48535007", "First rib"),
        ("78247007", "Second rib"),
        ("25888004", "Third rib"),
        ("25523003", "Fourth rib"),
        ("15339008", "Fifth rib"),
        ("59558009", "Sixth rib"),
        ("24915002", "Seventh rib"),
        ("5953002", "Eighth rib"),
        ("22565002", "Ninth rib"),
        ("77644006", "Tenth rib"),
        ("58830002", "Eleventh rib"),
        ("43993008", "Twelfth rib"),
    ]
    for side in ("left", "right"):
        entries += [
            (f"rib_{side}_{n}", _anatomy(v, m, side)) for n, (v, m) in enumerate(ribs, start=1)
        ]
    vertebrae = {
        "C1": "14806007",
        "C2": "39976000",
        "C3": "113205007",
        "C4": "5329002",
        "C5": "36978003",
        "C6": "36054005",
        "C7": "87391001",
        "T1": "64864005",
        "T2": "53733008",
        "T3": "1626008",
        "T4": "73071006",
        "T5": "56401006",
        "T6": "45296009",
        "T7": "62487009",
        "T8": "11068009",
        "T9": "82687006",
        "T10": "7610001",
        "T11": "12989004",
        "T12": "23215003",
        "L1": "66794005",
        "L2": "14293000",
        "L3": "36470004",
        "L4": "11994002",
        "L5": "49668003",
    }
    entries += [
        (f"vertebrae_{level}", _anatomy(value, f"{level} vertebra"))
        for level, value in vertebrae.items()
    ]
    return entries


_CATALOGUE = _catalogue()

#: Names that break naive encoders: CJK, combining accents (NFD), right-to-left text,
#: 4-byte emoji, colons, quotes, ampersands. None holds ``|``, ``~``, ``^`` or a newline.
#: They follow the order of the anatomical catalogue, so each name means what its
#: terminology says (liver, left kidney, spleen, left kidney mass, aorta, ...).
_UNICODE_NAMES: tuple[str, ...] = (
    "Leber ✓",
    "Niere links: Rinde",
    "脾臓",
    "masse rénale « gauche »",
    "אבי העורקים",
    "rein droit, cortex",
    "pa\u0301ncreas",
    "vesícula biliar ½ \"quoted\" 'name'",
    "Magen 🫃",
    "vena cava inferior; IVC = & %",
    "Пищевод",
    "τραχεία",
    "🫀 Herz",
    "फुफ्फुसीय धमनी",
)


def segment_names(n: int, *, unicode_names: bool = False) -> list[str]:
    """``n`` distinct segment names: anatomical ones, or unicode ones that test encoders."""
    if unicode_names:
        size = len(_UNICODE_NAMES)
        return [
            _UNICODE_NAMES[t % size] + (f" {t // size + 1}" if t >= size else "") for t in range(n)
        ]
    return [_CATALOGUE[t][0] if t < len(_CATALOGUE) else f"structure_{t + 1}" for t in range(n)]


def _terminology_for(index: int) -> Terminology:
    return _CATALOGUE[index][1] if index < len(_CATALOGUE) else DEFAULT_TISSUE


def _colors(n: int, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Distinct full-precision colours (never multiples of 1/255), spread by golden angle."""
    start = float(rng.uniform())
    colors = []
    for index in range(n):
        hue = (start + index * 0.6180339887498949) % 1.0
        saturation = 0.45 + 0.4 * float(rng.uniform())
        value = 0.6 + 0.35 * float(rng.uniform())
        r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
        colors.append((float(r), float(g), float(b)))
    return colors


# -- blobs -----------------------------------------------------------------------------------


@dataclass
class _Blob:
    """A (possibly hollow) ellipsoid in index space, confined to a box of voxels."""

    center: FloatArray  # (k, j, i), continuous
    radii: FloatArray  # along the rotated axes, voxels
    rotation: FloatArray  # columns: the ellipsoid axes in (k, j, i)
    low: NDArray[np.int64]  # first voxel the blob may occupy, per axis
    high: NDArray[np.int64]  # last voxel the blob may occupy (inclusive)
    hollow: bool = False
    force_center: bool = True  # guarantee a voxel even when the blob is tiny

    @property
    def extent(self) -> FloatArray:
        """Half-size of the axis-aligned box around the ellipsoid, per axis."""
        spread = (self.rotation * self.radii**2) @ self.rotation.T
        return np.asarray(np.sqrt(np.diag(spread)), dtype=np.float64)

    def evaluate(self) -> tuple[Box, NDArray[np.bool_]]:
        """The blob as a boolean mask over its bounding box, evaluated only in that box."""
        center = self.center
        extent = self.extent
        start = np.maximum(np.floor(center - extent), self.low).astype(np.int64)
        stop = np.minimum(np.ceil(center + extent), self.high).astype(np.int64) + 1
        nearest = np.clip(np.round(center).astype(np.int64), self.low, self.high)
        start = np.minimum(start, nearest)
        stop = np.maximum(stop, nearest + 1)
        deltas = [
            np.arange(start[a], stop[a], dtype=np.float32) - np.float32(center[a]) for a in range(3)
        ]
        dk = deltas[0][:, np.newaxis, np.newaxis]
        dj = deltas[1][np.newaxis, :, np.newaxis]
        di = deltas[2][np.newaxis, np.newaxis, :]
        quadric = (self.rotation / self.radii**2) @ self.rotation.T
        qkk, qjj, qii = (float(quadric[a, a]) for a in range(3))
        qkj, qki, qji = (2.0 * float(quadric[a, b]) for a, b in ((0, 1), (0, 2), (1, 2)))
        # The k and j terms broadcast to an (nk, nj, 1) array; only the i terms fill the box.
        q = qkk * dk * dk + qkj * dk * dj + qjj * dj * dj
        q = q + di * (qki * dk + qji * dj)
        q += qii * di * di
        mask = q < 1.0
        if self.hollow:
            mask &= q >= _HOLE_RATIO**2
        if self.force_center and not self.hollow:
            k, j, i = (int(v) for v in nearest - start)
            mask[k, j, i] = True
        box = (
            slice(int(start[0]), int(stop[0])),
            slice(int(start[1]), int(stop[1])),
            slice(int(start[2]), int(stop[2])),
        )
        return box, mask


def _random_rotation(rng: np.random.Generator, max_degrees: float = 40.0) -> FloatArray:
    axis = rng.normal(size=3)
    return _rotation(axis, float(rng.uniform(0.0, max_degrees)))


def _cell_counts(shape: Sequence[int], n: int) -> tuple[int, int, int]:
    """Cells per axis (at least ``n`` in all), kept near cubic and at least 2 voxels wide."""
    counts = [1, 1, 1]
    while counts[0] * counts[1] * counts[2] < n:
        fits = [a for a in range(3) if shape[a] // (counts[a] + 1) >= 2]
        if not fits:
            raise ValueError(
                f"a grid of shape {tuple(shape)} has no room for {n} separate blobs; "
                "use a larger shape or fewer segments"
            )
        axis = max(fits, key=lambda a: shape[a] / counts[a])
        counts[axis] += 1
    return (counts[0], counts[1], counts[2])


def _spread(items: Sequence[int], m: int) -> list[int]:
    """``m`` distinct items picked evenly through ``items``."""
    size = len(items)
    return [items[int((t + 0.5) * size / m)] for t in range(m)] if m else []


def _make_blob(
    rng: np.random.Generator,
    low: NDArray[np.int64],
    high: NDArray[np.int64],
    size: tuple[float, float],
) -> _Blob:
    """A randomly sized, oriented and placed ellipsoid that fits in ``[low, high]``."""
    half = (high - low + 1).astype(np.float64) / 2.0
    radii = half * rng.uniform(size[0], size[1], size=3)
    rotation = _random_rotation(rng)
    blob = _Blob(np.zeros(3), radii, rotation, low, high)
    extent = blob.extent
    blob.radii = radii * min(1.0, float(np.min(half / extent)))
    extent = blob.extent
    first = low - 0.5 + extent
    last = high + 0.5 - extent
    blob.center = np.where(
        first < last, rng.uniform(first, np.maximum(first, last)), low + half - 0.5
    )
    return blob


def synthetic_segmentation(
    shape: Sequence[int] | None = None,
    n_segments: int = 24,
    *,
    geometry: Geometry | None = None,
    overlapping: bool = False,
    empty_segments: int = 0,
    unicode_names: bool = False,
    terminology: bool = True,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Segmentation:
    """A reproducible segmentation whose segments look like anatomy, traps included.

    Parameters
    ----------
    shape:
        ``(k, j, i)``; by default the grid's shape, or 200 x 512 x 512 (a CT volume).
    n_segments:
        Number of segments, empty ones and overlapping ones included.
    geometry:
        The grid; by default ``grid("axial", shape)``.
    overlapping:
        Make a few segments (about one in six, at least two) overlap others. They go to
        extra layers: two of them share a voxel with each other and with the segment
        under them, so the segmentation needs three layers.
    empty_segments:
        How many of the segments have no voxel at all (they still get a label value).
    unicode_names:
        Names in many scripts (see :func:`segment_names`) instead of anatomical ones.
    terminology:
        Give segments SNOMED CT terminology (one with a laterality modifier, one lesion
        with an anatomic region and region modifier).
    seed:
        Same seed, same segmentation.
    dtype:
        Integer dtype of the layers; by default uint8, or uint16 beyond 255 labels.

    Every segment with voxels is made of ellipsoids placed in separate cells of the
    volume, so segments never touch unless ``overlapping``. In segment order among the
    non-overlapping ones: the first is cut by the ``i = 0`` face of the volume, the last
    by the ``k = K-1`` face, every third (from the second) is hollow when big enough (a
    fully enclosed cavity), and every fourth (from the third) consists of 2 or 3
    disconnected islands. Colours are distinct full-precision floats; every other segment
    has the property ``Segmentation.Status = completed``. Segment ids are ``Segment_1``,
    ``Segment_2``, ... so that ids and names always differ.
    """
    if geometry is None:
        dims = tuple(int(n) for n in (shape if shape is not None else FULL_SHAPE))
        geometry = grid("axial", dims)
    elif shape is not None and tuple(int(n) for n in shape) != geometry.shape:
        raise ValueError(f"shape {tuple(shape)} differs from the geometry's {geometry.shape}")
    dims3 = geometry.shape
    n = int(n_segments)
    if n < 0:
        raise ValueError(f"n_segments must be >= 0, got {n}")
    if not 0 <= empty_segments <= n:
        raise ValueError(f"empty_segments must be between 0 and {n}, got {empty_segments}")
    rng = np.random.default_rng(seed)

    # -- roles, in segment order --------------------------------------------------------
    n_filled = n - empty_segments
    n_overlap = 0
    if overlapping:
        if n_filled < 2:
            raise ValueError("overlapping segments need at least two segments with voxels")
        n_overlap = min(n_filled - 1, max(2, round(n_filled / 6)))
    roles = ["base"] * n
    rest = list(range(1, n)) if n_filled > 0 else list(range(n))
    for position in _spread(rest, empty_segments):
        roles[position] = "empty"
    rest = [p for p in rest if roles[p] == "base"]
    for position in _spread(rest, n_overlap):
        roles[position] = "overlap"
    bases = [p for p in range(n) if roles[p] == "base"]

    # -- label values and dtype -----------------------------------------------------------
    layer_of = [0] * n
    label_of = [0] * n
    next_label = 0
    for position in range(n):
        if roles[position] != "overlap":
            next_label += 1
            label_of[position] = next_label
    top = max(next_label, n_overlap, 1)
    array_dtype = np.dtype(dtype) if dtype is not None else np.dtype(np.min_scalar_type(top))
    if not np.issubdtype(array_dtype, np.integer):
        raise ValueError(f"dtype must be an integer type, got {array_dtype}")
    if top > np.iinfo(array_dtype).max:
        raise ValueError(f"{top} labels do not fit {array_dtype}")

    # -- blobs of the non-overlapping segments, each blob in a cell of its own ----------------
    blob_counts = []
    for b in range(len(bases)):
        if b % 4 == 2:
            blob_counts.append(2 if b % 8 == 2 else 3)
        else:
            blob_counts.append(1)
    layers = [np.zeros(dims3, dtype=array_dtype)]
    hosts: list[tuple[_Blob, int]] = []  # painted blobs and their label, for overlaps
    total = sum(blob_counts)
    if total:
        counts = _cell_counts(dims3, total)
        edges = [
            np.floor(np.linspace(0, dims3[a], counts[a] + 1)).astype(np.int64) for a in range(3)
        ]
        cells = [
            (ck, cj, ci)
            for ck in range(counts[0])
            for cj in range(counts[1])
            for ci in range(counts[2])
        ]
        order = [cells[int(t)] for t in rng.permutation(len(cells))]
        last_k = counts[0] - 1

        def take(prefer: Callable[[tuple[int, int, int]], bool]) -> tuple[int, int, int]:
            chosen = next((c for c in order if prefer(c)), order[0])
            order.remove(chosen)
            return chosen

        # The border blobs choose first; the first avoids the k-border cells if it can.
        plan: list[list[tuple[int, int, int]]] = [[] for _ in bases]
        plan[0].append(take(lambda c: c[2] == 0 and (c[0] != last_k or last_k == 0)))
        if len(bases) > 1:
            plan[-1].append(take(lambda c: c[0] == last_k))
        for b, count in enumerate(blob_counts):
            while len(plan[b]) < count:
                plan[b].append(take(lambda c: True))

        for b, position in enumerate(bases):
            label = label_of[position]
            for island, cell in enumerate(plan[b]):
                low = np.array([edges[a][cell[a]] for a in range(3)], dtype=np.int64)
                high = np.array(
                    [
                        edges[a][cell[a] + 1] - (1 if cell[a] == counts[a] - 1 else 2)
                        for a in range(3)
                    ],
                    dtype=np.int64,
                )
                size = (0.55, 0.95) if island == 0 else (0.35, 0.7)
                blob = _make_blob(rng, low, high, size)
                if island == 0 and b == 0 and cell[2] == 0:  # cut by the i = 0 face
                    blob.center[2] = float(rng.uniform(0.0, 0.45))
                elif island == 0 and b == len(bases) - 1 and cell[0] == last_k:
                    blob.center[0] = dims3[0] - 1 - float(rng.uniform(0.0, 0.45))
                blob.hollow = b % 3 == 1 and float(np.min(blob.radii)) >= _HOLE_MIN_RADIUS
                box, mask = blob.evaluate()
                layers[0][box][mask] = label
                hosts.append((blob, label))

    # -- overlapping segments: centred on a voxel of a host, in the host's cell ---------------
    overlap_positions = [p for p in range(n) if roles[p] == "overlap"]
    layer_labels = [0]
    shared_center: FloatArray | None = None
    for t, position in enumerate(overlap_positions):
        host, host_label = hosts[0] if t < 2 else hosts[int(rng.integers(len(hosts)))]
        if t == 1 and shared_center is not None:
            center = shared_center
        else:
            box, _ = host.evaluate()
            voxels = np.argwhere(layers[0][box] == host_label)
            pick = voxels[int(rng.integers(len(voxels)))]
            center = np.array([box[a].start + pick[a] for a in range(3)], dtype=np.float64)
            shared_center = center
        blob = _make_blob(rng, host.low, host.high, (0.3, 0.6))
        blob.center = center.copy()
        box, mask = blob.evaluate()
        target = next(
            (index for index, arr in enumerate(layers) if not np.any(arr[box][mask])),
            len(layers),
        )
        if target == len(layers):
            layers.append(np.zeros(dims3, dtype=array_dtype))
            layer_labels.append(0)
        layer_labels[target] += 1
        layers[target][box][mask] = layer_labels[target]
        layer_of[position] = target
        label_of[position] = layer_labels[target]

    # -- segments ---------------------------------------------------------------------------
    names = segment_names(n, unicode_names=unicode_names)
    colors = _colors(n, rng)
    segments = [
        Segment(
            id=f"Segment_{position + 1}",
            name=names[position],
            color=colors[position],
            terminology=_terminology_for(position) if terminology else None,
            layer=layer_of[position],
            label_value=label_of[position],
            properties={"Segmentation.Status": "completed"} if position % 2 == 0 else {},
        )
        for position in range(n)
    ]
    return Segmentation(segments, [Layer(array, geometry) for array in layers])


def small_segmentation(
    kind: str = "oblique",
    overlapping: bool = False,
    *,
    n_segments: int = 5,
    empty_segment: bool = False,
    unicode_names: bool = False,
    terminology: bool = True,
    seed: int = 0,
    dtype: DTypeLike | None = None,
) -> Segmentation:
    """A tiny segmentation on ``grid(kind)`` (5 segments by default), for fast tests.

    The oblique default grid is 7 x 13 x 11 voxels. With ``empty_segment`` one of the
    segments has no voxel.
    """
    return synthetic_segmentation(
        n_segments=n_segments,
        geometry=grid(kind),
        overlapping=overlapping,
        empty_segments=int(empty_segment),
        unicode_names=unicode_names,
        terminology=terminology,
        seed=seed,
        dtype=dtype,
    )


def _relabeled(segmentation: Segmentation, values: Sequence[int], dtype: DTypeLike) -> Segmentation:
    """A copy whose segments take ``values`` (in segment order) as label values."""
    result = segmentation.copy()
    wanted = np.dtype(dtype)
    arrays = []
    for index, layer in enumerate(result.layers):
        members = result.segments_in_layer(index)
        lut = np.zeros(int(layer.array.max(initial=0)) + 1, dtype=wanted)
        for segment in members:
            new = values[list(result.segments).index(segment.id)]
            if segment.label_value < lut.size:
                lut[segment.label_value] = new
            segment.label_value = new
        arrays.append(lut[layer.array])
    result.layers = [
        Layer(arr, layer.geometry) for arr, layer in zip(arrays, result.layers, strict=True)
    ]
    result.validate()
    return result


# -- comparison ------------------------------------------------------------------------------


def dice(a_mask: NDArray[Any], b_mask: NDArray[Any]) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two masks; 1.0 when both are empty."""
    a = np.asarray(a_mask, dtype=bool)
    b = np.asarray(b_mask, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


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


def _sphere(center: FloatArray, radii: FloatArray, rotation: FloatArray, rings: int = 8) -> Surface:
    """A closed UV ellipsoid (poles + rings), counter-clockwise seen from outside."""
    sectors = 2 * rings
    theta = np.pi * np.arange(1, rings) / rings
    phi = 2 * np.pi * np.arange(sectors) / sectors
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)
    body = unit.reshape(-1, 3)
    points = np.concatenate([[[0, 0, 1]], body, [[0, 0, -1]]]) * np.asarray(radii)
    south = len(points) - 1
    faces = []
    for j in range(sectors):
        k = (j + 1) % sectors
        faces.append((0, 1 + j, 1 + k))
        for i in range(rings - 2):
            a, b = 1 + i * sectors + j, 1 + i * sectors + k
            c, d = a + sectors, b + sectors
            faces += [(a, c, d), (a, d, b)]
        last = 1 + (rings - 2) * sectors
        faces.append((south, last + k, last + j))
    return Surface(points @ rotation.T + np.asarray(center), faces)


def _torus(center: FloatArray, radius: float, tube: float, rotation: FloatArray) -> Surface:
    """A closed torus (genus 1: a segment with a hole), outward winding."""
    n, m = 16, 8
    u = 2 * np.pi * np.arange(n) / n
    v = 2 * np.pi * np.arange(m) / m
    uu, vv = np.meshgrid(u, v, indexing="ij")
    ring = radius + tube * np.cos(vv)
    points = np.stack([ring * np.cos(uu), ring * np.sin(uu), tube * np.sin(vv)], axis=-1)
    i, j = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    a = (i * m + j).ravel()
    b = (((i + 1) % n) * m + j).ravel()
    c = (((i + 1) % n) * m + (j + 1) % m).ravel()
    d = (i * m + (j + 1) % m).ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return Surface(points.reshape(-1, 3) @ rotation.T + np.asarray(center), faces)


def surface_segmentation(
    n_segments: int = 3, *, unicode_names: bool = False, seed: int = 0
) -> Segmentation:
    """Closed surfaces in LPS mm: oblique ellipsoids and a torus (a hole), one per segment.

    For the mesh formats, whose source representation is the closed surface. Colours have
    full precision, the third segment is half transparent (property ``opacity``), all have
    terminology. Coordinates are off-centre (about -150..150 mm), as in a CT.
    """
    rng = np.random.default_rng(seed)
    names = segment_names(n_segments, unicode_names=unicode_names)
    colors = _colors(n_segments, rng)
    segments, surfaces = [], {}
    for n in range(n_segments):
        rotation = _random_rotation(rng)
        center = rng.uniform(-150.0, 150.0, 3)
        if n % 3 == 2:
            surface = _torus(center, 12.0 + n, 4.0, rotation)
        else:
            surface = _sphere(center, rng.uniform(5.0, 30.0, 3), rotation)
        segment = Segment(
            id=f"Segment_{n + 1}",
            name=names[n],
            color=colors[n],
            terminology=_terminology_for(n),
            label_value=n + 1,
            properties={"opacity": "0.5"} if n % 3 == 2 else {},
        )
        segments.append(segment)
        surfaces[segment.id] = surface
    return Segmentation(
        segments, source_representation=Representation.CLOSED_SURFACE, surfaces=surfaces
    )


def surface_conformance_cases() -> list[tuple[str, Callable[[], Segmentation]]]:
    """Closed-surface cases every mesh format should round-trip (float32 precision)."""
    return [
        ("surfaces", partial(surface_segmentation, 3)),
        ("surface_unicode_names", partial(surface_segmentation, 4, unicode_names=True)),
        ("single_surface", partial(surface_segmentation, 1)),
    ]


# -- the conformance battery ---------------------------------------------------------------


def _uint16_case() -> Segmentation:
    """Labels above 255 in a uint16 layer, up to the largest uint16 value."""
    seg = small_segmentation("axial", dtype=np.uint16)
    return _relabeled(seg, (256, 1000, 4097, 40000, 65535), np.uint16)


def conformance_cases() -> list[tuple[str, Callable[[], Segmentation]]]:
    """Named segmentations every format should round-trip, each built on demand.

    One difficulty per case, so that a failure names its cause: ``axial``, ``oblique``,
    ``anisotropic`` and ``lps_flipped`` grids; ``overlapping`` (three layers);
    ``empty_segment``; ``unicode_names``; ``single_segment``; ``uint16_labels`` (label
    values 256 to 65535). All are small; all have SNOMED CT terminology, full-precision
    colours and properties.
    """
    return [
        ("axial", partial(small_segmentation, "axial")),
        ("oblique", partial(small_segmentation, "oblique")),
        ("anisotropic", partial(small_segmentation, "anisotropic")),
        ("lps_flipped", partial(small_segmentation, "lps_flipped")),
        ("overlapping", partial(small_segmentation, "axial", overlapping=True)),
        ("empty_segment", partial(small_segmentation, "axial", empty_segment=True)),
        ("unicode_names", partial(small_segmentation, "axial", unicode_names=True)),
        ("single_segment", partial(small_segmentation, "axial", n_segments=1)),
        ("uint16_labels", _uint16_case),
    ]


def _fresh_path(folder: Path, stem: str, suffix: str) -> Path:
    candidate = folder / f"{stem}{suffix}"
    n = 1
    while candidate.exists():
        candidate = folder / f"{stem}_{n}{suffix}"
        n += 1
    return candidate


def _first_suffix(format_name: str, registry: Registry) -> str:
    spec = registry.format(format_name)
    if not spec.suffixes:
        raise ValueError(f"format {format_name!r} declares no suffix; pass suffix=")
    return spec.suffixes[0]


def check_round_trip(
    format_name: str,
    case: Segmentation,
    tmp_path: Path,
    *,
    suffix: str | None = None,
    compare: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    **write_options: Any,
) -> Segmentation:
    """Write ``case`` in ``format_name``, read it back, and require the same segmentation.

    The file is named with ``suffix`` (default: the format's first suffix) in
    ``tmp_path``. The writer must leave ``case`` unchanged. ``compare`` is passed to
    :func:`assert_same_segmentation` (for a format that cannot store, say, segment ids);
    ``write_options`` go to :func:`segio.write`. Returns what was read back.
    """
    registry = registry or default_registry()
    suffix = _first_suffix(format_name, registry) if suffix is None else suffix
    path = _fresh_path(Path(tmp_path), "round_trip", suffix)
    original = case.copy()
    write_options = _with_reference(format_name, case, path, registry, write_options)
    written = write(case, path, format=format_name, registry=registry, **write_options)
    if not path.exists():
        raise AssertionError(f"{format_name}: the writer did not create {path.name} ({written})")
    try:
        assert_same_segmentation(original, case, check_layers=True)
    except AssertionError as exc:
        raise AssertionError(f"{format_name}: the writer changed its input: {exc}") from None
    # A format that needs the source series to write (DICOM) also places what it reads on
    # that series' grid when given it; without it, omitted border slices shrink the grid.
    spec = registry.format(format_name)
    read_options = (
        {"reference": write_options["reference"]}
        if "reference" in write_options and "reference" in spec.read_options
        else {}
    )
    result = read(path, format=format_name, registry=registry, **read_options)
    try:
        assert_same_segmentation(original, result, **dict(compare or {}))
    except AssertionError as exc:
        raise AssertionError(
            f"{format_name} round trip through {path.name} ({original!r} -> {result!r}): {exc}"
        ) from None
    return result


def _with_reference(
    format_name: str,
    case: Segmentation,
    path: Path,
    registry: Registry,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Add ``reference=`` (a DICOM series on the case's grid) for formats that need one."""
    result = dict(options)
    spec = registry.format(format_name)
    if "reference" in spec.write_options and "reference" not in result and case.geometry:
        folder = _fresh_path(path.parent, "reference_series", "")
        result["reference"] = reference_series(case.geometry, folder)
    return result


def reference_series(geometry: Geometry, folder: Path) -> Path:
    """Write a minimal CT series on ``geometry`` (one file per slice) into ``folder``.

    For formats that write DICOM derived objects (SEG, RTSTRUCT), which must reference
    the images they were drawn on. Pixels are zeros; the header is a valid CT image.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    rows, columns = geometry.shape[1], geometry.shape[2]
    spacing = geometry.spacing
    for k, position in enumerate(geometry.slice_positions()):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            "Test^Case",
            "T1",
            "",
            "O",
        )
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = (
            "",
            "CT",
            1,
            k + 1,
        )
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in geometry.image_orientation()]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PhotometricInterpretation, ds.ImageType = "MONOCHROME2", ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = bytes(rows * columns * 2)
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    return folder


def _call_with_deadline(
    function: Callable[[], object], seconds: float
) -> tuple[bool, object, BaseException | None]:
    """Run ``function`` in a thread: (finished, result, exception raised)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # reported to the caller, whatever it is
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="segio-testing-deadline", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return False, None, None
    return True, outcome.get("result"), outcome.get("error")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {frame.filename}:{frame.lineno}"


def _magic_prefix(sniff: Callable[[bytes], bool] | None, valid: bytes, garbage: bytes) -> bytes:
    """The shortest start of ``valid`` that makes the sniffer accept it followed by garbage."""
    if sniff is not None:
        lengths = [*range(1, 65), 96, 128, 256, 348, 352, 512, 1024, 2048, HEAD_SIZE]
        for length in lengths:
            if length > len(valid):
                break
            if sniff((valid[:length] + garbage)[:HEAD_SIZE]):
                return valid[:length]
    return valid[:8]


def _place(payload: bytes, path: Path, directory: bool) -> Path:
    if directory:
        path.mkdir()
        (path / "data").write_bytes(payload)
    else:
        path.write_bytes(payload)
    return path


def _main_file(path: Path) -> Path:
    """The file to corrupt: ``path`` itself, or the largest file of a written folder."""
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
        if not files:
            raise AssertionError(f"the writer produced an empty folder {path}")
        return files[0]
    return path


def check_rejects_garbage(
    format_name: str,
    tmp_path: Path,
    *,
    registry: Registry | None = None,
    timeout_s: float = 10.0,
    case: Segmentation | None = None,
    write_options: Mapping[str, Any] | None = None,
) -> None:
    """Reading garbage named like this format must raise :class:`SegioError`, and soon.

    Inputs, each given the format's suffix: random bytes; an empty file; a valid file of
    the format (written by its writer, when it has one) cut at 16 bytes, half its length
    and one byte short; and the format's magic bytes followed by random bytes. Each is
    read twice, once letting segio choose the format and once forcing ``format_name``
    (so the reader itself, not only the sniffer, sees the garbage). Any other exception,
    a successful read or a read running longer than ``timeout_s`` fails, and every
    failure is listed with where the wrong exception was raised. The valid file is written
    from ``case`` (default :func:`small_segmentation`) with ``write_options``.
    """
    registry = registry or default_registry()
    spec = registry.format(format_name)
    if spec.reader is None:
        raise ValueError(f"format {format_name!r} has no reader")
    folder = Path(tmp_path)
    suffix = spec.suffixes[0] if spec.suffixes else ""
    rng = np.random.default_rng(20240601)
    garbage = rng.bytes(2048)
    samples: list[tuple[str, bytes]] = [
        ("random bytes", rng.bytes(4096)),
        ("an empty file", b""),
    ]
    if spec.writer is not None:
        source = _fresh_path(folder, "valid", suffix)
        case = case or small_segmentation("axial")
        options = _with_reference(format_name, case, source, registry, write_options or {})
        write(case, source, format=format_name, registry=registry, **options)
        valid = _main_file(source).read_bytes()
        size = len(valid)
        for cut in sorted({min(16, size - 1), size // 2, size - 1}):
            if 0 < cut < size:
                samples.append((f"a valid file cut to {cut} of its {size} bytes", valid[:cut]))
        magic = _magic_prefix(spec.sniff, valid, garbage)
        samples.append(
            (f"the first {len(magic)} bytes of a valid file then random bytes", magic + garbage)
        )

    failures: list[str] = []
    for n, (what, payload) in enumerate(samples):
        path = _place(payload, _fresh_path(folder, f"garbage_{n}", suffix), spec.directory)
        for forced in (False, True):
            how = f"read(format={format_name!r})" if forced else "read()"

            def attempt(path: Path = path, forced: bool = forced) -> object:
                return read(path, format=format_name if forced else None, registry=registry)

            finished, result, error = _call_with_deadline(attempt, timeout_s)
            if not finished:
                failures.append(f"{what}: {how} still running after {timeout_s:g} s")
            elif error is None:
                failures.append(f"{what}: {how} returned {result!r} instead of raising")
            elif not isinstance(error, SegioError) or error.unexpected:
                # segio.read turns what a reader lets escape into a SegioError flagged
                # unexpected: the user sees one line, the battery still reports the reader.
                raw = (error.__cause__ or error) if isinstance(error, SegioError) else error
                failures.append(
                    f"{what}: {how} raised {type(raw).__name__}: {raw}{_where(raw)} "
                    "instead of a SegioError"
                )
    if failures:
        raise AssertionError(
            f"{format_name} accepts or mishandles bad input:\n  " + "\n  ".join(failures)
        )


def check_sniffing(
    format_name: str,
    tmp_path: Path,
    *,
    compare: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    case: Segmentation | None = None,
    write_options: Mapping[str, Any] | None = None,
) -> None:
    """A file of this format under a neutral name (no suffix) must still be recognised.

    Writes a small segmentation, copies it as ``noext`` and ``data.bin``, and requires
    that the registry choose ``format_name`` for both (only sniffers can tell) and that
    :func:`segio.read` returns the same segmentation (``compare`` as in
    :func:`check_round_trip`). When the writer produced sidecar files, which a renamed copy
    leaves behind, only the voxels and the grid are compared. Does nothing for a format
    without a sniffer (``sniff=None``): such a format is only ever chosen by suffix or by
    name. ``case`` (default :func:`small_segmentation` on the oblique grid) is written
    with ``write_options``.
    """
    registry = registry or default_registry()
    spec = registry.format(format_name)
    if spec.sniff is None:
        return
    if spec.writer is None or spec.reader is None:
        raise ValueError(f"format {format_name!r} needs a reader and a writer to check sniffing")
    folder = Path(tmp_path)
    original = case or small_segmentation("oblique")
    source = _fresh_path(folder, "sniff_source", spec.suffixes[0] if spec.suffixes else "")
    options = _with_reference(format_name, original, source, registry, write_options or {})
    written = write(original, source, format=format_name, registry=registry, **options)
    options = dict(compare or {})
    if len(written) > 1:  # the sidecars stay with the original name
        options.update(
            check_ids=False,
            check_names=False,
            check_terminology=False,
            check_properties=False,
            color_atol=1.0,
        )
    problems: list[str] = []
    for neutral in ("noext", "data.bin"):
        target = _fresh_path(folder, neutral, "")
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
        head = b"" if target.is_dir() else target.read_bytes()[:HEAD_SIZE]
        claimants = [
            s.name
            for s in registry.formats.values()
            if s.sniff is not None
            and s.reader is not None
            and not target.is_dir()
            and s.sniff(head)
        ]
        try:
            chosen = registry.reader_for(target).name
        except SegioError as exc:
            problems.append(
                f"{target.name}: not recognised ({exc}); sniffers claiming it: {claimants}"
            )
            continue
        if chosen != format_name:
            problems.append(
                f"{target.name}: the registry chose {chosen!r}; sniffers claiming it: {claimants}"
            )
            continue
        try:
            result = read(target, registry=registry)
        except SegioError as exc:
            problems.append(f"{target.name}: recognised but not readable: {exc}")
            continue
        if result.provenance.get("format") != format_name:
            problems.append(f"{target.name}: read as {result.provenance.get('format')!r}")
        try:
            assert_same_segmentation(original, result, **options)
        except AssertionError as exc:
            problems.append(f"{target.name}: {exc}")
    if problems:
        raise AssertionError(f"{format_name} sniffing:\n  " + "\n  ".join(problems))
