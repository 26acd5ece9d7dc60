"""``segio batch``: convert a dataset, on local processes or a Dask cluster, resumably
(docs/batch.md).

Every option of ``segio convert`` applies to every item (a manifest row may add its
own); they are checked once, before any item runs. The batch code, and Dask, are
imported only when the command runs, so ``segio --help`` stays light.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from segio import progress
from segio.cli import cli, printable
from segio.cli.convert import conversion_options, conversion_plan
from segio.errors import ValidationError

if TYPE_CHECKING:
    from segio.batch.items import Item
    from segio.batch.run import Plan

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``--memory``: bytes, or a number with K, M, G or T (powers of 1024; ``8G``,
    ``512MiB``, ``1.5GB``)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValidationError(f"--memory {text!r} is not a size", hint="e.g. --memory 8G")
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * 1024**power)


@cli.command(context_settings={"max_content_width": 100})
@click.argument("sources", nargs=-1)
@click.option(
    "--output",
    "-o",
    "output_pattern",
    metavar="PATTERN",
    help="Output of each item: {case}, {stem}, {parent}, {dir} filled (e.g. 'out/{case}/seg.dcm').",
)
@click.option(
    "--tree",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of cases, one sub-folder each (with --input-pattern).",
)
@click.option("--input-pattern", metavar="GLOB", help="With --tree: the input in each case folder.")
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV or JSON lines: input, and optionally case, output, reference, options.",
)
@click.option(
    "--reference-pattern",
    metavar="PATTERN",
    help="Each item's reference series, filled as --output (e.g. '{dir}/CT').",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Local worker processes (or --dask workers); default: the number of cores.",
)
@click.option("--dask", "local_dask", is_flag=True, help="Run on a local Dask cluster.")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run on this Dask cluster.")
@click.option(
    "--memory",
    metavar="SIZE",
    help="Memory budget (e.g. 8G): fewer items at once when workers would need more.",
)
@click.option("--retry-failed", is_flag=True, help="Retry items that failed in an earlier run.")
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON-lines report of every item (default: segio-batch-report.jsonl by the outputs).",
)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Resume ledger (default: .segio-batch.jsonl by the outputs).",
)
@conversion_options
@click.option(
    "--report", is_flag=True, help="Per item, read the output back: volumes and Dice in the report."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def batch(
    ctx: click.Context,
    /,
    sources: Sequence[str],
    output_pattern: str | None,
    tree: Path | None,
    input_pattern: str | None,
    manifest: Path | None,
    reference_pattern: str | None,
    jobs: int | None,
    local_dask: bool,
    scheduler: str | None,
    memory: str | None,
    retry_failed: bool,
    results: Path | None,
    ledger: Path | None,
    report: bool,
    as_json: bool,
    **params: Any,
) -> None:
    """Convert many items: SOURCES (files, folders or quoted glob patterns), the case
    folders of --tree, or the rows of --manifest, each to the --output pattern.

    Items run on --jobs local processes, or on Dask (--dask, --scheduler). A rerun skips
    the items done and current (same sources, reference and options) and retries the
    interrupted ones; items that failed are retried with --retry-failed or once their
    source changes. Exit status 1 when any item failed; the report has every item.
    """
    from segio.batch.items import assign_outputs, from_manifest, from_paths, from_tree
    from segio.batch.run import default_root, run_batch
    from segio.registry import default_registry

    given = [
        name
        for name, on in (("SOURCES", sources), ("--tree", tree), ("--manifest", manifest))
        if on
    ]
    if len(given) != 1:
        raise click.UsageError("give SOURCES, --tree or --manifest (one of them)")
    if local_dask and scheduler:
        raise click.UsageError("--dask starts a local cluster; --scheduler names one: not both")
    if tree is not None and not input_pattern:
        raise click.UsageError("--tree needs --input-pattern (the input's name in a case folder)")
    budget = parse_size(memory) if memory is not None else None
    # a malformed option is refused before anything is listed
    plans: dict[tuple[str, ...], Plan] = {(): _plan(params)}
    registry = default_registry()
    suffixes = sorted({s for f in registry.formats.values() for s in f.suffixes})
    if tree is not None:
        found = from_tree(str(tree), input_pattern or "", suffixes)
    elif manifest is not None:
        found = from_manifest(str(manifest))
    else:
        found = from_paths(list(sources), suffixes)
    items = assign_outputs(
        found, output_pattern, reference_pattern, suffixes=suffixes, split=params["split"]
    )
    for item in items:
        if item.options not in plans:
            plans[item.options] = _plan(_row_params(params, item))
    if params["reference"] is None and all(item.reference is None for item in items):
        _check_no_reference_needed(items[0].output, params["write_format"], registry)
    root = default_root(items)
    with progress.task(f"batch of {len(items)} items", total=len(items)) as step:
        summary = run_batch(
            items,
            plans,
            ledger=ledger or root / ".segio-batch.jsonl",
            report=results or root / "segio-batch-report.jsonl",
            jobs=jobs or cores(),
            budget=budget,
            scheduler=scheduler,
            local_dask=local_dask,
            retry_failed=retry_failed,
            segment_report=report,
            on_line=lambda line: step.advance(),
        )
    report_path = results or root / "segio-batch-report.jsonl"
    if as_json:
        click.echo(json.dumps({**summary.as_dict(), "report": str(report_path)}, indent=2))
    else:
        for line in summary.lines():
            click.echo(printable(line))
        click.echo(f"report: {printable(str(report_path))}")
    if summary.failed:
        ctx.exit(1)


def _check_no_reference_needed(output: str, write_format: str | None, registry: Any) -> None:
    """A format that must cite a series (DICOM SEG, RTSTRUCT), and no item has one: one
    error now rather than the same failure for every item."""
    probe = re.sub(r"\{[^{}]*\}", "x", output)  # --split fields filled
    spec = registry.writer_for(probe, write_format)
    if spec.reference_required:
        raise ValidationError(
            f"the {spec.name} format needs the image series each segmentation was drawn on",
            path=output,
            hint="pass --reference SERIES_FOLDER, or --reference-pattern '{dir}/CT' (one per "
            "case), or a reference column in the manifest",
        )


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _plan(params: Mapping[str, Any]) -> Plan:
    from segio.batch.run import Plan, options_digest

    params = _absolute_paths(params)
    edits, arguments = conversion_plan(params)
    return Plan(edits, arguments, options_digest(params))


def _absolute_paths(params: Mapping[str, Any]) -> dict[str, Any]:
    """The options with their paths made absolute (a Dask worker runs in another folder):
    the files of --terminology, --relabel-table and --reference, a --resample image, and
    an -I/-O value naming a file or folder that exists."""
    from segio.batch.items import absolute

    found = dict(params)
    for name in ("terminology", "relabel_table", "reference"):
        if found.get(name) is not None:
            found[name] = Path(absolute(found[name]))
    if found.get("resample") and Path(found["resample"]).exists():
        found["resample"] = absolute(found["resample"])
    for name in ("read_option", "option"):
        pairs = []
        for pair in found.get(name, ()):
            key, equals, value = pair.partition("=")
            if equals and value and Path(value).exists():
                pair = f"{key}={absolute(value)}"
            pairs.append(pair)
        found[name] = tuple(pairs)
    return found


_ROW_COMMAND = conversion_options(click.Command("options", callback=lambda **_: None))


def _row_params(params: Mapping[str, Any], item: Item) -> dict[str, Any]:
    """The batch's options with a manifest row's added: an option given once takes the
    row's value, a repeatable one (-P, -O, --rename...) gets the row's after the batch's."""
    from click.core import ParameterSource

    try:
        row = _ROW_COMMAND.make_context("options", list(item.options))
    except click.ClickException as exc:
        raise ValidationError(
            f"{item.where}: options: {exc.format_message()}",
            hint="a row's options are segio convert options",
        ) from None
    merged = dict(params)
    for name, value in row.params.items():
        if row.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            merged[name] = (*params[name], *value) if isinstance(value, tuple) else value
    return merged
