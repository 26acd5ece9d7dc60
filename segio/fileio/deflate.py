"""Deflate both ways: compressed on all cores, inflated never past what is expected.

:func:`inflate` is how every reader inflates a whole zlib, gzip or raw deflate block from an
untrusted file: it stops at the size the header promised, so a small crafted stream cannot
inflate into gigabytes (a decompression bomb).

One deflate stream compressed on all cores: for gzip NRRD and deflated DICOM alike.

Data written to a :class:`ParallelDeflate` is cut into blocks that threads compress at
once (zlib releases the GIL). Each block is raw deflate primed with the previous 32 KiB
as preset dictionary and ends on a sync flush, only the last one finishing the stream, so
the blocks join into one ordinary stream (pigz's method) that every reader inflates, and
whose size stays within a few bytes per block of a serial compress.
"""

from __future__ import annotations

import importlib
import os
import zlib
from collections import deque
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from segio.errors import ReadError
from segio.fileio import fastinflate

if TYPE_CHECKING:  # concurrent.futures (with logging) is imported by writers only
    from concurrent.futures import Future

_WINDOW = 32768
#: zlib ``wbits`` for the three containers of a deflate stream.
ZLIB, GZIP, RAW = zlib.MAX_WBITS, 16 + zlib.MAX_WBITS, -zlib.MAX_WBITS


def inflate(
    data: bytes | memoryview,
    size: int,
    *,
    wbits: int = ZLIB,
    what: str = "the compressed data",
    path: str | os.PathLike[str] | None = None,
    exact: bool = True,
) -> bytes:
    """Inflate ``data`` into at most ``size`` bytes; more is refused, not produced.

    With ``exact`` (the default) fewer bytes are refused too, since a header that
    declares the size of what a stream holds is then wrong or the stream truncated, and so
    is a stream cut before its end (a zlib or gzip checksum that never comes).
    Errors are :class:`~segio.errors.ReadError` naming ``what`` and ``path``.

    The fastest installed engine (:mod:`segio.fileio.fastinflate`) inflates first; when
    it fails or the stream is refused, zlib inflates again and its verdict counts, so
    the message is zlib's whatever is installed.
    """
    return fastinflate.zlib_decides(
        lambda engine: _inflate(engine, data, size, wbits, what, path, exact)
    )


def _inflate(
    engine: fastinflate.Engine,
    data: bytes | memoryview,
    size: int,
    wbits: int,
    what: str,
    path: str | os.PathLike[str] | None,
    exact: bool,
) -> bytes:
    decompressor = engine.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, size) if size > 0 else b""
        tail = decompressor.unconsumed_tail or b""
        overflow = decompressor.decompress(tail, 1) if not decompressor.eof else b""
    except engine.errors as exc:
        raise ReadError(f"{what} cannot be inflated: {exc}", path=path) from exc
    if overflow or (len(out) == size and not decompressor.eof and decompressor.unconsumed_tail):
        raise ReadError(
            f"{what} inflates to more than the {size} bytes it should hold",
            path=path,
            hint="the file is corrupt, or crafted as a decompression bomb",
        )
    if exact and (len(out) != size or not decompressor.eof):
        raise ReadError(
            f"{what} inflates to {len(out)} bytes instead of {size}"
            if len(out) != size
            else f"{what} ends before its end marker",
            path=path,
            hint="the file is truncated or corrupt",
        )
    return bytes(out)


def _engine() -> Any:
    """zlib-ng when installed (the same streams, about 1.6 times faster), else zlib."""
    try:
        return importlib.import_module("zlib_ng.zlib_ng")
    except ImportError:
        return zlib


class ParallelDeflate:
    """A file-like sink writing the raw deflate stream of everything written to ``handle``.

    ``crc32`` and ``size`` describe the uncompressed input (what a gzip trailer needs);
    ``written`` counts the compressed bytes. Use as a context manager: leaving it without
    an exception finishes the stream.
    """

    def __init__(
        self,
        handle: IO[bytes],
        *,
        level: int = 6,
        mem_level: int = 8,
        block: int = 8 << 20,
        threads: int | None = None,
    ) -> None:
        self.handle = handle
        self.level, self.mem_level, self.block = level, mem_level, block
        self.crc32 = self.size = self.written = 0
        self._pending = bytearray()
        self._window = b""
        from concurrent.futures import ThreadPoolExecutor

        self._workers = max(1, threads or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self._workers)
        self._queue: deque[Future[bytes]] = deque()

    def write(self, data: Any) -> None:
        """Compress ``data``; it must not change afterwards (whole blocks are not copied)."""
        view = memoryview(data).cast("B")
        self.crc32 = zlib.crc32(view, self.crc32)
        self.size += view.nbytes
        if self._pending:
            take = min(self.block - len(self._pending), view.nbytes)
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == self.block:
                self._submit(bytes(self._pending), final=False)
                self._pending = bytearray()
        while view.nbytes >= self.block:  # whole blocks go to the threads as views
            self._submit(view[: self.block], final=False)
            view = view[self.block :]
        self._pending += view

    def _submit(self, chunk: bytes | memoryview, *, final: bool) -> None:
        self._queue.append(self._pool.submit(self._deflate, chunk, self._window, final))
        self._window = bytes(chunk[-_WINDOW:])
        while len(self._queue) > 2 * self._workers or (final and self._queue):
            compressed = self._queue.popleft().result()
            self.handle.write(compressed)
            self.written += len(compressed)

    def _deflate(self, chunk: bytes | memoryview, window: bytes, final: bool) -> bytes:
        engine = _engine()
        options: tuple[Any, ...] = (self.level, zlib.DEFLATED, -15, self.mem_level)
        if window:
            options += (zlib.Z_DEFAULT_STRATEGY, window)
        compressor = engine.compressobj(*options)
        flush = zlib.Z_FINISH if final else zlib.Z_SYNC_FLUSH
        return bytes(compressor.compress(chunk) + compressor.flush(flush))

    def __enter__(self) -> ParallelDeflate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._submit(bytes(self._pending), final=True)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
