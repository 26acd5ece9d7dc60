"""Start-up: the entry-point shortcut agrees with importlib.metadata, and ``import segio``
plus a first read stays light.

:mod:`segio.entrypoints` reads ``entry_points.txt`` files itself instead of importing
``importlib.metadata`` (and ``email``); it must find what ``importlib.metadata`` finds, in
the same order and under the same distribution names, for installed packages, for
folders put on ``sys.path``, and (by handing over to ``importlib.metadata``) in a zip.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import segio
from segio import entrypoints
from segio.entrypoints import EntryPoint, segio_entry_points
from segio.registry import Registry
from segio.testing.synthetic import small_segmentation


def _metadata(group: str) -> list[EntryPoint]:
    return [
        EntryPoint(entry.name, entry.value, dist.metadata.get("Name"))
        for dist in importlib.metadata.distributions()
        for entry in dist.entry_points.select(group=group)
    ]


@pytest.mark.parametrize("group", ["segio", "console_scripts", "pytest11", "napari.manifest"])
def test_the_shortcut_finds_what_importlib_metadata_finds(group: str) -> None:
    assert not entrypoints._needs_metadata()  # this environment takes the shortcut
    found = segio_entry_points(group)
    assert found == _metadata(group)
    if group == "segio":
        assert {"nrrd", "nifti", "dicom-seg"} <= {entry.name for entry in found}


def _dist(folder: Path, info: str, entry_points: str, metadata: str | None) -> None:
    (folder / info).mkdir(parents=True)
    (folder / info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if metadata is not None:
        name = "PKG-INFO" if info.endswith(".egg-info") else "METADATA"
        (folder / info / name).write_text(metadata)


def test_odd_but_valid_layouts_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Comments, blank lines, other groups, extras and attributes, an egg-info, a name
    that differs from the folder's, two versions of one project, metadata without Name."""
    site = tmp_path / "site"
    _dist(
        site,
        "Odd_Name-2.0.dist-info",
        """
        # a comment
        [console_scripts]
        odd = odd.cli:main

        [segio]
        # another comment
        odd = odd_plugin.register
        odd-extra = odd_plugin.more:hooks.inner [h5]
        """,
        "Metadata-Version: 2.1\nName: odd.name\nVersion: 2.0\n\nName: not this one\n",
    )
    _dist(site, "odd_name-1.0.dist-info", "[segio]\nold = old_plugin\n", "Name: Odd-Name\n")
    _dist(site, "eggy-0.1.egg-info", "[segio]\neggy = eggy.register\n", "Name: eggy\n")
    _dist(site, "nameless-1.0.dist-info", "[segio]\nnameless = nameless\n", "Version: 1\n")
    _dist(site, "other-1.0.dist-info", "[segio.extra]\nnot_ours = x\n", "Name: other\n")
    monkeypatch.syspath_prepend(str(site))
    found = segio_entry_points("segio")
    assert found == _metadata("segio")
    ours = [entry for entry in found if entry.value.startswith(("odd", "old", "eggy", "nam"))]
    assert sorted((e.name, str(e.distribution)) for e in ours) == [
        ("eggy", "eggy"),
        ("nameless", "None"),  # importlib.metadata's name for it too
        ("odd", "odd.name"),
        ("odd-extra", "odd.name"),
        ("old", "Odd-Name"),
    ]


def test_entry_points_load_as_importlib_metadata_loads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ep_probe_module.py").write_text("class Outer:\n    class Inner:\n        x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        entry = EntryPoint("p", "ep_probe_module:Outer.Inner [extra]", "dist")
        assert entry.load().x == 1
        assert EntryPoint("m", "ep_probe_module", "dist").load().__name__ == "ep_probe_module"
        with pytest.raises(ValueError, match="is not an entry point"):
            EntryPoint("bad", "not a value!", "dist").load()
    finally:
        sys.modules.pop("ep_probe_module", None)


def test_a_zip_on_sys_path_is_searched_through_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("zipdist-1.0.dist-info/METADATA", "Name: zipdist\nVersion: 1.0\n")
        zipped.writestr("zipdist-1.0.dist-info/entry_points.txt", "[segio]\nzipped = zp\n")
    monkeypatch.syspath_prepend(str(archive))
    assert entrypoints._needs_metadata()
    assert EntryPoint("zipped", "zp", "zipdist") in segio_entry_points("segio")


def test_a_finder_that_lists_distributions_is_asked_through_importlib_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Finder:
        @staticmethod
        def find_spec(*args: object) -> None:
            return None

        @staticmethod
        def find_distributions(*args: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    assert entrypoints._needs_metadata()
    assert segio_entry_points("segio") == _metadata("segio")


def test_the_importlib_metadata_backport_finder_keeps_the_shortcut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """dask imports the ``importlib_metadata`` backport, whose finder lists the same
    sys.path distributions as the standard one: the shortcut stays, and stays right."""
    backport = pytest.importorskip("importlib_metadata")
    without = [f for f in sys.meta_path if not isinstance(f, backport.MetadataPathFinder)]
    monkeypatch.setattr(sys, "meta_path", without)
    assert not entrypoints._needs_metadata()
    expected = segio_entry_points("segio")
    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, backport.MetadataPathFinder()])
    assert not entrypoints._needs_metadata()
    assert segio_entry_points("segio") == expected


def test_the_registry_finds_a_third_party_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "ep_test_fmt.py").write_text(
        "from segio.hookspecs import FormatSpec, hookimpl\n"
        "@hookimpl\n"
        "def segio_formats():\n"
        "    return [FormatSpec(name='ep-test', description='d', suffixes=('.eptest',))]\n"
    )
    _dist(site, "ep_test-1.0.dist-info", "[segio]\nep_test = ep_test_fmt\n", "Name: ep-test\n")
    monkeypatch.syspath_prepend(str(site))
    try:
        registry = Registry()
        assert "ep-test" in registry.formats
        assert registry.distribution("ep_test") == "ep-test"
        monkeypatch.setenv("SEGIO_DISABLE_PLUGIN_AUTOLOAD", "1")
        assert "ep-test" not in Registry().formats
    finally:
        sys.modules.pop("ep_test_fmt", None)


#: Modules ``import segio`` and a first small read must not import (heavy, or only for
#: what the read does not do): the metadata machinery, writers' thread pools and
#: temporary files, JSON (sidecars, journals).
NOT_AT_START = (
    "importlib.metadata",
    "email.parser",
    "concurrent.futures",
    "zipfile",
    "tempfile",
    "shutil",
    "json",
)


def test_import_and_a_first_read_stay_light(tmp_path: Path) -> None:
    path = segio.write(small_segmentation(), tmp_path / "small.seg.nrrd")[0]
    code = (
        "import sys; before = set(sys.modules); import segio; "
        f"segio.read({str(path)!r}); new = sorted(set(sys.modules) - before); "
        "print(' '.join(new))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(result.stdout.split())
    assert "segio_plugins.nrrd.segnrrd" in loaded  # the probe did read
    assert not loaded & set(NOT_AT_START), sorted(loaded & set(NOT_AT_START))
    assert not any(name.startswith("segio.labels.tables.") for name in loaded - _TABLES_NEEDED)


#: The label-table modules a read may import: the declarations (no table is read).
_TABLES_NEEDED = {"segio.labels.tables.register", "segio.labels.tables.common"}
