"""The canonical segmentation model, after 3D Slicer's segmentation node.

Every reader produces a :class:`Segmentation` and every writer consumes one; no plugin
talks to another. A segmentation is an ordered set of :class:`Segment` s whose voxels
live in one or more :class:`Layer` s: integer labelmaps on one shared grid. A segment
owns the voxels of its layer equal to its label value, so segments in the same layer
cannot overlap and segments in different layers may. Label values are per layer, as in
Slicer (``Segments in separate layers can have the same label value``).

A segmentation may also hold *point annotations* (:class:`segio.points.PointAnnotation`:
a position in LPS mm, a name, a colour, a terminology when known), beside its segments
and whatever the source representation: RTSTRUCT POINT ROIs, OsiriX point ROIs and Slicer
fiducials mark places, not regions, so they are never segments (which every labelmap
format would write empty). Writers that can hold points write them; the others leave them
out with one warning (:func:`segio.points.warn_unwritten`).
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Hashable, Iterable, Iterator, Mapping, ValuesView
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from segio.colors import color_for_index
from segio.contours import PlanarContours
from segio.errors import GeometryError, ValidationError
from segio.geometry import Geometry
from segio.labels.packing import FirstFitPacker, bounding_box
from segio.labels.values import compact_labels, label_counts
from segio.points import PointAnnotation
from segio.representations import ConversionParameters, Representation
from segio.surfaces import Surface
from segio.terminology import Terminology

if TYPE_CHECKING:
    from segio.registry import Registry

Color = tuple[float, float, float]
#: Provenance key a reader sets when it could describe its shapes but not place them (an
#: OsiriX ROI SR read without the image series its pixel coordinates refer to); the value
#: says why and what to pass. :meth:`Segmentation.validate` refuses such a segmentation, so
#: it can be shown (``segio info``) but never converted or written: an empty file in its
#: place would look fine and hold nothing. It travels with the provenance through every
#: conversion and selection.
UNPLACED = "unplaced"
#: Provenance key with the ROIs of an unplaced segmentation, a JSON list of objects (name,
#: type, image_uid, points), for ``segio info``.
UNPLACED_ROIS = "unplaced.rois"
#: Index box of a segment: ``((k0, k1), (j0, j1), (i0, i1))``, inclusive.
Extent = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


@dataclass(eq=False)
class Segment:
    """One structure: identity, appearance, meaning, and where its voxels are.

    ``properties`` holds free text key/values that are round-tripped as they are
    (Slicer tags other than the terminology, DICOM algorithm fields, ...).
    """

    id: str
    name: str
    color: Color = (0.5, 0.5, 0.5)
    terminology: Terminology | None = None
    layer: int = 0
    label_value: int = 1
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValidationError when a field breaks a rule of the model."""
        if not isinstance(self.id, str) or not self.id:
            raise ValidationError(f"segment id must be non-empty text, got {self.id!r}")
        if not isinstance(self.name, str):
            raise ValidationError(f"segment {self.id!r}: name must be text, got {self.name!r}")
        try:
            rgb = tuple(float(c) for c in self.color)
        except (TypeError, ValueError):
            rgb = ()
        if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
            raise ValidationError(
                f"segment {self.id!r}: colour must be three numbers in 0..1, got {self.color!r}"
            )
        self.color = (rgb[0], rgb[1], rgb[2])
        if self.terminology is not None and not isinstance(self.terminology, Terminology):
            raise ValidationError(f"segment {self.id!r}: terminology must be a Terminology")
        self.layer = _whole(self.layer, 0, f"segment {self.id!r}: layer")
        self.label_value = _whole(
            self.label_value, 1, f"segment {self.id!r}: label value (0 is background)"
        )
        for key, value in self.properties.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValidationError(f"segment {self.id!r}: properties must map text to text")


def _whole(value: object, minimum: int, what: str) -> int:
    """``value`` as an int >= ``minimum``; ValidationError for anything else."""
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        number = minimum - 1
    if isinstance(value, bool) or number != value or number < minimum:
        raise ValidationError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return number


