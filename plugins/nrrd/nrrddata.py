"""Reading a NRRD payload: streamed straight into one preallocated array.

The header (:func:`.nrrdfile.read_header`) says where the data is; every source (the
header's own file after the header, or each detached data file) is positioned and checked
before the array exists. Untrusted headers stay inside their folder: detached files must
be regular files there (:func:`segio.fileio.inputs.referenced_file`), ``line skip`` and
``byte skip`` stay inside the named file, and the declared array must fit both in what the
files can hold (:func:`segio.fileio.limits.check_payload`) and in ``SEGIO_MAX_MEMORY``;
inflating stops at the declared size, 1 MiB at a time.
"""

from __future__ import annotations

import bz2
import math
import os
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from segio.errors import LimitError, ReadError
from segio.fileio import fastinflate
from segio.fileio.inputs import open_input, referenced_file
from segio.fileio.limits import check_allocation, check_payload, format_bytes

from .nrrdfile import MAX_BYTES, NrrdHeader, PathLike, fail, parse_numbers

_CHUNK = 1 << 20  # read/inflate granularity: all the memory reading needs beyond the array
_BZIP2_RATIO = 46_000_000  # bzip2 inflates at most ~45.9e6:1 (runs of runs)


def read_data(path: PathLike, header: NrrdHeader) -> npt.NDArray[Any]:
    """Read the payload into a native-endian C-order array of shape ``reversed(sizes)``.

    Every source (the header's own file, or each detached data file, resolved inside the
    header's folder) is first positioned past its skips and checked to hold its share of
    the array; only then is the array allocated once (within ``SEGIO_MAX_MEMORY``) and
    filled, so a lying header can make us allocate neither more than the files can back
    nor more than the limit. ``byte skip`` counts decompressed bytes for gzip/bzip2, as in
    Teem; ``-1`` (raw only) means the data ends the file.
    """
    encoding, dtype = header.encoding, header.dtype
    count = math.prod(header.sizes)
    if not header.sizes or (nbytes := count * dtype.itemsize) > MAX_BYTES:
        raise fail(path, f"unusable sizes {header.sizes}")
    sources = _sources(path, header)
    lines, skip = _skips(header.fields, encoding, path)
    share = nbytes // len(sources)
    for source, offset in sources:
        with _open_source(path, source) as f:
            _check_share(
                f,
                _locate(f, offset, lines, skip, share, encoding, path),
                share,
                skip,
                header,
                source,
                path,
            )
    check_allocation(nbytes, f"the {_shape_text(header.sizes)} {dtype.name} array", path=path)
    out = np.empty(count, dtype)
    view, values = out.view(np.uint8).data, count // len(sources)
    for n, (source, offset) in enumerate(sources):
        with _open_source(path, source) as f:
            _locate(f, offset, lines, skip, share, encoding, path)
            try:
                if encoding == "raw":
                    _fill_raw(f, view[n * share : (n + 1) * share], path)
                elif encoding == "ascii":
                    _fill_ascii(f, out[n * values : (n + 1) * values], path)
                else:
                    _fill_compressed(f, encoding, view[n * share : (n + 1) * share], skip, path)
            except (OSError, EOFError, zlib.error, ValueError) as exc:
                raise fail(path, f"cannot read the data of {source.name}: {exc}") from exc
    if not out.dtype.isnative:
        out = out.byteswap(inplace=True).view(out.dtype.newbyteorder("="))
    return out.reshape(header.sizes[::-1])


def _shape_text(sizes: tuple[int, ...]) -> str:
    return "x".join(map(str, sizes))


def _sources(path: PathLike, header: NrrdHeader) -> list[tuple[Path, int]]:
    """(file, offset) of each piece of the payload: the header's own file after the
    header, or each named data file from its start, resolved inside the header's folder."""
    if not header.data_files:
        if header.data_offset < 0:
            raise fail(path, "the header has neither attached data nor a 'data file'")
        return [(Path(path), header.data_offset)]
    resolved: dict[str, Path] = {}
    for name in header.data_files:
        if name not in resolved:
            resolved[name] = referenced_file(path, name, what="the data file")
    return [(resolved[name], 0) for name in header.data_files]


