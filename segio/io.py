"""The public verbs: :func:`read`, :func:`write` and :func:`convert`.

Whatever goes wrong inside a reader or a writer reaches the caller as a
:class:`~segio.errors.SegioError` naming the user's file: a plugin that lets a library's
``ValueError``, ``OverflowError``, ``MemoryError`` or ``OSError`` escape is caught here
(:func:`user_errors`), and an error that names a writer's temporary file is re-pointed
at the file the user asked for.
"""

from __future__ import annotations

import itertools
import os
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from segio.errors import (
    ReadError,
    SegioError,
    ValidationError,
    WriteError,
    located,
    one_line,
)
from segio.fileio.outputs import OutputFiles, settle
from segio.fileio.streams import Readable
from segio.hookspecs import FormatSpec
from segio.model import Segmentation
from segio.points import warn_unwritten
from segio.registry import Registry, default_registry, reader_function, writer_function

if TYPE_CHECKING:
    from segio.operations import Edits

PathLike = str | os.PathLike[str]


def read(
    path: PathLike | bytes | bytearray | memoryview | Readable,
    *,
    format: str | None = None,
    registry: Registry | None = None,
    filename: str | None = None,
    **options: Any,
) -> Segmentation:
    """Read a segmentation from any supported file (or folder), bytes or binary file object.

    The format comes from ``format`` or else from the file name and content. ``options``
    go to the format's reader (``segio formats`` lists them), but for one every format
    takes: ``terminology=FILE``, a table whose codes are set on the segments it names
    (:func:`segio.labels.catalogue.apply_table`; ``-I terminology=FILE`` on the command line).

    ``path`` may also be ``bytes`` or a binary file object (a download, an upload): it
    reads exactly as the same bytes from a file (:mod:`segio.fileio.streams`); ``filename``,
    a file name the stream would have, lets its suffix pick the format when the content
    alone does not. A stream is one file: formats that need other files refuse it.
    """
    if not isinstance(path, str | os.PathLike):
        return _read_stream(path, format=format, registry=registry, filename=filename, **options)
    registry = registry or default_registry()
    with user_errors(ReadError, path):
        spec = registry.reader_for(path, format)
        table = None if "terminology" in spec.read_options else options.pop("terminology", None)
        _check_options(spec, options, spec.read_options, "read", path)
        reader = reader_function(spec)
        if not Path(path).is_dir():
            settle(path)  # finish a write of this file that was interrupted
        segmentation = reader(Path(path), **options)
    if not isinstance(segmentation, Segmentation):
        raise ReadError(f"the {spec.name} reader returned {type(segmentation).__name__}", path=path)
    segmentation.provenance.setdefault("source_path", str(path))
    segmentation.provenance.setdefault("format", spec.name)
    if table is not None:
        from segio.labels.catalogue import apply_table

        apply_table(segmentation, table, copy=False)
        segmentation.provenance["terminology_table"] = str(table)
    return segmentation


def _read_stream(
    source: Any,
    *,
    format: str | None,
    registry: Registry | None,
    filename: str | None,
    **options: Any,
) -> Segmentation:
    """:func:`read` of bytes or a file object: spooled to a private file, read from there."""
    from segio.fileio import streams

    label = filename or streams.stream_label(source)
    name = streams.name_of(source, filename)
    registry = registry or default_registry()
    data = streams.stream_bytes(source, label=label)
    guess = "stream" + (_name_suffix(name) if name else "")
    said: list[warnings.WarningMessage] = []
    spooled = Path(guess)
    try:
        with streams.spooled(data, guess) as spooled, warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            try:
                with user_errors(ReadError, spooled):
                    spec = registry.reader_for(spooled, format)
                final = spooled.with_name(
                    streams.spooled_name(data[:4096], spec.suffixes, name, spec.name)
                )
                spooled.rename(final)
                segmentation = read(final, format=spec.name, registry=registry, **options)
            except SegioError as exc:
                moved = streams.renamed(exc, spooled, label)
                if moved is None:
                    raise
                raise moved from exc
            streams.scrub_provenance(segmentation.provenance, final, label)
    finally:  # the warnings again, naming the stream rather than the temporary file
        for warning in said:
            text = streams.relabelled(str(warning.message), spooled, label)
            warnings.warn(text, warning.category, stacklevel=3)
    return segmentation


def _name_suffix(name: str) -> str:
    """Everything from the first dot of a file name's last part (``x.seg.nrrd``: ``.seg.nrrd``)."""
    base = Path(name).name
    return base[base.index(".") :] if "." in base else ""


