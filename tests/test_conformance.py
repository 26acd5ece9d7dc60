"""The conformance battery of ``segio.testing``, run on every installed format plugin.

Each format that reads and writes gets every conformance case (oblique grids, overlaps,
empty segments, unicode names, uint16 labels, ...) as a round trip; each readable format
must reject garbage with a ``SegioError`` and recognise its own file without a suffix.
The formats come from the registry at collection time, so a new plugin is tested the moment
it is installed, with no line to add here, unless it cannot hold a case by design: then it
says so in ``UNSUPPORTED`` or ``COMPARE`` below, with the reason.

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
from typing import Any

import numpy as np
import pytest

from segio import (
    FormatSpec,
    Layer,
    ReadError,
    Segment,
    Segmentation,
    Terminology,
    hookimpl,
)
from segio.fileio.outputs import OutputFiles
from segio.geometry import Geometry
from segio.registry import Registry, default_registry, is_installed
from segio.representations import Representation
from segio.testing.checks import check_rejects_garbage, check_round_trip, check_sniffing
from segio.testing.compare import assert_same_segmentation
from segio.testing.conformance import conformance_cases, surface_conformance_cases
from segio.testing.synthetic import small_segmentation, surface_segmentation

#: Cases a format cannot hold by design: ``{format: {case: reason}}``. They are reported
#: as skipped with the reason; the format's writer must refuse them rather than write a
#: file that loses something.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "sliceomatic": {
        "overlapping": "a .tag holds one label per voxel; the writer refuses overlaps",
        "uint16_labels": "type:BYTE holds labels 0-255; the writer refuses larger values",
        "empty_segment": "a label without voxels leaves no trace in a .tag (names come "
        "from a label table or preset on reading)",
    },
}

#: Fields a format cannot store at all: ``{format: (assert_same_segmentation options,
#: reason)}``. Kept empty unless a format truly has no place for the field.
COMPARE: dict[str, tuple[dict[str, Any], str]] = {
    "sliceomatic": (
        {
            "check_ids": False,
            "check_names": False,
            "check_terminology": False,
            "check_properties": False,
            "color_atol": 1.0,
        },
        "a .tag holds label values only: names, colours and codes are not in the file "
        "(they come back from a label table or preset: labels=, preset=)",
    ),
    "dicom-seg": (
        {"color_atol": 5e-4, "check_properties": False},
        "colours are stored as 16-bit CIELab; a segment has no free properties in DICOM, "
        "which in turn requires an algorithm type",
    ),
    "stl": (
        {
            "check_ids": False,
            "check_terminology": False,
            "check_properties": False,
            "color_atol": 1,
        },
        "STL stores no segment id, terminology, colour or opacity (ASCII solids keep names)",
    ),
}

#: Mesh formats hold closed surfaces, not voxels: a labelmap comes back only through the
#: surface converters, never voxel-exact, so the labelmap cases are replaced for them by
#: the surface cases (same triangles within float32 precision, names, colours, ids).
SURFACE_ONLY = "a mesh format stores closed surfaces; a labelmap cannot come back voxel-exact"

#: Write options the surface battery needs: ``{format: (options, reason)}``.
SURFACE_WRITE_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "stl": (
        {"merge": "true", "ascii": "true"},
        "STL writes one file per segment by default (as Slicer) and binary STL has no names",
    ),
}


def _installed_formats() -> tuple[dict[str, FormatSpec], str | None]:
    """The registry's formats, or the error that broke it (collection must not fail)."""
    try:
        return dict(default_registry().formats), None
    except Exception as exc:  # reported by test_registry_loads
        return {}, f"{type(exc).__name__}: {exc}"


FORMATS, REGISTRY_ERROR = _installed_formats()


def _surface_only(spec: FormatSpec) -> bool:
    return (
        Representation.CLOSED_SURFACE in spec.writes
        and Representation.BINARY_LABELMAP not in spec.writes
    )


def _surface_options(name: str) -> dict[str, Any]:
    return dict(SURFACE_WRITE_OPTIONS.get(name, ({}, ""))[0])


def _marks(spec: FormatSpec) -> list[pytest.MarkDecorator]:
    if is_installed(spec):
        return []
    return [pytest.mark.skip(reason=f"{spec.name} needs {', '.join(spec.requires)}")]


def _round_trip_params() -> list[Any]:
    params = []
    for name, spec in sorted(FORMATS.items()):
        if spec.reader is None or spec.writer is None:
            continue
        for case_name, build in conformance_cases():
            marks = _marks(spec)
            reason = UNSUPPORTED.get(name, {}).get(case_name)
            if _surface_only(spec):
                reason = SURFACE_ONLY
            if reason is not None:
                marks = [pytest.mark.skip(reason=f"{name} does not support {case_name}: {reason}")]
            params.append(pytest.param(name, build, marks=marks, id=f"{name}-{case_name}"))
    return params


