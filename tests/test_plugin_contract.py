"""The plugin contract: one name per format, a broken plugin breaks only itself, the
autoload switch, install hints that name the plugin's own package, unknown hooks refused,
and outside label-table formats that work like the core's.

Outside plugins are real distributions: a module and a ``.dist-info`` with a ``segio``
entry point in a folder put on ``sys.path``, which ``importlib.metadata`` finds as it finds
an installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import segio
from segio.errors import MissingDependencyError, PluginError, UnknownFormatError
from segio.hookspecs import FormatSpec, LabelTableSpec, hookimpl
from segio.labels.tables import (
    LabelEntry,
    find_sidecar,
    label_tables,
    read_label_table,
    write_label_table,
)
from segio.registry import AUTOLOAD_SWITCH, Registry, default_registry
from segio.testing.synthetic import small_segmentation

Install = Callable[[str, str, str], None]

#: A module whose import fails, as a plugin's does when a library it imports is missing.
BROKEN = "import no_such_library_for_segio_tests\n"
#: A format whose reader needs a library that is not installed, hinted by its own extra.
H5SEG = """
from segio.hookspecs import FormatSpec, hookimpl

@hookimpl
def segio_formats():
    return [
        FormatSpec(name="h5seg", description="HDF5 segmentation", suffixes=(".h5seg",),
                   reader="segio_h5seg_impl:read", requires=("no_such_h5_library",),
                   extra="h5"),
        FormatSpec(name="h5seg-lite", description="HDF5, lighter", suffixes=(".h5lite",),
                   reader="segio_h5seg_impl:read", requires=("no_such_h5_library",),
                   install="pip install h5seg-tools"),
    ]
"""
#: A second "nrrd": the name segio's own NRRD plugin declares.
RIVAL = """
from segio.hookspecs import FormatSpec, hookimpl

@hookimpl
def segio_formats():
    return [FormatSpec(name="nrrd", description="a rival NRRD", suffixes=(".nrrd",),
                       reader="rival_nrrd_impl:read")]
"""
#: A misspelt hook: without check_pending it would silently declare nothing.
TYPO = """
from segio.hookspecs import FormatSpec, hookimpl

@hookimpl
def segio_format():
    return [FormatSpec(name="typo", description="never declared")]
"""
#: A declaration hook that fails when called.
RAISES = """
from segio.hookspecs import hookimpl

@hookimpl
def segio_formats():
    raise RuntimeError("declarations are not ready")
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Install]]:
    """A folder on ``sys.path`` and a function that installs a one-module distribution
    there: ``install(distribution, module, source)`` (entry point named after the module).
    """
    default_registry()  # built (and cached) before, so it never holds these plugins
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    modules: list[str] = []

    def install(distribution: str, module: str, source: str) -> None:
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        info = folder / f"{distribution.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n"
        )
        entry = module.removeprefix("segio_test_")
        (info / "entry_points.txt").write_text(f"[segio]\n{entry} = {module}\n")
        modules.append(module)

    yield folder, install
    for module in modules:
        sys.modules.pop(module, None)


def _seg_nrrd(folder: Path) -> Path:
    return segio.write(small_segmentation(), folder / "in.seg.nrrd")[0]


def _left_out(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "is left out" in str(w.message)]


# -- one name, one format --------------------------------------------------------------------


def test_two_installed_formats_with_one_name_raise_naming_both_distributions(
    site: tuple[Path, Install],
) -> None:
    _, install = site
    install("segio-rival", "segio_test_rival", RIVAL)
    registry = Registry()
    with pytest.raises(PluginError, match="two plugins declare the format 'nrrd'") as raised:
        registry.formats  # noqa: B018  (the declarations are collected on first use)
    message = str(raised.value)
    assert "'rival' from segio-rival" in message
    assert "'nrrd' from segio " in message or message.endswith("'nrrd' from segio")
    with pytest.raises(PluginError):  # every use says so, until one is uninstalled
        registry.writer_for("out.seg.nrrd")


class _Toy:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def segio_formats(self) -> list[FormatSpec]:
        return [FormatSpec(name=self.name, description="toy", suffixes=(".toy",))]


