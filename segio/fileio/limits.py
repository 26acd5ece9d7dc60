"""How much memory a file may make segio allocate, checked before the allocation.

A header, a coordinate or a label value is a claim, not a fact: a 360-byte NIfTI can
declare 1900x1900x1000 voxels, a mesh can put one vertex 1e5 mm away, a labelmap can hold
the value 4294967295. Readers check every such claim here *before* allocating:

- :func:`check_payload` compares what a header declares with what the file can hold (raw
  bytes one for one, deflate at most :data:`MAX_DEFLATE_RATIO` to one);
- :func:`check_allocation` and :func:`check_grid` compare what an allocation would take
  with one limit, ``SEGIO_MAX_MEMORY`` (bytes, or with a unit: ``8G``, ``512MiB``), which
  defaults to half of the machine's memory and is also the batch runner's budget.

Both raise :class:`~segio.errors.LimitError`, which says what would be needed and how to
raise the limit.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable

from segio.errors import LimitError, ValidationError

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "MAX_DEFLATE_RATIO",
    "check_allocation",
    "check_grid",
    "check_payload",
    "format_bytes",
    "memory_limit",
]

#: The one setting that raises (or lowers) every memory limit.
ENVIRONMENT_VARIABLE = "SEGIO_MAX_MEMORY"
#: Deflate cannot compress better than about 1032:1 (a 258-byte match in 2 bits); a zlib or
#: gzip stream of n bytes therefore inflates to at most this many times n bytes.
MAX_DEFLATE_RATIO = 1032
_FALLBACK_LIMIT = 8 << 30  # where the machine's memory cannot be read
_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 1 << 10, "mi": 1 << 20}
_UNITS |= {"gi": 1 << 30, "ti": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]i?)?b?\s*", re.IGNORECASE)


def memory_limit() -> int:
    """The most bytes one array (or one file's arrays) may take, from ``SEGIO_MAX_MEMORY``."""
    text = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not text:
        return _default_limit()
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValidationError(
            f"{ENVIRONMENT_VARIABLE}={text!r} is not a size",
            hint="give bytes or a number with a unit, such as 8G or 512MiB",
        )
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def _default_limit() -> int:
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return _FALLBACK_LIMIT
    return max(physical // 2, 1 << 30)


def format_bytes(count: float) -> str:
    """``3.6 GB``: sizes in messages, in decimal units as file managers show them."""
    # An integer beyond the float range (a grid from a vertex at 1e308) would overflow.
    count = float(count) if abs(count) < 1e300 else math.inf
    if not math.isfinite(count):
        return "an unbounded amount"
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(count) < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def check_allocation(
    nbytes: int | float, what: str, *, path: str | os.PathLike[str] | None = None
) -> None:
    """Refuse an allocation of ``nbytes`` for ``what`` that exceeds :func:`memory_limit`."""
    limit = memory_limit()
    nbytes = nbytes if abs(nbytes) < 1e300 else math.inf  # beyond float: no OverflowError
    if not nbytes <= limit:  # also refuses NaN
        raise LimitError(
            f"{what} would need {format_bytes(nbytes)} of memory, more than the limit of "
            f"{format_bytes(limit)}",
            path=path,
            hint=f"if the file is genuine, raise the limit with {ENVIRONMENT_VARIABLE}, "
            f"for example {ENVIRONMENT_VARIABLE}={_suggest(nbytes)}"
            if math.isfinite(nbytes)
            else "the file is corrupt or crafted",
        )


def check_grid(
    shape: Iterable[int | float],
    itemsize: int,
    what: str,
    *,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse a grid of ``shape`` (computed from coordinates, say) too large to allocate.

    The product is taken in Python integers (or floats for non-finite sizes), so a huge
    or overflowing extent is refused rather than wrapped around.
    """
    dims = list(shape)
    if any(not math.isfinite(n) for n in dims):
        raise LimitError(f"{what} has an unbounded extent ({dims})", path=path)
    check_allocation(math.prod(max(int(n), 0) for n in dims) * itemsize, what, path=path)


def check_payload(
    declared: int,
    available: int,
    what: str,
    *,
    compressed: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse a header that declares more bytes than the file's ``available`` bytes hold.

    Raw data must be all there; deflated data can grow at most :data:`MAX_DEFLATE_RATIO`
    times. The declared size is then checked against :func:`memory_limit` too.
    """
    most = available * MAX_DEFLATE_RATIO + 64 if compressed else available
    if declared > most:
        held = f"{available} compressed bytes hold at most {format_bytes(most)}"
        raise LimitError(
            f"{what} declares {format_bytes(declared)} of data but "
            + (held if compressed else f"the file holds {format_bytes(available)}"),
            path=path,
            hint="the header is wrong or the file is truncated",
        )
    check_allocation(declared, what, path=path)


def _suggest(nbytes: float) -> str:
    return f"{max(math.ceil(nbytes / (1 << 30)), 1)}GiB"
