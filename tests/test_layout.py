"""The core's layout rules, checked on the source so that a regression fails here.

* Plugins depend on the core's modules, never on the package root: ``segio/__init__.py``
  re-exports the verbs (``read``, ``write``, ``convert``), and a plugin reaching them (or
  anything else through the root) would tie format code to the I/O layer that calls it.
* Converters use no DICOM or label-table code: a grid rule belongs with the geometry.
* One converter module per conversion direction, named for it.
* No module in ``segio/`` or ``plugins/`` much over 600 lines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: "About 600 lines": a module past this is split by job, not trimmed to fit.
MAX_LINES = 620


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _root_uses(tree: ast.AST) -> list[str]:
    """What a module takes from the package root ``segio``: ``from segio import x``,
    ``import segio`` and ``import segio.sub`` without ``as`` (both bind the root)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "segio" and not node.level:
            found += [f"from segio import {alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [
                f"import {alias.name}"
                for alias in node.names
                if alias.name == "segio" or (alias.name.startswith("segio.") and not alias.asname)
            ]
    return found


def test_root_uses_are_found() -> None:
    """The checker itself: each way of reaching the root is caught, core imports are not."""
    source = (
        "import segio\nfrom segio import read, options\nimport segio.io\n"
        "import segio.options as options\nfrom segio.model import Segmentation\n"
        "from . import segio\n"
    )
    assert _root_uses(ast.parse(source)) == [
        "import segio",
        "from segio import read",
        "from segio import options",
        "import segio.io",
    ]


def test_plugins_take_nothing_from_the_package_root() -> None:
    """The built-in plugins and the example outside plugin alike."""
    offenders = {
        str(path.relative_to(ROOT)): uses
        for path in _modules("plugins", "examples")
        if (uses := _root_uses(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert not offenders, f"import from the core's modules instead: {offenders}"


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_converters_use_no_dicom_or_label_table_code() -> None:
    forbidden = ("segio.dicom", "segio.labels.tables")
    offenders = {
        path.name: sorted(
            name
            for name in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        )
        for path in _modules("segio/converters")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_one_converter_module_per_direction() -> None:
    """Every built-in converter lives in a module named ``<source>_to_<target>`` that holds
    no converter of the opposite direction (``contours.py`` once held both)."""
    from segio.converters.register import segio_converters

    directions: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for spec in segio_converters():
        module = spec.function.split(":")[0].rsplit(".", 1)[-1]
        assert "_to_" in module, f"{spec.name}: {module} does not name its direction"
        directions[module].add((spec.source.name, spec.target.name))
    for module, pairs in directions.items():
        both = {(a, b) for a, b in pairs if (b, a) in pairs}
        assert not both, f"{module} converts both ways: {sorted(both)}"


def test_no_module_over_about_600_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _modules("segio", "plugins")
    }
    assert not {name: n for name, n in sizes.items() if n > MAX_LINES}
