"""DICOM SEG, RTSTRUCT, image series, OsiriX and SliceOmatic readers on hostile files.

One focused test per hole of issue 11 (the crafted files come from ``fixtures/hostile``,
where the hostile suite also reads them in memory-limited workers): no file read outside
the input's folder and no FIFO opened (proved with an audit hook), no decompression bomb
inflated past its limit, no grid allocated before it is checked against
``SEGIO_MAX_MEMORY``, no RecursionError from nested sequences, and ContourData that is not
(x, y, z) triples refused, in the fast walker and in the pydicom path alike.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hostile import dicom as crafted
from segio_plugins.rtstruct import reader as rt_reader

import segio
from segio.contours import Contour, PlanarContours
from segio.converters.contours_to_labelmap import to_labelmap
from segio.dicom import walker as dicomfast
from segio.dicom.series import dicom_files, read_dataset, read_image_series
from segio.errors import LimitError, ReadError, SegioError
from segio.model import Segment, Segmentation
from segio.representations import Representation

SECRET = b"SEGIO-SECRET-dicom-hostile\n"
_OPENED: list[str] | None = None


def _audit(event: str, arguments: tuple[Any, ...]) -> None:
    if _OPENED is not None and event == "open" and arguments:
        name = arguments[0]
        if isinstance(name, (str, bytes, os.PathLike)):
            _OPENED.append(os.path.realpath(os.fsdecode(name)))


sys.addaudithook(_audit)  # records only inside opened_files()


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Every file opened (by its real path) while the block runs."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the case folder ``tmp_path / "case"`` (which the fixture creates)."""
    (tmp_path / "case").mkdir()
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def small_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers' limit: what a lying header asks for is far beyond it."""
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "256MiB")


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _chain(exc: BaseException) -> list[type[BaseException]]:
    """The types behind ``exc`` (causes and contexts)."""
    found: list[type[BaseException]] = []
    link: BaseException | None = exc
    while link is not None:
        found.append(type(link))
        link = link.__cause__ or link.__context__
    return found


def _refused(read: Callable[[], Any], match: str) -> SegioError:
    """The one-line SegioError ``read`` raises, with no MemoryError, OverflowError or
    RecursionError behind it."""
    with pytest.raises(SegioError, match=match) as caught:
        read()
    assert "\n" not in str(caught.value)
    assert not {MemoryError, OverflowError, RecursionError} & set(_chain(caught.value))
    return caught.value


