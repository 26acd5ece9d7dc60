"""The example outside plugin (``examples/segio-plugin-example``) as its users meet it.

Its conformance tests (``FormatConformance``) run with ours from its own folder; these check
what they cannot: that once installed it is found through its ``segio`` entry point like any
outside plugin, by the verbs and the CLI alike, with no line of segio naming it. ``make
test`` installs it; a missing install fails here rather than skipping.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import segio
from segio.cli import cli
from segio.registry import Registry
from segio.testing.compare import assert_same_segmentation
from segio.testing.conformance import registry_with
from segio.testing.synthetic import small_segmentation

DISTRIBUTION = "segio-plugin-example"


def _entry_point() -> importlib.metadata.EntryPoint:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            f"{DISTRIBUTION} is not installed: pip install --no-deps -e "
            "examples/segio-plugin-example (make test does)"
        )
    [entry] = dist.entry_points.select(group="segio")
    return entry


def test_the_example_plugin_is_found_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGIO_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    entry = _entry_point()
    assert entry.value == "segio_plugin_example.register"
    registry = Registry()
    spec = registry.format("npz-labelmap")
    assert spec.reader == "segio_plugin_example.npz_labelmap:read"
    assert registry.distribution(entry.name) == DISTRIBUTION
    assert not registry.broken

    # The verbs find it by suffix and, without one, by its sniffer.
    original = small_segmentation("oblique")
    path = tmp_path / "case.seg.npz"
    segio.write(original, path)
    assert_same_segmentation(original, segio.read(path))
    renamed = tmp_path / "case"
    renamed.write_bytes(path.read_bytes())
    assert segio.read(renamed).provenance["format"] == "npz-labelmap"

    listed = json.loads(CliRunner().invoke(cli, ["formats", "--json"]).output)
    [row] = [row for row in listed if row.get("name") == "npz-labelmap"]
    assert row["read"] and row["write"] and row["broken"] is None


def test_registry_with_registers_an_installed_plugin_once() -> None:
    from segio_plugin_example import register

    _entry_point()
    installed = registry_with(register, entry_points=True)  # no duplicate-name error
    assert [p for p in installed.manager.get_plugins() if p is register] == [register]
    alone = registry_with(register, entry_points=False)
    assert "npz-labelmap" in alone.formats and "nrrd" not in alone.formats
