"""The ``segio`` entry points of every installed distribution, found without
``importlib.metadata`` where the installation allows.

``importlib.metadata`` finds them by importing itself and the ``email`` package and
parsing every distribution's metadata: about 30 ms, a fifth of a whole ``segio`` run
that reads one small file. The entry points are plain files, though: each
``*.dist-info`` or ``*.egg-info`` folder in a ``sys.path`` folder may hold an
``entry_points.txt``. :func:`segio_entry_points` reads those directly, in the order
``importlib.metadata.distributions()`` gives them (``sys.path`` order; in a folder, the
folders of one normalised project name together, in listing order), and takes a
distribution's name from the ``Name:`` line of its ``METADATA`` (``PKG-INFO``).

Anything this shortcut does not know how to read goes the long way, through
``importlib.metadata`` itself: a ``sys.path`` entry that is a file (a zip) or an unpacked
``.egg``, or an import finder of its own that can list distributions
(``find_distributions`` on a finder of ``sys.meta_path`` other than the standard one).
``tests/test_registry.py`` checks that the two ways agree.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Iterator
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["EntryPoint", "segio_entry_points"]

_INFO_SUFFIXES = (".dist-info", ".egg-info")
_SEPARATORS = re.compile(r"[-_.]+")
# importlib.metadata's own pattern for an entry point's value.
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class EntryPoint(NamedTuple):
    """One entry point: ``name = value`` of the ``distribution`` (its ``Name``)."""

    name: str
    value: str
    distribution: str

    def load(self) -> Any:
        """Import the module and return the attribute the value names (as
        ``importlib.metadata.EntryPoint.load`` does)."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"{self.value!r} is not an entry point (module:attribute)")
        module = importlib.import_module(match.group("module"))
        attributes = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, attributes, module)


def segio_entry_points(group: str) -> list[EntryPoint]:
    """Every entry point of ``group``, one distribution after another."""
    if _needs_metadata():
        return _by_metadata(group)
    found: list[EntryPoint] = []
    marker = f"[{group}]".encode()
    for root in sys.path:
        for info in _info_folders(root):
            found += _read_info(info, group, marker)
    return found


def _needs_metadata() -> bool:
    """True when distributions may live where the shortcut does not look: a zip on
    ``sys.path``, an unpacked ``.egg`` folder, or a finder of its own that lists some."""
    if any(Path(root).is_file() or root.lower().endswith(".egg") for root in sys.path):
        return True
    return any(
        hasattr(finder, "find_distributions")
        and finder is not PathFinder
        and not _searches_sys_path(finder)
        for finder in sys.meta_path
    )


def _searches_sys_path(finder: object) -> bool:
    """The ``importlib_metadata`` backport's finder (which dask, among others, imports):
    it lists the distributions of the ``sys.path`` folders in place of the standard one
    (importing the backport removes ``PathFinder.find_distributions``)."""
    kind = type(finder)
    return kind.__name__ == "MetadataPathFinder" and kind.__module__.startswith(
        "importlib_metadata"
    )


def _info_folders(root: str) -> Iterator[str]:
    """The metadata folders in ``root``, in importlib.metadata's order: grouped by
    normalised project name, each group where its first folder is listed.

    Plain ``os`` calls on strings here and in :func:`_read_info`: a site-packages holds
    hundreds of folders, and pathlib objects for each would cost milliseconds.
    """
    try:
        children = os.listdir(root or ".")  # noqa: PTH208
    except OSError:
        return
    groups: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith(_INFO_SUFFIXES):
            name = _SEPARATORS.sub("-", low.rpartition(".")[0].partition("-")[0])
            groups.setdefault(name, []).append(os.path.join(root, child))  # noqa: PTH118
    for group in groups.values():
        yield from group


def _read_info(info: str, group: str, marker: bytes) -> list[EntryPoint]:
    try:
        with open(os.path.join(info, "entry_points.txt"), "rb") as stream:  # noqa: PTH118, PTH123
            data = stream.read()
    except OSError:
        return []
    if marker not in data:  # the quick test, before any decoding or parsing
        return []
    pairs = list(_section_pairs(data.decode("utf-8", errors="replace"), group))
    if not pairs:
        return []
    name = _distribution_name(Path(info))
    return [EntryPoint(key, value, name) for key, value in pairs]


def _section_pairs(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``name = value`` lines of section ``[group]`` (importlib.metadata's ``Sectioned``)."""
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            key, _, value = line.partition("=")
            yield key.strip(), value.strip()


def _distribution_name(info: Path) -> str:
    """The ``Name:`` of the metadata headers (``METADATA``, or ``PKG-INFO`` of an egg)."""
    for filename in ("METADATA", "PKG-INFO"):
        text = _read_text(info / filename)
        if text is None:
            continue
        for line in text.splitlines():
            if not line.strip():
                break  # the end of the headers
            key, colon, value = line.partition(":")
            if colon and key.strip().lower() == "name":
                return value.strip()
        break
    return _by_metadata_name(info)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _by_metadata(group: str) -> list[EntryPoint]:
    import importlib.metadata

    return [
        EntryPoint(entry.name, entry.value, _name(dist.metadata))
        for dist in importlib.metadata.distributions()
        for entry in dist.entry_points.select(group=group)
    ]


def _by_metadata_name(info: Path) -> str:
    """The name importlib.metadata gives a distribution whose headers we could not read."""
    import importlib.metadata

    return _name(importlib.metadata.PathDistribution(info).metadata)


def _name(metadata: Any) -> str:
    """``Name`` as the standard library gives it (None when missing, where the
    importlib_metadata backport would raise KeyError)."""
    name: str = metadata.get("Name")
    return name
