"""Option values as they arrive from Python or from ``-O name=value`` text."""

from __future__ import annotations

import pytest

from segio.options import choice, flag


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("YES", True), (" on ", True), ("1", True), (1, True),
     ("Off", False), ("no", False), (0, False), ("maybe", None), ("", None), (None, None)],
)  # fmt: skip
def test_flag(value: object, expected: bool | None) -> None:
    assert flag(value) is expected


def test_choice_gives_the_allowed_spelling() -> None:
    allowed = ("JPEGLS", "rle", "none")
    assert choice(" jpegls ", allowed) == "JPEGLS"
    assert choice("RLE", allowed) == "rle"
    assert choice("deflate", allowed) is None
