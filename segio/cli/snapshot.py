"""``segio snapshot``: a PNG of a segmentation (three slices, a 3D view, a legend).

What the picture shows and why: :mod:`segio.preview` and ``docs/snapshot.md``. Runs
without a display: the 3D view is rendered in software.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from segio.cli import _options, cli, say
from segio.errors import ReadError, ValidationError


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), metavar="FILE")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PNG",
    help="The picture to write (PNG).",
)
@click.option(
    "--reference",
    "-r",
    type=click.Path(exists=True, path_type=Path),
    metavar="IMAGE",
    help="Image shown under the outlines (NIfTI, NRRD or a DICOM series folder); also "
    "given to readers that take a reference (RTSTRUCT).",
)
@click.option(
    "--position",
    "-p",
    metavar="X,Y,Z|SEGMENT",
    help="Where the slices cross: an LPS point in mm, or a segment (its centre). "
    "Default: through as many segments as possible.",
)
@click.option(
    "--size",
    type=int,
    default=320,
    show_default=True,
    metavar="PIXELS",
    help="Side of each of the four views; the legend is added beside them.",
)
@click.option(
    "--segments",
    "-s",
    multiple=True,
    metavar="KEY",
    help="Show only these segments: id, name, or label:N (repeat, or comma-separate).",
)
@click.option(
    "--window",
    metavar="LOW,HIGH",
    help="Reference values shown black and white (default: 1st and 99th percentiles); "
    "CT soft tissue: -160,240.",
)
@click.option("--from", "read_format", metavar="FORMAT", help="Input format (default: guessed).")
@click.option("--read-option", "-I", multiple=True, metavar="NAME=VALUE", help="Reader option.")
@click.option("--force", "-f", is_flag=True, help="Replace the output if it exists.")
def snapshot(
    path: Path,
    output: Path,
    reference: Path | None,
    position: str | None,
    size: int,
    segments: Sequence[str],
    window: str | None,
    read_format: str | None,
    read_option: Sequence[str],
    force: bool,
) -> None:
    """Draw FILE as a PNG: axial, coronal and sagittal slices with each segment outlined
    in its exact colour, a 3D view of the closed surfaces and a legend."""
    where = _position(position)
    shades = _numbers(window, "--window", "-160,240") if window is not None else None
    if shades is not None and not shades[0] < shades[1]:
        raise ValidationError(f"--window {window}: LOW must be below HIGH", hint="e.g. -160,240")
    from segio.preview.snapshot import _pillow

    _pillow()  # say that Pillow is missing before reading anything
    from segio.cli.stats import _read
    from segio.io import user_errors

    segmentation = _read(path, read_format, _options(read_option), reference)
    image = None
    if reference is not None:
        from segio.analysis.images import read_image

        with user_errors(ReadError, reference):
            image = read_image(reference)
    from segio.preview import snapshot as draw

    written = draw(
        segmentation,
        output,
        reference=image,
        position=where,
        size=size,
        segments=list(segments) or None,
        window=None if shades is None else (shades[0], shades[1]),
        force=force,
    )
    say(f"wrote {written}")


def _position(text: str | None) -> list[float] | str | None:
    """Three numbers, or else the key of a segment."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        return text  # a segment's id or name (checked once the file is read)
    if len(values) != 3:
        raise ValidationError(
            f"--position {text!r} is not three numbers", hint="give x,y,z in LPS mm, or a segment"
        )
    return values


def _numbers(text: str, option: str, example: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 2:
        raise ValidationError(f"{option} {text!r} is not two numbers", hint=f"e.g. {example}")
    return values
