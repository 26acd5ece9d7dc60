"""Entry point of the NRRD plugin: declarations only, so importing it costs nothing."""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl

_NRRD_MAGIC = b"NRRD000"


def sniff_nrrd(head: bytes) -> bool:
    """Any NRRD file (magic ``NRRD0001`` .. ``NRRD0005``)."""
    return head.startswith(_NRRD_MAGIC) and head[7:8] in b"12345"


def sniff_seg_nrrd(head: bytes) -> bool:
    """An NRRD file with 3D Slicer segmentation fields near the top of its header.

    Slicer checks the same two markers in the first 800 characters
    (``qSlicerSegmentationsReader::canLoadFileConfidence``); we look at what we were given.
    """
    return sniff_nrrd(head) and (b"Segment0_" in head or b"Segmentation_" in head)


_READ_OPTIONS = {
    "labels": "label table giving names/colours to a plain labelmap (default: a sidecar found "
    "next to the file)",
}


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="seg-nrrd",
            description="3D Slicer segmentation (.seg.nrrd): layers, names, colours, terminology",
            suffixes=(".seg.nrrd",),
            reader="segio_plugins.nrrd.segnrrd:read",
            writer="segio_plugins.nrrd.segnrrd:write",
            sniff=sniff_seg_nrrd,
            extra="nrrd",
            read_options=_READ_OPTIONS,
            write_options={
                "encoding": "gzip (default) or raw",
                "level": "gzip compression level 1-9",
            },
        ),
        FormatSpec(
            name="nrrd",
            description="NRRD labelmap (.nrrd; .nhdr read) with a label-table sidecar",
            suffixes=(".nrrd",),
            reader="segio_plugins.nrrd.segnrrd:read",
            writer="segio_plugins.nrrd.labelmap:write",
            sniff=sniff_nrrd,
            extra="nrrd",
            read_options=_READ_OPTIONS,
            write_options={
                "encoding": "gzip (default) or raw",
                "level": "gzip compression level 1-9",
                "sidecar": "label table format: segio-json (default), dcmqi-json, slicer-csv, "
                "slicer-ctbl, itksnap, freesurfer, nnunet, json-map or none",
            },
        ),
    ]
