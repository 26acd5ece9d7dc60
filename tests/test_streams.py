"""segio.read / segio.write on bytes and binary file objects (issue 17, part 2).

A stream must read exactly as the same bytes read from a path, for every single-file
format; a format that needs other files must refuse it in one line saying why.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import segio
from segio.io import write_bytes
from segio.points import PointAnnotation
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def same_read(path: Path, **options: Any) -> None:
    """Bytes, a BytesIO and an open file read equal to the path read."""
    expected = segio.read(path, **options)
    data = path.read_bytes()
    for source in (data, io.BytesIO(data)):
        got = segio.read(source, filename=path.name, **options)
        assert_same_segmentation(expected, got, check_layers=True)
        assert got.provenance["format"] == expected.provenance["format"]
        assert "source_path" not in got.provenance  # no temporary file named
    with path.open("rb") as stream:
        assert_same_segmentation(expected, segio.read(stream, **options), check_layers=True)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of each single-file format, written from an oblique segmentation."""
    folder = tmp_path_factory.mktemp("streams")
    seg = small_segmentation(kind="oblique", n_segments=3)
    series = reference_series(seg.layers[0].geometry, folder / "series")
    files = {}
    for name, options in (
        ("a.seg.nrrd", {}),
        ("a.nrrd", {"sidecar": "none"}),
        ("a.nii.gz", {"sidecar": "none"}),
        ("a.nii", {"sidecar": "none"}),
        ("a.seg.dcm", {"reference": series}),
        ("a.rtstruct.dcm", {"reference": series}),
        ("a.stl", {"merge": True}),
        ("a.ply", {}),
        ("a.vtk", {}),
        ("a.vtp", {}),
        ("a.glb", {}),
        ("a.gltf", {}),
        ("a.3mf", {}),
    ):
        segio.write(seg, folder / name, **options)
        files[name] = folder / name
    files["series"] = series
    return files


@pytest.mark.parametrize(
    "name",
    [
        "a.seg.nrrd",
        "a.nrrd",
        "a.nii.gz",
        "a.nii",
        "a.seg.dcm",
        "a.rtstruct.dcm",
        "a.stl",
        "a.ply",
        "a.vtk",
        "a.vtp",
        "a.glb",
        "a.gltf",
        "a.3mf",
    ],
)
def test_written_file_reads_equal_from_bytes(written: dict[str, Path], name: str) -> None:
    same_read(written[name])


def test_bundled_and_real_files_read_equal_from_bytes(shared_data: Path) -> None:
    for path in [
        FIXTURES / "sample.seg.nrrd",
        FIXTURES / "seg-nrrd" / "oblique-las-vector.seg.nrrd",
        shared_data / "dcmqi/data/segmentations/liver.dcm",
        shared_data / "highdicom/data/test_files/seg_image_ct_binary_overlap.dcm",
        shared_data / "pydicom/src/pydicom/data/test_files/rtstruct.dcm",
        shared_data / "SlicerSandbox/OsirixTestROI_1.json",
        shared_data / "SlicerSandbox/OsirixTestROI_2.xml",
    ]:
        same_read(path)


def test_rtstruct_stream_rasterised_on_reference(written: dict[str, Path]) -> None:
    """Reader options (here the reference grid) reach the reader as for a path."""
    same_read(written["a.rtstruct.dcm"], reference=written["series"])


def test_without_a_name_a_merged_stl_segment_is_named_stream(written: dict[str, Path]) -> None:
    """A name that comes from the file name has no file name to come from."""
    seg = segio.read(written["a.stl"].read_bytes())
    assert [s.name for s in seg.segments.values()] == ["stream"]


def test_name_picks_the_format_and_is_the_label() -> None:
    data = write_bytes(small_segmentation(kind="oblique"), format="nifti", sidecar="none")
    assert data[:2] == b"\x1f\x8b"  # compressed by default
    with pytest.warns(UserWarning, match=r"^upload\.seg\.nrrd: the name says seg-nrrd but"):
        seg = segio.read(data, filename="upload.seg.nrrd")  # the content (NIfTI) wins, as for paths
    assert seg.provenance == {"format": "nifti", "source": "upload.seg.nrrd"}


