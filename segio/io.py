"""The public verbs: :func:`read`, :func:`write` and :func:`convert`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from segio.errors import ReadError, SegioError, ValidationError, WriteError
from segio.files import OutputFiles
from segio.hookspecs import FormatSpec
from segio.model import Segmentation
from segio.registry import Registry, default_registry, reader_function, writer_function

PathLike = str | os.PathLike[str]


def read(
    path: PathLike,
    *,
    format: str | None = None,
    registry: Registry | None = None,
    **options: Any,
) -> Segmentation:
    """Read a segmentation from any supported file (or folder).

    The format comes from ``format`` or else from the file name and content. ``options``
    go to the format's reader (``segio formats`` lists them).
    """
    registry = registry or default_registry()
    spec = registry.reader_for(path, format)
    _check_options(spec, options, spec.read_options, "read", path)
    reader = reader_function(spec)
    try:
        segmentation = reader(Path(path), **options)
    except SegioError:
        raise
    except MemoryError as exc:
        raise ReadError("not enough memory to read this file", path=path) from exc
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    if not isinstance(segmentation, Segmentation):
        raise ReadError(f"the {spec.name} reader returned {type(segmentation).__name__}")
    segmentation.provenance.setdefault("source_path", str(path))
    segmentation.provenance.setdefault("format", spec.name)
    return segmentation


def write(
    segmentation: Segmentation,
    path: PathLike,
    *,
    format: str | None = None,
    force: bool = False,
    registry: Registry | None = None,
    **options: Any,
) -> list[Path]:
    """Write ``segmentation`` to ``path``; return every file written (sidecars included).

    All files appear together or not at all. An existing file is replaced only with
    ``force=True``.
    """
    registry = registry or default_registry()
    spec = registry.writer_for(path, format)
    _check_options(spec, options, spec.write_options, "write", path)
    segmentation.validate()
    if segmentation.source_representation not in spec.writes:
        from segio.converters import to_representation

        segmentation = to_representation(segmentation, spec.writes, registry=registry)
    writer = writer_function(spec)
    with OutputFiles(force=force) as files:
        try:
            writer(segmentation, Path(path), files, **options)
        except SegioError:
            raise
        except OSError as exc:
            raise WriteError(f"cannot write: {exc.strerror or exc}", path=path) from exc
        if not files.targets:
            raise WriteError(f"the {spec.name} writer produced no file", path=path)
    return files.targets


def convert(
    source: PathLike,
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
) -> list[Path]:
    """Read ``source`` and write it to ``target``; return the files written.

    ``parameters`` set conversion parameters (Slicer's names, such as ``"Smoothing
    factor"``) before the writer's representation is derived.
    """
    if Path(source).absolute() == Path(target).absolute() and not force:
        raise WriteError(
            "the output is the input", path=target, hint="pass force=True to replace it"
        )
    segmentation = read(source, format=read_format, registry=registry, **(read_options or {}))
    if segments is not None:
        segmentation = select_segments(segmentation, segments)
    if pack_layers:
        segmentation = segmentation.pack_layers()
    for name, value in (parameters or {}).items():
        segmentation.conversion_parameters.set(name, value)
    return write(
        segmentation,
        target,
        format=write_format,
        force=force,
        registry=registry,
        **(write_options or {}),
    )


def select_segments(segmentation: Segmentation, keys: Iterable[str]) -> Segmentation:
    """A copy that keeps only the named segments (ids or names), in the order given.

    Voxels of dropped segments are cleared, so a labelmap writer cannot leak them.
    """
    result = segmentation.copy()
    wanted = []
    for key in keys:
        if key not in result.segments:
            names = ", ".join(s.name for s in result.segments.values())
            raise ValidationError(f"no segment is named {key!r}", hint=f"segments: {names}")
        wanted.append(result.segments[key])
    kept = {s.id for s in wanted}
    for segment in list(result.segments.values()):
        if segment.id not in kept:
            if result.layers:
                layer = result.layers[segment.layer].array
                layer[layer == segment.label_value] = 0
            result.segments.remove(segment.id)
    ordered = Segmentation(
        wanted,
        result.layers,
        source_representation=result.source_representation,
        contours={k: v for k, v in result.contours.items() if k in kept},
        surfaces={k: v for k, v in result.surfaces.items() if k in kept},
        conversion_parameters=result.conversion_parameters,
        reference_geometry=result.reference_geometry,
        contained_representations=result.contained_representations,
        provenance=result.provenance,
        extras=result.extras,
    )
    return ordered


def _check_options(
    spec: FormatSpec, given: dict[str, Any], known: dict[str, str] | Any, verb: str, path: PathLike
) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValidationError(
            f"the {spec.name} format does not take the {verb} option(s) {', '.join(unknown)}",
            path=path,
            hint=("it takes: " + ", ".join(sorted(known))) if known else "it takes none",
        )
