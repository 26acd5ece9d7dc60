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
draw tables.
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

    def invoke(self, ctx: click.Context) -> Any:
        with _summarised_warnings():
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

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def show(self, message: object) -> None:
        text = one_line(message) or "(a warning without text)"
        kind = _warning_kind(text)
        self.counts[kind] += 1
        self.examples.setdefault(kind, text)
        if self.counts[kind] <= WARNINGS_SHOWN:
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
            if count > WARNINGS_SHOWN:
                example = self.examples[kind]
                example = example if len(example) <= 100 else example[:97] + "..."
                click.echo(
                    f"segio: warning: {count - WARNINGS_SHOWN} more warning(s) like "
                    f"{printable(repr(example))} not shown",
                    err=True,
                )


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
def _summarised_warnings() -> Iterator[None]:
    summary = _WarningSummary()
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
            summary.report()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(segio.__version__, prog_name="segio")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Convert medical image segmentations between formats, losslessly."""


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
from segio.cli import stats as _stats  # noqa: E402,F401  (registers segio stats)
