"""The plugin registry: which formats and converters exist, and which one handles a file.

Built-in formats and third-party ones arrive the same way, through the ``segio``
entry-point group (see ``pyproject.toml``). Choosing a format for a file goes:

1. an explicit ``format=`` name wins;
2. otherwise formats whose suffix matches the file name, longest suffix first
   (``.seg.nrrd`` before ``.nrrd``, ``.nii.gz`` before ``.nii``), each confirmed by its
   sniffer on the file's first bytes, which are read once;
3. otherwise every format's sniffer, so a file with a wrong or missing suffix still opens.

When nothing fits, :class:`UnknownFormatError` lists what was tried and what to install.
"""

from __future__ import annotations

import heapq
import importlib
import importlib.util
import itertools
import os
import warnings
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pluggy

from segio import hookspecs
from segio.errors import MissingDependencyError, ReadError, UnknownFormatError
from segio.fileio.inputs import check_regular, folder_files, open_input
from segio.hookspecs import ConverterSpec, FormatSpec
from segio.representations import Representation

HEAD_SIZE = 4096
FOLDER_SNIFF_LIMIT = 10000  # files looked at when a folder is given


class Registry:
    """Formats and converters declared by the plugins known to one plugin manager."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        if load_entry_points:
            self.manager.load_setuptools_entrypoints(hookspecs.PROJECT)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module directly (tests, interactive use)."""
        self.manager.register(plugin, name=name)

    # -- declarations -------------------------------------------------------------------

    @property
    def formats(self) -> dict[str, FormatSpec]:
        specs: dict[str, FormatSpec] = {}
        for batch in self.manager.hook.segio_formats():
            for spec in batch:
                specs.setdefault(spec.name, spec)
        return specs

    @property
    def converters(self) -> list[ConverterSpec]:
        return [spec for batch in self.manager.hook.segio_converters() for spec in batch]

    def format(self, name: str) -> FormatSpec:
        formats = self.formats
        if name not in formats:
            raise UnknownFormatError(
                f"no format is named {name!r}",
                hint="known formats: " + ", ".join(sorted(formats)),
            )
        return formats[name]

    # -- choosing a format --------------------------------------------------------------

    def reader_for(self, path: str | os.PathLike[str], format: str | None = None) -> FormatSpec:
        """The format that should read ``path``."""
        path = Path(path)
        if not path.exists():
            raise ReadError("no such file or folder", path=path)
        if not path.is_dir():
            check_regular(path)  # a FIFO would block the first read, /dev/zero never end
        if format is not None:
            spec = self.format(format)
            if spec.reader is None:
                raise UnknownFormatError(f"format {format!r} cannot be read", path=path)
            return spec
        readable = [s for s in self.formats.values() if s.reader is not None]
        if path.is_dir():
            return _folder_reader(path, [s for s in readable if s.directory])
        else:
            head = _read_head(path)
            candidates = readable
        by_suffix = _by_suffix(candidates, path.name)
        for spec in by_suffix:
            if spec.sniff is None or spec.sniff(head):
                return spec
        for spec in candidates:
            if spec.sniff is not None and spec.sniff(head):
                # A generic ending (".dcm") that this format also uses is no mismatch.
                if by_suffix and not any(s.endswith(path.suffix.lower()) for s in spec.suffixes):
                    warnings.warn(
                        f"{path}: the name says {by_suffix[0].name} but the content is "
                        f"{spec.name}; reading it as {spec.name}",
                        stacklevel=3,
                    )
                return spec
        tried = ", ".join(s.name for s in candidates) or "none installed"
        if by_suffix:
            raise UnknownFormatError(
                f"the name says {by_suffix[0].name} but the content is not",
                path=path,
                hint="the file may be truncated or mislabelled; pass format= to force one",
            )
        raise UnknownFormatError(
            f"no installed format recognises this file (tried: {tried})",
            path=path,
            hint=_install_hint(self.formats.values()),
        )

    def writer_for(self, path: str | os.PathLike[str], format: str | None = None) -> FormatSpec:
        """The format that should write ``path``, from ``format`` or the file name."""
        path = Path(path)
        writable = [s for s in self.formats.values() if s.writer is not None]
        if format is not None:
            spec = self.format(format)
            if spec.writer is None:
                raise UnknownFormatError(f"format {format!r} cannot be written", path=path)
            return spec
        matches = _by_suffix(writable, path.name)
        if not matches:
            suffixes = sorted({suffix for spec in writable for suffix in spec.suffixes})
            raise UnknownFormatError(
                "cannot tell the output format from the file name",
                path=path,
                hint="use one of the suffixes " + " ".join(suffixes) + " or pass format=",
            )
        return matches[0]

    # -- converters ----------------------------------------------------------------------

    def conversion_path(
        self, source: Representation, target: Representation
    ) -> list[ConverterSpec]:
        """The cheapest chain of converters from ``source`` to ``target`` (Dijkstra)."""
        if source is target:
            return []
        edges: dict[Representation, list[ConverterSpec]] = {}
        for spec in self.converters:
            edges.setdefault(spec.source, []).append(spec)
        tie = itertools.count()
        queue: list[tuple[float, int, Representation, list[ConverterSpec]]] = [
            (0.0, next(tie), source, [])
        ]
        done: set[Representation] = set()
        while queue:
            cost, _, node, chain = heapq.heappop(queue)
            if node is target:
                return chain
            if node in done:
                continue
            done.add(node)
            for spec in edges.get(node, []):
                if spec.target not in done:
                    heapq.heappush(
                        queue, (cost + spec.cost, next(tie), spec.target, [*chain, spec])
                    )
        raise UnknownFormatError(
            f"no installed converter turns {source.value!r} into {target.value!r}"
        )


