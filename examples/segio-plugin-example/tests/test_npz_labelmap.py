"""The whole segio conformance battery on the ``npz-labelmap`` format.

Runs from a checkout without installing the package (``pythonpath = ["src"]`` in
pyproject.toml and :func:`registry_with`), and unchanged once it is installed.
"""

from __future__ import annotations

from typing import ClassVar

from segio_plugin_example import register

from segio.testing.conformance import FormatConformance, registry_with


class TestNpzLabelmap(FormatConformance):
    format = "npz-labelmap"
    registry = registry_with(register)
    cannot_hold: ClassVar[dict[str, str]] = {
        "overlapping": "one label per voxel; the writer refuses overlapping segments",
    }
