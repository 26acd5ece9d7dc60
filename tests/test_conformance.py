"""The conformance battery on every built-in format, and the battery itself on a toy format.

Each built-in format is one small ``FormatConformance`` subclass below that declares what
the format cannot hold by design, with the reason, exactly as an outside plugin does in its
own tests (``docs/plugins.md``); a test requires one class per built-in format, so a new
format cannot go untested.

The battery is itself tested at the end of this file on a toy format, faithful and
deliberately broken, so that a green run means the checks ran and could have failed.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from segio import (
    FormatSpec,
    Layer,
    ReadError,
    Segment,
    Segmentation,
    Terminology,
    WriteError,
    hookimpl,
)
from segio.fileio.outputs import OutputFiles
from segio.geometry import Geometry
from segio.registry import Registry, default_registry
from segio.testing.checks import (
    RoundTripError,
    check_refuses_other_formats,
    check_rejects_garbage,
    check_round_trip,
    check_sniffing,
)
from segio.testing.compare import assert_same_segmentation
from segio.testing.conformance import FormatConformance, conformance_cases, registry_with
from segio.testing.synthetic import small_segmentation, surface_segmentation

# -- the built-in formats ---------------------------------------------------------------------


class TestNrrd(FormatConformance):
    format = "nrrd"


class TestSegNrrd(FormatConformance):
    format = "seg-nrrd"


class TestNifti(FormatConformance):
    format = "nifti"


class TestDicomSeg(FormatConformance):
    format = "dicom-seg"
    lossy: ClassVar[dict[str, str]] = {
        "colors": "stored as 16-bit CIELab",
        "properties": "a segment has no free properties in DICOM, which in turn requires "
        "an algorithm type",
    }
    color_atol = 5e-4


class TestRtstruct(FormatConformance):
    format = "rtstruct"


class TestSliceomatic(FormatConformance):
    format = "sliceomatic"
    cannot_hold: ClassVar[dict[str, str]] = {
        "overlapping": "a .tag holds one label per voxel; the writer refuses overlaps",
        "uint16_labels": "type:BYTE holds labels 0-255; the writer refuses larger values",
        "empty_segment": "a label without voxels leaves no trace in a .tag (names come "
        "from a label table or preset on reading)",
    }
    lossy: ClassVar[dict[str, str]] = dict.fromkeys(
        ("ids", "names", "terminology", "properties", "colors"),
        "a .tag holds label values only: names, colours and codes come back from a label "
        "table or preset (labels=, preset=)",
    )


class TestOsirix(FormatConformance):
    format = "osirix"  # read only: garbage and sniffing


class TestMarkups(FormatConformance):
    format = "markups"  # write only: point annotations, tested in tests/plugins/test_markups.py


class TestHtml(FormatConformance):
    format = "html"  # write only: the viewer page, tested in tests/plugins/test_html.py


class TestSegVtm(FormatConformance):
    format = "seg-vtm"


class TestVtk(FormatConformance):
    format = "vtk"


class TestStl(FormatConformance):
    format = "stl"
    lossy: ClassVar[dict[str, str]] = dict.fromkeys(
        ("ids", "terminology", "properties", "colors"),
        "STL stores no segment id, terminology, colour or opacity (ASCII solids keep names)",
    )
    # STL writes one file per segment by default (as Slicer) and binary STL has no names.
    write_options: ClassVar[dict[str, Any]] = {"merge": "true", "ascii": "true"}


class TestObj(FormatConformance):
    format = "obj"


class TestPly(FormatConformance):
    format = "ply"


class TestGltf(FormatConformance):
    format = "gltf"


class Test3mf(FormatConformance):
    format = "3mf"


def test_every_built_in_format_has_a_conformance_class() -> None:
    built_in = {
        name
        for name, spec in default_registry().formats.items()
        if (spec.reader or spec.writer or "").startswith("segio_plugins.")
    }
    declared = {
        cls.format
        for cls in FormatConformance.__subclasses__()
        if cls.__module__ == __name__ and cls.__name__.startswith("Test") and cls.registry is None
    }
    assert declared == built_in


def test_surface_comparison_catches_moved_vertices_and_flipped_winding() -> None:
    original = surface_segmentation(2)
    moved, flipped = original.copy(), original.copy()
    surface = original.surfaces["Segment_2"]
    shifted = surface.vertices.copy()
    shifted[5] += 1e-3
    moved.surfaces["Segment_2"] = type(surface)(shifted, surface.faces)
    flipped.surfaces["Segment_2"] = type(surface)(surface.vertices, surface.faces[:, ::-1])
    with pytest.raises(AssertionError, match=r"vertex moved by 0\.001"):
        assert_same_segmentation(original, moved)
    with pytest.raises(AssertionError, match="winding is reversed"):
        assert_same_segmentation(original, flipped)
    reordered = original.copy()
    order = np.random.default_rng(1).permutation(len(surface.vertices))
    inverse = np.argsort(order)
    reordered.surfaces["Segment_2"] = type(surface)(
        surface.vertices[order], np.roll(inverse[surface.faces], 1, axis=1)[::-1]
    )
    assert_same_segmentation(original, reordered)


# -- the battery tested on a toy format ----------------------------------------------------------
#
# ".toy" files: a magic line, a JSON line with the segments and the grid, then the layers as
# one .npy array. Variants break one thing each; the battery must notice.

TOY_MAGIC = b"SEGIO-TOY 1\n"


def _toy_write(
    segmentation: Segmentation, path: Path, files: OutputFiles, *, lossy: bool = False
) -> None:
    geometry = segmentation.require_geometry()
    meta = {
        "matrix": geometry.ijk_to_lps.tolist(),
        "shape": list(geometry.shape),
        "segments": [
            {
                "id": s.id,
                "name": s.name,
                "color": [round(c * 255) / 255 for c in s.color] if lossy else list(s.color),
                "terminology": s.terminology.to_slicer() if s.terminology else None,
                "layer": s.layer,
                "label": s.label_value,
                "properties": s.properties,
            }
            for s in segmentation.segments.values()
        ],
    }
    arrays = np.stack([layer.array.astype(np.uint16) for layer in segmentation.layers])
    payload = io.BytesIO()
    np.save(payload, arrays, allow_pickle=False)
    files.stage(path).write_bytes(
        TOY_MAGIC + json.dumps(meta).encode() + b"\n" + payload.getvalue()
    )


def _toy_write_lossy(segmentation: Segmentation, path: Path, files: OutputFiles) -> None:
    _toy_write(segmentation, path, files, lossy=True)


def _toy_decode(data: bytes) -> Segmentation:
    if not data.startswith(TOY_MAGIC):
        raise ValueError("no toy magic")
    header, _, payload = data[len(TOY_MAGIC) :].partition(b"\n")
    meta = json.loads(header.decode())
    arrays = np.load(io.BytesIO(payload), allow_pickle=False)
    geometry = Geometry(meta["matrix"], meta["shape"])
    segments = [
        Segment(
            id=s["id"],
            name=s["name"],
            color=tuple(s["color"]),
            terminology=Terminology.from_slicer(s["terminology"]) if s["terminology"] else None,
            layer=s["layer"],
            label_value=s["label"],
            properties=s["properties"],
        )
        for s in meta["segments"]
    ]
    return Segmentation(segments, [Layer(array, geometry) for array in arrays])


def _toy_read(path: Path) -> Segmentation:
    try:
        return _toy_decode(path.read_bytes())
    except ReadError:
        raise
    except Exception as exc:  # any decoding problem is a bad file
        raise ReadError(f"not a toy file: {exc}", path=path) from exc


def _toy_read_crashy(path: Path) -> Segmentation:
    return _toy_decode(path.read_bytes())  # lets ValueError and friends escape


def _toy_write_flat(segmentation: Segmentation, path: Path, files: OutputFiles) -> None:
    if len(segmentation.layers) > 1:
        raise WriteError("a flat toy holds one layer", path=path)
    _toy_write(segmentation, path, files)


def _toy_spec(name: str, **changes: Any) -> FormatSpec:
    here = __name__
    fields: dict[str, Any] = {
        "name": name,
        "description": f"toy format {name} for testing the battery",
        "suffixes": (f".{name}",),
        "reader": f"{here}:_toy_read",
        "writer": f"{here}:_toy_write",
        "sniff": lambda head: head.startswith(TOY_MAGIC),
    }
    fields.update(changes)
    return FormatSpec(**fields)


TOYS = {
    "toy": _toy_spec("toy"),
    "toylossy": _toy_spec("toylossy", writer=f"{__name__}:_toy_write_lossy"),
    "toycrashy": _toy_spec("toycrashy", reader=f"{__name__}:_toy_read_crashy"),
    "toyblind": _toy_spec("toyblind", sniff=lambda head: False),
    "toyflat": _toy_spec("toyflat", writer=f"{__name__}:_toy_write_flat"),
    "toygreedy": _toy_spec("toygreedy", sniff=lambda head: True),
}


class _ToyPlugin:
    """Declares the named toy formats (each variant in the registries that need it)."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def segio_formats(self) -> list[FormatSpec]:
        return [TOYS[name] for name in self.names]


