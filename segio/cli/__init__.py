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


#: Rules of ``--flatten`` (segio.operations.FLATTEN_RULES; spelled out so that ``segio
#: --help`` imports no editing code; a test keeps the two equal).
FLATTEN_CHOICES = ("first", "last", "smallest", "largest")


@cli.command(context_settings={"max_content_width": 100})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--from", "read_format", metavar="FORMAT", help="Input format (default: guessed).")
@click.option("--to", "write_format", metavar="FORMAT", help="Output format (default: suffix).")
@click.option(
    "--segments",
    "-s",
    multiple=True,
    metavar="KEY",
    help="Keep only these segments, in this order: id, name, or label:N (repeat, or "
    "comma-separate when the whole text is no id or name).",
)
@click.option("--drop", multiple=True, metavar="KEY", help="Leave these segments out.")
@click.option("--rename", multiple=True, metavar="KEY=NEW", help="Rename a segment.")
@click.option(
    "--color", "colors", multiple=True, metavar="KEY=#rrggbb|r,g,b", help="Recolour a segment."
)
@click.option(
    "--terminology",
    type=click.Path(exists=True, path_type=Path),
    help="Label table with codes (Slicer CSV, segio-json, dcmqi JSON) for the segments.",
)
@click.option(
    "--resample",
    metavar="REF_OR_SPACING",
    help="Grid of the output: a reference image, or spacing in mm ('0.5' or '1,1,2.5').",
)
@click.option(
    "--resample-mode",
    type=click.Choice(["nearest", "quality"]),
    default="nearest",
    show_default=True,
    help="quality goes through the fractional labelmap or surface: thin parts survive.",
)
@click.option("--crop", is_flag=True, help="Crop the grid to the segments' extent.")
@click.option(
    "--crop-margin", type=click.IntRange(min=0), metavar="N", help="--crop, N voxels wider."
)
@click.option("--pad", metavar="N|I,J,K", help="Add N background voxels on every side.")
@click.option(
    "--flatten",
    type=click.Choice(FLATTEN_CHOICES),
    help="Overlaps into ONE layer; the voxel goes to the first/last/smallest/largest segment.",
)
@click.option("--pack-layers", is_flag=True, help="Pack non-overlapping segments into few layers.")
@click.option(
    "--relabel-table",
    type=click.Path(exists=True, path_type=Path),
    help="Label values from a label table (by terminology, then name; others above it).",
)
@click.option("--relabel", multiple=True, metavar="KEY=VALUE", help="Give a segment a label value.")
@click.option(
    "--split",
    is_flag=True,
    help="One file per segment: TARGET holds {name}, {id}, {label}, {layer} or {index}, "
    "or is a folder (with --to).",
)
@click.option(
    "--reference",
    "-r",
    type=click.Path(exists=True, path_type=Path),
    help="Reference image: the series a DICOM output cites and the grid of a labelmap "
    "output (a DICOM folder or file, NIfTI, NRRD or a segmentation).",
)
@click.option(
    "--allow-empty",
    is_flag=True,
    help="Write the output even when every segment came out empty (off the reference grid).",
)
@click.option("--force", "-f", is_flag=True, help="Replace the output if it exists.")
@click.option("--read-option", "-I", multiple=True, metavar="NAME=VALUE", help="Reader option.")
@click.option("--option", "-O", multiple=True, metavar="NAME=VALUE", help="Writer option.")
@click.option(
    "--parameter",
    "-P",
    multiple=True,
    metavar="NAME=VALUE",
    help="Conversion parameter, Slicer's name (e.g. 'Smoothing factor=0' for meshes).",
)
@click.option(
    "--report",
    is_flag=True,
    help="Read the output back; per segment, volume before and after and Dice.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def convert(
    paths: Sequence[Path],
    read_format: str | None,
    write_format: str | None,
    segments: Sequence[str],
    drop: Sequence[str],
    rename: Sequence[str],
    colors: Sequence[str],
    terminology: Path | None,
    resample: str | None,
    resample_mode: str,
    crop: bool,
    crop_margin: int | None,
    pad: str | None,
    flatten: str | None,
    pack_layers: bool,
    relabel_table: Path | None,
    relabel: Sequence[str],
    split: bool,
    reference: Path | None,
    allow_empty: bool,
    force: bool,
    read_option: Sequence[str],
    option: Sequence[str],
    parameter: Sequence[str],
    report: bool,
    as_json: bool,
) -> None:
    """Convert SOURCE... to TARGET (the last path); the formats follow from the file names.

    Several sources are merged into one segmentation. Segments are named by KEY: an id,
    an exact name, or label:N / layer:L:label:N (segio info lists ids). Edits apply in
    this order: select, drop, rename, colour, terminology; resample, crop, pad; flatten,
    pack layers, relabel table, relabel (docs/editing.md).
    """
    from segio.conversion import report_rows, run_conversion
    from segio.operations import Edits
    from segio.operations.keys import parse_pair

    if len(paths) < 2:
        raise click.UsageError("give at least one SOURCE and the TARGET")
    *sources, target = paths
    edits = Edits(
        select=list(segments),
        drop=list(drop),
        rename=_keyed(rename, "--rename", parse_pair),
        recolor=_keyed(colors, "--color", parse_pair),
        terminology=terminology,
        resample=resample,
        resample_mode=resample_mode,
        crop=crop_margin if crop_margin is not None else (0 if crop else None),
        pad=_voxels(pad) if pad is not None else None,
        flatten=flatten,
        pack_layers=pack_layers,
        relabel_table=relabel_table,
        relabel=_keyed(relabel, "--relabel", parse_pair),
    )
    read_options, write_options = _options(read_option), _options(option)
    parameters = {}
    for pair in parameter:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ValidationError(f"parameter {pair!r} is not name=value")
        parameters[name.strip()] = value.strip()
    conversion = run_conversion(
        sources,
        target,
        read_format=read_format,
        write_format=write_format,
        force=force,
        read_options=read_options,
        write_options=write_options,
        parameters=parameters,
        reference=reference,
        allow_empty=allow_empty,
        edits=edits,
        split=split,
    )
    written = [str(path) for path in conversion.written]
    if as_json:
        document: dict[str, Any] = {"written": written}
        if report:
            document["report"] = report_rows(conversion)
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for path in written:
        click.echo(f"wrote {printable(path)}")
    if report:
        from segio.analysis.report import REPORT_COLUMNS
        from segio.cli.tables import emit

        rows = report_rows(conversion)
        emit(
            rows,
            REPORT_COLUMNS,
            "table",
            title="conversion report: the input as edited vs the output",
        )


def _keyed(items: Sequence[str], what: str, parse: Any) -> dict[str, str]:
    """``KEY=VALUE`` options as a mapping; the same key twice is refused."""
    found: dict[str, str] = {}
    for text in items:
        key, value = parse(text, what)
        if key in found:
            raise ValidationError(f"{what} names {key!r} twice", hint="give each segment once")
        found[key] = value
    return found


def _voxels(text: str) -> int | tuple[int, int, int]:
    """``--pad`` as voxels on every side (``N``) or per axis (``I,J,K``)."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) in (1, 3) and all(part.isdigit() for part in parts):
        numbers = [int(part) for part in parts]
        return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1], numbers[2])
    raise ValidationError(f"--pad {text!r} is not N or I,J,K (whole voxels)")


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


from segio.cli import stats as _stats  # noqa: E402,F401  (registers segio stats)
