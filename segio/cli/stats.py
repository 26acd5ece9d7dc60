"""``segio stats``: per-segment statistics, as 3D Slicer's Segment Statistics module gives them.

A table on a terminal (the main columns), ``--csv`` (every column, one number per cell,
full precision) or ``--json`` (the file, its grid, the reference image and every row with
its vectors). Definitions: ``docs/statistics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from segio.cli import _options, cli
from segio.errors import ReadError, ValidationError


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--reference",
    "-r",
    type=click.Path(exists=True, path_type=Path),
    metavar="IMAGE",
    help="Image whose values inside each segment are described (NIfTI, NRRD or a DICOM "
    "series folder); also given to readers that take a reference (RTSTRUCT).",
)
@click.option("--from", "read_format", metavar="FORMAT", help="Input format (default: guessed).")
@click.option("--read-option", "-I", multiple=True, metavar="NAME=VALUE", help="Reader option.")
@click.option(
    "--no-surface",
    is_flag=True,
    help="Skip the closed surface (surface area, its volume, sphericity): the slow part.",
)
@click.option(
    "--percentiles",
    default="5,25,75,95",
    show_default=True,
    metavar="LIST",
    help="Percentiles of the reference image's values, comma-separated.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: every column, full precision.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def stats(
    path: Path,
    reference: Path | None,
    read_format: str | None,
    read_option: Sequence[str],
    no_surface: bool,
    percentiles: str,
    as_csv: bool,
    as_json: bool,
) -> None:
    """Volume, surface, shape, position and (with --reference) intensities of every segment."""
    if as_csv and as_json:
        raise ValidationError("--csv and --json exclude each other; choose one")
    wanted = _percentiles(percentiles)
    segmentation = _read(path, read_format, _options(read_option), reference)
    from segio.analysis.statistics import segment_statistics
    from segio.io import user_errors

    image = None
    if reference is not None:
        from segio.analysis.images import read_image

        with user_errors(ReadError, reference):
            image = read_image(reference)
    with user_errors(ReadError, path):
        rows = segment_statistics(
            segmentation, reference_image=image, surface=not no_surface, percentiles=wanted
        )
    output = "json" if as_json else "csv" if as_csv else "table"
    _print(rows, output, segmentation, path, reference, image, wanted)


def _percentiles(text: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        values = [-1.0]
    if any(not 0.0 <= v <= 100.0 for v in values):
        raise ValidationError(
            f"--percentiles {text!r} is not a list of numbers from 0 to 100",
            hint="for example --percentiles 5,25,75,95",
        )
    return values


def _read(
    path: Path, read_format: str | None, options: dict[str, Any], reference: Path | None
) -> Any:
    """The segmentation, read as ``segio convert`` reads it; the reference image is also
    the reader's reference when its format takes one (contours drawn on a series)."""
    import segio
    from segio.registry import default_registry

    if reference is not None and "reference" not in options:
        try:
            spec = default_registry().reader_for(path, read_format)
        except ReadError:
            spec = None  # segio.read says why, naming the file
        if spec is not None and "reference" in spec.read_options:
            options["reference"] = reference
    return segio.read(path, format=read_format, **options)


def _print(
    rows: list[dict[str, Any]],
    output: str,
    segmentation: Any,
    path: Path,
    reference: Path | None,
    image: Any,
    percentiles: Sequence[float],
) -> None:
    from segio.analysis.statistics import flat_row
    from segio.cli.tables import Column, emit, number

    if output == "json":
        from segio.analysis.statistics import _labelmap_of
        from segio.analysis.summary import _geometry

        document = {
            "file": str(path),
            "format": segmentation.provenance.get("format"),
            "source_representation": segmentation.source_representation.value,
            "grid": _geometry(_labelmap_of(segmentation).geometry),
            "reference": None
            if reference is None
            else {"file": str(reference), "grid": _geometry(image[1])},
            "percentiles": list(percentiles),
            "rows": rows,
        }
        emit(rows, [], "json", document=document)
        return
    if output == "csv":
        flat = [flat_row(row) for row in rows]
        emit(flat, [Column(key, key) for key in flat[0]] if flat else [], "csv")
        return
    columns = [
        Column("name", "Segment", right=False),
        Column("voxel_count", "Voxels"),
        Column("volume_cm3", "Volume cm³", number(5)),
        Column("surface_area_mm2", "Surface mm²", number(5)),
        Column("sphericity", "Sphericity", number(3)),
        Column("centroid_lps", "Centroid LPS mm", number(4)),
    ]
    if reference is not None:
        columns += [
            Column("mean", "Mean", number(5)),
            Column("stdev", "SD", number(4)),
            Column("min", "Min", number(5)),
            Column("max", "Max", number(5)),
            Column("median", "Median", number(5)),
        ]
    emit(rows, columns, "table", title=f"{path} ({len(rows)} segments)")
