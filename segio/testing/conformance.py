"""The conformance battery as a pytest class: subclass it, name a format, declare its limits.

Every format plugin makes the same promises (what it writes reads back unchanged, bad input
is a ``SegioError``, its files are recognised without their suffix, other formats' files are
left alone); :mod:`segio.testing.checks` checks them one at a time. :class:`FormatConformance`
runs them all on one format, so that a plugin, built-in or outside, is tested with three
lines::

    from segio.testing.conformance import FormatConformance

    class TestMySeg(FormatConformance):
        format = "myseg"
        cannot_hold = {"overlapping": "one label per voxel; the writer refuses overlaps"}

What a format cannot hold by design is declared on its class, with the reason, instead of
in skip lists kept elsewhere; a declaration that no longer holds (the case round-trips
after all) fails, so declarations cannot go stale. The format is looked up in
:attr:`FormatConformance.registry`, by default every installed plugin; a plugin tested
before it is installed names a registry holding it (:func:`registry_with`).

This module imports pytest: it is for test suites, unlike the rest of :mod:`segio.testing`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

import numpy as np
import pytest

from segio.errors import SegioError
from segio.hookspecs import FormatSpec
from segio.model import Segmentation
from segio.registry import Registry, default_registry, is_installed
from segio.testing.checks import (
    RoundTripError,
    check_refuses_other_formats,
    check_rejects_garbage,
    check_round_trip,
    check_sniffing,
    format_samples,
    holds_voxels,
)
from segio.testing.synthetic import relabeled, small_segmentation, surface_segmentation

__all__ = [
    "LOSSY_FIELDS",
    "FormatConformance",
    "conformance_cases",
    "registry_with",
    "surface_conformance_cases",
]

Case = tuple[str, Callable[[], Segmentation]]

#: Segment fields a format may declare it does not store (:attr:`FormatConformance.lossy`),
#: each with the :func:`~segio.testing.compare.assert_same_segmentation` switch it turns off.
LOSSY_FIELDS: dict[str, str] = {
    "ids": "check_ids",
    "names": "check_names",
    "terminology": "check_terminology",
    "properties": "check_properties",
    "colors": "color_atol",
}

#: The labelmap cases also written under each of a format's other suffixes.
_SUFFIX_CASES = ("oblique", "overlapping")


def _uint16_case() -> Segmentation:
    """Labels above 255 in a uint16 layer, up to the largest uint16 value."""
    seg = small_segmentation("axial", dtype=np.uint16)
    return relabeled(seg, (256, 1000, 4097, 40000, 65535), np.uint16)


def conformance_cases() -> list[Case]:
    """Named segmentations every labelmap format should round-trip, each built on demand.

    One difficulty per case, so that a failure names its cause: ``axial``, ``oblique``,
    ``anisotropic`` and ``lps_flipped`` grids; ``overlapping`` (three layers);
    ``empty_segment``; ``unicode_names``; ``single_segment``; ``uint16_labels`` (label
    values 256 to 65535). All are small and non-square; all have SNOMED CT terminology,
    full-precision colours and properties.
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


def surface_conformance_cases() -> list[Case]:
    """Closed-surface cases every mesh format should round-trip (float32 precision).

    Mesh formats hold closed surfaces, not voxels: a labelmap comes back from them only
    through the surface converters, never voxel-exact, so these replace the labelmap cases
    (same triangles and winding, names, colours, ids).
    """
    return [
        ("surfaces", partial(surface_segmentation, 3)),
        ("surface_unicode_names", partial(surface_segmentation, 4, unicode_names=True)),
        ("single_surface", partial(surface_segmentation, 1)),
    ]


