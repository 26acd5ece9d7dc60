"""The plugin registry: which formats, converters and label tables exist, and which format
handles a file.

Built-in formats and third-party ones arrive the same way, through the ``segio``
entry-point group (see ``pyproject.toml``); the core's own converters and label tables
are registered first, through the same hooks. The contract, checked here:

- two plugins declaring one format (or converter, or label table) name raise
  :class:`PluginError` naming both distributions: neither is silently dropped;
- an entry point that fails to import, implements a hook segio does not have or whose
  declaration hook fails is left out with one warning and listed in :attr:`Registry.broken`
  (``segio formats`` shows it), so every other format still reads;
- ``SEGIO_DISABLE_PLUGIN_AUTOLOAD=1`` loads no entry point (as pytest's
  ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``); :meth:`Registry.register` adds plugins explicitly
  and raises at once when one breaks the contract.

Choosing a format for a file goes:

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
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pluggy

from segio import hookspecs
from segio.entrypoints import EntryPoint, segio_entry_points
from segio.errors import (
    MissingDependencyError,
    PluginError,
    ReadError,
    SegioError,
    UnknownFormatError,
)
from segio.fileio.inputs import check_regular, folder_files, open_input
from segio.hookspecs import ConverterSpec, FormatSpec, LabelTableSpec
from segio.representations import Representation

HEAD_SIZE = 4096
FOLDER_SNIFF_LIMIT = 10000  # files looked at when a folder is given
#: Set (to anything but ``0``) to load no entry point: only the core and what
#: :meth:`Registry.register` adds.
AUTOLOAD_SWITCH = "SEGIO_DISABLE_PLUGIN_AUTOLOAD"
#: The core's own declarations, registered before any entry point and whatever the switch.
BUILTINS = ("segio.converters.register", "segio.labels.tables.register")
#: The distribution the built-ins belong to.
CORE = "segio"

_Spec = TypeVar("_Spec", FormatSpec, ConverterSpec, LabelTableSpec)


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point left out: its ``name``, the ``distribution`` that installed it and
    why (``reason``, one line)."""

    name: str
    distribution: str | None
    reason: str


class _Declarations(NamedTuple):  # a NamedTuple: a dataclass costs start-up time
    formats: dict[str, FormatSpec]
    converters: list[ConverterSpec]
    label_tables: dict[str, LabelTableSpec]


