"""What a segio plugin provides, as pluggy hook specifications.

A plugin is a module registered in the ``segio`` entry-point group that implements one or
both hooks with ``@segio.hookimpl``. Pluggy imports that module eagerly, so it must stay
tiny: it returns *declarations* (:class:`FormatSpec`, :class:`ConverterSpec`) that name the
real code as ``"module:function"`` strings, imported only when a file is read or written.
That is why ``import segio`` never imports pydicom, nibabel, VTK or trimesh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pluggy

from segio.representations import Representation

PROJECT = "segio"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: ``sniff(head)``: True when the first bytes (up to 4 KiB) look like this format.
Sniffer = Callable[[bytes], bool]


@dataclass(frozen=True)
class FormatSpec:
    """Everything segio needs to know about a format before importing any of its code.

    Attributes
    ----------
    name:
        Short unique name used with ``--format`` (``"seg-nrrd"``).
    description:
        One line for ``segio formats``.
    suffixes:
        File name endings, lower case with the dot; a longer match wins (``.seg.nrrd``
        over ``.nrrd``).
    reader, writer:
        ``"module:function"`` of the reader ``read(path, **options) -> Segmentation`` and of
        the writer ``write(segmentation, path, files, **options) -> None`` (``files`` is a
        :class:`segio.fileio.outputs.OutputFiles` that makes every file atomic).
    sniff:
        Cheap content test on the first bytes; None when the format has no signature.
    requires:
        Importable module names the reader/writer need (checked by ``segio formats``).
    extra:
        The ``pip install 'segio[extra]'`` that brings ``requires``.
    read_options, write_options:
        Option name -> help text, accepted as keyword arguments (``-O name=value``).
    directory:
        The reader also takes a folder (a DICOM series, a mesh folder).
    points:
        The writer writes the segmentation's point annotations (:mod:`segio.points`);
        for the others :func:`segio.write` warns that they are left out.
    reference_option:
        The read or write option (when the format has one) that names a reference image
        (:mod:`segio.reference`). ``--reference`` goes to it; on the writer's side segio
        reads the image once, puts the segmentation on its grid (contours and surfaces
        rasterised there directly) and passes the writer the ``Reference`` read.
    """

    name: str
    description: str
    suffixes: tuple[str, ...] = ()
    reader: str | None = None
    writer: str | None = None
    sniff: Sniffer | None = None
    reads: frozenset[Representation] = frozenset({Representation.BINARY_LABELMAP})
    writes: frozenset[Representation] = frozenset({Representation.BINARY_LABELMAP})
    requires: tuple[str, ...] = ()
    extra: str | None = None
    read_options: Mapping[str, str] = field(default_factory=dict)
    write_options: Mapping[str, str] = field(default_factory=dict)
    directory: bool = False
    points: bool = False
    reference_option: str | None = "reference"


@dataclass(frozen=True)
class ConverterSpec:
    """A representation converter: ``function(segmentation, **parameters) -> Segmentation``.

    ``cost`` is a rough relative time (Slicer's ``GetConversionCost``); the cheapest chain
    of converters is used when no direct one exists. ``parameters`` maps Slicer's parameter
    names to their defaults.
    """

    name: str
    source: Representation
    target: Representation
    function: str
    cost: float = 1.0
    parameters: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    extra: str | None = None


@hookspec
def segio_formats() -> list[FormatSpec]:  # type: ignore[empty-body]
    """Return the formats this plugin reads and/or writes."""


@hookspec
def segio_converters() -> list[ConverterSpec]:  # type: ignore[empty-body]
    """Return the representation converters this plugin provides."""