def write(
    segmentation: Segmentation,
    path: PathLike | BinaryIO,
    *,
    format: str | None = None,
    force: bool = False,
    registry: Registry | None = None,
    inputs: Iterable[PathLike] = (),
    reference: Any = None,
    allow_empty: bool = False,
    filename: str | None = None,
    **options: Any,
) -> list[Path]:
    """Write ``segmentation`` to ``path``; return every file written (sidecars included).

    ``path`` may also be a binary stream (``io.BytesIO``, a file opened ``"wb"``): the
    format is then ``format`` or the suffix of ``filename``, the one file is written to it and
    ``[]`` is returned; a writer that makes several files (a sidecar) is refused.
    :func:`write_bytes` returns the bytes instead.

    ``reference`` (a DICOM series, an image or a segmentation; also accepted as the
    format's own reference option) is the grid of the output: contours and surfaces are
    rasterised on it directly, a labelmap is moved onto it (exactly when the grids share
    a lattice), and the writer gets it once read. An output in which every segment is
    empty although the input was not is refused unless ``allow_empty``.

    All files appear together or not at all, even if the process is killed (see
    :mod:`segio.fileio.outputs`). An existing file is replaced only with ``force=True``, and never
    when it is one of the inputs: the segmentation's source file and label table, the
    reference, and ``inputs``.
    """
    if not isinstance(path, str | os.PathLike):
        data = write_bytes(
            segmentation,
            format=format,
            registry=registry,
            reference=reference,
            allow_empty=allow_empty,
            filename=filename,
            **options,
        )
        from segio.fileio.streams import STREAM, write_target

        write_target(path, data, filename or STREAM)
        return []
    if filename is not None:
        raise ValidationError(
            "filename= names a stream, and this output is a path",
            path=path,
            hint="leave filename= out: the path's own name picks the format",
        )
    return write_many(
        [(segmentation, path)],
        format=format,
        force=force,
        registry=registry,
        inputs=inputs,
        reference=reference,
        allow_empty=allow_empty,
        **options,
    )


def write_bytes(
    segmentation: Segmentation,
    *,
    format: str | None = None,
    registry: Registry | None = None,
    reference: Any = None,
    allow_empty: bool = False,
    filename: str | None = None,
    **options: Any,
) -> bytes:
    """The one file :func:`write` would write, as bytes (for an upload or a DICOMweb STOW).

    The format is ``format`` or the suffix of ``filename`` (``"x.nii"``: uncompressed NIfTI).
    It is written through the format's own writer into a private temporary folder, so the
    bytes equal a file written to a path.
    """
    from segio.fileio import streams

    label = filename or streams.STREAM
    registry = registry or default_registry()
    spec = registry.writer_for(filename or label, format)
    target = streams.write_name(spec.suffixes, filename, spec.name)
    with streams.spooled(None, target) as spooled:
        try:
            files = write_many(
                [(segmentation, spooled)],
                format=spec.name,
                registry=registry,
                reference=reference,
                allow_empty=allow_empty,
                **options,
            )
            if len(files) != 1:
                raise streams.refuse_many(files, spec.name, spec.write_options, label)
            return streams.read_from(files[0])
        except SegioError as exc:
            moved = streams.renamed(exc, spooled, label)
            if moved is None:
                raise
            raise moved from exc


def write_many(
    items: Iterable[tuple[Segmentation, PathLike]],
    *,
    format: str | None = None,
    force: bool = False,
    registry: Registry | None = None,
    inputs: Iterable[PathLike] = (),
    reference: Any = None,
    allow_empty: bool = False,
    **options: Any,
) -> list[Path]:
    """Write each ``(segmentation, path)`` of ``items`` as :func:`write` does, as ONE
    write: every file of every item appears, or none (``segio convert --split``).

    ``items`` may be a generator: one segmentation is held at a time. The format is the
    first path's (or ``format``) for all, so a file name made from a segment name
    (``x.seg`` + ``.nrrd``) cannot pick another writer. The reference is read once. The
    main files are published after every sidecar.
    """
    from segio.converters.placement import prepare
    from segio.reference import read_reference, reference_paths

    pending = iter(items)
    head = next(pending, None)
    if head is None:
        raise ValidationError("nothing to write: no segmentation was given")
    registry = registry or default_registry()
    first = head[1]
    spec = registry.writer_for(first, format)
    option = _reference_option(spec, spec.write_options)
    if reference is None and option is not None:
        reference = options.get(option)
    if reference is not None and option is None and not takes_grid(spec):
        raise ValidationError(
            f"the {spec.name} format takes no reference image",
            path=first,
            hint="a reference gives the grid of labelmap outputs and the series DICOM cites",
        )
    _check_options(spec, options, spec.write_options, "write", first)
    sources = [*_input_paths(head[0]), *reference_paths(reference), *inputs]
    files = OutputFiles(force=force, main=first, inputs=sources)
    found = None
    with user_errors(WriteError, first, files), files:
        for number, (segmentation, path) in enumerate(itertools.chain([head], pending)):
            files.add_main(path, [] if number == 0 else _input_paths(segmentation))
            with user_errors(WriteError, path, files):
                segmentation.validate()
                warn_unwritten(segmentation, spec)  # points a format cannot hold: one warning
                if number == 0 and reference is not None:
                    found = read_reference(reference)
                    if option is not None:
                        options[option] = found  # the writer reads nothing again
                segmentation = prepare(
                    segmentation, spec.writes, found, allow_empty=allow_empty, registry=registry
                )
                before = len(files.targets)
                writer_function(spec)(segmentation, Path(path), files, **options)
                if len(files.targets) == before:
                    raise WriteError(f"the {spec.name} writer produced no file", path=path)
    return files.targets


