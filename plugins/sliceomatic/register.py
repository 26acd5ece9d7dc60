"""Entry point of the SliceOmatic plugin: declarations and a cheap header sniffer only."""

from __future__ import annotations

import re

from segio.hookspecs import FormatSpec, hookimpl

#: Keywords of the TAG header (TomoVision appendix D plus what real files carry).
KNOWN_KEYS = frozenset(
    {
        "x", "y", "z", "type", "org_x", "org_y", "org_z", "dim_x", "dim_y", "inc_x", "inc_y",
        "epais", "dir_h_x", "dir_h_y", "dir_h_z", "dir_v_x", "dir_v_y", "dir_v_z", "uid",
        "chksum", "bin",
    }
)  # fmt: skip
_PAIR = re.compile(rb"([A-Za-z_][A-Za-z0-9_]*)[ \t]*:")


def sniff(head: bytes) -> bool:
    """ASCII ``key:value`` lines ending at a form feed, with the x and y keywords.

    The header is text up to the first 0x0C; the first keyword (after ``*`` comments) must
    be a TAG keyword, and ``x`` and ``y`` must both be there.
    """
    end = head.find(b"\x0c")
    if end <= 0:
        return False
    header = head[:end]
    if not header.isascii() or any(b < 9 or 13 < b < 32 for b in header):
        return False
    keys = []
    for line in header.splitlines():
        keys += [m.group(1).lower() for m in _PAIR.finditer(line.split(b"*", 1)[0])]
    if not keys or keys[0].decode() not in KNOWN_KEYS:
        return False
    return b"x" in keys and b"y" in keys


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="sliceomatic",
            description="SliceOmatic TAG label file (.tag, one 8-bit label per voxel)",
            suffixes=(".tag", ".dcm.tag"),
            reader="segio_plugins.sliceomatic.reader:read",
            writer="segio_plugins.sliceomatic.writer:write",
            sniff=sniff,
            requires=("pydicom",),
            directory=True,
            read_options={
                "reference": "the DICOM image(s) the tags were drawn on (folder or files): "
                "their exact geometry instead of the header's 4-decimal one",
                "labels": "a label table file (any format segio.labels.tables reads) naming "
                "the label values",
                "preset": "named label set: alberta (1 muscle, 2 IMAT, 5 VAT, 7 SAT)",
            },
            write_options={
                "reference": "the DICOM series the segmentation was drawn on: one .tag per "
                "image, named <image file>.tag, written into the folder given as output "
                "(a single image: the .tag file itself); header geometry and chksum "
                "from the images",
                "line_end": "lf (default) or crlf",
                "labels": "also write the names, colours and codes (which a .tag cannot "
                "hold) to this segio-json label table; read them back with labels=",
            },
        )
    ]