def test_a_plugin_registered_directly_with_a_taken_name_is_refused_and_not_kept() -> None:
    registry = Registry(load_entry_points=False)
    registry.register(_Toy("toy"), name="first")
    with pytest.raises(PluginError, match="two plugins declare the format 'toy'") as raised:
        registry.register(_Toy("toy"), name="second")
    assert "'first' (registered directly)" in str(raised.value)
    assert "'second' (registered directly)" in str(raised.value)
    assert registry.manager.get_plugin("second") is None
    assert registry.formats["toy"].description == "toy"  # the registry still works
    with pytest.raises(PluginError, match=r"label table 'slicer-csv': .*from segio"):
        registry.register(_Tables("slicer-csv"))


# -- a broken plugin breaks only itself ------------------------------------------------------


def test_a_broken_entry_point_is_left_out_with_one_warning_and_the_rest_reads(
    site: tuple[Path, Install], tmp_path: Path
) -> None:
    _, install = site
    install("segio-broken", "segio_test_broken", BROKEN)
    install("segio-typo", "segio_test_typo", TYPO)
    install("segio-raises", "segio_test_raises", RAISES)
    source = _seg_nrrd(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = Registry()
        formats = registry.formats
        assert registry.formats == formats  # collected once: no second warning below
        back = segio.read(source, registry=registry)
        segio.write(back, tmp_path / "out.nii.gz", registry=registry)
        again = segio.read(tmp_path / "out.nii.gz", registry=registry)  # sidecar too
    reasons = {plugin.name: plugin.reason for plugin in registry.broken}
    assert set(reasons) == {"broken", "typo", "raises"}
    assert "cannot be imported: ModuleNotFoundError" in reasons["broken"]
    assert "segio_format, which is not a segio hook" in reasons["typo"]
    assert "segio_formats failed: RuntimeError: declarations are not ready" in reasons["raises"]
    assert {p.distribution for p in registry.broken} == {
        "segio-broken",
        "segio-typo",
        "segio-raises",
    }
    left_out = _left_out(caught)
    assert len(left_out) == 3  # one warning each
    expected = "segio plugin 'broken' from segio-broken is left out: cannot be imported"
    assert any(text.startswith(expected) for text in left_out)
    assert [s.name for s in again.segments.values()] == [s.name for s in back.segments.values()]
    assert {"seg-nrrd", "nifti"} <= set(formats) and "typo" not in formats
    with pytest.raises(UnknownFormatError, match=r"failed to load .*broken, typo|typo, broken"):
        noise = tmp_path / "noise.bin"
        noise.write_bytes(b"\x00noise" * 100)
        segio.read(noise, registry=registry)


def test_segio_formats_shows_a_broken_plugin_and_every_other_format_converts(
    site: tuple[Path, Install], tmp_path: Path
) -> None:
    folder, install = site
    install("segio-broken", "segio_test_broken", BROKEN)
    install("segio-h5seg", "segio_test_h5seg", H5SEG)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    environment.pop(AUTOLOAD_SWITCH, None)

    def segio_command(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "segio", *args]
        return subprocess.run(command, capture_output=True, text=True, env=environment)

    listed = segio_command("formats", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["broken"]["kind"] == "broken-plugin"
    assert "ModuleNotFoundError" in rows["broken"]["broken"]
    assert rows["broken"]["description"] == "plugin from segio-broken"
    assert rows["h5seg"]["installed"] is False
    assert rows["h5seg"]["install"] == "pip install 'segio-h5seg[h5]'"
    assert rows["nifti"]["broken"] is None and rows["slicer-csv"]["kind"] == "label-table"
    assert listed.stderr.count("segio plugin 'broken' from segio-broken is left out") == 1
    table = segio_command("formats")
    assert "broken plugin broken (plugin from segio-broken)" in " ".join(table.stdout.split())
    source = _seg_nrrd(tmp_path)
    converted = segio_command("convert", str(source), str(tmp_path / "out.nii.gz"))
    assert converted.returncode == 0, converted.stderr
    assert (tmp_path / "out.nii.gz").is_file() and (tmp_path / "out.json").is_file()


# -- the autoload switch ---------------------------------------------------------------------


def test_the_autoload_switch_loads_no_entry_point(
    site: tuple[Path, Install], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segio_plugins.nrrd.register

    _, install = site
    install("segio-broken", "segio_test_broken", BROKEN)
    monkeypatch.setenv(AUTOLOAD_SWITCH, "1")
    registry = Registry()  # no warning: the broken plugin is not even imported
    assert registry.formats == {} and registry.broken == []
    assert "segio-json" in registry.label_tables  # the core's own stay
    assert registry.converters
    registry.register(segio_plugins.nrrd.register)
    back = segio.read(_seg_nrrd(tmp_path), registry=registry)
    assert len(back.segments) == len(small_segmentation().segments)
    monkeypatch.setenv(AUTOLOAD_SWITCH, "0")
    with pytest.warns(UserWarning, match="'broken' from segio-broken is left out"):
        assert "nrrd" in Registry().formats


# -- install hints ---------------------------------------------------------------------------


def test_an_outside_plugins_install_hint_names_its_own_package(
    site: tuple[Path, Install], tmp_path: Path
) -> None:
    _, install = site
    install("segio-h5seg", "segio_test_h5seg", H5SEG)
    registry = Registry()
    assert registry.formats["h5seg"].install == "pip install 'segio-h5seg[h5]'"
    assert registry.formats["h5seg-lite"].install == "pip install h5seg-tools"
    assert registry.formats["nifti"].install == "pip install 'segio[nifti]'"
    assert registry.distribution("h5seg") == "segio-h5seg"
    path = tmp_path / "x.h5seg"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(MissingDependencyError, match=r"\(pip install 'segio-h5seg\[h5\]'\)"):
        segio.read(path, registry=registry)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(b"\x00noise" * 100)
    with pytest.raises(UnknownFormatError, match=r"with: pip install 'segio-h5seg\[h5\]'; pip"):
        segio.read(noise, registry=registry)


# -- unknown hooks ---------------------------------------------------------------------------


class _Misspelt:
    @hookimpl
    def segio_format(self) -> list[FormatSpec]:
        return [FormatSpec(name="misspelt", description="never declared")]


class _WrongArguments:
    @hookimpl
    def segio_formats(self, registry: object) -> list[FormatSpec]:
        return []


def test_a_hook_implementation_that_matches_no_hook_fails() -> None:
    registry = Registry(load_entry_points=False)
    with pytest.raises(PluginError, match=r"implements segio_format, which is not a segio hook"):
        registry.register(_Misspelt(), name="misspelt")
    with pytest.raises(PluginError, match=r"'wrong' \(registered directly\) cannot be registered"):
        registry.register(_WrongArguments(), name="wrong")
    assert registry.manager.get_plugin("misspelt") is None
    assert registry.manager.get_plugin("wrong") is None
    registry.manager.check_pending()  # nothing unknown was kept


# -- outside label-table formats -------------------------------------------------------------


def _sniff_upper(head: bytes, name: str) -> float:
    return 1.0 if head.startswith(b"UPPER-LABELS\n") else 0.0


def _read_upper(data: bytes, src: str | None) -> list[LabelEntry]:
    rows = [line.split("=", 1) for line in data.decode().splitlines()[1:]]
    return [LabelEntry(int(value), name.lower()) for value, name in rows]


def _write_upper(entries: list[LabelEntry], path: Path) -> str:
    return "UPPER-LABELS\n" + "".join(f"{e.value}={e.name.upper()}\n" for e in entries)


class _Tables:
    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def segio_label_tables(self) -> list[LabelTableSpec]:
        return [
            LabelTableSpec(
                name=self.name,
                description="names in capitals (a test's table format)",
                sniff=f"{__name__}:_sniff_upper",
                reader=f"{__name__}:_read_upper",
                writer=f"{__name__}:_write_upper",
                sidecar_suffixes=(".upper",),
            )
        ]


def test_an_outside_label_table_format_works_like_a_builtin(tmp_path: Path) -> None:
    registry = Registry(load_entry_points=False)
    registry.register(_Tables("upper"))
    assert next(iter(label_tables(registry))) == "upper"  # the latest registered first
    table = tmp_path / "liver.upper"
    entries = [LabelEntry(1, "liver"), LabelEntry(3, "spleen")]
    write_label_table(table, entries, format="upper", registry=registry)
    assert table.read_text().startswith("UPPER-LABELS\n1=LIVER\n")
    assert read_label_table(table, registry=registry) == entries  # sniffed
    assert find_sidecar(tmp_path / "liver.nii.gz", registry=registry) == table
    assert find_sidecar(tmp_path / "liver.nii.gz") is None  # not in the default registry