def _in_time(function: Callable[[], Any], seconds: float = 10.0) -> Any:
    """``function()`` in a thread; a test failure, not a hang, when it blocks."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- 1. nothing outside the folder, no FIFO --------------------------------------------------


@pytest.mark.parametrize("kind", ["seg", "rt"])
def test_a_folder_skips_links_out_of_it_and_pipes(secret: Path, kind: str) -> None:
    folder = secret.parent.parent / "case"
    _write(folder, "a.dcm", crafted.genuine()[kind])
    (folder / "b.dcm").symlink_to(secret)
    (folder / "c.dcm").symlink_to("../outside/secret.txt")
    (folder / "d.dcm").symlink_to("/dev/zero")
    os.mkfifo(folder / "e.dcm")
    with opened_files() as opened:
        seg = _in_time(lambda: segio.read(folder))
    assert len(seg.segments) == 2
    assert str(secret) not in opened
    assert dicom_files(folder) == [folder / "a.dcm"]


def test_a_named_pipe_is_refused_as_a_series_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.dcm")
    _refused(lambda: _in_time(lambda: read_image_series([tmp_path / "pipe.dcm"])), "FIFO")


def test_a_tag_companion_linked_out_of_the_folder_is_never_opened(secret: Path) -> None:
    import legacy

    folder = secret.parent.parent / "case"
    _write(folder, "a.dcm.tag", legacy.tag_source())
    (folder / "a.dcm").symlink_to(secret)
    with opened_files() as opened, pytest.warns(UserWarning, match="refused to read the comp"):
        seg = segio.read(folder / "a.dcm.tag")
    assert len(seg.segments) == 4
    assert str(secret) not in opened


# -- 2. bombs -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("small_memory")
@pytest.mark.parametrize("kind", ["seg", "rt"])
def test_a_deflated_dataset_inflates_no_further_than_its_limit(tmp_path: Path, kind: str) -> None:
    head, _ = crafted.split(crafted.genuine()[kind])
    path = _write(tmp_path, "a.dcm", crafted._meta_with(head, crafted.DEFLATED) + crafted.bomb())
    _refused(lambda: _in_time(lambda: segio.read(path)), "deflated dataset .*SEGIO_MAX_MEMORY")
    assert dicomfast.deflated_limit() == (256 << 20) // dicomfast.DEFLATED_SHARE


@pytest.mark.usefixtures("small_memory")
def test_a_deflated_dataset_of_tiny_elements_is_refused_by_their_count(tmp_path: Path) -> None:
    """64 MB of ten-byte elements fit the byte limit but would keep pydicom busy for many
    seconds: the elements are counted, each at what it costs once read."""
    head, _ = crafted.split(crafted.genuine()["seg"])
    data = crafted._meta_with(head, crafted.DEFLATED) + crafted.element_bomb()
    path = _write(tmp_path, "a.dcm", data)
    error = _refused(lambda: _in_time(lambda: segio.read(path), 5), "elements of the deflated")
    assert isinstance(error, LimitError)


def test_a_genuine_deflated_dataset_reads(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.dcm", crafted.genuine()["seg-deflate"])
    data = dicomfast.inflated_part10(path.read_bytes(), path)
    assert dicomfast.transfer_syntax(data) == dicomfast.EXPLICIT_VR_LITTLE_ENDIAN
    assert len(segio.read(path).segments) == 2


def test_a_deflated_frame_inflates_no_further_than_the_frame(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.dcm", crafted.deflated_frames(lambda n: [crafted.bomb()] * n))
    _refused(lambda: _in_time(lambda: segio.read(path)), "deflated frame 1 inflates to more")


@pytest.mark.parametrize("codec", ["jpegls", "j2k"])
def test_a_codestream_larger_than_its_frame_is_not_decoded(tmp_path: Path, codec: str) -> None:
    key = f"seg-{codec}"
    patch = crafted._jls_sof if codec == "jpegls" else crafted._j2k_siz
    fragments = [patch(f, 60000, 60000) for f in crafted._fragments(key)]
    syntax = "1.2.840.10008.1.2.4.80" if codec == "jpegls" else "1.2.840.10008.1.2.4.90"
    data = crafted.edited(key, lambda ds: crafted._frames(ds, fragments, syntax))
    path = _write(tmp_path, "a.dcm", data)
    _refused(lambda: _in_time(lambda: segio.read(path)), "60000 x 60000 x 1 codestream")


# -- 3. memory follows the data -------------------------------------------------------------


@pytest.mark.usefixtures("small_memory")
@pytest.mark.parametrize("kind", ["seg", "seg-labelmap"])
def test_a_frame_far_away_is_refused_before_its_grid_exists(tmp_path: Path, kind: str) -> None:
    data = crafted.edited(kind, crafted._position(-1, [-4.0, -4.0, 6e7]))
    path = _write(tmp_path, "a.dcm", data)
    error = _refused(lambda: segio.read(path), "3e\\+07 slices of 2 mm")
    assert isinstance(error, LimitError) and "SEGIO_MAX_MEMORY" in str(error)


@pytest.mark.usefixtures("small_memory")
def test_a_spacing_between_slices_of_nothing_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.dcm", crafted.edited("seg", crafted._spacing_between(1e-9)))
    _refused(lambda: segio.read(path), "slices 1e-09 mm apart .*SEGIO_MAX_MEMORY")


@pytest.mark.parametrize(
    ("values", "match"),
    [
        (
            {"NumberOfFrames": 2**31 - 1, "PerFrameFunctionalGroupsSequence": None},
            "2147483647 frame.* declares 17.2 GB of data but the file holds 32 bytes",
        ),
        ({"Rows": 65535, "Columns": 65535}, "declares 2.1 GB of data but the file holds"),
        ({"Rows": 0}, "Rows is 0"),
    ],
)
def test_declared_sizes_are_checked_against_the_pixel_data(
    tmp_path: Path, values: dict[str, Any], match: str
) -> None:
    path = _write(tmp_path, "a.dcm", crafted.edited("seg", crafted._set(**values)))
    _refused(lambda: segio.read(path), match)


@pytest.mark.usefixtures("small_memory")
def test_a_huge_private_grid_is_refused_before_rasterising(tmp_path: Path) -> None:
    grid = '{"ijk_to_lps": [[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]], "shape": [9e4, 9e4, 9e4]}'
    path = _write(tmp_path, "a.dcm", crafted.edited("rt", crafted._grid_json(grid)))
    error = _refused(lambda: segio.read(path), "labelmap layers of the contours")
    assert isinstance(error, LimitError)


@pytest.mark.usefixtures("small_memory")
def test_a_contour_vertex_far_away_is_refused_before_its_grid_exists() -> None:
    square = [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.0, 10.0, 0.0]]
    far = np.array([*square[:2], [1e5, 1e5, 0.0], *square[3:]])
    huge = np.array([[-1.7e308, 0.0, 2.0], [1.7e308, 0.0, 2.0], [0.0, 1.7e308, 2.0]])
    seg = Segmentation(
        [Segment("s", "S", (1.0, 0.0, 0.0))],
        source_representation=Representation.PLANAR_CONTOURS,
        contours={"s": PlanarContours([Contour(square), Contour(far + 1.0)])},
    )
    error = _refused(lambda: to_labelmap(seg), "grid derived from the contours")
    assert isinstance(error, LimitError)
    with pytest.raises(LimitError, match="unbounded"):
        seg.contours["s"].contours.append(Contour(huge))
        to_labelmap(seg)


@pytest.mark.parametrize("defined", [False, True])
def test_the_walker_refuses_sequences_nested_too_deep(defined: bool) -> None:
    head, body = crafted.split(crafted.genuine()["rt"])
    deep = crafted.deep(dicomfast.MAX_DEPTH + 1, defined=defined)
    with pytest.raises(dicomfast.MalformedError, match="nested more than"):
        dicomfast.read_part10(head + deep + body)
    dicomfast.read_part10(head + crafted.deep(dicomfast.MAX_DEPTH, defined=defined) + body)


@pytest.mark.parametrize(
    "extra",
    [
        crafted.element(8, 0x1115, b"SQ", b"", length=0xFFFFFFF0),  # past the end
        crafted.element(8, 0x103E, b"UT", b"x", length=0xFFFFFFF0),
        crafted.deep(3)[:20],  # undefined lengths, no delimiter
    ],
)
def test_the_walker_refuses_lengths_the_data_cannot_hold(extra: bytes) -> None:
    head, body = crafted.split(crafted.genuine()["rt"])
    with pytest.raises(dicomfast.MalformedError):
        dicomfast.read_part10(head + extra + body)


@pytest.mark.parametrize("kind", ["seg", "rt"])
def test_pydicom_on_deep_sequences_is_a_read_error(tmp_path: Path, kind: str) -> None:
    head, body = crafted.split(crafted.genuine()[kind])
    path = _write(tmp_path, "a.dcm", head + crafted.deep(20000) + body)
    error = _refused(lambda: segio.read(path), "nest too deeply")
    assert str(path) in str(error)


def test_pydicom_failures_name_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "a.dcm", crafted.text_value(crafted.genuine()["seg"], 0x28, 8, b"IS", b"9" * 5000)
    )
    error = _refused(lambda: read_dataset(path), "not a readable DICOM file")
    assert error.path == str(path)


# -- 7. ContourData is triples ----------------------------------------------------------------


def _cut(ds: Any) -> None:
    crafted._cut_data(ds)


def _miscount(ds: Any) -> None:
    ds.ROIContourSequence[1].ContourSequence[0].NumberOfContourPoints = 1


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("change", "match"),
    [
        (_cut, r"ROI 1 \('A'\), contour 1: its ContourData holds 23 numbers, not \(x, y, z\)"),
        (_miscount, r"ROI 2 \('B'\), contour 1: NumberOfContourPoints is 1 but"),
    ],
)
def test_contour_data_that_is_not_triples_is_an_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fast: bool,
    change: Callable[[Any], None],
    match: str,
) -> None:
    path = _write(tmp_path, "a.dcm", crafted.edited("rt", change))
    if not fast:
        monkeypatch.setenv(dicomfast.FAST_SWITCH, "0")
    else:
        assert rt_reader._fast_read(path.read_bytes()) is not None
    error = _refused(lambda: segio.read(path, keep_contours=True), match)
    assert isinstance(error, ReadError) and error.path == str(path)


def test_the_walker_reads_every_contour_point_count() -> None:
    header, contours = rt_reader._fast_read(crafted.genuine()["rt"]) or (None, [])
    counts = {count for _, _, items in contours for _, points, _, count in items}
    assert header is not None and None not in counts
    assert all(
        len(points) == 3 * count for _, _, items in contours for _, points, _, count in items
    )
