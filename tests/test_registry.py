"""Plugin registry: entry points, format choice, lazy imports, outside plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import segio
from segio.errors import MissingDependencyError, UnknownFormatError
from segio.registry import Registry, default_registry, load
from segio.representations import Representation
from segio.testing.synthetic import small_segmentation

HEAVY = ("pydicom", "highdicom", "nibabel", "vtk", "trimesh", "scipy", "rich")


def _modules_after(code: str) -> list[str]:
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_import_segio_imports_no_heavy_library() -> None:
    loaded = _modules_after("import segio; segio.registry.default_registry().formats")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_cli_help_imports_no_heavy_library() -> None:
    code = (
        "import contextlib, io\nfrom segio.cli import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "    cli.main(['convert', '--help'], standalone_mode=False)"
    )
    loaded = _modules_after(code)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_builtin_formats_come_from_entry_points() -> None:
    registry = Registry()
    names = {plugin_name for plugin_name, _ in registry.manager.list_name_plugin()}
    assert {"nrrd", "nifti"} <= names
    assert {"seg-nrrd", "nrrd", "nifti"} <= set(registry.formats)


def test_no_entry_points_means_no_formats() -> None:
    assert Registry(load_entry_points=False).formats == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.seg.nrrd", "seg-nrrd"),
        ("A.SEG.NRRD", "seg-nrrd"),
        ("a.nrrd", "nrrd"),
        ("a.nii.gz", "nifti"),
        ("a.nii", "nifti"),
    ],
)
def test_writer_chosen_by_longest_suffix(name: str, expected: str) -> None:
    assert default_registry().writer_for(name).name == expected


def test_unknown_output_suffix_lists_known_ones() -> None:
    with pytest.raises(UnknownFormatError, match=r"\.seg\.nrrd"):
        default_registry().writer_for("out.xyz")


def test_reader_sniffs_content_when_the_suffix_lies(tmp_path: Path) -> None:
    segmentation = small_segmentation()
    written = segio.write(segmentation, tmp_path / "a.seg.nrrd")
    renamed = written[0].rename(tmp_path / "mystery.dat")
    assert default_registry().reader_for(renamed).name == "seg-nrrd"
    as_nifti = tmp_path / "wrong.nii.gz"
    renamed.rename(as_nifti)
    with pytest.warns(UserWarning, match="the name says nifti but the content is seg-nrrd"):
        back = segio.read(as_nifti)
    assert len(back.segments) == len(segmentation.segments)


def test_unknown_content_names_what_was_tried(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(UnknownFormatError, match=r"tried: .*seg-nrrd"):
        segio.read(path)


def test_missing_dependency_gives_the_install_hint() -> None:
    with pytest.raises(MissingDependencyError, match=r"\(pip install 'segio\[fancy\]'\)"):
        load("json:dumps", requires=("no_such_module_xyz",), install="pip install 'segio[fancy]'")
    with pytest.raises(MissingDependencyError, match=r"\(pip install no_such_module_xyz\)"):
        load("json:dumps", requires=("no_such_module_xyz",))


def test_unknown_option_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(segio.ValidationError, match="does not take the write option"):
        segio.write(small_segmentation(), tmp_path / "a.seg.nrrd", colour="red")


OUTSIDE_PLUGIN = '''
"""An outside plugin: a one-file 'text labelmap' format."""
import json
import numpy as np
import segio
from segio.hookspecs import FormatSpec

def sniff(head):
    return head.startswith(b"TXTSEG")

@segio.hookimpl
def segio_formats():
    return [FormatSpec(name="txtseg", description="toy", suffixes=(".txtseg",),
                       reader="segio_txtseg:read", writer="segio_txtseg:write", sniff=sniff)]

def read(path):
    header, _, body = path.read_text().partition("\\n")
    shape = json.loads(header[len("TXTSEG"):])
    array = np.array([int(v) for v in body.split()], dtype=np.uint8).reshape(shape)
    segmentation = segio.Segmentation()
    geometry = segio.Geometry.from_spacing(shape)
    for value in sorted(set(array.ravel()) - {0}):
        segmentation.add_mask(array == value, f"label{value}", geometry=geometry)
    return segmentation

def write(segmentation, path, files):
    array = segmentation.layers[0].array
    text = "TXTSEG" + json.dumps(list(array.shape)) + "\\n" + " ".join(map(str, array.ravel()))
    files.stage(path).write_text(text)
'''


def test_outside_plugin_installed_through_entry_points(tmp_path: Path) -> None:
    """A distribution found on sys.path with a 'segio' entry point is picked up."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "segio_txtseg.py").write_text(OUTSIDE_PLUGIN)
    dist_info = site / "segio_txtseg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: segio-txtseg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[segio]\ntxtseg = segio_txtseg\n")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import numpy as np, segio
        from segio.testing.synthetic import small_segmentation
        seg = small_segmentation()
        seg = seg.pack_layers()
        out = segio.write(seg, {str(tmp_path / "x.txtseg")!r})
        back = segio.read(out[0])
        counts = sorted(back.voxel_counts().values())
        expected = sorted(c for c in seg.voxel_counts().values() if c)
        assert counts == expected, (counts, expected)
        print(segio.registry.default_registry().reader_for(out[0]).name)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "txtseg"


