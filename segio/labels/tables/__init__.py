"""Label tables: the names, colours and codes that a plain labelmap cannot hold.

A NIfTI (or plain NRRD) labelmap stores integers only. Every tool that writes one keeps
the meaning of the integers somewhere else, each in its own layout: 3D Slicer colour
tables (``.ctbl``, ``.labels.csv``), ITK-SNAP ``.label`` files, FreeSurfer LUTs, nnU-Net's
``dataset.json``, plain JSON maps and TotalSegmentator's Caret XML header extension.
Without them a conversion through NIfTI gives ``Segment_1, Segment_2, ...`` (Slicer
#4733, spec ``seg-nrrd-and-model.md`` §4 and §5.2). This package reads and writes them,
plus segio's own lossless ``segio-json`` sidecar, so names, colours and terminology
survive. (The NIfTI plugin reads and writes the Caret XML in the header itself, with
:mod:`segio.labels.tables.caret_xml`.)

Each table format is one module here (``slicer_csv``, ``freesurfer``, ...), declared by
:mod:`segio.labels.tables.register` through the ``segio_label_tables`` hook, the way an
outside plugin declares its own; the functions below find every declared format through
the registry, so a plugin's table format is read, written, sniffed and looked for next to
images like a built-in one.

Readers are lenient about layout (comments, BOMs, latin-1, missing optional columns)
and strict about meaning: wrong numbers raise :class:`~segio.errors.ReadError` instead
of giving voxels the wrong names. Writers refuse what the target format cannot hold
(:class:`~segio.errors.WriteError`) instead of mangling it. Only segio-json keeps every
field; the others keep what they have columns for, round colours to 0-255 where they
store integers, give an entry without a colour a generated one where a colour is
required, and (Slicer ``.ctbl``) read every ``_`` in a name back as a space.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segio.errors import ReadError, SegioError, UnknownFormatError, ValidationError, WriteError
from segio.fileio.inputs import open_input, read_input, referenced_file

if TYPE_CHECKING:
    from segio.hookspecs import LabelTableSpec
    from segio.labels.tables.common import LabelEntry
    from segio.registry import Registry

__all__ = [
    "MAX_TABLE_BYTES",
    "LabelEntry",
    "find_sidecar",
    "label_tables",
    "read_label_table",
    "sidecar_path",
    "sniff_label_table",
    "write_label_table",
]

#: How much of a table its sniffer sees.
HEAD_SIZE = 4096
#: The largest label table read (65,535 labels with full terminology take about 30 MB).
MAX_TABLE_BYTES = 256 << 20
_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
#: How many folders up a shared table (``folder_file``) is looked for: the image's own,
#: its parent and grandparent (nnU-Net's ``labelsTr/`` next to ``dataset.json``).
_FOLDER_LEVELS = 3


def __getattr__(name: str) -> Any:
    """``LabelEntry`` from :mod:`.common`, imported on first use: reading an image that
    has no table (most reads) needs none of the table code."""
    if name == "LabelEntry":
        from segio.labels.tables.common import LabelEntry

        return LabelEntry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def label_tables(registry: Registry | None = None) -> dict[str, LabelTableSpec]:
    """Every declared label-table format by name, in the order sidecars are looked for
    and sniffing ties are settled: a plugin's formats before the core's (pluggy calls the
    latest registered plugin first)."""
    from segio.registry import default_registry

    return (registry or default_registry()).label_tables


def _spec(name: str, registry: Registry | None) -> LabelTableSpec:
    tables = label_tables(registry)
    if name not in tables:
        raise UnknownFormatError(
            f"unknown label table format {name!r}", hint=f"use one of {', '.join(tables)}"
        )
    return tables[name]


def _function(target: str) -> Callable[..., Any]:
    from segio.registry import load

    return load(target)  # type: ignore[no-any-return]


def read_label_table(
    path: str | os.PathLike[str], *, format: str | None = None, registry: Registry | None = None
) -> list[LabelEntry]:
    """Read a label table; the format is sniffed from content and name when not given.

    Only a regular file is read (a FIFO or a device given as the table is refused, not
    waited on), and at most :data:`MAX_TABLE_BYTES`.
    """
    path = Path(path)
    if format is not None:
        _spec(format, registry)
    data = read_input(path, what="the label table", limit=MAX_TABLE_BYTES)
    fmt = format or sniff_label_table(data[:HEAD_SIZE], path.name, registry=registry)
    if fmt is None:
        raise ReadError(
            "not a label table segio recognises",
            path=path,
            hint=f"pass format= one of {', '.join(label_tables(registry))}",
        )
    entries: list[LabelEntry] = _function(_spec(fmt, registry).reader)(data, str(path))
    return entries


def write_label_table(
    path: str | os.PathLike[str],
    entries: Sequence[LabelEntry],
    *,
    format: str,
    registry: Registry | None = None,
) -> None:
    """Write ``entries`` to ``path`` as ``format`` (UTF-8); see the module docstring for losses.

    ``nnunet`` updates the ``labels`` of an existing ``dataset.json`` and keeps its other keys.
    """
    spec = _spec(format, registry)
    path = Path(path)
    if spec.writer is None:
        raise UnknownFormatError(f"the label table format {format!r} cannot be written")
    try:
        from segio.labels.tables.common import prepare

        data = _function(spec.writer)(prepare(entries, format, layers=spec.layers), path)
    except WriteError as exc:
        if exc.path is not None:
            raise
        raise WriteError(exc.reason, path=path, hint=exc.hint) from exc
    try:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise WriteError(f"cannot write the label table: {exc.strerror or exc}", path=path) from exc


def sniff_label_table(head: bytes, name: str, *, registry: Registry | None = None) -> str | None:
    """The label-table format of a file from its first 4 KiB and its name, or None.

    ``name`` may be the file name (``liver.labels.csv``) or its suffix; its last part
    counts. Every declared format's sniffer is asked; the surest one wins, the first in
    :func:`label_tables` on a tie.
    """
    best, surest = None, 0.0
    for spec in label_tables(registry).values():
        confidence = float(_function(spec.sniff)(head[:HEAD_SIZE], name))
        if confidence > surest:
            best, surest = spec.name, confidence
    return best


def _image_stem(image: Path) -> str:
    name = image.name
    for suffix in _IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return image.stem


def find_sidecar(
    image_path: str | os.PathLike[str], *, registry: Registry | None = None
) -> Path | None:
    """The label table that belongs to a labelmap image, or None.

    Tries ``<stem><ending>`` for the ``sidecar_suffixes`` of every table format in order
    (``.json`` only if it is a label table, so BIDS sidecars are skipped; then
    ``.labels.csv``, ``.csv``, ``.tsv``, ``.ctbl``, ``.label``, ``.txt``), then each
    ``folder_file`` (nnU-Net's ``dataset.json``) in the image's folder and up to two parents
    (``labelsTr/``).
    """
    image = Path(image_path)
    stem = _image_stem(image)
    tables = label_tables(registry).values()
    endings = dict.fromkeys(suffix for spec in tables for suffix in spec.sidecar_suffixes)
    candidates = [image.with_name(stem + suffix) for suffix in endings]
    folders = [image.parent, *image.parent.parents][:_FOLDER_LEVELS]
    for shared in dict.fromkeys(spec.folder_file for spec in tables if spec.folder_file):
        candidates += [folder / shared for folder in folders]
    for candidate in candidates:
        if candidate == image or not os.path.lexists(candidate):
            continue
        head = _candidate_head(candidate)
        if head is not None and sniff_label_table(head, candidate.name, registry=registry):
            return candidate
    return None


def _candidate_head(candidate: Path) -> bytes | None:
    """The first 4 KiB of a possible sidecar; None (with a warning) when it may not be read.

    A sidecar is found by name, not named by the user, so it must be a regular file that
    stays in its own folder: a link planted there pointing elsewhere (another user's file,
    ``/dev/zero``, a FIFO) is skipped without being opened.
    """
    try:
        checked = referenced_file(candidate, candidate.name, what="the label table")
        with open_input(checked, what="the label table") as stream:
            return stream.read(HEAD_SIZE)
    except SegioError as exc:
        warnings.warn(f"{exc.path}: label table not used: {exc.reason}", stacklevel=4)
    except OSError:
        pass
    return None


def sidecar_path(
    image_path: Path, image_suffix: str, table_format: str, *, registry: Registry | None = None
) -> Path:
    """Where a ``table_format`` table of ``image_path`` goes: ``liver.nii.gz`` ->
    ``liver.json`` (or ``liver.labels.csv``, ..., or ``dataset.json`` beside it)."""
    tables = label_tables(registry)
    spec = tables.get(table_format)
    if spec is not None and spec.folder_file:
        return image_path.with_name(spec.folder_file)
    if spec is None or not spec.sidecar_suffixes:
        usable = [s.name for s in tables.values() if s.sidecar_suffixes or s.folder_file]
        raise ValidationError(
            f"unknown label table format {table_format!r}",
            hint="use one of " + ", ".join([*usable, "none"]),
        )
    stem = image_path.name[: len(image_path.name) - len(image_suffix)]
    return image_path.with_name(stem + spec.sidecar_suffixes[0])