def _suffix_params() -> list[Any]:
    """Every suffix but the first (which every case already uses), per format."""
    return [
        pytest.param(name, suffix, marks=_marks(spec), id=f"{name}{suffix}")
        for name, spec in sorted(FORMATS.items())
        if spec.reader is not None and spec.writer is not None and not spec.directory
        for suffix in spec.suffixes[1:]
    ]


def _surface_params() -> list[Any]:
    return [
        pytest.param(name, build, suffix, marks=_marks(spec), id=f"{name}{suffix}-{case_name}")
        for name, spec in sorted(FORMATS.items())
        if spec.reader is not None and spec.writer is not None and _surface_only(spec)
        for suffix in spec.suffixes
        for case_name, build in surface_conformance_cases()
    ]


def _readable_params(*, needs_writer: bool = False) -> list[Any]:
    return [
        pytest.param(name, marks=_marks(spec), id=name)
        for name, spec in sorted(FORMATS.items())
        if spec.reader is not None and (spec.writer is not None or not needs_writer)
    ]


def _compare(name: str) -> dict[str, Any]:
    return COMPARE.get(name, ({}, ""))[0]


def test_registry_loads() -> None:
    if REGISTRY_ERROR is not None:
        pytest.fail(f"the plugin registry cannot be built: {REGISTRY_ERROR}")


def test_exclusions_name_real_cases_and_give_reasons() -> None:
    names = {name for name, _ in conformance_cases()}
    for fmt, cases in UNSUPPORTED.items():
        assert set(cases) <= names, f"{fmt}: unknown case(s) {set(cases) - names}"
        assert all(reason.strip() for reason in cases.values()), f"{fmt}: give a reason"
    assert all(reason.strip() for _, reason in COMPARE.values())


@pytest.mark.parametrize(("format_name", "build"), _round_trip_params())
def test_round_trip(format_name: str, build: Callable[[], Segmentation], tmp_path: Path) -> None:
    check_round_trip(format_name, build(), tmp_path, compare=_compare(format_name))


@pytest.mark.parametrize(("format_name", "suffix"), _suffix_params())
@pytest.mark.parametrize("case_name", ["oblique", "overlapping"])
def test_round_trip_other_suffixes(
    format_name: str, suffix: str, case_name: str, tmp_path: Path
) -> None:
    if case_name in UNSUPPORTED.get(format_name, {}):
        pytest.skip(UNSUPPORTED[format_name][case_name])
    if _surface_only(FORMATS[format_name]):
        pytest.skip(SURFACE_ONLY)
    case = dict(conformance_cases())[case_name]()
    check_round_trip(format_name, case, tmp_path, suffix=suffix, compare=_compare(format_name))


@pytest.mark.parametrize(("format_name", "build", "suffix"), _surface_params())
def test_surface_round_trip(
    format_name: str, build: Callable[[], Segmentation], suffix: str, tmp_path: Path
) -> None:
    check_round_trip(
        format_name,
        build(),
        tmp_path,
        suffix=suffix,
        compare=_compare(format_name),
        **_surface_options(format_name),
    )


def _case_for(format_name: str) -> dict[str, Any]:
    """What the garbage and sniffing checks write: a surface case for a mesh format."""
    if not _surface_only(FORMATS[format_name]):
        return {}
    return {"case": surface_segmentation(2), "write_options": _surface_options(format_name)}


@pytest.mark.parametrize("format_name", _readable_params())
def test_rejects_garbage(format_name: str, tmp_path: Path) -> None:
    check_rejects_garbage(format_name, tmp_path, **_case_for(format_name))


@pytest.mark.parametrize("format_name", _readable_params(needs_writer=True))
def test_sniffing(format_name: str, tmp_path: Path) -> None:
    if FORMATS[format_name].sniff is None:
        pytest.skip(f"{format_name} has no sniffer (sniff=None): chosen by suffix only")
    check_sniffing(format_name, tmp_path, compare=_compare(format_name), **_case_for(format_name))


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


class _ToyPlugin:
    @hookimpl
    def segio_formats(self) -> list[FormatSpec]:
        here = __name__

        def toy(name: str, **changes: Any) -> FormatSpec:
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

        return [
            toy("toy"),
            toy("toylossy", writer=f"{here}:_toy_write_lossy"),
            toy("toycrashy", reader=f"{here}:_toy_read_crashy"),
            toy("toyblind", sniff=lambda head: False),
        ]


@pytest.fixture(scope="module")
def toy_registry() -> Registry:
    registry = Registry(load_entry_points=False)
    registry.register(_ToyPlugin())
    return registry


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
