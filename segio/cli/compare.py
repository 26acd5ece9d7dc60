"""``segio compare A B``: per-segment agreement of two segmentations (Dice, distances).

A table on a terminal, ``--csv`` (every column, full precision) or ``--json`` (the files,
their grids, how overlap was counted, and every row). The exit status is 0 whatever the
scores: a comparison is a measurement, not a test; only a file that cannot be read or a
pairing that cannot be made is an error (one line). Definitions: ``docs/comparison.md``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from segio.cli import _options, cli
from segio.errors import ReadError, ValidationError

#: Every key of a row, in the order ``--csv`` prints them.
CSV_KEYS = (
    "segment_a",
    "name_a",
    "segment_b",
    "name_b",
    "status",
    "matched_by",
    "voxels_a",
    "voxels_b",
    "voxels_both",
    "volume_a_mm3",
    "volume_b_mm3",
    "volume_difference_mm3",
    "volume_difference_percent",
    "dice",
    "jaccard",
    "hausdorff_mm",
    "hausdorff95_mm",
    "mean_surface_distance_mm",
    "boundary_hausdorff_mm",
    "note",
)


@cli.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option(
    "--map",
    "pairs",
    multiple=True,
    metavar="A=B",
    help="Pair segment A (id or name in the first file) with B (in the second); repeat.",
)
@click.option(
    "--map-file",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help='Pairs from a file: JSON {"A": "B", ...} or CSV with two columns (A, B).',
)
@click.option(
    "--reference",
    "-r",
    type=click.Path(exists=True, path_type=Path),
    metavar="IMAGE",
    help="Grid for inputs without voxels (meshes, contours) when neither has one; also "
    "given to readers that take a reference (RTSTRUCT).",
)
@click.option("--from-a", "format_a", metavar="FORMAT", help="Format of A (default: guessed).")
@click.option("--from-b", "format_b", metavar="FORMAT", help="Format of B (default: guessed).")
@click.option("--read-option", "-I", multiple=True, metavar="NAME=VALUE", help="Reader option.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: every column, full precision.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs.")
def compare(
    a: Path,
    b: Path,
    pairs: Sequence[str],
    map_file: Path | None,
    reference: Path | None,
    format_a: str | None,
    format_b: str | None,
    read_option: Sequence[str],
    as_csv: bool,
    as_json: bool,
) -> None:
    """Compare segmentation B with A, segment by segment: Dice, Jaccard, volumes,
    Hausdorff distance (max and 95th percentile) and mean surface distance (mm).

    Segments are paired by --map, else by name, terminology, then label value."""
    from segio.analysis.comparison import compare as run

    if as_csv and as_json:
        raise ValidationError("--csv and --json exclude each other; choose one")
    mapping = _map_file(map_file) if map_file is not None else {}
    mapping.update(_map_pairs(pairs))
    options = _options(read_option)
    first = _read(a, format_a, dict(options), reference)
    second = _read(b, format_b, dict(options), reference)
    grid = None
    if reference is not None:
        from segio.io import user_errors
        from segio.reference import read_reference

        with user_errors(ReadError, reference):
            grid = read_reference(reference).geometry
    result = run(first, second, mapping=mapping, reference=grid)
    output = "json" if as_json else "csv" if as_csv else "table"
    _print(result, output, a, b)


def _map_pairs(pairs: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ValidationError(
                f"--map {pair!r} is not A=B",
                hint="name a segment of each file by id or name, e.g. --map liver=Liver",
            )
        mapping[key.strip()] = value.strip()
    return mapping


def _map_file(path: Path) -> dict[str, str]:
    """A JSON object of names/ids, or a CSV of two columns (a header row ``a,b`` or
    ``segment_a,segment_b`` is skipped; blank lines and ``#`` comments too)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReadError(f"cannot read the segment map: {exc}", path=path) from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ReadError(f"the segment map is not valid JSON: {exc}", path=path) from None
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ReadError(
                "the segment map must map text to text", path=path, hint='{"liver": "Liver"}'
            )
        return dict(data)
    mapping: dict[str, str] = {}
    for number, cells in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2 or not all(cells):
            raise ReadError(
                f"line {number} of the segment map has {len(cells)} cell(s), not two names",
                path=path,
                hint="one pair a line: A,B (quote names with commas)",
            )
        if number == 1 and [c.lower() for c in cells] in (["a", "b"], ["segment_a", "segment_b"]):
            continue
        mapping[cells[0]] = cells[1]
    return mapping


def _read(
    path: Path, read_format: str | None, options: dict[str, Any], reference: Path | None
) -> Any:
    """The segmentation, read as ``segio convert`` reads it; the reference goes to its
    reader when the format takes one (contours drawn on a series)."""
    import segio
    from segio.registry import default_registry

    if reference is not None:
        try:
            spec = default_registry().reader_for(path, read_format)
        except ReadError:
            spec = None  # segio.read says why, naming the file
        option = spec.reference_option if spec is not None else None
        if option is not None and spec is not None and option in spec.read_options:
            options.setdefault(option, reference)
    return segio.read(path, format=read_format, **options)


def _print(result: Any, output: str, a: Path, b: Path) -> None:
    from segio.cli.tables import Column, emit, number

    rows = result.rows
    if output == "json":
        emit(rows, [], "json", document=result.as_dict())
        return
    if output == "csv":
        emit(rows, [Column(key, key) for key in CSV_KEYS], "csv")
        return
    shown = [
        {**row, "pairing": row["matched_by"] if row["status"] == "matched" else row["status"]}
        for row in rows
    ]
    columns = [
        Column("name_a", "A", right=False),
        Column("name_b", "B", right=False),
        Column("pairing", "Paired by", right=False),
        Column("dice", "Dice", number(4)),
        Column("jaccard", "Jaccard", number(4)),
        Column("volume_a_mm3", "Volume A mm³", number(6)),
        Column("volume_b_mm3", "Volume B mm³", number(6)),
        Column("volume_difference_percent", "ΔVolume %", number(3)),
        Column("hausdorff_mm", "HD mm", number(4)),
        Column("hausdorff95_mm", "HD95 mm", number(4)),
        Column("mean_surface_distance_mm", "MSD mm", number(4)),
    ]
    matched = sum(row["status"] == "matched" for row in rows)
    title = f"{a} vs {b}: {matched} pair(s), {len(rows) - matched} on one side only"
    if result.resampled:
        title += "; B resampled onto A's grid for the overlap (nearest neighbour)"
    emit(shown, columns, "table", title=title)
