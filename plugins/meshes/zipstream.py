"""A zip entry deflated in parallel threads while it is written (3MF's model part).

:mod:`zipfile` deflates an entry written through ``ZipFile.open(name, "w")`` with zlib, in
the writing thread: the 165 MB model of a 24-segment CT segmentation took it 6 s at zlib's
default level. Here the entry is cut into pieces of :data:`PIECE` bytes, each deflated on its
own by a pool of threads (zlib and ISA-L release the GIL) while the writer formats the next
rows, as pigz does: every piece ends with a sync flush (an empty stored block that aligns the
stream to a byte) and the entry ends with an empty final block, so the pieces concatenated
are one valid deflate stream that any inflater reads. ISA-L (python-isal) deflates at its
level 1 when it is installed, several times faster than zlib at its level 1, which is used
otherwise.

zipfile still writes the container (headers, CRC-32, sizes, ZIP64): only the compressor of
the entry is replaced, the object that ``_ZipWriteFile`` keeps in ``_compressor``. Where a
Python keeps no such attribute, zipfile's own zlib deflates the entry (the same file, slower).
"""

from __future__ import annotations

import os
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import IO

#: Bytes deflated as one piece: large enough that a piece's flush (5 bytes) and its fresh
#: dictionary cost nothing measurable, small enough to spread over the threads.
PIECE = 1 << 22
#: zlib's level when ISA-L is missing: the fastest, a fifth of the time of the default (6)
#: for a file a sixth larger.
LEVEL = 1


def _deflater() -> tuple[ModuleType, int]:
    """ISA-L's zlib-compatible module at its level 1, or zlib at :data:`LEVEL`."""
    try:
        from isal import isal_zlib
    except ImportError:
        import zlib

        return zlib, LEVEL
    return isal_zlib, 1


def _deflate(module: ModuleType, level: int, data: list[bytes]) -> bytes:
    """Raw deflate of one piece (the writes it was collected from, not joined first),
    ending on a sync flush (byte-aligned, not final)."""
    engine = module.compressobj(level, module.DEFLATED, -15)
    out = [engine.compress(chunk) for chunk in data]
    out.append(engine.flush(module.Z_SYNC_FLUSH))
    return b"".join(out)


class ParallelDeflate:
    """zlib's ``compressobj`` interface (``compress``, ``flush``) over a thread pool.

    ``compress`` collects data into pieces, hands each full piece to the pool and returns
    the deflated pieces that are ready, in order; at most two pieces per thread wait, so
    memory stays bounded whatever the size of the entry. ``flush`` returns the rest and the
    final block.
    """

    def __init__(self, count: int | None = None) -> None:
        self._module, self._level = _deflater()
        count = count or threads()
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="segio-deflate")
        self._waiting: deque[Future[bytes]] = deque()
        self._limit = 2 * count
        self._buffer: list[bytes] = []
        self._buffered = 0

    def compress(self, data: bytes) -> bytes:
        self._buffer.append(bytes(data))
        self._buffered += len(data)
        if self._buffered >= PIECE:
            self._submit()
        done = []
        while self._waiting and (self._waiting[0].done() or len(self._waiting) > self._limit):
            done.append(self._waiting.popleft().result())
        return b"".join(done)

    def flush(self, mode: int | None = None) -> bytes:
        """Everything still deflating, then the final block (the ``mode`` zipfile passes
        is always the final flush)."""
        if self._buffered:
            self._submit()
        done = [future.result() for future in self._waiting]
        self._waiting.clear()
        final = self._module.compressobj(self._level, self._module.DEFLATED, -15).flush()
        self.close()
        return b"".join(done) + bytes(final)

    def close(self) -> None:
        """Stop the threads (what waits is dropped: the entry failed)."""
        for future in self._waiting:
            future.cancel()
        self._pool.shutdown(wait=True)

    def _submit(self) -> None:
        data = self._buffer
        self._buffer, self._buffered = [], 0
        self._waiting.append(self._pool.submit(_deflate, self._module, self._level, data))


def threads() -> int:
    """Threads for formatting and for deflating: the processor's cores, at most four."""
    return min(4, os.cpu_count() or 1)


def in_order(jobs: Iterable[Callable[[], bytes]], count: int | None = None) -> Iterator[bytes]:
    """The results of ``jobs`` in their order, computed by ``count`` threads.

    Jobs are started two per thread ahead of the one being returned, so memory holds a
    few results at a time however many jobs there are. A job that raises stops the rest:
    the exception comes out here, after the threads have been stopped.
    """
    width = count or threads()
    waiting: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(width, thread_name_prefix="segio-format") as pool:
        try:
            for job in jobs:
                waiting.append(pool.submit(job))
                if len(waiting) > 2 * width:
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()
        finally:
            for future in waiting:
                future.cancel()


@contextmanager
def deflated_entry(
    package: zipfile.ZipFile, name: str, *, large: bool = False
) -> Iterator[IO[bytes]]:
    """A writable entry of ``package``, deflated by :class:`ParallelDeflate`.

    ``large``: the entry may pass 2 GiB, so zipfile writes ZIP64 headers for it (it must
    know before the first byte, as it writes the local header first).
    """
    parallel = None
    try:
        with package.open(name, "w", force_zip64=large) as stream:
            if getattr(stream, "_compressor", None) is not None:
                parallel = ParallelDeflate()
                stream._compressor = parallel  # type: ignore[attr-defined]
            yield stream  # closing the entry flushes the compressor
    finally:
        if parallel is not None:
            parallel.close()