def test_write_to_stream_equals_write_to_path(tmp_path: Path) -> None:
    seg = small_segmentation(kind="oblique")
    segio.write(seg, tmp_path / "a.seg.nrrd")
    buffer = io.BytesIO()
    assert segio.write(seg, buffer, format="seg-nrrd") == []
    back = segio.read(buffer.getvalue())
    assert_same_segmentation(segio.read(tmp_path / "a.seg.nrrd"), back, check_layers=True)
    with pytest.raises(segio.ValidationError, match="filename= names a stream"):
        segio.write(seg, tmp_path / "b.seg.nrrd", filename="x.nii")
    raw = write_bytes(seg, filename="x.nii", sidecar="none")
    assert raw[344:348] == b"n+1\0"  # the name chose uncompressed NIfTI
    assert segio.read(raw).layers[0].geometry.is_close(seg.layers[0].geometry, 1e-5)  # float32


def test_writers_of_several_files_are_refused() -> None:
    seg = small_segmentation(kind="oblique")
    with pytest.raises(segio.WriteError, match=r"wrote 2 files .*sidecar='none'"):
        write_bytes(seg, format="nifti")
    with pytest.raises(segio.WriteError, match=r"a stream holds one file.*merge=True"):
        segio.write(seg, io.BytesIO(), format="stl")
    with pytest.raises(segio.ValidationError, match="binary mode"):
        segio.write(seg, io.StringIO(), format="seg-nrrd")  # type: ignore[arg-type]


def test_files_naming_other_files_are_refused(tmp_path: Path) -> None:
    seg = small_segmentation(kind="oblique")
    segio.write(seg, tmp_path / "a.gltf")  # buffers embedded as data: URIs (read below)
    document = json.loads((tmp_path / "a.gltf").read_text())
    document["buffers"][0]["uri"] = "a.bin"  # now a .gltf with its buffer beside it
    gltf = json.dumps(document).encode()
    header = (
        b"NRRD0004\ntype: uint8\ndimension: 3\nspace: left-posterior-superior\nsizes: 2 2 1\n"
        b"space directions: (1,0,0) (0,1,0) (0,0,1)\nspace origin: (0,0,0)\nencoding: raw\n"
        b"data file: a.raw\n\n"
    )
    vtm = (FIXTURES / "seg-vtm" / "surfaces.seg.vtm").read_bytes()  # pieces in a folder
    for data, fmt in ((gltf, None), (header, "nrrd"), (vtm, None)):
        with pytest.raises(segio.ReadError) as caught:
            segio.read(data, format=fmt)
        message = str(caught.value)
        assert message.startswith("<bytes>: refused to read")
        assert "no folder to take the files it names from" in message
        assert "read it from a path" in message
        assert "segio-stream" not in message  # the temporary folder is never named


def test_tag_from_stream_warns_its_companion_is_not_used(shared_data: Path) -> None:
    tag = shared_data / "SlicerSandbox/test01.dcm.tag"
    with pytest.warns(UserWarning, match="no companion DICOM image"):
        segio.read(tag.read_bytes(), format="sliceomatic")


def test_untrusted_rules_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGIO_MAX_MEMORY", "1000")
    with pytest.raises(segio.LimitError, match="stream"):
        segio.read(io.BytesIO(b"\0" * 5000))
    with pytest.raises(segio.ReadError, match="empty"):
        segio.read(b"")
    with pytest.raises(segio.ValidationError, match="binary mode"):
        segio.read(io.StringIO("NRRD0004"))  # type: ignore[arg-type]
    with pytest.raises(segio.UnknownFormatError):
        segio.read(b"not a segmentation at all")


def test_nothing_left_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    data = (FIXTURES / "sample.seg.nrrd").read_bytes()
    segio.read(data)
    with pytest.raises(segio.ReadError):
        segio.read(data[:300])
    assert list(tmp_path.iterdir()) == []


def test_obj_from_bytes_reads_its_meshes_without_the_mtl_colours(tmp_path: Path) -> None:
    seg = small_segmentation(kind="oblique", n_segments=2)
    segio.write(seg, tmp_path / "a.obj")
    expected = segio.read(tmp_path / "a.obj")
    with pytest.warns(UserWarning, match=r"^<bytes>: refused to read the MTL .*without those col"):
        got = segio.read((tmp_path / "a.obj").read_bytes())
    assert_same_segmentation(expected, got, color_atol=1.0)  # same meshes and names
    assert [s.color for s in got.segments.values()] != [s.color for s in seg.segments.values()]


def test_a_writer_option_called_name_still_reaches_the_writer(tmp_path: Path) -> None:
    """The stream keyword is ``filename``: the Markups writer's own ``name`` option passes."""
    seg = small_segmentation(kind="oblique")
    seg.points = [PointAnnotation("p", seg.layers[0].geometry.origin, (1.0, 0.0, 0.0))]
    with pytest.warns(UserWarning, match="segment"):
        data = write_bytes(seg, format="markups", name="Plan")
    assert json.loads(data)["markups"][0]["name"] == "Plan"
