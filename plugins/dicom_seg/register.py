"""Entry point of the DICOM SEG plugin: declarations only (pydicom is imported on use)."""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl
from segio.representations import Representation

SEG_STORAGE = b"1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEG_STORAGE = b"1.2.840.10008.5.1.4.1.1.66.7"


def sniff_dicom_seg(head: bytes) -> bool:
    """A DICOM file whose SOP class (in the file meta, near the start) is a Segmentation."""
    if head[128:132] != b"DICM":
        return False
    return SEG_STORAGE in head or LABELMAP_SEG_STORAGE in head


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="dicom-seg",
            description="DICOM Segmentation (BINARY, FRACTIONAL, LABELMAP); a file or a folder",
            suffixes=(".seg.dcm", ".dcm"),
            reader="segio_plugins.dicom_seg.reader:read",
            writer="segio_plugins.dicom_seg.writer:write",
            sniff=sniff_dicom_seg,
            writes=frozenset({Representation.BINARY_LABELMAP, Representation.FRACTIONAL_LABELMAP}),
            requires=("pydicom",),
            extra="dicom",
            directory=True,
            reference_required=True,
            read_options={
                "reference": "the source image series (folder or files): place the segments "
                "on its full grid",
            },
            write_options={
                "reference": "the source image series (folder or files); required",
                "seg_type": "binary (default), labelmap (no overlaps) or fractional",
                "compression": "none (default), rle, jpegls, jpeg2000 or deflate",
                "omit_empty_frames": "true (default) or false",
                "series_description": "Series Description",
                "series_number": "Series Number",
                "content_label": "Content Label (default SEGMENTATION)",
                "content_description": "Content Description",
                "content_creator": "Content Creator's Name",
                "algorithm_type": "MANUAL, SEMIAUTOMATIC or AUTOMATIC for segments that say none",
                "algorithm_name": "Segment Algorithm Name for non-manual segments",
                "series_instance_uid": "Series Instance UID (default: new)",
                "sop_instance_uid": "SOP Instance UID (default: new)",
                "manufacturer": "Manufacturer (default segio)",
            },
        )
    ]
