"""pydicom Datasets and highdicom Segmentations <-> :class:`~segio.model.Segmentation`.

A PACS tool or a DICOMweb client holds DICOM objects, not files. These adapters go
through the *registered formats* (``dicom-seg`` and ``rtstruct``) on in-memory bytes:
the dataset is serialised with :func:`pydicom.dcmwrite` and read by :func:`segio.read`
(:mod:`segio.fileio.streams`), and back, :func:`segio.io.write_bytes` is parsed by
:func:`pydicom.dcmread` (or :func:`highdicom.seg.segread`). Why not walk the dataset
directly: the format readers are where segio's DICOM knowledge, limits and tests live;
one path means an object reads exactly as its file does. No plugin is imported.

pydicom and highdicom are imported inside the functions only.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from segio.errors import ValidationError

if TYPE_CHECKING:
    from pydicom import Dataset

    from segio.model import Segmentation
    from segio.registry import Registry

__all__ = ["from_dicom", "from_highdicom", "to_dicom", "to_highdicom"]

#: The registered format that reads each DICOM modality.
FORMATS = {"SEG": "dicom-seg", "RTSTRUCT": "rtstruct"}


def from_dicom(
    dataset: Dataset, *, registry: Registry | None = None, **options: Any
) -> Segmentation:
    """A segmentation from a pydicom ``Dataset`` holding a DICOM SEG or an RTSTRUCT.

    The modality picks the format; ``options`` go to its reader as in :func:`segio.read`
    (an RTSTRUCT's ``reference=`` series rasterises its contours on that grid). A
    highdicom ``Segmentation`` is a Dataset and is accepted too (:func:`from_highdicom`).
    """
    from segio.io import read

    modality = str(getattr(dataset, "Modality", "") or "")
    fmt = FORMATS.get(modality)
    if fmt is None:
        raise ValidationError(
            f"the dataset's modality is {modality or 'missing'}, not SEG or RTSTRUCT",
            path="<dataset>",
            hint="pass a DICOM Segmentation or RT Structure Set dataset",
        )
    segmentation = read(
        _encoded(dataset), format=fmt, registry=registry, filename="<dataset>", **options
    )
    segmentation.provenance["source"] = "<dataset>"
    return segmentation


def from_highdicom(segmentation: Any, **options: Any) -> Segmentation:
    """A segmentation from a ``highdicom.seg.Segmentation`` (read as its file reads)."""
    return from_dicom(segmentation, **options)


def to_dicom(
    segmentation: Segmentation,
    *,
    format: str = "dicom-seg",
    reference: Any = None,
    registry: Registry | None = None,
    **options: Any,
) -> Dataset:
    """``segmentation`` as a pydicom ``Dataset``: a DICOM SEG (``format="dicom-seg"``) or an
    RTSTRUCT (``format="rtstruct"``), written by that format's writer.

    ``reference`` is the image series it segments (a folder or files), which both formats
    require; ``options`` go to the writer as in :func:`segio.write`.
    """
    import pydicom

    from segio.io import write_bytes

    if format not in FORMATS.values():
        raise ValidationError(
            f"format {format!r} is not a DICOM object format",
            hint="use format='dicom-seg' or format='rtstruct'",
        )
    data = write_bytes(
        segmentation, format=format, reference=reference, registry=registry, **options
    )
    return pydicom.dcmread(io.BytesIO(data))


def to_highdicom(
    segmentation: Segmentation,
    *,
    reference: Any = None,
    registry: Registry | None = None,
    **options: Any,
) -> Any:
    """``segmentation`` as a ``highdicom.seg.Segmentation`` (a DICOM SEG on ``reference``):
    its ``SegmentSequence`` and pixel array are what segio's writer wrote."""
    import highdicom

    dataset = to_dicom(segmentation, reference=reference, registry=registry, **options)
    return highdicom.seg.Segmentation.from_dataset(dataset, copy=False)


def _encoded(dataset: Dataset) -> bytes:
    """The dataset as a DICOM Part 10 file, in memory (file meta made when missing)."""
    import pydicom

    buffer = io.BytesIO()
    try:
        pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ValidationError(
            f"the dataset cannot be encoded as a DICOM file: {exc}",
            path="<dataset>",
            hint="give it SOPClassUID, SOPInstanceUID and a transfer syntax (file_meta)",
        ) from exc
    return buffer.getvalue()
