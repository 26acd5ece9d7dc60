"""Which library inflates deflate streams: zlib-ng or ISA-L when installed, else zlib.

Inflating a gzip ``.seg.nrrd`` with the standard library's zlib takes longer than
everything else a read does. zlib-ng (``zlib-ng`` on PyPI, a segio dependency) inflates
the long runs of a labelmap 7 to 14 times faster (the benchmark's 104- and 24-segment
files), ISA-L (``isal``) about 5 times;
both read exactly the streams zlib reads and give exactly its bytes, and both offer
zlib's ``decompressobj`` (``max_length``, ``unconsumed_tail``, ``unused_data``, ``eof``),
so the readers' bounded loops run unchanged on either.

They are still a second implementation, so callers use them as a fast path only: when
the fast engine raises anything, or the stream turns out wrong (truncated, too long, a
bomb), the caller inflates again with :data:`ZLIB`, whose verdict (its bytes or its
error message) is the one that counts. A damaged file therefore gets the same one-line
error whatever is installed.

``SEGIO_INFLATE`` chooses: ``auto`` (the default: the first of zlib-ng, ISA-L, zlib that
imports), ``zlib`` (the standard library only, as segio always did), ``zlib-ng`` or
``isal`` (that one, or zlib when it is not installed). The engine is looked up on every
call (a dictionary lookup once imported), so tests can switch it per read.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from segio.errors import ValidationError

if TYPE_CHECKING:
    import gzip

__all__ = ["ENGINES", "VARIABLE", "ZLIB", "Engine", "engine", "gzip_file", "load", "zlib_decides"]

T = TypeVar("T")

#: The setting that chooses the inflate library.
VARIABLE = "SEGIO_INFLATE"


class Engine(NamedTuple):
    """A zlib-compatible inflater: ``decompressobj(wbits)`` and the exceptions it raises.

    (A NamedTuple rather than a dataclass: this module is imported by every reader of
    deflated data, and a dataclass takes ten times longer to define.)
    """

    name: str
    decompressobj: Callable[[int], Any]
    errors: tuple[type[BaseException], ...]

    @property
    def plain(self) -> bool:
        """True for the standard library's zlib, the engine whose verdict counts."""
        return self.name == "zlib"


#: The standard library's zlib: the reference every fast engine falls back to.
ZLIB = Engine("zlib", zlib.decompressobj, (zlib.error,))


# Both libraries' stubs declare ``error`` as an instance; it is the exception class.


def _zlib_ng() -> Engine:
    from zlib_ng import zlib_ng

    return Engine("zlib-ng", zlib_ng.decompressobj, (cast(type[Exception], zlib_ng.error),))


def _isal() -> Engine:
    from isal import isal_zlib

    return Engine("isal", isal_zlib.decompressobj, (cast(type[Exception], isal_zlib.error),))


#: The engines by name, fastest on labelmaps first (the order ``auto`` tries them in).
ENGINES: dict[str, Callable[[], Engine]] = {
    "zlib-ng": _zlib_ng,
    "isal": _isal,
    "zlib": lambda: ZLIB,
}


@cache
def load(name: str) -> Engine | None:
    """The engine ``name``, imported on first use; None when its library is not installed."""
    try:
        return ENGINES[name]()
    except ImportError:
        return None


def gzip_file(engine: Engine) -> type[gzip.GzipFile]:
    """The engine's ``gzip.GzipFile``: its own subclass (zlib-ng's, ISA-L's), or gzip's."""
    if engine.name == "zlib-ng":
        from zlib_ng import gzip_ng

        return gzip_ng.GzipFile
    if engine.name == "isal":
        from isal import igzip

        return igzip.GzipFile
    import gzip

    return gzip.GzipFile


def engine() -> Engine:
    """The engine ``SEGIO_INFLATE`` asks for (see the module's docstring)."""
    choice = os.environ.get(VARIABLE, "").strip().lower() or "auto"
    if choice == "auto":
        return next(e for e in map(load, ENGINES) if e is not None)
    if choice not in ENGINES:
        raise ValidationError(
            f"{VARIABLE}={choice!r} is not an inflate engine",
            hint="use auto, " + ", ".join(ENGINES),
        )
    return load(choice) or ZLIB


def zlib_decides(inflate: Callable[[Engine], T]) -> T:
    """``inflate(engine)`` with the chosen engine and, when anything goes wrong with a fast
    one (its error, a refused stream), again with zlib, whose result or error counts: a
    fast engine is a speed path, never a second verdict. ``inflate`` must start over
    (seek back) when called again."""
    fast = engine()
    if not fast.plain:
        with contextlib.suppress(Exception):
            return inflate(fast)
    return inflate(ZLIB)