def _open_source(path: PathLike, source: Path) -> IO[bytes]:
    try:
        return open_input(source, what="the data file")
    except ReadError as exc:
        raise fail(path, f"{exc.reason} ({source.name})", "check the data file") from exc


def _skips(fields: Mapping[str, str], encoding: str, path: PathLike) -> tuple[int, int]:
    lines, skip = (
        parse_numbers(fields.get(n, "0"), n, path, int) for n in ("line skip", "byte skip")
    )
    if len(lines) != 1 or len(skip) != 1 or lines[0] < 0 or skip[0] < -1:
        raise fail(path, "line skip must be one number >= 0 and byte skip one number >= -1")
    if skip[0] == -1 and encoding != "raw":
        raise fail(path, "byte skip -1 is only defined for raw data", "re-save the file")
    return lines[0], skip[0]


def _locate(
    f: IO[bytes], offset: int, lines: int, skip: int, share: int, encoding: str, path: PathLike
) -> int:
    """Move ``f`` to where its data starts; return how many bytes remain from there.

    Skips never leave the file: ``line skip`` stops at its end, a raw ``byte skip`` must
    land inside it, and ``-1`` puts the start ``share`` bytes before the end, which must
    not be before the header or the skipped lines.
    """
    size = f.seek(0, os.SEEK_END)
    f.seek(offset)
    _skip_lines(f, lines, path)
    start = f.tell()
    if encoding in ("raw", "ascii") and skip:
        start = size - share if skip == -1 else start + skip
        if start < f.tell() or start > size:
            raise fail(
                path,
                f"byte skip {skip} puts the data outside the file ({size} bytes)",
                "the header is wrong or the file is truncated",
            )
        f.seek(start)
    return size - start


def _skip_lines(f: IO[bytes], count: int, path: PathLike) -> None:
    """Skip ``count`` lines, reading 1 MiB at a time (never past the end of the file)."""
    while count:
        chunk = f.read(_CHUNK)
        if not chunk:
            raise fail(path, "line skip goes past the end of the file")
        ends = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
        if len(ends) >= count:
            f.seek(int(ends[count - 1]) + 1 - len(chunk), os.SEEK_CUR)
            return
        count -= len(ends)