class _Converters:
    @segio.hookimpl
    def segio_converters(self) -> list[segio.ConverterSpec]:
        bl, cs = Representation.BINARY_LABELMAP, Representation.CLOSED_SURFACE
        pc, fl = Representation.PLANAR_CONTOURS, Representation.FRACTIONAL_LABELMAP
        return [
            segio.ConverterSpec("bl-cs", bl, cs, "m:f", cost=500),
            segio.ConverterSpec("pc-cs", pc, cs, "m:f", cost=700),
            segio.ConverterSpec("cs-bl", cs, bl, "m:f", cost=500),
            segio.ConverterSpec("pc-bl-direct", pc, bl, "m:f", cost=5000),
            segio.ConverterSpec("cs-fl", cs, fl, "m:f", cost=7000),
        ]


def test_cheapest_conversion_path_like_slicer() -> None:
    registry = Registry(load_entry_points=False, builtins=False)
    registry.register(_Converters())
    rep = Representation
    path = registry.conversion_path(rep.PLANAR_CONTOURS, rep.BINARY_LABELMAP)
    assert [c.name for c in path] == ["pc-cs", "cs-bl"]
    assert registry.conversion_path(rep.CLOSED_SURFACE, rep.CLOSED_SURFACE) == []
    with pytest.raises(UnknownFormatError, match="no installed converter"):
        registry.conversion_path(rep.FRACTIONAL_LABELMAP, rep.BINARY_LABELMAP)


def test_write_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    segmentation = small_segmentation()
    target = tmp_path / "a.seg.nrrd"
    target.write_bytes(b"precious")
    with pytest.raises(segio.WriteError, match="exists already"):
        segio.write(segmentation, target)
    assert target.read_bytes() == b"precious"
    segio.write(segmentation, target, force=True)
    assert np.array_equal(segio.read(target).voxel_counts(), segmentation.voxel_counts())


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    segmentation = small_segmentation()
    segmentation.segments[next(iter(segmentation.segments))].properties["bad|key"] = "x"
    with pytest.raises(segio.WriteError):
        segio.write(segmentation, tmp_path / "a.seg.nrrd")
    assert list(tmp_path.iterdir()) == []


def test_select_segments_keeps_contours_and_surfaces() -> None:
    """Selection works on every source representation, not only on labelmaps."""
    from segio.contours import Contour, PlanarContours
    from segio.io import select_segments
    from segio.model import Segment, Segmentation
    from segio.surfaces import Surface

    square = PlanarContours([Contour([[0, 0, 0], [1, 0, 0], [1, 1, 0]])])
    tetra = Surface([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3]])
    for source, shapes in (
        (Representation.PLANAR_CONTOURS, {"contours": {"a": square, "b": square}}),
        (Representation.CLOSED_SURFACE, {"surfaces": {"a": tetra, "b": tetra}}),
    ):
        seg = Segmentation(
            [Segment("a", "A"), Segment("b", "B")], source_representation=source, **shapes
        )
        picked = select_segments(seg, ["B"])
        assert list(picked.segments) == ["b"]
        assert picked.source_representation is source
        assert set(picked.contours) | set(picked.surfaces) == {"b"}