#: The faithful toy and its broken variants, no entry points: what the check functions get.
TOY_REGISTRY = registry_with(
    _ToyPlugin(*(name for name in TOYS if name != "toygreedy")), entry_points=False
)


@pytest.fixture(scope="module")
def toy_registry() -> Registry:
    return TOY_REGISTRY


@pytest.mark.parametrize("build", [pytest.param(b, id=n) for n, b in conformance_cases()])
def test_battery_passes_a_faithful_format(
    build: Callable[[], Segmentation], tmp_path: Path, toy_registry: Registry
) -> None:
    result = check_round_trip("toy", build(), tmp_path, registry=toy_registry)
    assert result.provenance["format"] == "toy"


def test_battery_garbage_and_sniffing_pass_a_faithful_format(
    tmp_path: Path, toy_registry: Registry
) -> None:
    check_rejects_garbage("toy", tmp_path, registry=toy_registry)
    check_sniffing("toy", tmp_path, registry=toy_registry)


def test_battery_catches_lossy_colours(tmp_path: Path, toy_registry: Registry) -> None:
    with pytest.raises(AssertionError, match=r"(?s)toylossy round trip .* colour"):
        check_round_trip("toylossy", small_segmentation(), tmp_path, registry=toy_registry)
    check_round_trip(
        "toylossy",
        small_segmentation(),
        tmp_path,
        registry=toy_registry,
        compare={"color_atol": 0.5 / 255},
    )


