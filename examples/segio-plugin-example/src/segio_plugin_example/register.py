"""Declares the ``npz-labelmap`` format to segio (the ``segio`` entry point's module).

segio imports this module at start-up, for every command, so it holds only the
declaration and the sniffer: the reader and writer are named as ``"module:function"``
strings and imported when a file is read or written.
"""

from __future__ import annotations

from segio.hookspecs import FormatSpec, hookimpl

#: The archive's first member. A ``.seg.npz`` is a zip file, as are 3MF files and any other
#: ``.npz``: the sniffer recognises this name in the first local file header instead.
MARKER = "segio_labelmap_v1"
_ZIP_MAGIC = b"PK\x03\x04"
_NAME_OFFSET = 30  # where a zip local file header stores the member's name
_MEMBER = (MARKER + ".npy").encode("ascii")


def sniff(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes) starts a ``.seg.npz`` archive."""
    name = head[_NAME_OFFSET : _NAME_OFFSET + len(_MEMBER)]
    return head.startswith(_ZIP_MAGIC) and name == _MEMBER


@hookimpl
def segio_formats() -> list[FormatSpec]:
    return [
        FormatSpec(
            name="npz-labelmap",
            description="NumPy .seg.npz labelmap (example plugin)",
            suffixes=(".seg.npz",),
            reader="segio_plugin_example.npz_labelmap:read",
            writer="segio_plugin_example.npz_labelmap:write",
            sniff=sniff,
        )
    ]