def registry_with(*plugins: object, entry_points: bool | None = None) -> Registry:
    """The core, the installed plugins and ``plugins``: a registry to test a plugin in.

    For testing a plugin before it is installed: pass its registration module. A plugin
    that is installed after all (its module already loaded through its entry point) is not
    registered twice, so the same test file works both ways. ``entry_points`` (default:
    the environment, ``SEGIO_DISABLE_PLUGIN_AUTOLOAD``) says whether the installed plugins
    are loaded; with them, the battery checks that the plugin's sniffer leaves their files
    alone. Plugins registered here are asked first.
    """
    registry = Registry(load_entry_points=entry_points)
    for plugin in plugins:
        if not registry.manager.is_registered(plugin):
            registry.register(plugin)
    return registry


#: Sample files of every format, written once per registry for the sniffing checks.
_SAMPLES: WeakKeyDictionary[Registry, dict[str, bytes]] = WeakKeyDictionary()


class FormatConformance:
    """The conformance battery on one format; pytest collects each ``Test*`` subclass.

    Set :attr:`format`, and declare what the format cannot hold, each with its reason.
    The battery writes labelmap cases (:func:`conformance_cases`) to a format whose writer
    takes labelmaps and closed-surface cases (:func:`surface_conformance_cases`) to a mesh
    format, as its :class:`~segio.hookspecs.FormatSpec` declares; it checks:

    ``test_declarations``
        The format is registered and the declarations name real cases, fields and options.
    ``test_round_trip``
        Every case, written under the format's first suffix and read back: the same
        segmentation, and the writer leaves its input unchanged.
    ``test_round_trip_other_suffixes``
        Each other suffix, with the oblique and overlapping cases (every surface case for
        a mesh format); not for folder formats.
    ``test_rejects_garbage``
        Random bytes, an empty file, truncated files and magic bytes followed by garbage
        raise a ``SegioError`` within :attr:`timeout_s`.
    ``test_sniffs_its_own_files``
        Its file without a suffix is recognised and reads the same.
    ``test_refuses_other_formats``
        No other registered format's file without a suffix is taken for its own.

    A format missing the reader or writer a test needs, or the libraries it
    ``requires``, is reported as skipped with the reason.
    """

    #: The format's name in the registry (``FormatSpec.name``).
    format: ClassVar[str] = ""
    #: Where the format is looked up; ``None`` is every installed plugin. A plugin tested
    #: before it is installed uses :func:`registry_with`.
    registry: ClassVar[Registry | None] = None
    #: Cases the format cannot hold by design: ``{case name: reason}``. The writer should
    #: refuse them (a ``WriteError``) or the read-back differ; one that round-trips fails
    #: as a stale declaration.
    cannot_hold: ClassVar[Mapping[str, str]] = {}
    #: Segment fields the format does not store: ``{field: reason}``, fields from
    #: :data:`LOSSY_FIELDS`. With ``"colors"``, colours are compared within
    #: :attr:`color_atol` when it is set (stored with less precision), else not at all.
    lossy: ClassVar[Mapping[str, str]] = {}
    #: How far a colour channel (0..1) may move; needs ``"colors"`` in :attr:`lossy`.
    color_atol: ClassVar[float] = 0.0
    #: Options for every write of the battery (declared ``write_options`` of the format).
    write_options: ClassVar[Mapping[str, Any]] = {}
    #: Seconds a read of garbage may take before it counts as a hang.
    timeout_s: ClassVar[float] = 10.0

    # -- what the declarations mean ---------------------------------------------------------

    @classmethod
    def the_registry(cls) -> Registry:
        """The registry the battery runs on."""
        return cls.registry if cls.registry is not None else default_registry()

    @classmethod
    def spec(cls) -> FormatSpec | None:
        """The format's declaration, or None when it is not registered (or the registry
        cannot be built: ``test_declarations`` says why, collection does not fail)."""
        try:
            return cls.the_registry().formats.get(cls.format)
        except Exception:  # reported by test_declarations
            return None

    @classmethod
    def cases(cls) -> list[Case]:
        """The cases the format is given: labelmaps, or closed surfaces for a mesh format."""
        spec = cls.spec()
        if spec is not None and not holds_voxels(spec):
            return surface_conformance_cases()
        return conformance_cases()

    @classmethod
    def compare_options(cls) -> dict[str, Any]:
        """:func:`~segio.testing.compare.assert_same_segmentation` switches from :attr:`lossy`."""
        options: dict[str, Any] = {
            LOSSY_FIELDS[field]: False
            for field in cls.lossy
            if field in LOSSY_FIELDS and field != "colors"
        }
        if "colors" in cls.lossy:
            options["color_atol"] = cls.color_atol or 1.0
        return options

    def _case(self) -> dict[str, Any]:
        """What the garbage and sniffing checks write: a surface case for a mesh format."""
        spec = self.spec()
        case = None if spec is None or holds_voxels(spec) else surface_segmentation(2)
        return {"case": case, "write_options": dict(self.write_options)}

    # -- parametrization ---------------------------------------------------------------------

    @classmethod
    def _unavailable(cls, *, reader: bool = True, writer: bool = True) -> str | None:
        """Why a test cannot run on this format, or None."""
        spec = cls.spec()
        if spec is None:
            return f"format {cls.format!r} is not registered (see test_declarations)"
        if reader and spec.reader is None:
            return f"{spec.name} has no reader"
        if writer and spec.writer is None:
            return f"{spec.name} has no writer"
        if not is_installed(spec):
            return f"{spec.name} needs {', '.join(spec.requires)}"
        return None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the case and suffix tests from the format's declaration."""
        name = metafunc.function.__name__
        if name == "test_round_trip":
            params = [pytest.param(case, id=case) for case, _ in self.cases()]
            self._parametrize(metafunc, "case_name", params, self._unavailable())
        elif name == "test_round_trip_other_suffixes":
            spec = self.spec()
            suffixes = [] if spec is None or spec.directory else list(spec.suffixes[1:])
            names = [case for case, _ in self.cases()]
            if spec is not None and holds_voxels(spec):
                names = [case for case in names if case in _SUFFIX_CASES]
            params = [
                pytest.param(suffix, case, id=f"{suffix}-{case}")
                for suffix in suffixes
                for case in names
            ]
            why = self._unavailable() or (None if params else "no other suffix to write")
            self._parametrize(metafunc, ("suffix", "case_name"), params, why)

    @staticmethod
    def _parametrize(
        metafunc: pytest.Metafunc,
        names: str | tuple[str, ...],
        params: list[Any],
        unavailable: str | None,
    ) -> None:
        """Parametrize, or give one skipped instance saying why there is nothing to run."""
        if unavailable is not None or not params:
            width = 1 if isinstance(names, str) else len(names)
            skip = pytest.mark.skip(reason=unavailable or "nothing to run")
            params = [pytest.param(*([None] * width), marks=skip, id="none")]
        metafunc.parametrize(names, params)

    # -- the tests ---------------------------------------------------------------------------

    def test_declarations(self) -> None:
        """The format is registered and its declarations name real things, with reasons."""
        try:
            formats = self.the_registry().formats
        except Exception as exc:
            pytest.fail(f"the plugin registry cannot be built: {type(exc).__name__}: {exc}")
        if not self.format:
            pytest.fail(f"{type(self).__name__} names no format (set format = ...)")
        if self.format not in formats:
            known = ", ".join(sorted(formats)) or "none"
            pytest.fail(f"format {self.format!r} is not registered (known: {known})")
        spec = formats[self.format]
        problems: list[str] = []
        cases = {case for case, _ in self.cases()}
        for case, reason in self.cannot_hold.items():
            if case not in cases:
                problems.append(f"cannot_hold names {case!r}, not one of {sorted(cases)}")
            if not reason.strip():
                problems.append(f"cannot_hold[{case!r}] gives no reason")
        for field, reason in self.lossy.items():
            if field not in LOSSY_FIELDS:
                problems.append(f"lossy names {field!r}, not one of {sorted(LOSSY_FIELDS)}")
            if not reason.strip():
                problems.append(f"lossy[{field!r}] gives no reason")
        if self.color_atol and "colors" not in self.lossy:
            problems.append("color_atol is set but lossy gives no reason for 'colors'")
        unknown = sorted(set(self.write_options) - set(spec.write_options))
        if unknown:
            problems.append(f"write_options {unknown} are not declared by {spec.name}")
        if problems:
            raise AssertionError(f"{type(self).__name__}: " + "; ".join(problems))

    def test_round_trip(self, case_name: str, tmp_path: Path) -> None:
        """A case written and read back is the same segmentation; declared limits hold."""
        build = dict(self.cases())[case_name]
        reason = self.cannot_hold.get(case_name)
        if reason is None:
            self._round_trip(build(), tmp_path)
            return
        try:
            self._round_trip(build(), tmp_path)
        except SegioError as exc:
            if exc.unexpected:  # a reader or writer crashed: a bug, not a limit
                raise
            pytest.skip(f"{self.format} cannot hold {case_name} (refused): {reason}")
        except RoundTripError:
            pytest.skip(f"{self.format} cannot hold {case_name} (not kept): {reason}")
        pytest.fail(
            f"{self.format} is declared unable to hold {case_name!r} ({reason}), yet it "
            "round-trips: remove the declaration"
        )

    def test_round_trip_other_suffixes(self, suffix: str, case_name: str, tmp_path: Path) -> None:
        """The format's other suffixes write and read the same way."""
        reason = self.cannot_hold.get(case_name)
        if reason is not None:
            pytest.skip(f"{self.format} cannot hold {case_name}: {reason}")
        self._round_trip(dict(self.cases())[case_name](), tmp_path, suffix=suffix)

    def test_rejects_garbage(self, tmp_path: Path) -> None:
        """Bad input named like this format raises a SegioError, and soon."""
        self._skip_unless_available(writer=False)
        check_rejects_garbage(
            self.format,
            tmp_path,
            registry=self.the_registry(),
            timeout_s=self.timeout_s,
            **self._case(),
        )

    def test_sniffs_its_own_files(self, tmp_path: Path) -> None:
        """A file of this format without its suffix is recognised and reads the same."""
        self._skip_unless_available()
        if self._sniffer() is None:
            pytest.skip(f"{self.format} has no sniffer (sniff=None): chosen by suffix only")
        check_sniffing(
            self.format,
            tmp_path,
            compare=self.compare_options(),
            registry=self.the_registry(),
            **self._case(),
        )

    def test_refuses_other_formats(
        self, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """No other format's file without a suffix is taken for this format's."""
        self._skip_unless_available(writer=False)
        if self._sniffer() is None:
            pytest.skip(f"{self.format} has no sniffer (sniff=None): never chosen by content")
        registry = self.the_registry()
        samples = _SAMPLES.get(registry)
        if samples is None:
            samples = format_samples(registry, tmp_path_factory.mktemp("format-samples"))
            _SAMPLES[registry] = samples
        check_refuses_other_formats(self.format, tmp_path, registry=registry, samples=samples)

    # -- helpers -----------------------------------------------------------------------------

    def _round_trip(self, case: Segmentation, tmp_path: Path, suffix: str | None = None) -> None:
        check_round_trip(
            self.format,
            case,
            tmp_path,
            suffix=suffix,
            compare=self.compare_options(),
            registry=self.the_registry(),
            **self.write_options,
        )

    def _skip_unless_available(self, *, writer: bool = True) -> None:
        why = self._unavailable(writer=writer)
        if why is not None:
            pytest.skip(why)

    def _sniffer(self) -> Callable[[bytes], bool] | None:
        spec = self.spec()
        return None if spec is None else spec.sniff