def convert(
    source: PathLike | Sequence[PathLike],
    target: PathLike,
    *,
    read_format: str | None = None,
    write_format: str | None = None,
    segments: Iterable[str] | None = None,
    pack_layers: bool = False,
    force: bool = False,
    read_options: dict[str, Any] | None = None,
    write_options: dict[str, Any] | None = None,
    parameters: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    reference: Any = None,
    allow_empty: bool = False,
    edits: Edits | None = None,
    split: bool = False,
) -> list[Path]:
    """Read ``source`` and write it to ``target``; return the files written.

    ``source`` may be several files: their segments are merged into one segmentation
    (:func:`segio.operations.merge`). ``edits`` are applied between reading and writing
    (:class:`segio.operations.Edits`, in its documented order); ``segments`` (keys, kept
    in this order) and ``pack_layers`` are shorthands for two of its fields. With
    ``split`` one file is written per segment: ``target`` is a name with ``{name}``,
    ``{id}``, ``{label}``, ``{layer}`` or ``{index}``, or an existing folder; all files
    appear or none. ``parameters`` set conversion parameters (Slicer's names, such as
    ``"Smoothing factor"``) before any representation is derived. ``reference`` goes to
    the side that takes it (:func:`route_reference`); ``allow_empty`` as for :func:`write`.
    """
    from segio.conversion import run_conversion

    return run_conversion(
        source,
        target,
        read_format=read_format,
        write_format=write_format,
        segments=None if segments is None else list(segments),
        pack_layers=pack_layers,
        force=force,
        read_options=read_options,
        write_options=write_options,
        parameters=parameters,
        registry=registry,
        reference=reference,
        allow_empty=allow_empty,
        edits=edits,
        split=split,
    ).written


def _check_not_emptied(
    segmentation: Segmentation,
    source: PathLike,
    read_format: str | None,
    registry: Registry | None,
    read_options: dict[str, Any],
    option: str,
    allow_empty: bool,
) -> None:
    """A reader that placed the source on the reference and found nothing there: refused
    when the source read on its own has content (the reference misses it), as
    :func:`segio.write` refuses an output emptied on the reference grid. The source is
    read again only in that rare case; a source that cannot be read without its
    reference (OsiriX pixel ROIs) is left to the reader."""
    from segio.converters.placement import has_content, refuse_emptied
    from segio.reference import read_reference

    if has_content(segmentation):
        return
    alone = {k: v for k, v in read_options.items() if k != option}
    try:
        unplaced = read(source, format=read_format, registry=registry, **alone)
    except SegioError:
        return
    if has_content(unplaced):
        reference = read_reference(read_options[option])
        with user_errors(ReadError, source):
            refuse_emptied(unplaced, reference, allow_empty=allow_empty)


def route_reference(reader: FormatSpec, writer: FormatSpec) -> tuple[str | None, bool]:
    """Where a conversion's reference image goes: the reader's option name (or None), and
    whether the writer gets it.

    The writer takes it when it cites a series or writes labelmaps (the reference is then
    the output's grid). The reader takes it when the writer has no reference option of its
    own: an RTSTRUCT or OsiriX reader then rasterises its contours on it, a mesh reader
    keeps it as the reference geometry. Neither: a :class:`ValidationError`.
    """
    own = _reference_option(writer, writer.write_options)
    reader_option = _reference_option(reader, reader.read_options)
    to_writer = own is not None or takes_grid(writer)
    to_reader = reader_option if own is None else None
    if not to_writer and to_reader is None:
        raise ValidationError(
            f"neither {reader.name} nor {writer.name} takes a reference image",
            hint="a reference gives DICOM outputs their series and labelmap outputs their grid",
        )
    return to_reader, to_writer


