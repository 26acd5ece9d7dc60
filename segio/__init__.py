"""segio: convert medical image segmentations between formats without losing anything.

The canonical model (:class:`Segmentation`, :class:`Segment`, :class:`Layer`,
:class:`Geometry`) sits in the middle; format plugins read into it and write from it::

    seg = segio.read("ct_seg.seg.nrrd")
    seg.segments["liver"].color
    segio.write(seg, "liver.nii.gz")

Importing segio is cheap: format libraries (nibabel, pydicom, VTK, ...) are imported only
when a file of that format is read or written.
"""

from segio._version import __version__
from segio.errors import (
    GeometryError,
    LimitError,
    MissingDependencyError,
    PluginError,
    ReadError,
    SegioError,
    UnknownFormatError,
    ValidationError,
    WriteError,
)
from segio.geometry import Geometry
from segio.hookspecs import ConverterSpec, FormatSpec, LabelTableSpec, hookimpl
from segio.io import convert, read, select_segments, write
from segio.model import Layer, Segment, Segmentation
from segio.representations import ConversionParameter, ConversionParameters, Representation
from segio.terminology import Code, Terminology

__all__ = [
    "Code",
    "ConversionParameter",
    "ConversionParameters",
    "ConverterSpec",
    "FormatSpec",
    "Geometry",
    "GeometryError",
    "LabelTableSpec",
    "Layer",
    "LimitError",
    "MissingDependencyError",
    "PluginError",
    "ReadError",
    "Representation",
    "SegioError",
    "Segment",
    "Segmentation",
    "Terminology",
    "UnknownFormatError",
    "ValidationError",
    "WriteError",
    "__version__",
    "convert",
    "hookimpl",
    "read",
    "select_segments",
    "write",
]