class Layer:
    """An integer array on a grid: a labelmap, or the fractions of one segment.

    A *labelmap* layer (``max_fraction`` None) is shared by segments with distinct label
    values. A *fractional* layer holds one segment (label value 1): each voxel stores how
    much of it is inside, from 0 to ``max_fraction`` (DICOM's Maximum Fractional Value,
    e.g. 255), as DICOM FRACTIONAL SEG and Slicer's fractional labelmap do.
    """

    __slots__ = ("array", "geometry", "max_fraction")

    def __init__(
        self,
        array: NDArray[np.integer],
        geometry: Geometry,
        *,
        max_fraction: int | None = None,
    ) -> None:
        if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.integer):
            dtype = getattr(array, "dtype", type(array).__name__)
            raise ValidationError(f"a layer must be an integer numpy array, got {dtype}")
        if array.shape != geometry.shape:
            raise GeometryError(
                f"layer array shape {array.shape} differs from its geometry {geometry.shape}"
            )
        if max_fraction is not None and not 0 < max_fraction <= np.iinfo(array.dtype).max:
            raise ValidationError(
                f"a fractional layer's maximum must be 1..{np.iinfo(array.dtype).max}, "
                f"got {max_fraction}"
            )
        self.array = array
        self.geometry = geometry
        self.max_fraction = max_fraction

    @property
    def is_fractional(self) -> bool:
        return self.max_fraction is not None

    def __repr__(self) -> str:
        kind = f", fractions of {self.max_fraction}" if self.is_fractional else ""
        return f"Layer({self.array.dtype}{kind}, {self.geometry!r})"


class SegmentMap(Mapping[str, Segment]):
    """Segments in order, looked up by id or, when unambiguous, by name."""

    def __init__(self, segments: Iterable[Segment] = ()) -> None:
        self._by_id: dict[str, Segment] = {}
        for segment in segments:
            self.add(segment)

    def add(self, segment: Segment) -> None:
        if segment.id in self._by_id:
            raise ValidationError(f"two segments share the id {segment.id!r}")
        self._by_id[segment.id] = segment

    def remove(self, key: str) -> Segment:
        segment = self[key]
        del self._by_id[segment.id]
        return segment

    def __getitem__(self, key: str) -> Segment:
        segment = self._by_id.get(key)
        if segment is not None:
            return segment
        named = [s for s in self._by_id.values() if s.name == key]
        if len(named) == 1:
            return named[0]
        if named:
            raise KeyError(f"{len(named)} segments are named {key!r}; use the segment id")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def values(self) -> ValuesView[Segment]:
        """The segments in order, straight from the id index.

        ``Mapping.values`` would look every id up again through :meth:`__getitem__`,
        which costs ten times more: noticeable with thousands of segments.
        """
        return self._by_id.values()

    def __repr__(self) -> str:
        return "SegmentMap(" + ", ".join(repr(s.name) for s in self._by_id.values()) + ")"


