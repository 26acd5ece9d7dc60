"""The ``segio`` command: the library's verbs for the shell.

Errors a user can cause (:class:`SegioError`) are printed as one line naming the file,
the problem and the fix, with exit status 1; ``--debug`` shows the traceback instead.
A ``MemoryError``, ``OverflowError`` or ``ValueError`` that escapes anyway is printed the
same way: a traceback is for ``--debug`` only.

Warnings, and the log lines of libraries (nibabel prints its own), are printed as
``segio: warning: ...`` on stderr, one line each, at most :data:`WARNINGS_SHOWN` of each
kind (a kind is a message with its numbers and quoted names masked); one line per kind
at the end says how many more there were. Only the command does this: library users keep
Python's warnings and logging as they are. rich is imported only by the commands that
draw tables, and by the progress bars once one is shown.

Global options, before or after the command's name (``segio -q convert ...`` or
``segio convert ... -q``):

- ``-q``/``--quiet``: no progress and no informational lines (``wrote FILE``); results
  (tables, JSON), warnings and errors are still printed.
- ``-v``/``--verbose``: every warning in full (none folded into a count), the time of
  each long step, and segio's log at INFO (``-vv``: DEBUG).

Long steps (:mod:`segio.progress`) draw bars on stderr when it is a terminal and the
step lasts over a second (:mod:`segio.cli.progress_bar`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

import segio
from segio.errors import ReadError, SegioError, ValidationError, one_line

if TYPE_CHECKING:
    from segio.hookspecs import FormatSpec, LabelTableSpec
    from segio.registry import BrokenPlugin

#: Warnings of one kind printed before the rest are only counted.
WARNINGS_SHOWN = 3
#: Exceptions that must not reach the user as a traceback even when no file is to blame.
_ESCAPES = (MemoryError, OverflowError, ValueError, RecursionError)
#: Loggers of libraries that print on their own (a handler of theirs) during a command.
_LIBRARY_LOGGERS = ("nibabel.global",)


class _Group(click.Group):
    """Turns errors into one-line messages, unless --debug, and summarises warnings."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoisted(self, ctx, args))

    def invoke(self, ctx: click.Context) -> Any:
        quiet, verbose = bool(ctx.params.get("quiet")), int(ctx.params.get("verbose") or 0)
        shown = None if verbose else WARNINGS_SHOWN
        with _summarised_warnings(shown), _verbose_log(verbose), _progress_shown(quiet, verbose):
            try:
                return super().invoke(ctx)
            except SegioError as exc:
                if ctx.params.get("debug"):
                    raise
                _fail(ctx, str(exc))
            except _ESCAPES as exc:
                if ctx.params.get("debug"):
                    raise
                reason = one_line(exc) or "no reason was given"
                _fail(ctx, f"{reason} ({type(exc).__name__}; --debug shows where)")


#: Global options also accepted after the command's name (moved before it).
_GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose", "-vv"})


