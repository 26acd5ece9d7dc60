"""A format plugin that fails the way a careless one would, for the error-path tests.

Its reader and writer raise what third-party code raises (``ValueError``,
``OverflowError``, ``MemoryError``, an ``OSError`` naming the staged temporary, a
``SegioError`` with an empty reason) or warn thousands of times, chosen by the ``how``
option or the ``CRASH_HOW`` environment variable (the command line cannot pass options to
``info``). Register it with ``registry.register(Plugin())``; files end in ``.crash``.
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any

from segio.errors import LimitError, ReadError, WriteError
from segio.fileio.outputs import OutputFiles
from segio.hookspecs import FormatSpec, hookimpl
from segio.model import Segmentation
from segio.registry import Registry
from segio.testing.synthetic import small_segmentation

_RAISED: dict[str, BaseException] = {
    "valueerror": ValueError("cannot reshape array of size 3 into shape (2,2)"),
    "overflow": OverflowError("Python int too large to convert to C long"),
    "memory": MemoryError(),
    "empty": ValueError(),
    "segio-empty": ReadError(""),
    "recursion": RecursionError("maximum recursion depth exceeded"),
    "limit": LimitError("the labelmap needs 9 GB"),  # names no file
}


def read(path: Path, *, how: str | None = None) -> Segmentation:
    how = how or os.environ.get("CRASH_HOW", "valueerror")
    if how == "warn":
        count = int(os.environ.get("CRASH_WARNINGS", "1000"))
        for n in range(count):
            warnings.warn(
                f"slice {n}: label {n * 7} of 'segment {n}' is out of range", stacklevel=1
            )
        warnings.warn(f"{path}: the header has 3 unknown fields", stacklevel=1)
        return small_segmentation()
    if how == "returns":
        return str(path)  # a careless reader returns anything
    raise _RAISED[how]


def write(segmentation: Segmentation, path: Path, files: OutputFiles, *, how: str = "") -> None:
    staged = files.stage(path)
    staged.write_bytes(b"partial")
    if how == "segio":
        raise WriteError("cannot encode the labels", path=staged)
    if how == "segio-message":
        raise WriteError(f"nibabel refused {staged}: bad header")
    if how == "oserror":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(staged))
    if how == "valueerror":
        raise ValueError(f"cannot write {staged}: value out of range")
    if how in _RAISED:
        raise _RAISED[how]


class Plugin:
    @hookimpl
    def segio_formats(self) -> list[FormatSpec]:
        return [
            FormatSpec(
                name="crash",
                description="fails like a careless plugin (tests only)",
                suffixes=(".crash",),
                reader=f"{__name__}:read",
                writer=f"{__name__}:write",
                read_options={"how": "what to raise"},
                write_options={"how": "what to raise"},
            )
        ]


def crashing_registry(**kwargs: Any) -> Registry:
    """The installed formats plus ``crash``."""
    registry = Registry(**kwargs)
    registry.register(Plugin())
    return registry
