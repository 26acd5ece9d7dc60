"""Entry point of the RTSTRUCT plugin: declarations only (pydicom is imported on use)."""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl
from segio.representations import Representation

RT_STRUCTURE_SET_STORAGE = b"1.2.840.10008.5.1.4.1.1.481.3"
#: (0008,0016) SOP Class UID, little endian, as the first elements of a file without meta.
_SOP_CLASS_TAG = b"\x08\x00\x16\x00"


def sniff_rtstruct(head: bytes) -> bool:
    """An RT Structure Set: its SOP class UID near the start, with or without a preamble.

    Files written without preamble and file meta (pydicom's ``rtstruct.dcm``) start
    directly with group 0008 elements; the SOP Class UID is then within the first bytes.
    """
    if RT_STRUCTURE_SET_STORAGE not in head:
        return False
    if head[128:132] == b"DICM":
        return True
    return head[:2] == b"\x08\x00" and _SOP_CLASS_TAG in head[:1024]


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="rtstruct",
            description="DICOM RT Structure Set (planar contours on an image series)",
            suffixes=(".rtstruct.dcm", ".rtss.dcm"),
            reader="segio_plugins.rtstruct.reader:read",
            writer="segio_plugins.rtstruct.writer:write",
            sniff=sniff_rtstruct,
            writes=frozenset({Representation.PLANAR_CONTOURS, Representation.BINARY_LABELMAP}),
            requires=("pydicom",),
            extra="dicom",
            directory=True,
            points=True,
            reference_required=True,
            read_options={
                "reference": "the referenced image series (folder or files): rasterise the "
                "contours onto its grid",
                "keep_contours": "true: keep the contours as they are, even when the file "
                "states the grid it was made on (default false)",
            },
            write_options={
                "reference": "the referenced image series (folder or files); required",
                "contour_mode": "midpoint (default, exact), edge (exact, along voxel sides), "
                "centre (exact, just outside the boundary voxels' centres: for readers that "
                "round vertices to pixels, such as rt-utils) or smooth (midpoint simplified "
                "by up to half a pixel)",
                "keyhole": "true: join holes to their outline (one contour per region)",
                "series_description": "Series Description",
                "structure_set_label": "Structure Set Label (default RTSTRUCT)",
                "series_instance_uid": "Series Instance UID (default: new)",
                "sop_instance_uid": "SOP Instance UID (default: new)",
            },
        )
    ]
