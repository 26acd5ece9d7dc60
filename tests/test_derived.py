"""Derived representations cached in their source segmentation (issue 13, item 3).

``Segmentation.representation`` derives through the converter graph and keeps the result,
keyed by the conversion parameters, the converters and the rasterisation grid; changing
the source drops it (Slicer's rule). ``segio.write`` goes through the same cache, so one
segmentation written to GLB and to 3MF builds its surfaces once. Converter calls are
counted by wrapping the function the registry resolves for each converter.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio.errors import ValidationError
from segio.hookspecs import ConverterSpec, hookimpl
from segio.model import Layer, Segment, Segmentation
from segio.points import PointAnnotation
from segio.registry import Registry, default_registry
from segio.representations import Representation
from segio.testing.synthetic import small_segmentation

SURFACE = Representation.CLOSED_SURFACE
BINARY = Representation.BINARY_LABELMAP
FRACTIONAL = Representation.FRACTIONAL_LABELMAP

pytest.importorskip("vtk")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[Representation, Representation]]:
    """Converter calls by (source, target), counted at the function the registry loads."""
    counted: Counter[tuple[Representation, Representation]] = Counter()
    for spec in default_registry().converters:
        module_name, _, name = spec.function.partition(":")
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        def counting(
            *args: Any,
            _edge: tuple[Representation, Representation] = (spec.source, spec.target),
            _original: Callable[..., Segmentation] = original,
            **kwargs: Any,
        ) -> Segmentation:
            counted[_edge] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    return counted


def test_writing_glb_and_3mf_builds_the_surfaces_once(tmp_path: Path, calls: Counter) -> None:
    segmentation = small_segmentation()
    segio.write(segmentation, tmp_path / "a.glb")
    segio.write(segmentation, tmp_path / "a.3mf")
    segio.write(segmentation, tmp_path / "a.stl")
    assert calls[BINARY, SURFACE] == 1
    names = {s.name for s in segio.read(tmp_path / "a.3mf").segments.values()}
    assert names == {s.name for s in segmentation.segments.values()}
    assert segmentation.source_representation is BINARY and not segmentation.surfaces


def test_representation_is_cached_per_parameters(calls: Counter) -> None:
    segmentation = small_segmentation()
    first = segmentation.representation(SURFACE)
    again = segmentation.representation("Closed surface")
    assert calls[BINARY, SURFACE] == 1
    assert first is not again, "each caller gets a segmentation of its own"
    assert all(again.surfaces[key] is first.surfaces[key] for key in first.surfaces)
    flat = segmentation.representation(SURFACE, smoothing_factor=0)
    assert calls[BINARY, SURFACE] == 2
    assert flat.conversion_parameters.value("Smoothing factor") == "0"
    assert segmentation.conversion_parameters.value("Smoothing factor") == "0.5"
    segmentation.representation(SURFACE, **{"Smoothing factor": "0"})
    assert calls[BINARY, SURFACE] == 2, "Slicer's name and snake case are one parameter"
    segmentation.conversion_parameters.set("Smoothing factor", "0")
    segmentation.representation(SURFACE)
    assert calls[BINARY, SURFACE] == 2, "the same parameters as the derivation above"
    assert segmentation.representation(BINARY) is segmentation


def test_a_parameter_segio_does_not_know_is_refused() -> None:
    with pytest.raises(ValidationError, match="smoothing_factr"):
        small_segmentation().representation(SURFACE, smoothing_factr=0)
    with pytest.raises(ValidationError, match="Smoothing factor"):
        small_segmentation().representation(SURFACE, smoothing_factor=7)


def test_changing_the_source_drops_the_cache(calls: Counter) -> None:
    segmentation = small_segmentation()
    segmentation.representation(SURFACE)
    mask = np.zeros(segmentation.require_geometry().shape, dtype=bool)
    mask[1:3, 1:3, 1:3] = True
    segmentation.add_mask(mask, "added")  # a method of the model
    assert "added" in {s.name for s in segmentation.representation(SURFACE).segments.values()}
    assert calls[BINARY, SURFACE] == 2
    segmentation.layers[0].array[0, 0, 0] = segmentation.layers[0].array.max()
    segmentation.modified()  # an edit inside the array, announced
    segmentation.representation(SURFACE)
    assert calls[BINARY, SURFACE] == 3
    layer = segmentation.layers[0]
    layer.array = layer.array.copy()  # a replaced array is noticed without modified()
    segmentation.representation(SURFACE)
    assert calls[BINARY, SURFACE] == 4
    removed = next(iter(segmentation.segments.values()))
    segmentation.segments.remove(removed.id)  # so is a segment removed
    assert removed.id not in segmentation.representation(SURFACE).surfaces
    assert calls[BINARY, SURFACE] == 5


def test_metadata_edited_after_the_surfaces_were_built_is_current(
    tmp_path: Path, calls: Counter
) -> None:
    """A renamed segment, a new colour or point need no new surfaces, and are not lost."""
    segmentation = small_segmentation()
    segio.write(segmentation, tmp_path / "before.glb")
    segment = next(iter(segmentation.segments.values()))
    segment.name, segment.color = "renamed", (1.0, 0.0, 0.0)
    segmentation.points.append(PointAnnotation("tip", (1.0, 2.0, 3.0)))
    surfaces = segmentation.representation(SURFACE)
    assert surfaces.segments[segment.id].name == "renamed"
    assert surfaces.segments[segment.id].color == (1.0, 0.0, 0.0)
    assert [p.name for p in surfaces.points] == ["tip"]
    with pytest.warns(UserWarning, match="'tip'"):  # GLB holds no points
        segio.write(segmentation, tmp_path / "after.glb")
    assert calls[BINARY, SURFACE] == 1
    assert "renamed" in {s.name for s in segio.read(tmp_path / "after.glb").segments.values()}


def test_intermediate_steps_are_cached_and_read_only(tmp_path: Path, calls: Counter) -> None:
    """A fractional labelmap written as NIfTI and as STL is thresholded once; the shared
    labelmap cannot be edited through what a caller was given."""
    grid = small_segmentation().require_geometry()
    fractions = np.zeros(grid.shape, dtype=np.uint8)
    fractions[2:5, 3:9, 3:8] = 255
    fractions[2, 3:9, 3:8] = 100
    fractional = Segmentation(
        [Segment("s1", "tumour")],
        [Layer(fractions, grid, max_fraction=255)],
        source_representation=FRACTIONAL,
    )
    segio.write(fractional, tmp_path / "tumour.nii.gz")
    segio.write(fractional, tmp_path / "tumour.stl")
    assert calls[FRACTIONAL, BINARY] == 1 and calls[BINARY, SURFACE] == 1
    binary = fractional.representation(BINARY)
    with pytest.raises(ValueError, match="read-only"):
        binary.layers[0].array[0, 0, 0] = 1
    assert fractional.layers[0].array.flags.writeable
    assert binary.copy().layers[0].array.flags.writeable, "a copy is the caller's to edit"


def test_copies_and_pickles_leave_the_cache_behind(calls: Counter) -> None:
    segmentation = small_segmentation()
    segmentation.representation(SURFACE)
    for clone in (segmentation.copy(), pickle.loads(pickle.dumps(segmentation))):
        assert not clone._derived
        clone.representation(SURFACE)
    assert calls[BINARY, SURFACE] == 3
    segmentation.representation(SURFACE)
    assert calls[BINARY, SURFACE] == 3, "the original keeps its own"


def passed_through(segmentation: Segmentation) -> Segmentation:
    """A converter that hands the source's arrays on (as an outside one may)."""
    return Segmentation(
        [
            dataclasses.replace(s, layer=n, label_value=1)
            for n, s in enumerate(segmentation.segments.values())
        ],
        [Layer(segmentation.layers[0].array, segmentation.require_geometry(), max_fraction=1)],
        source_representation=FRACTIONAL,
    )


class _PassThrough:
    @hookimpl
    def segio_converters(self) -> list[ConverterSpec]:
        return [
            ConverterSpec(
                name="pass-through",
                source=BINARY,
                target=FRACTIONAL,
                function=f"{__name__}:passed_through",
            )
        ]


def test_arrays_a_converter_passes_through_stay_the_sources() -> None:
    registry = Registry(load_entry_points=False)
    registry.register(_PassThrough())
    grid = small_segmentation().require_geometry()
    mask = np.zeros(grid.shape, dtype=np.uint8)
    mask[1:3, 2:5, 2:5] = 1
    source = Segmentation([Segment("s1", "lesion")], [Layer(mask, grid)])
    derived = source.representation(FRACTIONAL, registry=registry)
    assert derived.layers[0].array is mask
    assert mask.flags.writeable, "the source's own array is not made read-only"