def select_segments(segmentation: Segmentation, keys: Iterable[str]) -> Segmentation:
    """A copy that keeps only the segments ``keys`` name, in that order, and every point
    annotation: :func:`segio.operations.select` (kept here for existing callers)."""
    from segio.operations import select

    return select(segmentation, keys)


def _check_options(
    spec: FormatSpec, given: dict[str, Any], known: dict[str, str] | Any, verb: str, path: PathLike
) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        import difflib  # here: every read and write passes through, rarely with a typo

        close = {m for name in unknown for m in difflib.get_close_matches(name, list(known))}
        meant = f" (did you mean {', '.join(sorted(close))}?)" if close else ""
        raise ValidationError(
            f"the {spec.name} format does not take the {verb} option(s) "
            f"{', '.join(unknown)}{meant}",
            path=path,
            hint=("it takes: " + ", ".join(sorted(known))) if known else "it takes none",
        )


# -- errors the user can act on --------------------------------------------------------

#: What a reader or writer lets escape when a file is corrupt or hostile: library code
#: (numpy, struct, zlib, nibabel, ...) raises these for bad data. Caught as a last resort.
_DATA_ERRORS = (ValueError, OverflowError, RecursionError, struct.error, zlib.error, EOFError)


@contextmanager
def user_errors(
    error: type[SegioError], path: PathLike, files: OutputFiles | None = None
) -> Iterator[None]:
    """Turn what escapes a reader or writer into ``error`` naming ``path``.

    Memory, system and data errors become one-line errors of class ``error``, chained to
    the original (``--debug`` shows it). A data error is flagged ``unexpected``: the
    plugin should have refused the file itself (the conformance battery reports it).
    A SegioError naming no file is given ``path``; with ``files``, one naming a staged
    temporary is re-pointed at its target.
    """
    verb = "read" if issubclass(error, ReadError) else "write"
    try:
        yield
    except SegioError as exc:
        moved = _repointed(exc, path, files)
        if moved is None:
            raise
        raise moved from exc
    except MemoryError as exc:
        raise error(
            f"not enough memory to {verb} this file",
            path=path,
            hint="free memory or use a larger machine",
        ) from exc
    except OSError as exc:
        where = files.public(os.fspath(exc.filename)) if files and exc.filename else None
        raise error(f"cannot {verb}: {exc.strerror or _detail(exc)}", path=where or path) from exc
    except _DATA_ERRORS as exc:
        detail = files.public(_detail(exc)) if files else _detail(exc)
        wrapped = error(f"cannot {verb} this file: {detail}", path=path)
        wrapped.unexpected = True
        raise wrapped from exc


def _detail(exc: BaseException) -> str:
    """What an exception says, or its kind when it says nothing."""
    text = one_line(exc)
    kind = type(exc).__name__
    return f"{text} ({kind})" if text else f"{kind} without a message"


def _repointed(exc: SegioError, path: PathLike, files: OutputFiles | None) -> SegioError | None:
    """``exc`` again, naming the user's file: ``path`` when it names none, a target for a
    temporary; None when it needs no change."""
    public = files.public if files is not None else str
    where = public(exc.path) if exc.path else os.fspath(path)
    reason, hint = public(exc.reason), public(exc.hint) if exc.hint else None
    if (where, reason, hint) == (exc.path, exc.reason, exc.hint):
        return None
    return located(exc, where, reason=reason, hint=hint)


def takes_grid(spec: FormatSpec) -> bool:
    """True when ``spec`` writes labelmaps: a reference image gives them their grid."""
    from segio.converters import LABELMAPS

    return bool(spec.writes & LABELMAPS)


def _reference_option(spec: FormatSpec, options: Mapping[str, str]) -> str | None:
    """The option of ``options`` (read or write) that names ``spec``'s reference image."""
    name = spec.reference_option
    return name if name is not None and name in options else None


def _input_paths(segmentation: Segmentation) -> list[Path]:
    """The files a write must not replace: where the segmentation came from, its label
    table and the terminology table it was read with (the reference is added by the
    caller)."""
    found: list[Path] = []
    for value in (
        segmentation.provenance.get("source_path"),
        segmentation.provenance.get("label_table"),
        segmentation.provenance.get("terminology_table"),
    ):
        items = value if isinstance(value, list | tuple) else [value]
        found += [Path(item) for item in items if isinstance(item, str | os.PathLike) and item]
    return found


def _same_path(first: PathLike, second: PathLike) -> bool:
    """The same name, or two names (links) of one existing file."""
    if Path(first).absolute() == Path(second).absolute():
        return True
    try:
        return Path(first).samefile(second)
    except OSError:
        return False
