"""Entry point of the OsiriX/Horos ROI plugin: declarations and cheap sniffers only.

"OsiriX ROI" is several on-disk formats (spec ``legacy-and-meshes.md`` §1): the Export
ROIs plugin output (XML plist, JSON, CSV), the ROI-window exports (XML plist, JSON list),
the "OsiriX ROI SR" DICOM objects and the native ``.roi``/``.rois_series`` archives. All
are one segio format, told apart by content; the native archives are recognised only to
say clearly that they cannot be read.
"""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl

#: Keys only OsiriX/Horos ROI exports have (plist ``<key>``s or JSON names).
#: A single-ROI Horos XML has sorted keys: DataSummary and DataValues (a value per pixel,
#: often kilobytes) come before ROIPoints, so they identify it within the first 4 KiB too.
_PLIST_KEYS = (
    b"<key>Images</key>",
    b"<key>ROIPoints</key>",
    b"<key>ROI array</key>",
    b"<key>DataSummary</key>",
    b"<key>DataValues</key>",
)
_JSON_KEYS = (b'"Point_mm"', b'"Point_px"', b'"ROI3DPoints"', b'"ROIPoints"')
TYPEDSTREAM = b"\x04\x0bstreamtyped"
BASIC_TEXT_SR = b"1.2.840.10008.5.1.4.1.1.88.11"


def sniff_plist(head: bytes) -> bool:
    """An XML plist holding an Export ROIs or ROI-window export."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return start.startswith((b"<?xml", b"<!DOCTYPE plist", b"<plist")) and any(
        key in head for key in _PLIST_KEYS
    )


def sniff_json(head: bytes) -> bool:
    """A JSON Export ROIs file (``{"Images": ...}``) or ROI-info list (``[{"ROI3DPoints"...``)."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"{"):
        return b'"Images"' in head and (b'"ROIs"' in head or any(k in head for k in _JSON_KEYS))
    return start.startswith(b"[") and any(key in head for key in _JSON_KEYS)


def sniff_csv(head: bytes) -> bool:
    """The Export ROIs CSV: its header line starts with ``ImageNo,RoiNo``."""
    return head.lstrip(b"\xef\xbb\xbf").startswith(b"ImageNo,RoiNo")


def sniff_sr(head: bytes) -> bool:
    """An "OsiriX ROI SR" DICOM object (Basic Text SR by OsiriX or Horos)."""
    if head[128:132] != b"DICM" or BASIC_TEXT_SR not in head:
        return False
    return b"OsiriX" in head or b"Horos" in head


def sniff_archive(head: bytes) -> bool:
    """A native archive (typedstream, NSKeyedArchiver) or an export saved as binary plist."""
    if head.startswith(TYPEDSTREAM):
        return True
    return head.startswith(b"bplist00") and any(
        key in head for key in (b"NSKeyedArchiver", b"Images", b"ROIPoints", b"ROI array")
    )


def sniff(head: bytes) -> bool:
    return (
        sniff_plist(head)
        or sniff_json(head)
        or sniff_csv(head)
        or sniff_sr(head)
        or sniff_archive(head)
    )


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="osirix",
            description="OsiriX/Horos ROIs: Export ROIs XML/JSON/CSV, ROI-window exports, "
            "ROI SR DICOM objects or a folder of them (read only)",
            suffixes=(".rois_series", ".roi", ".xml", ".json", ".csv", ".plist", ".dcm"),
            reader="segio_plugins.osirix.reader:read",
            sniff=sniff,
            requires=("pydicom",),
            directory=True,
            read_options={
                "reference": "the image series the ROIs were drawn on (folder or files): "
                "rasterise onto its grid; required to place (and convert) exports holding "
                "pixel coordinates only (ROI SR, Horos ROI-window XML), which are otherwise "
                "only listed",
            },
        )
    ]
