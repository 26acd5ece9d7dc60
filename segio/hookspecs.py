"""What a segio plugin provides, as pluggy hook specifications.

A plugin is a module registered in the ``segio`` entry-point group that implements some
of the hooks below with ``@segio.hookimpl``; a hook implementation that matches none of
them is an error, not ignored (a misspelt hook would otherwise silently do nothing).
segio imports that module when it builds its registry, so it must stay tiny: it returns
*declarations* (:class:`FormatSpec`, :class:`ConverterSpec`, :class:`LabelTableSpec`)
that name the real code as ``"module:function"`` strings, imported only when a file is
read or written. That is why ``import segio`` never imports pydicom, nibabel, VTK or
trimesh. The core declares its own converters and label tables through the same hooks
(``segio.converters.register``, ``segio.labels.tables.register``).
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
        The extra of the plugin's own distribution that brings ``requires``: the install
        hint becomes ``pip install '<distribution>[<extra>]'`` (``segio[nifti]`` for a
        built-in format, ``segio-myformat[h5]`` for an outside one).
    install:
        The install hint in full, when ``extra`` cannot say it (``pip install myseg-io``);
        the registry fills it from ``extra`` otherwise. Shown by ``segio formats`` and in
        :class:`~segio.errors.MissingDependencyError`.
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
    reference_required:
        The writer cannot write without a reference image (DICOM SEG and RTSTRUCT cite
        the series they were drawn on): a conversion without one is refused before any
        file is read, rather than after the work.
    """

    name: str
    description: str
    suffixes: tuple[str, ...] = ()
    reader: str | None = None
    writer: str | None = None
    sniff: Sniffer | None = None
    writes: frozenset[Representation] = frozenset({Representation.BINARY_LABELMAP})
    requires: tuple[str, ...] = ()
    extra: str | None = None
    install: str | None = None
    read_options: Mapping[str, str] = field(default_factory=dict)
    write_options: Mapping[str, str] = field(default_factory=dict)
    directory: bool = False
    points: bool = False
    reference_option: str | None = "reference"
    reference_required: bool = False


@dataclass(frozen=True)
class ConverterSpec:
    """A representation converter: ``function(segmentation, **parameters) -> Segmentation``.

    ``cost`` is a rough relative time (Slicer's ``GetConversionCost``); the cheapest chain
    of converters is used when no direct one exists. The parameters a converter reads, and
    their defaults, are :data:`segio.representations.PARAMETERS`. ``requires``, ``extra``
    and ``install`` are as for :class:`FormatSpec`.
    """

    name: str
    source: Representation
    target: Representation
    function: str
    cost: float = 1.0
    requires: tuple[str, ...] = ()
    extra: str | None = None
    install: str | None = None


@dataclass(frozen=True)
class LabelTableSpec:
    """A label-table format: the names, colours and codes of a plain labelmap's values.

    A table format is a module of three functions, named here as ``"module:function"``
    and imported only when a table is looked for, read or written (which is also why the
    sniffer, unlike :attr:`FormatSpec.sniff`, is named rather than given: it shares its
    module's parsing). :mod:`segio.labels.tables.common` has the helpers the built-in
    ones use.

    Attributes
    ----------
    name:
        Unique name, used as ``-O sidecar=<name>`` and ``format=`` (``"slicer-csv"``).
    description:
        One line for ``segio formats``.
    sniff:
        ``sniff(head: bytes, name: str) -> float``: how surely the first 4 KiB of the file
        called ``name`` are this format, 0 (not it) to 1 (its own signature). The most
        sure format reads the table, so a specific format outbids a generic look-alike
        (FreeSurfer's LUT 0.7 over an unmarked Slicer ``.ctbl`` 0.5).
    reader:
        ``read(data: bytes, src: str | None) -> list[LabelEntry]``; ``src`` names the file
        in messages. Raises :class:`~segio.errors.ReadError` for wrong numbers.
    writer:
        ``write(entries: list[LabelEntry], path: Path) -> str | bytes``: the file's content
        (text is written as UTF-8); entries arrive checked (values > 0, unique, one layer
        unless ``layers``). Raises :class:`~segio.errors.WriteError` for what the format
        cannot hold.
    sidecar_suffixes:
        Endings of the table next to an image (``liver.nii.gz`` -> ``liver.labels.csv``):
        looked for in this order when an image is read, the first one written. Empty for
        a format that is no sidecar (``caret-xml`` lives in the NIfTI header).
    folder_file:
        The file name of a table that one folder of images shares (nnU-Net's
        ``dataset.json``): looked for in the image's folder and up to two parents, after
        every sidecar ending, and written into the image's folder; the writer finds the
        existing file's content at ``path`` and updates it.
    layers:
        The table says which layer each label is in, so overlapping segments fit.
    complete:
        The table lists the segments of one file rather than a shared palette: a listed
        label without voxels is an empty segment, not an unused palette entry.
    """

    name: str
    description: str
    sniff: str
    reader: str
    writer: str | None = None
    sidecar_suffixes: tuple[str, ...] = ()
    folder_file: str | None = None
    layers: bool = False
    complete: bool = False


@hookspec
def segio_formats() -> list[FormatSpec]:  # type: ignore[empty-body]
    """Return the formats this plugin reads and/or writes."""


@hookspec
def segio_converters() -> list[ConverterSpec]:  # type: ignore[empty-body]
    """Return the representation converters this plugin provides."""


@hookspec
def segio_label_tables() -> list[LabelTableSpec]:  # type: ignore[empty-body]
    """Return the label-table formats this plugin reads and/or writes."""