def _hoisted(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with ``-q``/``-v`` given after the command moved before it; a value of
    one of the command's options (``--rename -v=x``) and what follows ``--`` stay."""
    names = [n for n, arg in enumerate(args) if not arg.startswith("-")]
    if not names or group.get_command(ctx, args[names[0]]) is None:
        return args
    at = names[0]
    command = group.get_command(ctx, args[at])
    assert command is not None
    takes_value = {
        opt
        for param in command.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for opt in param.opts + param.secondary_opts
    }
    moved, kept = [], args[: at + 1]
    rest = args[at + 1 :]
    for n, arg in enumerate(rest):
        if arg == "--":
            kept += rest[n:]
            break
        if arg in _GLOBAL_FLAGS and not (n and rest[n - 1] in takes_value):
            moved.append(arg)
        else:
            kept.append(arg)
    return args[:at] + moved + kept[at:]


def quiet() -> bool:
    """True when the running command was given ``-q``: no informational lines."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("quiet"))


def verbosity() -> int:
    """How many ``-v`` the running command was given (0: none)."""
    ctx = click.get_current_context(silent=True)
    return int(ctx.find_root().params.get("verbose") or 0) if ctx is not None else 0


def say(text: str) -> None:
    """An informational line on stdout (``wrote FILE``), left out with ``-q``."""
    if not quiet():
        click.echo(text)


def _fail(ctx: click.Context, message: str) -> None:
    click.echo(f"segio: error: {printable(message)}", err=True)
    ctx.exit(1)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``: a name or path from a file
    must not move the cursor, recolour or retitle the terminal (escape sequences)."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


class _WarningSummary:
    """Prints the first warnings of each kind and counts the others."""

    def __init__(self, shown: int | None = WARNINGS_SHOWN) -> None:
        self.shown = shown
        self.texts: list[str] = []  # every warning, for --json
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def show(self, message: object) -> None:
        text = one_line(message) or "(a warning without text)"
        kind = _warning_kind(text)
        self.texts.append(text)
        self.counts[kind] += 1
        self.examples.setdefault(kind, text)
        if self.shown is None or self.counts[kind] <= self.shown:
            click.echo(f"segio: warning: {printable(text)}", err=True)

    def showwarning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        self.show(message)

    def report(self) -> None:
        for kind, count in self.counts.items():
            if self.shown is not None and count > self.shown:
                example = self.examples[kind]
                example = example if len(example) <= 100 else example[:97] + "..."
                click.echo(
                    f"segio: warning: {count - self.shown} more warning(s) like "
                    f"{printable(repr(example))} not shown (-v shows all)",
                    err=True,
                )


#: The warning summaries of the commands running (one, but for tests nesting commands).
_SUMMARIES: list[_WarningSummary] = []


def warnings_seen() -> list[str]:
    """Every warning the running command has emitted so far, in full (``--json``)."""
    return list(_SUMMARIES[-1].texts) if _SUMMARIES else []


def _warning_kind(text: str) -> str:
    """``text`` with quoted names and numbers masked: warnings that differ only in
    those are one kind."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"[-+]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?", "#", text)


class _FoldedLogs(logging.Handler):
    """Log records of libraries as summarised warnings: a handler on the root logger, and
    :meth:`fold`, a filter that keeps a library's own handler from printing them too."""

    def __init__(self, summary: _WarningSummary) -> None:
        super().__init__(logging.WARNING)
        self.summary = summary

    def emit(self, record: logging.LogRecord) -> None:
        self.summary.show(record.getMessage())

    def fold(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.summary.show(record.getMessage())
        return False


@contextmanager
def _summarised_warnings(shown: int | None = WARNINGS_SHOWN) -> Iterator[None]:
    summary = _WarningSummary(shown)
    _SUMMARIES.append(summary)
    folded = _FoldedLogs(summary)
    root, libraries = logging.getLogger(), [logging.getLogger(n) for n in _LIBRARY_LOGGERS]
    with warnings.catch_warnings():
        warnings.showwarning = summary.showwarning
        root.addHandler(folded)
        for logger in libraries:
            logger.addFilter(folded.fold)
        try:
            yield
        finally:
            for logger in libraries:
                logger.removeFilter(folded.fold)
            root.removeHandler(folded)
            _SUMMARIES.remove(summary)
            summary.report()


class _Info(logging.Handler):
    """segio's own log lines (``-v``: INFO, ``-vv``: DEBUG) as ``segio: info: ...``."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"segio: {record.levelname.lower()}: {printable(record.getMessage())}", err=True)


@contextmanager
def _verbose_log(verbose: int) -> Iterator[None]:
    if not verbose:
        yield
        return
    logger, handler = logging.getLogger("segio"), _Info(logging.DEBUG)
    level = logger.level
    logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def _progress_shown(quiet: bool, verbose: int) -> Iterator[None]:
    """Install the command's progress reporter: bars on a terminal unless ``-q``, the
    time of each step with ``-v``; none at all otherwise (library calls cost nothing)."""
    from segio import progress

    bars = not quiet and sys.stderr.isatty()
    if not bars and not verbose:
        yield
        return
    from segio.cli.progress_bar import CommandReporter

    reporter = CommandReporter(bars=bars, timings=verbose > 0)
    try:
        with progress.reporting(reporter):
            yield
    finally:
        reporter.close()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(segio.__version__, prog_name="segio")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no 'wrote FILE' lines.")
@click.option(
    "--verbose",
    "-v",
    count=True,
    help="Every warning in full, the time of each long step, segio's log (-vv: debug).",
)
def cli(debug: bool, quiet: bool, verbose: int) -> None:
    """Convert medical image segmentations between formats, losslessly.

    -q and -v may also follow the command's name. Progress bars appear on a terminal
    for steps longer than a second (stderr only).
    """


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    """``-O name=value`` pairs as keyword arguments (true/false/integers understood)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise ValidationError(f"option {pair!r} is not name=value")
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        elif text.lstrip("-").isdigit():
            value = int(text)
        options[name.replace("-", "_")] = value
    return options


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--from", "read_format", metavar="FORMAT", help="Input format (default: guessed).")
@click.option(
    "--reference",
    "-r",
    type=click.Path(exists=True, path_type=Path),
    help="Image series (folder) or grid for readers that take one, as in convert.",
)
@click.option("--read-option", "-I", multiple=True, metavar="NAME=VALUE", help="Reader option.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def info(
    path: Path,
    read_format: str | None,
    reference: Path | None,
    read_option: Sequence[str],
    as_json: bool,
) -> None:
    """Describe the segments and the grid of a segmentation file, read as convert reads it."""
    from segio.analysis.summary import summarize
    from segio.io import user_errors

    read_options = _options(read_option)
    if reference is not None:
        read_options.setdefault("reference", reference)  # refused by readers that take none
    segmentation = segio.read(path, format=read_format, **read_options)
    with user_errors(ReadError, path):
        summary = summarize(segmentation)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    from segio.cli.render import render_info

    render_info(summary)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def formats(as_json: bool) -> None:
    """List the formats and label tables segio reads and writes, what to install for the
    others, and the plugins that failed to load (with why)."""
    from segio.registry import default_registry

    registry = default_registry()
    rows = [
        *(_format_row(spec) for spec in sorted(registry.formats.values(), key=lambda s: s.name)),
        *(_table_row(spec) for spec in registry.label_tables.values()),
        *(_broken_row(plugin) for plugin in registry.broken),
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from segio.cli.render import render_formats

    render_formats(rows)


def _format_row(spec: FormatSpec) -> dict[str, Any]:
    from segio.registry import is_installed

    return {
        "kind": "format",
        "name": spec.name,
        "description": spec.description,
        "suffixes": list(spec.suffixes),
        "read": spec.reader is not None,
        "write": spec.writer is not None,
        "installed": is_installed(spec),
        "install": spec.install or "",
        "read_options": dict(spec.read_options),
        "write_options": dict(spec.write_options),
        "broken": None,
    }


def _table_row(spec: LabelTableSpec) -> dict[str, Any]:
    """A label-table format: its sidecar endings (or shared file) are its suffixes."""
    shared = [spec.folder_file] if spec.folder_file else []
    return {
        "kind": "label-table",
        "name": spec.name,
        "description": spec.description,
        "suffixes": [*spec.sidecar_suffixes, *shared],
        "read": True,
        "write": spec.writer is not None,
        "installed": True,
        "install": "",
        "read_options": {},
        "write_options": {},
        "broken": None,
    }


def _broken_row(plugin: BrokenPlugin) -> dict[str, Any]:
    """An entry point that failed to load: what it is called, who installed it, why."""
    return {
        "kind": "broken-plugin",
        "name": plugin.name,
        "description": f"plugin from {plugin.distribution or 'an unknown distribution'}",
        "suffixes": [],
        "read": False,
        "write": False,
        "installed": False,
        "install": "",
        "read_options": {},
        "write_options": {},
        "broken": plugin.reason,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else sys.argv[1:], prog_name="segio")


from segio.cli import batch as _batch  # noqa: E402,F401  (registers segio batch)
from segio.cli import compare as _compare  # noqa: E402,F401  (registers segio compare)
from segio.cli import convert as _convert  # noqa: E402,F401  (registers segio convert)
from segio.cli import snapshot as _snapshot  # noqa: E402,F401  (registers segio snapshot)
from segio.cli import stats as _stats  # noqa: E402,F401  (registers segio stats)
