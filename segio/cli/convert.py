"""``segio convert``: read one or more files, edit, write one file or one per segment, and
report what the conversion cost (docs/editing.md, docs/user-guide.md).

The options build a :class:`segio.operations.Edits` plan and call
:func:`segio.conversion.run_conversion`; editing code is imported only when the command
runs, so ``segio --help`` stays light.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from segio.cli import _options, cli, printable, say, warnings_seen
from segio.errors import ValidationError

if TYPE_CHECKING:
    from segio.conversion import Conversion
    from segio.operations import Edits

F = TypeVar("F", bound=Callable[..., Any])

#: Rules of ``--flatten`` (segio.operations.FLATTEN_RULES; spelled out so that ``segio
#: --help`` imports no editing code; a test keeps the two equal).
FLATTEN_CHOICES = ("first", "last", "smallest", "largest")


#: Every option of a conversion, shared by ``segio convert`` and ``segio batch`` (in this
#: order in their help).
CONVERSION_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--from", "read_format", metavar="FORMAT", help="Input format (default: guessed)."
    ),
    click.option("--to", "write_format", metavar="FORMAT", help="Output format (default: suffix)."),
    click.option(
        "--segments",
        "-s",
        multiple=True,
        metavar="KEY",
        help="Keep only these segments, in this order: id, name, or label:N (repeat, or "
        "comma-separate when the whole text is no id or name).",
    ),
    click.option("--drop", multiple=True, metavar="KEY", help="Leave these segments out."),
    click.option("--rename", multiple=True, metavar="KEY=NEW", help="Rename a segment."),
    click.option(
        "--color", "colors", multiple=True, metavar="KEY=#rrggbb|r,g,b", help="Recolour a segment."
    ),
    click.option(
        "--terminology",
        type=click.Path(exists=True, path_type=Path),
        help="Label table with codes (Slicer CSV, segio-json, dcmqi JSON) for the segments.",
    ),
    click.option(
        "--resample",
        metavar="REF_OR_SPACING",
        help="Grid of the output: a reference image, or spacing in mm ('0.5' or '1,1,2.5').",
    ),
    click.option(
        "--resample-mode",
        type=click.Choice(["nearest", "quality"]),
        default="nearest",
        show_default=True,
        help="quality goes through the fractional labelmap or surface: thin parts survive.",
    ),
    click.option("--crop", is_flag=True, help="Crop the grid to the segments' extent."),
    click.option(
        "--crop-margin", type=click.IntRange(min=0), metavar="N", help="--crop, N voxels wider."
    ),
    click.option("--pad", metavar="N|I,J,K", help="Add N background voxels on every side."),
    click.option(
        "--flatten",
        type=click.Choice(FLATTEN_CHOICES),
        help="Overlaps into ONE layer; the voxel goes to the first/last/smallest/largest segment.",
    ),
    click.option(
        "--pack-layers", is_flag=True, help="Pack non-overlapping segments into few layers."
    ),
    click.option(
        "--relabel-table",
        type=click.Path(exists=True, path_type=Path),
        help="Label values from a label table (by terminology, then name; others above it).",
    ),
    click.option(
        "--relabel", multiple=True, metavar="KEY=VALUE", help="Give a segment a label value."
    ),
    click.option(
        "--split",
        is_flag=True,
        help="One file per segment: TARGET holds {name}, {id}, {label}, {layer} or {index}, "
        "or is a folder (with --to).",
    ),
    click.option(
        "--reference",
        "-r",
        type=click.Path(exists=True, path_type=Path),
        help="Reference image: the series a DICOM output cites and the grid of a labelmap "
        "output (a DICOM folder or file, NIfTI, NRRD or a segmentation).",
    ),
    click.option(
        "--allow-empty",
        is_flag=True,
        help="Write the output even when every segment came out empty (off the reference grid).",
    ),
    click.option("--force", "-f", is_flag=True, help="Replace the output if it exists."),
    click.option("--read-option", "-I", multiple=True, metavar="NAME=VALUE", help="Reader option."),
    click.option("--option", "-O", multiple=True, metavar="NAME=VALUE", help="Writer option."),
    click.option(
        "--parameter",
        "-P",
        multiple=True,
        metavar="NAME=VALUE",
        help="Conversion parameter, Slicer's name (e.g. 'Smoothing factor=0' for meshes).",
    ),
]


def conversion_options(function: F) -> F:
    """Decorate a command with every option of a conversion (:data:`CONVERSION_OPTIONS`);
    :func:`conversion_plan` turns their values into what :func:`run_conversion` takes."""
    for option in reversed(CONVERSION_OPTIONS):
        function = option(function)
    return function


@cli.command(context_settings={"max_content_width": 100})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@conversion_options
@click.option(
    "--report",
    is_flag=True,
    help="Read the output back; per segment, volume before and after and Dice.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def convert(paths: Sequence[Path], report: bool, as_json: bool, **params: Any) -> None:
    """Convert SOURCE... to TARGET (the last path); the formats follow from the file names.

    Several sources are merged into one segmentation. Segments are named by KEY: an id,
    an exact name, or label:N / layer:L:label:N (segio info lists ids). Edits apply in
    this order: select, drop, rename, colour, terminology; resample, crop, pad; flatten,
    pack layers, relabel table, relabel (docs/editing.md).
    """
    from segio.conversion import report_rows, run_conversion

    if len(paths) < 2:
        raise click.UsageError("give at least one SOURCE and the TARGET")
    *sources, target = paths
    edits, arguments = conversion_plan(params)
    conversion = run_conversion(sources, target, edits=edits, **arguments)
    written = [str(path) for path in conversion.written]
    if as_json:
        document = _document(conversion, written)
        if report:
            document["report"] = report_rows(conversion)
        document["warnings"] = warnings_seen()
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for path in written:
        say(f"wrote {printable(path)}")
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


def conversion_plan(params: Mapping[str, Any]) -> tuple[Edits, dict[str, Any]]:
    """The values of :data:`CONVERSION_OPTIONS` (click's parameter names) as the plan of
    edits and the keyword arguments of :func:`segio.conversion.run_conversion`; a
    malformed option is refused here, before any file is read. Both are picklable (a
    batch sends them to its worker processes)."""
    from segio.operations import Edits
    from segio.operations.keys import parse_pair

    crop_margin = params["crop_margin"]
    edits = Edits(
        select=list(params["segments"]),
        drop=list(params["drop"]),
        rename=_keyed(params["rename"], "--rename", parse_pair),
        recolor=_keyed(params["colors"], "--color", parse_pair),
        terminology=params["terminology"],
        resample=params["resample"],
        resample_mode=params["resample_mode"],
        crop=crop_margin if crop_margin is not None else (0 if params["crop"] else None),
        pad=_voxels(params["pad"]) if params["pad"] is not None else None,
        flatten=params["flatten"],
        pack_layers=params["pack_layers"],
        relabel_table=params["relabel_table"],
        relabel=_keyed(params["relabel"], "--relabel", parse_pair),
    )
    parameters = {}
    for pair in params["parameter"]:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise ValidationError(f"parameter {pair!r} is not name=value")
        parameters[name.strip()] = value.strip()
    arguments = {
        "read_format": params["read_format"],
        "write_format": params["write_format"],
        "force": params["force"],
        "read_options": _options(params["read_option"]),
        "write_options": _options(params["option"]),
        "parameters": parameters,
        "reference": params["reference"],
        "allow_empty": params["allow_empty"],
        "split": params["split"],
    }
    return edits, arguments


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


def _document(conversion: Conversion, written: list[str]) -> dict[str, Any]:
    """``--json``: every file written, and per output its main file and the names of
    the segments it holds (one per file with ``--split``)."""
    outputs = []
    for output in conversion.outputs:
        segments = output.named.segments
        keys = [output.segment] if output.segment is not None else list(segments)
        names = [segments[key].name if key in segments else key for key in keys]
        outputs.append({"path": str(output.path.absolute()), "segments": names})
    return {"written": written, "format": conversion.write_format, "outputs": outputs}
