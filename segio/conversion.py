"""One conversion from end to end: read one or more files, merge them, apply a plan of
edits (:class:`segio.operations.Edits`), write one file or one per segment, and, on
request, read what was written back to report what the conversion cost.

:func:`segio.convert` is this without the bookkeeping; ``segio convert`` uses
:func:`run_conversion` directly because ``--report`` needs the segmentation as it was
meant to be written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segio import progress
from segio.errors import ReadError, ValidationError, WriteError
from segio.hookspecs import FormatSpec
from segio.model import Segment, Segmentation
from segio.operations import Edits, iter_split, merge
from segio.operations.segments import keep
from segio.registry import Registry, default_registry

PathLike = str | os.PathLike[str]

__all__ = ["Conversion", "Output", "report_rows", "run_conversion", "safe_name", "split_paths"]

#: What ``--split`` file names may hold: ``{name}``, ``{id}``, ``{label}``, ``{layer}``,
#: ``{index}`` (1-based position). Replaced as text, never through ``str.format``.
PLACEHOLDERS = ("name", "id", "label", "layer", "index")
_FIELD = re.compile(r"\{([^{}]*)\}")
#: Characters never put in a file name made from a segment: path separators, what
#: Windows refuses, and control characters.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10))}
_RESERVED |= {f"LPT{n}" for n in range(10)}
#: Longest text a placeholder puts in a file name.
NAME_LIMIT = 100


@dataclass(frozen=True)
class Output:
    """One written segmentation: its main file, the segmentation before the grid and
    label edits (``named``: what the report compares with), and for a piece of
    ``--split`` the id of its segment."""

    path: Path
    named: Segmentation
    segment: str | None = None


@dataclass(frozen=True)
class Conversion:
    """What :func:`run_conversion` did: every file written, and each output."""

    written: list[Path]
    outputs: list[Output]
    reference: Any = None
    write_format: str | None = None


def run_conversion(
    source: PathLike | Sequence[PathLike],
    target: PathLike,
    *,
    read_format: str | None = None,
    write_format: str | None = None,
    segments: Sequence[str] | None = None,
    pack_layers: bool = False,
    force: bool = False,
    read_options: Mapping[str, Any] | None = None,
    write_options: Mapping[str, Any] | None = None,
    parameters: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    reference: Any = None,
    allow_empty: bool = False,
    edits: Edits | None = None,
    split: bool = False,
) -> Conversion:
    """:func:`segio.convert`, returning what the report needs (see its docstring).

    Everything that can be refused without reading the inputs is refused first, so a
    mistake costs no work (:func:`_check_before_work`): the formats and their options,
    the conversion parameters, a reference the writer needs, the output's folder and an
    output already there. Reading, editing and writing are reported as progress tasks
    (:mod:`segio.progress`).
    """
    from segio.io import _check_not_emptied, _same_path, read, write, write_many

    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not sources:
        raise ValidationError("no input was given", hint="name at least one file to convert")
    for path in sources:
        if _same_path(path, target):
            raise WriteError(
                f"the output is the input {path}",
                path=target,
                hint="write to another name; an input is never overwritten, even with force",
            )
    registry = registry or default_registry()
    plan = edits if edits is not None else Edits()
    if segments is not None:
        plan = replace(plan, select=[*plan.select, *segments])
    if pack_layers:
        plan = replace(plan, pack_layers=True)
    if split and write_format is None and Path(target).is_dir():
        raise ValidationError(
            "--split into a folder needs the output format",
            path=target,
            hint=f"pass --to FORMAT, or name the files: {Path(target) / '{name}.nii.gz'}",
        )
    writer = registry.writer_for(_format_probe(target, split), write_format)
    write_options = dict(write_options or {})
    given = write_options.pop("reference", None)  # the writer's option: write() takes it
    if split:
        _split_pattern(target, "")  # its folder is checked next, by _check_before_work
    readers, to_writer = _readers(sources, read_format, read_options, reference, writer, registry)
    own = writer.reference_option
    has_reference = reference is not None or given is not None
    _check_before_work(
        target,
        writer,
        write_options,
        parameters,
        has_reference or (own is not None and write_options.get(own) is not None),
    )
    if not split and not force:
        _check_not_there(target)
    inputs: list[Segmentation] = []
    for path, (spec, options, to_reader) in zip(sources, readers, strict=True):
        with progress.task(f"reading {Path(path).name}"):
            segmentation = read(path, format=spec.name, registry=registry, **options)
            if to_reader is not None:
                _check_not_emptied(
                    segmentation, path, spec.name, registry, options, to_reader, allow_empty
                )
        for name, value in (parameters or {}).items():
            segmentation.conversion_parameters.set(name, value)
        inputs.append(segmentation)
    out_reference = reference if reference is not None and to_writer else given
    if len(inputs) == 1 and plan.is_empty:
        named = edited = inputs[0]
    else:
        with progress.task("merging and editing" if len(inputs) > 1 else "editing"):
            merged = merge(inputs, mode=plan.resample_mode) if len(inputs) > 1 else inputs[0]
            named, edited = (merged, merged) if plan.is_empty else plan.run(merged)
    tables = [p for p in (plan.terminology, plan.relabel_table) if p is not None]
    common: dict[str, Any] = {
        "format": write_format or writer.name,
        "force": force,
        "registry": registry,
        "inputs": [*sources, *tables],
        "reference": out_reference,
        "allow_empty": allow_empty,
        **write_options,
    }
    with progress.task(f"writing {Path(target).name}"):
        if not split:
            written = write(edited, target, **common)
            outputs = [Output(Path(target), named)]
        else:
            suffix = writer.suffixes[0] if writer.suffixes else ""
            paths = split_paths(target, list(edited.segments.values()), suffix)
            outputs = [
                Output(path, named, key) for key, path in zip(edited.segments, paths, strict=True)
            ]
            written = write_many(_pieces(edited, paths), **common)
    return Conversion(written, outputs, out_reference, write_format or writer.name)


def _readers(
    sources: Sequence[PathLike],
    read_format: str | None,
    read_options: Mapping[str, Any] | None,
    reference: Any,
    writer: FormatSpec,
    registry: Registry,
) -> tuple[list[tuple[FormatSpec, dict[str, Any], str | None]], bool]:
    """Per source its reader, its options (the reference added when it goes to the
    reader) and the reference option's name; and whether the writer gets the reference.
    The options are checked here, before any file is read (a file's first bytes are, to
    know its format)."""
    from segio.io import _check_options, route_reference, user_errors

    readers = []
    to_writer = False
    for path in sources:
        with user_errors(ReadError, path):
            spec = registry.reader_for(path, read_format)
        options = dict(read_options or {})
        to_reader = None
        if reference is not None:
            to_reader, to_writer = route_reference(spec, writer)
            if to_reader is not None:
                options.setdefault(to_reader, reference)
        checked = {k: v for k, v in options.items() if k != "terminology"}  # every reader's
        if "terminology" in spec.read_options:
            checked = options
        _check_options(spec, checked, spec.read_options, "read", path)
        readers.append((spec, options, to_reader))
    return readers, to_writer


def _check_before_work(
    target: PathLike,
    writer: FormatSpec,
    write_options: Mapping[str, Any],
    parameters: Mapping[str, str] | None,
    has_reference: bool,
) -> None:
    """What a conversion can be refused for before it reads a file: unknown writer
    options, unknown conversion parameters (with the close matches) or values out of
    range, a reference the writer needs, and an output folder that does not exist."""
    from segio.io import _check_options
    from segio.representations import ConversionParameters

    _check_options(writer, dict(write_options), writer.write_options, "write", target)
    trial = ConversionParameters()
    for name, value in (parameters or {}).items():
        trial.set(name, value)
    if writer.reference_required and not has_reference:
        raise ValidationError(
            f"the {writer.name} format needs the image series the segmentation was drawn on",
            path=target,
            hint="pass --reference SERIES_FOLDER (reference= in Python)",
        )
    folder = Path(target) if Path(target).is_dir() else Path(target).parent
    if not folder.is_dir():
        raise WriteError(
            f"the output folder {folder} does not exist", path=target, hint="create it first"
        )


def _check_not_there(target: PathLike) -> None:
    """An output file already there is refused before the work, as the write would
    refuse it after; a folder is left to the writer (some write into one)."""
    path = Path(target)
    if os.path.lexists(path) and not path.is_dir():
        raise WriteError(
            "the output exists already",
            path=target,
            hint="choose another name, or pass --force to replace it (force=True in Python)",
        )


def _pieces(segmentation: Segmentation, paths: list[Path]) -> Iterator[tuple[Segmentation, Path]]:
    for (_, piece), path in zip(iter_split(segmentation), paths, strict=True):
        yield piece, path


def _format_probe(target: PathLike, split: bool) -> str:
    """A name the writer can be chosen by: a split pattern with its fields filled."""
    return _FIELD.sub("x", os.fspath(target)) if split else os.fspath(target)


# -- file names of --split ---------------------------------------------------------------


def split_paths(target: PathLike, segments: Sequence[Segment], suffix: str) -> list[Path]:
    """One file per segment: ``target`` with its placeholders filled, or, for a folder,
    ``<folder>/<name><suffix>``. Names are made safe (:func:`safe_name`) and unique
    (``_2``, ``_3``, ... on a clash, ignoring case, for case-insensitive disks)."""
    if not segments:
        raise ValidationError("--split: the segmentation has no segment to write")
    folder, name = _split_pattern(target, suffix)
    taken: set[str] = set()
    paths = []
    for index, segment in enumerate(segments, start=1):
        values = {
            "name": safe_name(segment.name),
            "id": safe_name(segment.id),
            "label": str(segment.label_value),
            "layer": str(segment.layer),
            "index": str(index),
        }
        made = _fill(name, values, 0)
        clash = 1
        while made.casefold() in taken:
            clash += 1
            made = _fill(name, values, clash)
        taken.add(made.casefold())
        paths.append(Path(folder) / made)
    return paths


def _split_pattern(target: PathLike, suffix: str) -> tuple[str, str]:
    """The folder and the file-name pattern of ``--split``'s target; checked before any
    file is read."""
    text = os.fspath(target)
    folder, name = os.path.split(text)
    if _FIELD.search(folder):
        raise ValidationError(
            f"--split: placeholders go in the file name, not the folder: {text!r}",
            hint="e.g. out/{name}.nii.gz",
        )
    if not _FIELD.search(name):
        if not Path(text).is_dir():
            raise ValidationError(
                f"--split needs an existing folder or a file name with a placeholder, got {text!r}",
                hint="e.g. out/{name}.nii.gz; placeholders: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
            )
        folder, name = text, "{name}" + suffix
    unknown = sorted({f for f in _FIELD.findall(name) if f not in PLACEHOLDERS})
    if unknown:
        raise ValidationError(
            f"--split: unknown placeholder(s) {', '.join('{' + f + '}' for f in unknown)}",
            hint="use " + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
        )
    return folder, name


def _fill(pattern: str, values: Mapping[str, str], clash: int) -> str:
    """``pattern`` with its fields replaced; on a clash the first field gets ``_N``."""
    first = _FIELD.search(pattern)
    assert first is not None

    def value(match: re.Match[str]) -> str:
        text = values[match.group(1)]
        return f"{text}_{clash}" if clash and match.start() == first.start() else text

    return _FIELD.sub(value, pattern)


def safe_name(text: str) -> str:
    """``text`` usable as (part of) one file name on any system: no path separator, no
    ``..``, no control or Windows-reserved character, no leading dot (hidden) and no
    trailing dot or space, not a reserved device name, at most :data:`NAME_LIMIT`
    characters; ``segment`` when nothing is left."""
    safe = _UNSAFE.sub("_", text).replace("..", "_")[:NAME_LIMIT].strip(" .")
    if not safe:
        return "segment"
    if safe.split(".")[0].upper() in _RESERVED:
        safe = "_" + safe
    return safe


# -- the report ---------------------------------------------------------------------------


def report_rows(
    conversion: Conversion, *, registry: Registry | None = None
) -> list[dict[str, Any]]:
    """Per segment of every output: what the file holds compared with the segmentation
    as selected and named (before resampling, cropping, flattening and the format's own
    losses), by :func:`segio.analysis.report.conversion_report`. Each output is read
    back (with the reference when its reader takes one); shapes without voxels (meshes,
    contours) are rasterised on the grid of the other side."""
    from segio.analysis.report import conversion_report

    registry = registry or default_registry()
    rows: list[dict[str, Any]] = []
    claimed: set[Path] = set()
    for output in conversion.outputs:
        before = output.named
        if output.segment is not None:
            before = keep(before, [output.segment])
        after = _read_back(output, conversion, claimed, registry)
        before, after = _on_voxels(before, after)
        for row in conversion_report(before, after):
            rows.append({**row, "file": str(output.path)} if output.segment else row)
    return rows


def _read_back(
    output: Output, conversion: Conversion, claimed: set[Path], registry: Registry
) -> Segmentation:
    """The segmentation an output's files hold: its main file, or, for a writer of one
    file per segment (STL: ``<stem>_<name>.stl``), the files named after it, merged, their
    segments named after the ones written (in order: the writer keeps it)."""
    from segio.io import _reference_option, read

    def load(path: Path) -> Segmentation:
        spec = registry.reader_for(path, conversion.write_format)
        option = _reference_option(spec, spec.read_options)
        options = {option: conversion.reference} if option and conversion.reference else {}
        return read(path, format=spec.name, registry=registry, **options)

    if output.path.exists():
        return load(output.path)
    stem, suffix = _stem(output.path)
    parts = [
        p
        for p in conversion.written
        if p not in claimed
        and p.parent == output.path.absolute().parent
        and p.name.startswith(stem + "_")
        and p.name.endswith(suffix)
    ]
    if output.segment is not None:
        parts = parts[:1]
    if not parts:
        raise ValidationError(
            "--report: the output was written as other files, which were not found",
            path=output.path,
            hint="report on a format that writes one file",
        )
    claimed.update(parts)
    pieces = [load(path) for path in parts]
    merged = merge(pieces) if len(pieces) > 1 else pieces[0]
    written = [s for s in output.named.segments.values() if output.segment in (None, s.id)]
    counts = output.named.voxel_counts() if output.named.layers else {}
    written = [s for s in written if counts.get(s.id, 1)]  # empty ones are not written
    if len(written) == len(merged.segments):
        for mine, theirs in zip(written, list(merged.segments.values()), strict=True):
            theirs.name = mine.name
    return merged


def _stem(path: Path) -> tuple[str, str]:
    """A file name without its suffix (``.nii.gz`` and the like count as one)."""
    name = path.name
    suffix = (
        "".join(path.suffixes[-2:])
        if len(path.suffixes) > 1 and path.suffix == ".gz"
        else path.suffix
    )
    return name[: len(name) - len(suffix)], suffix


def _on_voxels(before: Segmentation, after: Segmentation) -> tuple[Segmentation, Segmentation]:
    """Both sides with voxels: a side without any is rasterised on the other's grid (the
    input's first), so the report compares voxels with voxels."""
    from segio.representations import Representation

    labelmap = Representation.BINARY_LABELMAP
    if before.geometry is None:
        before = before.representation(labelmap, geometry=after.geometry)
    if after.geometry is None:
        after = after.representation(labelmap, geometry=before.geometry)
    return before, after
