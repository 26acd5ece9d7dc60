"""Entry point of the NIfTI plugin: declarations only (nibabel is imported on use)."""

from __future__ import annotations

import zlib

from segio.hookspecs import FormatSpec, hookimpl


def sniff_nifti(head: bytes) -> bool:
    """NIfTI-1 (magic at byte 344) or NIfTI-2 (at byte 4), gzip-compressed or not."""
    if head.startswith(b"\x1f\x8b"):
        head = _inflated_head(head)
    return head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] in (b"n+2\x00", b"ni2\x00")


def _inflated_head(data: bytes, size: int = 540) -> bytes:
    """The first ``size`` inflated bytes of a gzip file's head, across members (a header
    may be split over several, as concatenated gzip files are)."""
    out = b""
    while data and len(out) < size:
        engine = zlib.decompressobj(wbits=31)
        try:
            out += engine.decompress(data, size - len(out))
        except zlib.error:
            break
        if not engine.eof or not engine.unused_data.startswith(b"\x1f\x8b"):
            break
        data = engine.unused_data
    return out


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="nifti",
            description="NIfTI labelmap (.nii, .nii.gz) with a label-table sidecar",
            suffixes=(".nii.gz", ".nii"),
            reader="segio_plugins.nifti.nifti:read",
            writer="segio_plugins.nifti.nifti:write",
            sniff=sniff_nifti,
            requires=("nibabel",),
            extra="nifti",
            read_options={
                "labels": "label table giving names/colours (default: a sidecar next to the "
                "file, else a label table in the NIfTI header extension)",
            },
            write_options={
                "sidecar": "label table format: segio-json (default), dcmqi-json, slicer-csv, "
                "slicer-ctbl, itksnap, freesurfer, nnunet, json-map or none",
                "layers": "overlapping segments: 4d (one 4D image, default) or split (one file "
                "per layer)",
            },
        )
    ]