def _check_share(
    f: IO[bytes],
    avail: int,
    share: int,
    skip: int,
    header: NrrdHeader,
    source: Path,
    path: PathLike,
) -> None:
    """Refuse a source that cannot hold its ``share`` of the declared array."""
    encoding = header.encoding
    what = f"the {encoding} data" + (f" in {source.name}" if header.data_files else "")
    if encoding in ("raw", "gzip"):
        declared = share + (skip if encoding == "gzip" else 0)
        check_payload(declared, avail, what, compressed=encoding == "gzip", path=path)
        return
    if encoding == "bzip2":
        most = (share + skip) if avail * _BZIP2_RATIO < share + skip else 0
    else:  # ascii: each value takes at least one digit and one separator
        most = share if (avail // 2 + 1) * header.dtype.itemsize < share else 0
    if most:
        raise LimitError(
            f"{what} declares {format_bytes(most)} but {avail} bytes cannot hold that much",
            path=path,
            hint="the header is wrong or the file is truncated",
        )


def _fill_raw(f: IO[bytes], view: memoryview, path: PathLike) -> None:
    """Read exactly ``len(view)`` bytes straight into it (no copy); more or fewer is an error."""
    pos = 0
    while pos < len(view) and (n := f.readinto(view[pos:])):  # type: ignore[attr-defined]
        pos += n
    if pos < len(view) or f.read(1):
        got = f"{pos} bytes" if pos < len(view) else "more bytes"
        raise fail(path, f"raw data has {got}; sizes x type need {len(view)}", "check skips")


def _fill_compressed(
    f: IO[bytes], encoding: str, view: memoryview, skip: int, path: PathLike
) -> None:
    """Inflate the stream at ``f``'s position into ``view``, gzip with the fastest engine.

    A fast engine (:mod:`segio.fileio.fastinflate`) is a fast path only: when it raises
    anything or the stream is refused, the data is inflated again with zlib from the same
    position, and zlib's bytes or zlib's error count.
    """
    start = f.tell()

    def fill(engine: fastinflate.Engine) -> None:
        f.seek(start)
        _fill(_inflate(f, encoding, path, engine), view, skip, path)

    if encoding == "gzip":
        fastinflate.zlib_decides(fill)
    else:  # bzip2: the standard library's alone
        fill(fastinflate.ZLIB)


def _inflate(
    f: IO[bytes], encoding: str, path: PathLike, engine: fastinflate.Engine
) -> Iterator[bytes]:
    """Yield the decompressed stream in pieces of at most _CHUNK bytes.

    Concatenated members are accepted (as gzip(1) does); anything else after the last
    member, or a stream that stops before its end marker, is an error. The consumer stops
    pulling once it has what it needs, so a bomb inflates at most one piece too far.
    ``engine`` inflates gzip; bzip2 is always the standard library's.
    """
    gz = encoding == "gzip"
    d: Any = engine.decompressobj(47) if gz else bz2.BZ2Decompressor()  # 47: gzip or zlib
    pending = b""
    while True:
        data = d.unconsumed_tail if gz else b""
        if more := (not data if gz else d.needs_input):
            data, pending = pending or f.read(_CHUNK), b""
        if out := d.decompress(data, _CHUNK):
            yield out
        elif more and not data:
            raise fail(path, f"the {encoding} stream is truncated")
        if d.eof:
            if not (rest := d.unused_data or f.read(_CHUNK)):
                return
            if not rest.startswith(b"\x1f\x8b" if gz else b"BZh"):
                raise fail(path, f"{len(rest)}+ bytes of garbage after the {encoding} stream")
            d, pending = (engine.decompressobj(47) if gz else bz2.BZ2Decompressor()), rest


def _fill(pieces: Iterator[bytes], view: memoryview, skip: int, path: PathLike) -> None:
    """Copy a byte stream into ``view`` after dropping ``skip`` bytes; it must fit exactly."""
    pos = 0
    for piece in pieces:
        data, skip = memoryview(piece)[skip:], max(0, skip - len(piece))
        n = min(len(data), len(view) - pos)
        view[pos : pos + n] = data[:n]
        pos += n
        if n < len(data):
            raise fail(path, "the data is longer than sizes x type", "check type and sizes")
    if pos < len(view):
        raise fail(path, f"the data holds {pos} bytes; sizes x type need {len(view)}")


def _fill_ascii(f: IO[bytes], out: npt.NDArray[Any], path: PathLike) -> None:
    """Parse whitespace/comma separated numbers 1 MiB at a time (numpy converts them)."""
    kind = {"f": np.float64, "i": np.int64, "u": np.uint64}[out.dtype.kind]
    pos, carry = 0, b""
    while True:
        data = carry + (chunk := f.read(_CHUNK))
        cut = max(map(data.rfind, b" \n\t\r,")) + 1 if chunk else len(data)  # whole tokens
        tokens, carry = data[:cut].replace(b",", b" ").split(), data[cut:]
        if len(tokens) > out.size - pos or len(carry) > _CHUNK:
            raise fail(path, f"the ascii data has more than the {out.size} values of sizes")
        if tokens:
            values = _ascii_values(tokens, kind, out.dtype, path)
            with np.errstate(over="ignore"):  # as in C, too large a float becomes inf
                out[pos : pos + len(tokens)] = values
            pos += len(tokens)
        if not chunk:
            break
    if pos < out.size:
        raise fail(path, f"the ascii data has {pos} values; sizes need {out.size}")


def _ascii_values(
    tokens: list[bytes], kind: npt.DTypeLike, dtype: np.dtype[Any], path: PathLike
) -> npt.NDArray[Any]:
    """Numbers from ascii tokens; out-of-range integers are a ReadError, never an
    OverflowError (raised outside the handler, so none is chained behind it)."""
    try:
        values = np.array(tokens).astype(kind)
    except OverflowError:
        values = None
    if values is None or (
        kind is not np.float64
        and (values.min() < np.iinfo(dtype).min or values.max() > np.iinfo(dtype).max)
    ):
        raise fail(path, f"ascii values out of range for {dtype.name}")
    return values