def load(target: str, *, requires: Iterable[str] = (), extra: str | None = None) -> Any:
    """Import ``"module:attribute"``; a missing dependency becomes MissingDependencyError."""
    for module in requires:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f"this format needs the Python package {module!r}, which is not installed",
                hint=f"pip install 'segio[{extra}]'" if extra else f"pip install {module}",
            )
    module_name, _, attribute = target.partition(":")
    try:
        imported = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"{target} needs the module {exc.name!r}, which is not installed",
            hint=f"pip install 'segio[{extra}]'" if extra else None,
        ) from exc
    return getattr(imported, attribute)


def reader_function(spec: FormatSpec) -> Callable[..., Any]:
    assert spec.reader is not None
    return load(spec.reader, requires=spec.requires, extra=spec.extra)  # type: ignore[no-any-return]


def writer_function(spec: FormatSpec) -> Callable[..., Any]:
    assert spec.writer is not None
    return load(spec.writer, requires=spec.requires, extra=spec.extra)  # type: ignore[no-any-return]


def is_installed(spec: FormatSpec) -> bool:
    """True when every module the format needs can be imported."""
    return all(importlib.util.find_spec(module) is not None for module in spec.requires)


def _folder_reader(path: Path, specs: list[FormatSpec]) -> FormatSpec:
    """The first folder-capable format whose sniffer recognises a file in the folder."""
    heads = []
    for file in folder_files(path):  # no FIFO, device or link out of the folder
        heads.append(_read_head(file))
        if len(heads) >= FOLDER_SNIFF_LIMIT:
            break
    for spec in specs:
        if spec.sniff is not None and any(spec.sniff(head) for head in heads):
            return spec
    raise UnknownFormatError(
        "no file in this folder is of a format that segio reads from folders",
        path=path,
        hint="tried: " + (", ".join(s.name for s in specs) or "none installed"),
    )


def _read_head(path: Path) -> bytes:
    try:
        with open_input(path) as stream:
            return stream.read(HEAD_SIZE)
    except OSError as exc:
        raise ReadError(f"cannot read the file: {exc.strerror}", path=path) from exc


def _by_suffix(specs: Iterable[FormatSpec], filename: str) -> list[FormatSpec]:
    """Formats whose suffix ends the name, longest matching suffix first."""
    name = filename.lower()
    scored = [
        (max(len(s) for s in spec.suffixes if name.endswith(s)), spec)
        for spec in specs
        if any(name.endswith(s) for s in spec.suffixes)
    ]
    scored.sort(key=lambda pair: -pair[0])
    return [spec for _, spec in scored]


def _install_hint(specs: Iterable[FormatSpec]) -> str | None:
    missing = sorted({s.extra for s in specs if s.extra and not is_installed(s)})
    if not missing:
        return None
    return "more formats come with: pip install 'segio[" + ",".join(missing) + "]'"


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of every installed plugin, built once per process."""
    return Registry()