class Registry:
    """Formats, converters and label tables declared by the plugins of one plugin manager.

    ``load_entry_points`` defaults to the environment (:data:`AUTOLOAD_SWITCH`);
    ``builtins=False`` leaves out the core's converters and label tables too, for a test
    that wants nothing but the plugins it registers.
    """

    def __init__(self, *, load_entry_points: bool | None = None, builtins: bool = True) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        #: Entry points left out, with the reason; ``segio formats`` lists them.
        self.broken: list[BrokenPlugin] = []
        self._distributions: dict[str, str | None] = {}  # plugin name -> distribution
        self._declarations: _Declarations | None = None
        if builtins:
            for module in BUILTINS:
                self._add(importlib.import_module(module), module, CORE)
        if load_entry_points is None:
            load_entry_points = os.environ.get(AUTOLOAD_SWITCH, "") in ("", "0")
        if load_entry_points:
            self._load_entry_points()

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object or module directly (tests, interactive use).

        Unlike an entry point, a plugin given here that breaks the contract (an unknown
        hook, a failing declaration, a name already declared) raises :class:`PluginError`
        and is not kept.
        """
        try:
            name = self._add(plugin, name, None)
        except PluginError as exc:  # say which plugin: a test may register several
            who = _describe(name or repr(plugin), None)
            raise PluginError(f"{who} {exc.reason}", hint=exc.hint) from exc
        try:
            self._collect()
        except SegioError:
            self.manager.unregister(name=name)
            self._declarations = None
            raise

    def distribution(self, plugin_name: str) -> str | None:
        """The distribution that installed a plugin (``segio`` for the core and the
        built-in formats); None for a plugin registered directly."""
        return self._distributions.get(plugin_name)

    # -- declarations -------------------------------------------------------------------

    # Each a copy: the declarations are collected once, and a caller's edit must not
    # change what the next caller sees.

    @property
    def formats(self) -> dict[str, FormatSpec]:
        return dict(self._collect().formats)

    @property
    def converters(self) -> list[ConverterSpec]:
        return list(self._collect().converters)

    @property
    def label_tables(self) -> dict[str, LabelTableSpec]:
        """Label-table formats by name, in pluggy's order: a plugin's before the core's
        (registered first, so called last), each plugin's in its own order."""
        return dict(self._collect().label_tables)

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
                hint="the file may be truncated or mislabelled; pass --from FORMAT to force one "
                "(format= in Python)",
            )
        raise UnknownFormatError(
            f"no installed format recognises this file (tried: {tried})",
            path=path,
            hint=self._missing_hint(),
        )

    def _missing_hint(self) -> str | None:
        """What to install for more formats, and which plugins failed to load."""
        hints = sorted(
            {s.install for s in self.formats.values() if s.install and not is_installed(s)}
        )
        parts = ["more formats come with: " + "; ".join(hints)] if hints else []
        if self.broken:
            names = ", ".join(plugin.name for plugin in self.broken)
            parts.append(f"plugins that failed to load (see segio formats): {names}")
        return "; ".join(parts) or None

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
                hint="use one of the suffixes "
                + " ".join(suffixes)
                + ", or pass --to FORMAT (format= in Python)",
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

    # -- plugins -------------------------------------------------------------------------

    def _add(self, plugin: object, name: str | None, distribution: str | None) -> str:
        """Register ``plugin``; :class:`PluginError` (saying what is wrong, not who), and
        nothing kept, when it implements a hook wrongly or one that segio does not have
        (pluggy's ``check_pending``)."""
        try:
            registered = self.manager.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise PluginError(f"cannot be registered: {exc}") from exc
        assert registered is not None  # segio blocks no plugin name
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError as exc:
            callers = self.manager.get_hookcallers(plugin) or []
            unknown = ", ".join(c.name for c in callers if not c.has_spec())
            self.manager.unregister(plugin)
            raise PluginError(
                f"implements {unknown}, which is not a segio hook",
                hint="segio's hooks: " + ", ".join(_HOOKS),
            ) from exc
        self._distributions[registered] = distribution
        self._declarations = None
        return registered

    def _load_entry_points(self) -> None:
        """Every ``segio`` entry point, one at a time and in pluggy's order, so that one
        which fails is left out (with a warning) instead of failing them all."""
        for entry_point in segio_entry_points(hookspecs.PROJECT):
            self._load_entry_point(entry_point, entry_point.distribution)

    def _load_entry_point(self, entry_point: EntryPoint, dist: str) -> None:
        try:
            plugin = entry_point.load()
        except Exception as exc:  # any error of a plugin's import is that plugin's alone
            self._left_out(entry_point.name, dist, f"cannot be imported: {_why(exc)}")
            return
        if self.manager.is_registered(plugin):  # the same module twice on sys.path
            return
        name = entry_point.name
        if self.manager.has_plugin(name):  # another distribution's entry point of that name
            name = f"{dist}:{name}"
        try:
            self._add(plugin, name, dist)
        except PluginError as exc:
            self._left_out(entry_point.name, dist, exc.reason)

    def _left_out(self, name: str, distribution: str | None, reason: str) -> None:
        self.broken.append(BrokenPlugin(name, distribution, reason))
        warnings.warn(
            f"segio plugin {_describe(name, distribution)} is left out: {reason}",
            stacklevel=4,
        )

    def _collect(self) -> _Declarations:
        """What the plugins declare, checked, built once until a plugin is registered.

        Each plugin's hook is called on its own, in pluggy's order (the latest registered
        first), so a failing declaration is pinned on its plugin: an entry point is left
        out, a plugin registered directly raises.
        """
        while self._declarations is None:
            try:
                self._declarations = _Declarations(
                    self._declared(self.manager.hook.segio_formats, FormatSpec),
                    list(
                        self._declared(self.manager.hook.segio_converters, ConverterSpec).values()
                    ),
                    self._declared(self.manager.hook.segio_label_tables, LabelTableSpec),
                )
            except _HookError as failed:
                self.manager.unregister(name=failed.plugin)
                self._left_out(failed.plugin, self._distributions.get(failed.plugin), failed.reason)
        return self._declarations

    def _declared(self, hook: pluggy.HookCaller, kind: type[_Spec]) -> dict[str, _Spec]:
        found: dict[str, tuple[_Spec, str]] = {}
        for impl in reversed(hook.get_hookimpls()):
            plugin, dist = impl.plugin_name, self._distributions.get(impl.plugin_name)
            try:
                batch = impl.function()
                if not isinstance(batch, list | tuple):
                    raise TypeError(f"it returned {batch!r}, not a list of {kind.__name__}")
                wrong = [spec for spec in batch if not isinstance(spec, kind)]
                if wrong:
                    raise TypeError(f"it returned {wrong[0]!r}, not a {kind.__name__}")
            except Exception as exc:
                reason = f"{hook.name} failed: {_why(exc)}"
                if dist is None:
                    raise PluginError(f"{_describe(plugin, dist)}: {reason}") from exc
                raise _HookError(plugin, reason) from exc
            for spec in batch:
                if spec.name in found:
                    raise PluginError(
                        f"two plugins declare the {_KINDS[kind]} {spec.name!r}: "
                        f"{_describe(found[spec.name][1], self.distribution(found[spec.name][1]))}"
                        f" and {_describe(plugin, dist)}",
                        hint="uninstall one of them",
                    )
                found[spec.name] = (_with_install(spec, dist), plugin)
        return {name: spec for name, (spec, _) in found.items()}