def test_battery_catches_a_reader_raising_other_exceptions(
    tmp_path: Path, toy_registry: Registry
) -> None:
    with pytest.raises(AssertionError) as info:
        check_rejects_garbage("toycrashy", tmp_path, registry=toy_registry)
    message = str(info.value)
    assert "raised ValueError: no toy magic" in message and "instead of a SegioError" in message
    assert "read(format='toycrashy')" in message
    assert "test_conformance.py" in message, "the failure says where it was raised"


def test_battery_catches_a_blind_sniffer(tmp_path: Path, toy_registry: Registry) -> None:
    with pytest.raises(AssertionError, match="toyblind sniffing"):
        check_sniffing("toyblind", tmp_path, registry=toy_registry)


def test_battery_catches_a_writer_that_changes_its_input(
    tmp_path: Path, toy_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    faithful = _toy_write

    def meddling(segmentation: Segmentation, path: Path, files: OutputFiles) -> None:
        segmentation.segments["Segment_1"].name = "renamed by the writer"
        faithful(segmentation, path, files)

    monkeypatch.setattr(sys.modules[__name__], "_toy_write", meddling)
    with pytest.raises(AssertionError, match="changed its input"):
        check_round_trip("toy", small_segmentation(), tmp_path, registry=toy_registry)


def test_battery_reports_a_hanging_reader(
    tmp_path: Path, toy_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def hanging(path: Path) -> Segmentation:
        release.wait(5.0)
        raise ReadError("gave up", path=path)

    monkeypatch.setattr(sys.modules[__name__], "_toy_read", hanging)
    try:
        with pytest.raises(AssertionError, match=r"still running after 0.05 s"):
            check_rejects_garbage("toy", tmp_path, registry=toy_registry, timeout_s=0.05)
    finally:
        release.set()


# -- FormatConformance tested on the toy formats -------------------------------------------------


class TestToyConformance(FormatConformance):
    """The whole battery, collected by pytest, on a registry that is not the default one."""

    format = "toy"
    registry = registry_with(_ToyPlugin("toy"), entry_points=False)


def _declared(**declarations: Any) -> FormatConformance:
    """A battery on the toy registry with ``declarations`` (not collected: no Test prefix)."""
    battery = type("_Declared", (FormatConformance,), {"registry": TOY_REGISTRY, **declarations})
    return battery()  # type: ignore[no-any-return]


def test_a_declared_limit_is_skipped_with_its_reason_when_the_writer_refuses(
    tmp_path: Path,
) -> None:
    battery = _declared(format="toyflat", cannot_hold={"overlapping": "one layer only"})
    with pytest.raises(pytest.skip.Exception, match=r"overlapping \(refused\): one layer only"):
        battery.test_round_trip("overlapping", tmp_path)
    with pytest.raises(WriteError, match="one layer"):
        _declared(format="toyflat").test_round_trip("overlapping", tmp_path)


def test_a_declared_limit_that_no_longer_holds_fails(tmp_path: Path) -> None:
    battery = _declared(format="toy", cannot_hold={"overlapping": "thought so"})
    with pytest.raises(pytest.fail.Exception, match="round-trips: remove the declaration"):
        battery.test_round_trip("overlapping", tmp_path)


def test_declared_lossy_colours_are_compared_within_their_precision(tmp_path: Path) -> None:
    for folder in ("within", "ignored", "undeclared", "too_tight"):
        (tmp_path / folder).mkdir()
    rounded = {"colors": "rounded to 1/255"}
    _declared(format="toylossy", lossy=rounded, color_atol=0.5 / 255).test_round_trip(
        "axial", tmp_path / "within"
    )
    _declared(format="toylossy", lossy=rounded).test_round_trip("axial", tmp_path / "ignored")
    with pytest.raises(RoundTripError, match="colour"):
        _declared(format="toylossy").test_round_trip("axial", tmp_path / "undeclared")
    with pytest.raises(RoundTripError, match="colour"):
        _declared(format="toylossy", lossy=rounded, color_atol=1e-6).test_round_trip(
            "axial", tmp_path / "too_tight"
        )


def test_declarations_must_name_real_cases_fields_and_options_with_reasons() -> None:
    battery = _declared(
        format="toy",
        cannot_hold={"no_such_case": " "},
        lossy={"colours": "British spelling"},
        color_atol=0.1,
        write_options={"level": 9},
    )
    with pytest.raises(AssertionError) as info:
        battery.test_declarations()
    message = str(info.value)
    for expected in ("'no_such_case'", "gives no reason", "'colours'", "color_atol", "['level']"):
        assert expected in message
    with pytest.raises(pytest.fail.Exception, match="'nope' is not registered"):
        _declared(format="nope").test_declarations()
    _declared(format="toy").test_declarations()


def test_battery_catches_a_sniffer_that_takes_other_formats_files(tmp_path: Path) -> None:
    # Registered last, the greedy format is asked first, as an outside plugin would be.
    registry = registry_with(_ToyPlugin("toy"), _ToyPlugin("toygreedy"), entry_points=False)
    with pytest.raises(AssertionError, match=r"toygreedy takes other formats' files .*: toy$"):
        check_refuses_other_formats("toygreedy", tmp_path, registry=registry)