class Segmentation:
    """Segments, the layers that hold their voxels, and what is needed to write them back.

    Other representations are derived and cached (:meth:`representation`); changing the
    source drops them. Replacing an array, a shape or a segment's label is noticed; after
    an edit *inside* a numpy array, call :meth:`modified` (Slicer's rule).

    Parameters
    ----------
    segments:
        In order; the order is the file order of every format that has one.
    layers:
        Labelmaps on one shared grid (the source representation is a binary labelmap).
    conversion_parameters:
        Segmentation-wide converter settings (Slicer's names); unknown ones are kept.
    reference_geometry:
        Grid of the image the segmentation was drawn on, when known (Slicer's
        "Reference image geometry", a DICOM series). Writers may align to it.
    provenance:
        Where it came from: ``source_path``, ``format``, DICOM UIDs, ...
    extras:
        Format-specific fields per format name, written back by that format's writer.
    points:
        Point annotations (:class:`segio.points.PointAnnotation`), in order: not segments,
        kept with any source representation and carried through conversions.
    """

    def __init__(
        self,
        segments: Iterable[Segment] = (),
        layers: Iterable[Layer] = (),
        *,
        source_representation: Representation = Representation.BINARY_LABELMAP,
        conversion_parameters: ConversionParameters | None = None,
        reference_geometry: Geometry | None = None,
        contained_representations: Iterable[Representation] = (),
        provenance: Mapping[str, str] | None = None,
        extras: Mapping[str, Mapping[str, str]] | None = None,
        contours: Mapping[str, PlanarContours] | None = None,
        surfaces: Mapping[str, Surface] | None = None,
        points: Iterable[PointAnnotation] = (),
    ) -> None:
        self.segments = SegmentMap(segments)
        self.layers: list[Layer] = list(layers)
        #: Planar contours per segment id, when they are the source representation.
        self.contours: dict[str, PlanarContours] = dict(contours or {})
        #: Triangle meshes per segment id, when closed surfaces are the source representation.
        self.surfaces: dict[str, Surface] = dict(surfaces or {})
        #: Point annotations, whatever the source representation (see the module docstring).
        self.points: list[PointAnnotation] = list(points)
        self.source_representation = source_representation
        self.conversion_parameters = (
            conversion_parameters
            if conversion_parameters is not None
            else ConversionParameters.slicer_defaults()
        )
        self.reference_geometry = reference_geometry
        self.contained_representations = list(contained_representations)
        self.provenance: dict[str, str] = dict(provenance or {})
        self.extras: dict[str, dict[str, str]] = {k: dict(v) for k, v in (extras or {}).items()}
        #: Derived representations, and the source state they came from (converters.cache).
        self._derived: dict[Hashable, Segmentation] = {}
        self._derived_from: object = None
        self.validate()

    # -- invariants ----------------------------------------------------------------------

    def validate(self) -> None:
        """Check every rule of the model; raise ValidationError or GeometryError."""
        unplaced = self.provenance.get(UNPLACED)
        if unplaced:
            raise ValidationError(unplaced, hint="pass the image series as reference")
        for point in self.points:
            if not isinstance(point, PointAnnotation):
                raise ValidationError(
                    f"points must be PointAnnotation objects, got {type(point).__name__}"
                )
        if self.source_representation is Representation.PLANAR_CONTOURS:
            self._validate_shapes("planar contours", self.contours, PlanarContours)
            return
        if self.source_representation is Representation.CLOSED_SURFACE:
            self._validate_shapes("closed surfaces", self.surfaces, Surface)
            return
        if self.contours or self.surfaces:
            raise ValidationError(
                "contours and surfaces are kept only when they are the source representation"
            )
        fractional = self.source_representation is Representation.FRACTIONAL_LABELMAP
        members = self._members_by_layer()
        for index, layer in enumerate(self.layers):
            if layer.is_fractional != fractional:
                raise ValidationError(
                    f"layer {index} is {'' if layer.is_fractional else 'not '}fractional but the "
                    f"source representation is {self.source_representation.value!r}"
                )
            if fractional and len(members.get(index, ())) > 1:
                raise ValidationError(f"fractional layer {index} holds more than one segment")
        if self.layers:
            first = self.layers[0].geometry
            for index, layer in enumerate(self.layers[1:], start=1):
                if not layer.geometry.is_close(first):
                    raise GeometryError(
                        f"layer {index} is on another grid than layer 0 "
                        f"({layer.geometry!r} vs {first!r}); resample it first"
                    )
        owners: dict[tuple[int, int], str] = {}
        for segment in self.segments.values():
            segment.validate()
            if segment.layer >= len(self.layers):
                raise ValidationError(
                    f"segment {segment.id!r} is in layer {segment.layer}, but the "
                    f"segmentation has {len(self.layers)} layer(s)"
                )
            dtype = self.layers[segment.layer].array.dtype
            if segment.label_value > np.iinfo(dtype).max:
                raise ValidationError(
                    f"segment {segment.id!r}: label {segment.label_value} does not fit the "
                    f"{dtype} array of layer {segment.layer}"
                )
            slot = (segment.layer, segment.label_value)
            if slot in owners:
                raise ValidationError(
                    f"segments {owners[slot]!r} and {segment.id!r} both claim label "
                    f"{segment.label_value} of layer {segment.layer}"
                )
            owners[slot] = segment.id

    def _validate_shapes(self, what: str, shapes: Mapping[str, object], kind: type) -> None:
        """Rules of a source representation without voxels: one shape per segment."""
        if self.layers:
            raise ValidationError(f"a segmentation of {what} has no labelmap layers")
        other = self.surfaces if shapes is self.contours else self.contours
        if other:
            raise ValidationError(f"a segmentation of {what} keeps no other shapes")
        for segment in self.segments.values():
            segment.validate()
            if not isinstance(shapes.get(segment.id), kind):
                raise ValidationError(f"segment {segment.id!r} has no {what}")
        unknown = set(shapes) - set(self.segments)
        if unknown:
            raise ValidationError(f"{what} for unknown segment(s): {sorted(unknown)}")

    # -- grid ----------------------------------------------------------------------------

    @property
    def geometry(self) -> Geometry | None:
        """The grid shared by all layers; None for a segmentation without voxels."""
        return self.layers[0].geometry if self.layers else None

    def require_geometry(self) -> Geometry:
        if not self.layers:
            raise ValidationError("the segmentation has no labelmap layer (no voxels, no grid)")
        return self.layers[0].geometry

    # -- segments ------------------------------------------------------------------------

    def segments_in_layer(self, layer: int) -> list[Segment]:
        return [s for s in self.segments.values() if s.layer == layer]

    def _members_by_layer(self) -> dict[int, list[Segment]]:
        """The segments of every layer, in segment order, in one pass.

        Per-layer statistics group segments once this way: calling
        :meth:`segments_in_layer` for each of thousands of layers is quadratic.
        """
        members: dict[int, list[Segment]] = {}
        for segment in self.segments.values():
            members.setdefault(segment.layer, []).append(segment)
        return members

    def mask(self, key: str) -> NDArray[np.bool_]:
        """Boolean ``(k, j, i)`` mask of one segment (by id or name).

        For a fractional segment: the voxels at least half inside (Slicer's default
        "Threshold fraction" of 0.5).
        """
        segment = self.segments[key]
        layer = self.layers[segment.layer]
        if layer.max_fraction is not None:
            return _half_inside(layer)
        return np.asarray(layer.array == segment.label_value)

    def add_mask(
        self,
        mask: NDArray[np.bool_],
        name: str,
        *,
        segment_id: str | None = None,
        color: Color | None = None,
        terminology: Terminology | None = None,
        properties: Mapping[str, str] | None = None,
        geometry: Geometry | None = None,
    ) -> Segment:
        """Add a segment from a boolean mask, in the first layer where it overlaps nothing.

        Its label is the smallest value the layer does not use; a new layer is made when
        every layer already has voxels under the mask. ``geometry`` is needed only for the
        first segment of an empty segmentation.
        """
        mask = np.asarray(mask, dtype=bool)
        if not self.layers:
            if geometry is None:
                raise GeometryError("the first mask of a segmentation needs its geometry")
            self.layers.append(Layer(np.zeros(geometry.shape, np.uint8), geometry))
        grid = self.require_geometry()
        if geometry is not None and not geometry.is_close(grid):
            raise GeometryError(f"mask grid {geometry!r} differs from {grid!r}; resample first")
        if mask.shape != grid.shape:
            raise GeometryError(f"mask shape {mask.shape} differs from the grid {grid.shape}")
        index = next(
            (n for n, layer in enumerate(self.layers) if not np.any(layer.array[mask])),
            len(self.layers),
        )
        if index == len(self.layers):
            self.layers.append(Layer(np.zeros(grid.shape, np.uint8), grid))
        used = {s.label_value for s in self.segments.values() if s.layer == index}
        label = next(v for v in range(1, len(used) + 2) if v not in used)
        layer = self.layers[index]
        if label > np.iinfo(layer.array.dtype).max:
            layer.array = layer.array.astype(np.min_scalar_type(label))
        layer.array[mask] = label
        self.modified()
        segment = Segment(
            id=segment_id or unique_id(name, self.segments._by_id.keys()),
            name=name,
            color=color or color_for_index(len(self.segments)),
            terminology=terminology,
            layer=index,
            label_value=label,
            properties=dict(properties or {}),
        )
        self.segments.add(segment)
        return segment

    # -- statistics used by `info` and by writers ------------------------------------------

    def voxel_counts(self) -> dict[str, int]:
        """Number of voxels of every segment, one pass per layer."""
        counts: dict[str, int] = {}
        for index, members in self._members_by_layer().items():
            if index >= len(self.layers):
                continue
            layer = self.layers[index]
            if layer.max_fraction is not None:
                counts[members[0].id] = int(np.count_nonzero(_half_inside(layer)))
                continue
            found = label_counts(layer.array, [s.label_value for s in members])
            counts.update(zip((s.id for s in members), found.tolist(), strict=True))
        return {s.id: counts.get(s.id, 0) for s in self.segments.values()}

    def extents(self) -> dict[str, Extent | None]:
        """Inclusive index box of every segment, None when it is empty."""
        from scipy import ndimage

        boxes: dict[str, Extent | None] = {}
        for index, members in self._members_by_layer().items():
            if index >= len(self.layers):
                continue
            layer = self.layers[index]
            values = [s.label_value for s in members]
            labels: NDArray[np.integer]
            if layer.max_fraction is not None:
                labels, values = _half_inside(layer).view(np.uint8), [1]
            else:
                labels, values = compact_labels(layer.array, values)
            objects = ndimage.find_objects(labels, max_label=max(values))
            for segment, value in zip(members, values, strict=False):
                box = objects[value - 1]
                boxes[segment.id] = (
                    None
                    if box is None
                    else (
                        (box[0].start, box[0].stop - 1),
                        (box[1].start, box[1].stop - 1),
                        (box[2].start, box[2].stop - 1),
                    )
                )
        return {s.id: boxes.get(s.id) for s in self.segments.values()}

    def overlaps(self) -> bool:
        """True when two segments share a voxel (only possible across layers)."""
        if len(self.layers) < 2:
            return False
        covered = np.zeros(self.layers[0].array.shape, dtype=bool)
        for index, members in sorted(self._members_by_layer().items()):
            if index >= len(self.layers):
                continue
            layer = self.layers[index]
            labels = [s.label_value for s in members]
            owned = _half_inside(layer) if layer.is_fractional else np.isin(layer.array, labels)
            if np.any(covered & owned):
                return True
            covered |= owned
        return False

    # -- derived representations (kept by segio.converters.cache) -------------------------

    def representation(
        self,
        representation: Representation | str,
        *,
        geometry: Geometry | None = None,
        registry: Registry | None = None,
        **parameters: object,
    ) -> Segmentation:
        """This segmentation in ``representation`` (itself when that is its source),
        derived through the converter graph and cached. ``parameters`` override conversion
        parameters for this derivation (Slicer's names, or in snake case:
        ``smoothing_factor=0``); ``geometry`` is the grid contours and surfaces are
        rasterised on. The result is a segmentation of its own; its shapes are the
        cache's, read-only: edit the source instead."""
        from segio.converters import to_representation

        if isinstance(representation, str):
            representation = Representation.from_name(representation)
        return to_representation(
            self, [representation], registry=registry, geometry=geometry, parameters=parameters
        )

    def modified(self) -> None:
        """Drop every derived representation after an edit inside a layer's array (Slicer's
        ``Modified()``); the model's own methods call it."""
        self._derived.clear()
        self._derived_from = None

    # -- whole-segmentation operations ----------------------------------------------------

    def copy(self) -> Segmentation:
        """A deep copy: arrays and segments are not shared with the original (the copy
        derives its own representations)."""
        return _copy.deepcopy(self)

    def __getstate__(self) -> dict[str, object]:
        """Copies and pickles leave derived representations behind (rebuilt on demand)."""
        state = dict(self.__dict__)
        state["_derived"], state["_derived_from"] = {}, None
        return state

    def pack_layers(self) -> Segmentation:
        """Put non-overlapping segments into as few layers as possible (a new object).

        Slicer's ``CollapseBinaryLabelmaps(false)``: layer 0 is kept as it is, with its
        label values; every segment of a later layer, in layer then segment order, moves
        to the first packed layer that has no voxel under it, taking the next free label
        value of that layer, or starts a new layer with label 1. Greedy, order-dependent,
        and lossless. Segments in layer 0 keep their values; others may be renumbered.
        """
        if any(layer.is_fractional for layer in self.layers):
            raise ValidationError(
                "fractional layers cannot be packed; convert to a binary labelmap first"
            )
        result = self.copy()
        if len(result.layers) <= 1:
            return result
        grid = result.require_geometry()
        packer = FirstFitPacker(grid.shape)
        first = result.layers[0].array
        members = result._members_by_layer()
        labels = [s.label_value for s in members.get(0, [])]
        packer.keep(first, max(int(first.max(initial=0)), max(labels, default=0)))
        for old_index, old_layer in enumerate(result.layers):
            if old_index == 0:
                continue
            for segment in members.get(old_index, []):
                mask = old_layer.array == segment.label_value
                box = bounding_box(mask)
                regions = [] if box is None else [(box, mask[box])]
                segment.layer, segment.label_value = packer.place(regions)
        result.layers = [Layer(arr, grid) for arr in packer.layers]
        result.validate()
        return result

    def __repr__(self) -> str:
        return (
            f"Segmentation({len(self.segments)} segments, {len(self.layers)} layer(s), "
            f"{self.geometry!r})"
        )


def _half_inside(layer: Layer) -> NDArray[np.bool_]:
    assert layer.max_fraction is not None
    return np.asarray(layer.array.astype(np.int64, copy=False) * 2 >= layer.max_fraction) & (
        layer.array > 0
    )


def unique_id(base: str, taken: Iterable[str]) -> str:
    """Slicer's rule: ``base`` if free, else ``base_1``, ``base_2``, ... (spaces as ``_``).

    A set (or a dict's keys) is used as it is, not copied, so naming n segments one by
    one against a growing set stays linear.
    """
    stem = "_".join(base.split()) or "Segment"
    existing = taken if isinstance(taken, AbstractSet) else set(taken)
    if stem not in existing:
        return stem
    n = 1
    while f"{stem}_{n}" in existing:
        n += 1
    return f"{stem}_{n}"