def load(target: str, *, requires: Iterable[str] = (), install: str | None = None) -> Any:
    """Import ``"module:attribute"``; a missing dependency becomes MissingDependencyError
    whose hint is ``install`` (a declaration's install hint) or names the missing module."""
    for module in requires:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f"this format needs the Python package {module!r}, which is not installed",
                hint=install or f"pip install {module}",
            )
    module_name, _, attribute = target.partition(":")
    try:
        imported = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"{target} needs the module {exc.name!r}, which is not installed",
            hint=install,
        ) from exc
    return getattr(imported, attribute)


def reader_function(spec: FormatSpec) -> Callable[..., Any]:
    assert spec.reader is not None
    return load(spec.reader, requires=spec.requires, install=spec.install)  # type: ignore[no-any-return]


def writer_function(spec: FormatSpec) -> Callable[..., Any]:
    assert spec.writer is not None
    return load(spec.writer, requires=spec.requires, install=spec.install)  # type: ignore[no-any-return]


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


_HOOKS = tuple(name for name in vars(hookspecs) if name.startswith("segio_"))
_KINDS = {FormatSpec: "format", ConverterSpec: "converter", LabelTableSpec: "label table"}


class _HookError(Exception):
    """A plugin's declaration hook failed (raised inside :meth:`Registry._collect`)."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(reason)
        self.plugin, self.reason = plugin, reason


def _describe(plugin: str, distribution: str | None) -> str:
    """A plugin as messages name it: by the distribution that installed it."""
    if distribution is None:
        return f"{plugin!r} (registered directly)"
    return f"{plugin!r} from {distribution}"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _with_install(spec: _Spec, distribution: str | None) -> _Spec:
    """``spec`` with its install hint spelt out: its ``extra`` of the distribution that
    installed it (``pip install 'segio[nifti]'``, ``pip install 'segio-h5seg[h5]'``)."""
    if isinstance(spec, LabelTableSpec) or spec.install or not spec.extra or not distribution:
        return spec
    return replace(spec, install=f"pip install '{distribution}[{spec.extra}]'")


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of every installed plugin, built once per process."""
    return Registry()
