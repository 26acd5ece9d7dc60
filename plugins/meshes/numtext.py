"""Tables of numbers as text, formatted by numpy a block of rows at a time (3MF's XML).

Formatting a few million coordinates with ``'%.17g' % value`` costs Python a third of a
microsecond each, and the 3MF of a 24-segment CT segmentation holds three million of them.
Here the same text is made for whole columns at once:

- the 17 significant digits of a coordinate are computed exactly in floating point (the
  product with a power of ten split into two doubles by Dekker's exact product, then rounded
  half to even, as ``printf`` rounds), then split into the integer part and the fraction;
- digits become ASCII four at a time through tables of 4-character words (``uint32``), one
  table gather per four digits; leading zeros of the integer part and trailing zeros of the
  fraction come out of the same gather as NUL bytes, from a second half of the table chosen
  by whether a nonzero group lies beyond;
- a row is a fixed run of words (the literal text padded with NUL to whole words, then the
  number words) and a block of rows one ``uint32`` matrix; ``bytes.translate`` deletes every
  NUL in one pass and what is left is the text.

The result is ``'%.17g' % value`` (and ``'%d' % value``) byte for byte, so a file written
this way is the file the plain formatter writes: 17 significant digits, read back as the very
same double. Values outside ``1 <= |x| < 1e15`` (and zero), where ``%.17g`` prints an
exponent or more fraction digits than the cell holds, are formatted by Python: they are
rare among coordinates in millimetres, and the plain formatter is the definition anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Rows formatted per block: the temporaries of a block stay in the processor's cache.
BLOCK = 1 << 13
#: The fast range: ``1 <= |x| < 1e15``, and zero; Python formats the rest.
LOW, HIGH = 1.0, 1e15
_SPLIT = 134217729.0  # 2**27 + 1, Dekker's splitting constant for doubles
_WORD = np.dtype("<u4")  # four characters; little-endian, so its bytes are in text order
_FLAG = 10000  # tables of 4-digit groups: index g + _FLAG * (the other variant)


def _words(texts: Sequence[bytes]) -> NDArray[np.uint32]:
    """4-byte texts as words."""
    return np.frombuffer(b"".join(texts), _WORD).astype(_WORD)


def _digit_tables() -> dict[str, NDArray[np.uint32]]:
    full = [b"%04d" % g for g in range(10000)]
    lead = [t.lstrip(b"0").rjust(4, b"\0") for t in full]  # 0 -> four NULs
    trail = [t.rstrip(b"0").ljust(4, b"\0") for t in full]  # 0 -> four NULs
    units = [b"\0\0\x000", *lead[1:]]  # the last integer group: 0 prints as "0"
    three = [b"%03d" % g for g in range(1000)]
    first = [b"\0\x000", *(t.lstrip(b"0").rjust(3, b"\0") for t in three[1:])]
    return {
        # g + _FLAG * (a nonzero group lies to the left, or to the right for fractions)
        "upper": _words(lead + full),
        "units": _words(units + full),
        "fraction": _words(trail + full),
        # the last three integer digits and the point: g + 1000 * (a fraction follows)
        # + 2000 * (a nonzero group lies to the left)
        "point": _words(
            [t + b"\0" for t in first]
            + [t + b"." for t in first]
            + [t + b"\0" for t in three]
            + [t + b"." for t in three]
        ),
    }


def _floor_log10_pow2(e: int) -> int:
    """floor(log10(2**e)) for e >= 0, in exact integer arithmetic."""
    return len(str(2**e)) - 1


_TABLES = _digit_tables()
_FULL = _TABLES["fraction"][_FLAG:]  # four digits, zeros kept
# floor(log10(2**(e-1))) for the binary exponents e (1..50) of np.frexp in the fast range.
_LOG10_LOW = np.array([0] + [_floor_log10_pow2(e - 1) for e in range(1, 64)])
_POW10 = np.array([10.0**k for k in range(0, 18)])
_INT_POW10 = 10 ** np.arange(19, dtype=np.int64)
_SCALE = np.array([float(10**f) for f in range(18)])  # exact doubles
_SCALE_HIGH = _SCALE * _SPLIT - (_SCALE * _SPLIT - _SCALE)
_SCALE_LOW = _SCALE - _SCALE_HIGH


def _digits(x: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[Any]]:
    """Integer part, fraction (16 digits, zeros appended) and fast-range flags of
    ``'%.17g' % x``.

    For ``10**k <= |x| < 10**(k + 1)`` the 17 digits are ``D = round(|x| * 10**(16 - k))``,
    computed exactly: ``|x| * 10**f`` is the sum of two doubles (Shewchuk's Two-Product),
    the first at least ``1e16 > 2**53`` and so an even integer, which makes rounding the
    sum half to even the same as adding the second rounded half to even. ``f = 16 - k``
    of the digits are the fraction (``k >= 0`` in the fast range).
    """
    magnitude = np.abs(x)
    zero = magnitude == 0
    fast = ((magnitude >= LOW) & (magnitude < HIGH)) | zero
    plain = fast.all() and not zero.any()  # the usual block: nothing to stand in for
    usable = magnitude if plain else np.where(fast & ~zero, magnitude, 1.0)
    _, binary = np.frexp(usable)
    k = _LOG10_LOW[binary]
    k += usable >= _POW10[k + 1]
    f = 16 - k
    product = usable * _SCALE[f]
    split = usable * _SPLIT
    high = split - (split - usable)
    low = usable - high
    scale_high = _SCALE_HIGH[f]
    scale_low = _SCALE_LOW[f]
    error = product - high * scale_high
    error = low * scale_low - ((error - low * scale_high) - high * scale_low)
    digits = product.astype(np.int64) + np.rint(error).astype(np.int64)
    digits[zero] = 0
    integer, fraction = np.divmod(digits, _INT_POW10[f])
    fraction *= _INT_POW10[k]
    return integer, fraction, fast


def _groups(top: int) -> int:
    """Groups of four digits that ``top`` needs (at least one)."""
    return max(1, -(-len(str(top)) // 4))


class _Cells:
    """Where the cells of a block's columns are in its row matrix: each column's cell
    starts at ``starts[j]``; words are placed for all columns at once (a strided view
    when the cells are evenly spaced, as for x, y and z)."""

    def __init__(self, matrix: NDArray[np.uint32], starts: list[int]) -> None:
        self.matrix = matrix
        self.starts = starts
        steps = {b - a for a, b in pairwise(starts)}
        self.step = steps.pop() if len(steps) == 1 else None

    def put(self, offset: int, words: NDArray[np.uint32]) -> None:
        """``words`` (``n * columns``, row-major) into word ``offset`` of every cell."""
        table = words.reshape(len(self.matrix), len(self.starts))
        first = self.starts[0] + offset
        if self.step is not None or len(self.starts) == 1:
            step = self.step or 1
            self.matrix[:, first : first + step * (len(self.starts) - 1) + 1 : step] = table
        else:
            for j, start in enumerate(self.starts):
                self.matrix[:, start + offset] = table[:, j]


def _upper_words(
    value: NDArray[np.int64], count: int, cells: _Cells, at: int, left: NDArray[Any] | None = None
) -> NDArray[Any]:
    """``count`` leading groups of ``value`` (4 digits each, leading zeros as NUL unless
    ``left`` says a nonzero digit comes before) into cell words ``at...``; returns
    ``_FLAG`` where a nonzero digit came, else 0."""
    left = np.zeros(len(value), np.int64) if left is None else left
    for n in range(count):
        group = value // 10 ** (4 * (count - 1 - n)) % 10000
        cells.put(at + n, _TABLES["upper"][group + left])
        left |= (group != 0) * _FLAG
    return left


def _float_cells(x: NDArray[np.float64], upper: int, cells: _Cells) -> NDArray[Any]:
    """The words of the fast values of ``x`` (all columns, row-major) after each cell's
    sign word: ``upper`` groups of the integer part above its last three digits, those
    digits with the point, four groups of fraction (trailing zeros as NUL). Returns the
    fast-range flags."""
    integer, fraction, fast = _digits(x)
    thousands = integer // 1000
    left = _upper_words(thousands, upper, cells, 1) if upper else thousands != 0
    index = integer - thousands * 1000 + (fraction != 0) * 1000 + (left != 0) * 2000
    cells.put(1 + upper, _TABLES["point"][index])
    high, low = np.divmod(fraction, 10**8)
    groups = np.divmod(high, 10000) + np.divmod(low, 10000)
    # The last group drops its trailing zeros; the others are whole unless every group
    # after them is zero, which the rows ending in a zero group get right below.
    words = [_FULL[groups[0]], _FULL[groups[1]], _FULL[groups[2]], _TABLES["fraction"][groups[3]]]
    ending = np.flatnonzero(groups[3] == 0)
    if len(ending):
        right = np.zeros(len(ending), np.int64)
        for n in (3, 2, 1, 0):
            group = groups[n][ending]
            words[n][ending] = _TABLES["fraction"][group + right]
            right |= (group != 0) * _FLAG
    for n in range(4):
        cells.put(2 + upper + n, words[n])
    return fast


_SMALL = 10**6  # integers below this take one table gather per word (tables of 4 MB)
_small_tables: dict[bytes, NDArray[np.uint32]] = {}


def _small_table(key: bytes, make: Any) -> NDArray[np.uint32]:
    """A word per integer below :data:`_SMALL`, made once (``make()``) and kept."""
    table = _small_tables.get(key)
    if table is None:
        table = _small_tables[key] = np.ascontiguousarray(make(), _WORD)
    return table


def _int_cells(v: NDArray[np.int64], count: int, tops: NDArray[np.uint32], cells: _Cells) -> None:
    """``'%d' % v`` (all columns, row-major): first the word of the literal's last two
    characters and the digits above the ``count`` lower groups (``tops``, 100 words per
    column), then the groups.

    Below :data:`_SMALL` (a mesh of under a million vertices, one object of a 3MF), when
    every column's literal ends alike, both words come from tables indexed by the value
    itself: two gathers and no arithmetic.
    """
    columns = len(cells.starts)
    alike = np.array_equal(tops, np.tile(tops[:100], columns))
    if count == 1 and alike:
        units = _TABLES["units"]
        cells.put(0, _small_table(tops[:100].tobytes(), lambda: np.repeat(tops[:100], 10000))[v])
        whole = _small_table(
            b"units", lambda: np.concatenate([units[:10000], np.tile(units[10000:], 99)])
        )
        cells.put(1, whole[v])
        return
    scale = 10 ** (4 * count)
    head, rest = np.divmod(v, scale)
    if not alike:
        head = head + np.tile(np.arange(columns) * 100, len(v) // columns)
    cells.put(0, tops[head])
    left = (v >= scale) * _FLAG
    if count > 1:
        left = _upper_words(rest // 10000, count - 1, cells, 1, left)
        rest %= 10000
    cells.put(count, _TABLES["units"][rest + left])


def _head(piece: bytes) -> NDArray[np.uint32]:
    """Literal text as whole words, NUL-padded."""
    return _words([piece.ljust(-(-len(piece) // 4) * 4, b"\0")])


def _signed(piece: bytes) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """Literal text before a float: its words but the last, and the last word without and
    with a minus sign after the text."""
    size = -(-(len(piece) + 1) // 4) * 4
    plus, minus = piece.ljust(size, b"\0"), (piece + b"-").ljust(size, b"\0")
    return _words([plus[:-4]]), _words([plus[-4:], minus[-4:]])


def _topped(piece: bytes) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
    """Literal text before an integer: its words but the last two characters, and the
    table of the word holding those two characters and the top two digits (0..99)."""
    tail = piece[-2:].rjust(2, b"\0")
    tops = [tail + b"\0\0"] + [tail + (b"%d" % d).rjust(2, b"\0") for d in range(1, 100)]
    return _head(piece[: len(piece) - len(piece[-2:])]), _words(tops)


def rows(
    pieces: Sequence[bytes], table: NDArray[Any], *, floats: bool, block: int | None = None
) -> Iterator[bytes]:
    """The text of ``table``'s rows, block by block: ``pieces[0] v0 pieces[1] v1 ...``.

    ``pieces`` are the literal text around the ``table.shape[1]`` values of a row (one
    more piece than values, none containing a NUL). Floats are ``'%.17g'``, integers
    ``'%d'`` (non-negative, below ``10**18``): the same bytes as
    ``b''.join(pattern % tuple(row) for row in table)``.
    """
    columns = table.shape[1] if table.ndim == 2 else 0
    if not columns or len(pieces) != columns + 1:
        raise ValueError(f"a table of {columns} columns needs {columns + 1} pieces of text")
    if not floats and table.dtype.kind not in "iu":
        raise ValueError(f"integer cells need an integer table, not {table.dtype}")
    if any(b"\0" in piece for piece in pieces):
        raise ValueError("literal text cannot hold NUL bytes")
    count = 1
    if not floats and table.size:
        low, top = int(table.min()), int(table.max())
        if low < 0 or top >= 10**18:
            raise ValueError("integer cells take values in 0 .. 10**18 - 1")
        count = _groups(top // 100)
    if floats:
        signed = [_signed(piece) for piece in pieces[:columns]]
        heads = [words for words, _ in signed] + [_head(pieces[-1])]
    else:
        topped = [_topped(piece) for piece in pieces[:columns]]
        heads = [words for words, _ in topped] + [_head(pieces[-1])]
    if floats:
        signs = np.concatenate([words for _, words in signed])  # (plus, minus) per column
    else:
        tops = np.concatenate([words for _, words in topped])
    matrices: dict[int, _Cells] = {}
    block = block or BLOCK
    for first in range(0, len(table), block):
        chunk = table[first : first + block]
        upper = 0
        if floats:
            chunk = np.asarray(chunk, np.float64)
            magnitude = np.abs(chunk)
            largest = float(magnitude.max()) if chunk.size else 0.0
            upper = 0 if largest < 999 else _groups(int(min(largest, HIGH)) // 1000)
            if largest >= HIGH or np.any((magnitude < LOW) & (magnitude != 0)):
                upper = max(upper, 1)  # room for Python's text, up to 24 characters
        # Floats: the sign word, the upper groups, the point word, four fraction words;
        # integers: the word of the literal's end and top digits, then the groups.
        cell = upper + 6 if floats else count + 1
        width = sum(len(words) for words in heads) + columns * cell
        cells = matrices.get(width)
        if cells is None or len(cells.matrix) != len(chunk):
            matrix = np.empty((len(chunk), width), _WORD)
            starts, at = [], 0
            for words in heads:  # the literal words never change: written once
                matrix[:, at : at + len(words)] = words
                at += len(words)
                starts.append(at)
                at += cell
            cells = matrices[width] = _Cells(matrix, starts[:-1])
        values = chunk.ravel()
        if floats:
            column = np.tile(np.arange(0, 2 * columns, 2), len(chunk))
            cells.put(0, signs[np.signbit(values).view(np.uint8) + column])
            fast = _float_cells(values, upper, cells)
            if not fast.all():
                _plain_cells(values, fast, cells, cell, signs[column])
        else:
            _int_cells(values.astype(np.int64), count, tops, cells)
        yield cells.matrix.tobytes().translate(None, b"\0")


def _plain_cells(
    x: NDArray[np.float64],
    fast: NDArray[Any],
    cells: _Cells,
    cell: int,
    plus: NDArray[np.uint32],
) -> None:
    """Python's ``'%.17g'`` for the values outside the fast range, with the literal's
    last word without a sign (``plus``, per value)."""
    chosen = np.flatnonzero(~fast)
    size = 4 * (cell - 1)
    texts = [b"%.17g" % value for value in x[chosen].tolist()]
    if max(len(text) for text in texts) > size:
        raise AssertionError("a '%.17g' text longer than its cell")
    words = np.frombuffer(b"".join(text.ljust(size, b"\0") for text in texts), _WORD)
    count = len(cells.starts)
    for j, start in enumerate(cells.starts):
        mine = chosen % count == j
        lines = chosen[mine] // count
        cells.matrix[lines, start] = plus[chosen[mine]]
        cells.matrix[lines, start + 1 : start + cell] = words.reshape(-1, cell - 1)[mine]
