"""Fuzzing the readers: damaged files give a SegioError, never a traceback or a hang."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import segio
from segio.testing.synthetic import small_segmentation

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        options = {"sidecar": "none"} if suffix.startswith(".nii") else {}
        path = segio.write(
            small_segmentation(overlapping=True), Path(folder) / f"v{suffix}", **options
        )[0]
        return path.read_bytes()


VALID = {suffix: _valid(suffix) for suffix in (".seg.nrrd", ".nii", ".nii.gz")}


def _read(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"f{suffix}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(segio.SegioError):
                segio.read(path)


@_FUZZ
@given(data=st.data(), suffix=st.sampled_from(sorted(VALID)))
def test_truncated_or_flipped_files(data: st.DataObject, suffix: str) -> None:
    blob = bytearray(VALID[suffix])
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    for _ in range(data.draw(st.integers(1, 8))):
        if blob:
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    _read(bytes(blob), suffix)


@_FUZZ
@given(data=st.data())
def test_seg_nrrd_header_values_replaced(data: st.DataObject) -> None:
    """Each header line's value replaced by arbitrary text (the lenient part of the reader)."""
    blob = VALID[".seg.nrrd"]
    end = blob.index(b"\n\n")
    lines = blob[:end].decode("utf-8").split("\n")
    index = data.draw(st.integers(2, len(lines) - 1))
    separator = ":=" if ":=" in lines[index] else ": "
    key = lines[index].split(separator, 1)[0]
    characters = st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",))
    value = data.draw(st.text(alphabet=characters, max_size=40))
    lines[index] = f"{key}{separator}{value}"
    _read("\n".join(lines).encode("utf-8") + blob[end:], ".seg.nrrd")


@_FUZZ
@given(blob=st.binary(max_size=2048), suffix=st.sampled_from([".seg.nrrd", ".nii", ".nrrd"]))
def test_random_bytes(blob: bytes, suffix: str) -> None:
    _read(blob, suffix)


@pytest.mark.parametrize("suffix", sorted(VALID))
def test_empty_file_is_a_segio_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(segio.SegioError):
        segio.read(path)
