"""Packaging (issue 13, item 5): ``pip install 'segio[all]'`` gives every built-in format,
and the extras name only what segio's own code needs.

The fast tests read ``pyproject.toml`` and the registry's declarations; the slow one
installs ``.[all]`` into a fresh virtual environment and converts a ``.seg.nrrd`` to GLB.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from segio.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
#: Extras that bring formats; the others (test, bench) bring tools.
PRODUCT = ("nrrd", "nifti", "dicom", "mesh", "all")
BUILT_IN = ("segio.", "segio_plugins.")


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _closure(extra: str) -> set[str]:
    """The distributions ``segio[extra]`` installs beyond the core, self-references
    (``segio[nrrd,nifti]``) followed."""
    found: set[str] = set()
    for requirement in EXTRAS[extra]:
        inner = re.fullmatch(r"segio\[([^\]]*)\]", requirement.strip())
        if inner:
            for name in inner.group(1).split(","):
                found |= _closure(name.strip())
        else:
            found.add(_name(requirement))
    return found


def _providers(module: str) -> set[str]:
    """The distributions that install the top-level module ``module``."""
    top = module.partition(".")[0]
    return {_name(d) for d in packages_distributions().get(top, [])}


def _built_in_specs() -> list[tuple[str, tuple[str, ...], str | None]]:
    """(name, requires, extra) of every built-in format and converter."""
    registry = Registry()
    found = []
    for spec in registry.formats.values():
        code = spec.reader or spec.writer or ""
        if code.startswith(BUILT_IN):
            found.append((spec.name, spec.requires, spec.extra))
    for converter in registry.converters:
        if converter.function.startswith(BUILT_IN):
            found.append((converter.name, converter.requires, converter.extra))
    return found


def test_all_installs_every_built_in_format() -> None:
    """Every module a built-in format or converter requires comes with ``segio[all]``
    (or with segio itself), and so does every extra their install hints name."""
    core = {_name(r) for r in PROJECT["dependencies"]}
    everything = _closure("all")
    specs = _built_in_specs()
    assert {"dicom-seg", "nifti", "gltf", "3mf", "binary-to-closed-surface"} <= {
        name for name, _, _ in specs
    }
    for name, requires, extra in specs:
        if extra is not None:
            assert extra in EXTRAS, f"{name}: no extra {extra!r} in pyproject.toml"
            assert _closure(extra) <= everything, f"{name}: segio[all] lacks segio[{extra}]"
        for module in requires:
            providers = _providers(module)
            assert providers, f"{name}: no installed distribution provides {module!r}"
            brought = core | (_closure(extra) if extra else set())
            assert providers & brought, f"{name}: segio[{extra}] does not bring {module!r}"
            assert providers & (core | everything), f"{name}: segio[all] lacks {module!r}"


def _imported_modules() -> set[str]:
    """Top-level modules that segio's and the built-in plugins' code imports."""
    found: set[str] = set()
    for folder in ("segio", "plugins"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.partition(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.partition(".")[0])
    return found


def _pydicom_pixel_backends() -> set[str]:
    """The distributions pydicom's pixel decoders and encoders load by name."""
    found: set[str] = set()
    for module, table in (
        ("pydicom.pixels.decoders.pylibjpeg", "DECODER_DEPENDENCIES"),
        ("pydicom.pixels.decoders.pyjpegls", "DECODER_DEPENDENCIES"),
        ("pydicom.pixels.encoders.pylibjpeg", "ENCODER_DEPENDENCIES"),
        ("pydicom.pixels.encoders.pyjpegls", "ENCODER_DEPENDENCIES"),
    ):
        for needs in getattr(importlib.import_module(module), table).values():
            found |= {_name(requirement) for requirement in needs}
    return found


def test_format_extras_name_only_what_segio_uses() -> None:
    """A distribution in a format extra is imported by segio's code, or is a pixel codec
    pydicom loads by name; test tools (trimesh, highdicom, ...) belong to ``test``."""
    imported = _imported_modules()
    backends = _pydicom_pixel_backends()
    for extra in PRODUCT:
        for distribution in _closure(extra):
            modules = {
                module
                for module, names in packages_distributions().items()
                if distribution in {_name(d) for d in names}
            }
            assert modules, f"segio[{extra}]: {distribution} is not installed here"
            assert modules & imported or distribution in backends, (
                f"segio[{extra}] names {distribution}, which segio's code never imports"
            )


def test_the_licence_file_is_the_declared_one() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert PROJECT["license"] == "BSD-3-Clause" and "LICENSE" in PROJECT["license-files"]
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, segio developers" in text
    assert "Neither the name of the copyright holder" in text  # the third clause


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_fresh_install_of_all_converts_seg_nrrd_to_glb(tmp_path: Path) -> None:
    """``pip install '.[all]'`` in an empty virtual environment, then the command line."""
    source = tmp_path / "segio"  # a copy: building in the checkout would leave build/ there
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("segio", "plugins"):
        shutil.copytree(
            ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{source}[all]"], check=True)
    glb = tmp_path / "sample.glb"
    subprocess.run(
        [str(venv / "bin" / "segio"), "convert", str(ROOT / "fixtures/sample.seg.nrrd"), str(glb)],
        check=True,
        cwd=tmp_path,
    )
    check = "import segio, sys; print(len(segio.read(sys.argv[1]).segments))"
    out = subprocess.run(
        [str(python), "-c", check, str(glb)], check=True, capture_output=True, text=True
    )
    assert int(out.stdout) == 5
