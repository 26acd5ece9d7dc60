"""segio's napari plugin, headless: napari's Qt-free ViewerModel opens files through the
npe2 manifest (the installed ``napari.manifest`` entry point) and saves Labels layers.

World coordinates are LPS mm in napari's (z, y, x) order: a voxel's world position must be
``geometry.ijk_to_points`` of it, reversed; names and colours are the file's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio.errors import ValidationError
from segio.model import Segmentation
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation, surface_segmentation, synthetic_segmentation


@pytest.fixture
def viewer() -> Iterator[Any]:
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins

    _initialize_plugins()  # what napari.Viewer does: npe2 finds segio's manifest
    model = ViewerModel()
    yield model
    model.layers.clear()


def _check_labels(layers: list[Any], seg: Segmentation) -> None:
    """Layer count, names and colours per label, and a voxel's world position per layer."""
    geometry = seg.require_geometry()
    assert [type(layer).__name__ for layer in layers] == ["Labels"] * len(seg.layers)
    for index, layer in enumerate(layers):
        members = seg.segments_in_layer(index)
        assert list(layer.features["name"]) == [s.name for s in members]
        assert list(layer.features["index"]) == [s.label_value for s in members]
        for segment in members:
            rgba = layer.colormap.color_dict[segment.label_value]
            np.testing.assert_allclose(rgba, (*segment.color, 1.0), atol=1e-7)
        np.testing.assert_array_equal(layer.data, seg.layers[index].array)
        k, j, i = (n - 2 for n in geometry.shape)
        lps = geometry.ijk_to_points(np.array([[i, j, k]]))[0]
        np.testing.assert_allclose(layer.data_to_world((k, j, i)), lps[::-1], atol=1e-6)


def test_opens_the_24_segment_sample(viewer: Any, tmp_path: Path) -> None:
    seg = synthetic_segmentation((12, 20, 16), 24, overlapping=True, unicode_names=True)
    path = tmp_path / "ct.seg.nrrd"
    segio.write(seg, path)
    layers = viewer.open(str(path), plugin="segio")
    read = segio.read(path)
    assert len(read.layers) > 1  # overlapping segments: several Labels layers
    _check_labels(layers, read)
    assert layers[0].name == "ct [layer 1]"


def test_opens_an_oblique_dicom_seg(viewer: Any, tmp_path: Path) -> None:
    seg = small_segmentation("oblique")
    series = reference_series(seg.require_geometry(), tmp_path / "CT")
    path = tmp_path / "seg.dcm"
    segio.write(seg, path, reference=series)
    read = segio.read(path)
    assert not np.allclose(read.require_geometry().direction, np.eye(3))  # oblique indeed
    # napari's 2D view cannot slice an oblique volume along its own axes, and says so.
    with pytest.warns(UserWarning, match="Non-orthogonal slicing"):
        layers = viewer.open(str(path), plugin="segio")
    _check_labels(layers, read)


def test_opens_a_glb_as_one_surface_per_segment(viewer: Any, tmp_path: Path) -> None:
    path = tmp_path / "model.glb"
    segio.write(surface_segmentation(3), path)
    read = segio.read(path)
    layers = viewer.open(str(path), plugin="segio")
    assert [type(layer).__name__ for layer in layers] == ["Surface"] * 3
    for layer, segment in zip(layers, read.segments.values(), strict=True):
        assert layer.name == segment.name
        vertices, faces = layer.data[0], layer.data[1]
        surface = read.surfaces[segment.id]
        np.testing.assert_allclose(vertices, surface.vertices[:, ::-1], atol=1e-6)
        np.testing.assert_allclose(layer.vertex_colors[0][:3], segment.color, atol=1e-7)

        # Reversing the axes mirrors the mesh: the winding is reversed too, so the signed
        # volume keeps its sign (normals stay outward).
        def volume(v: Any, f: Any) -> float:
            return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum())

        assert volume(vertices, faces) * volume(surface.vertices, surface.faces) > 0


@pytest.mark.parametrize("overlapping", [True, False])
def test_the_writer_output_reads_back_equal(viewer: Any, tmp_path: Path, overlapping: bool) -> None:
    """Through napari's own save path (npe2 writer): seg.nrrd keeps every layer, name and
    colour; NIfTI (one labelmap, no names) keeps the voxels and the oblique grid."""
    seg = small_segmentation("oblique", overlapping=overlapping)
    source = tmp_path / "in.seg.nrrd"
    segio.write(seg, source)
    expected = segio.read(source)
    with pytest.warns(UserWarning, match="Non-orthogonal slicing"):
        layers = viewer.open(str(source), plugin="segio")
    assert len(layers) == len(expected.layers)
    target = tmp_path / ("out.seg.nrrd" if overlapping else "out.nii.gz")
    written = viewer.layers.save(str(target), selected=False, plugin="segio")
    assert written == [str(target)]
    back = segio.read(target)
    if overlapping:
        assert_same_segmentation(expected, back, check_layers=True)
        return
    assert back.require_geometry().is_close(expected.require_geometry())
    np.testing.assert_array_equal(back.layers[0].array, expected.layers[0].array)


def test_layer_data_round_trip_keeps_terminology_and_ids() -> None:
    from segio.interop.napari import from_napari, to_napari

    seg = small_segmentation("oblique", overlapping=True)
    back = from_napari(to_napari(seg))
    assert_same_segmentation(seg, back, check_layers=True)


def test_edited_names_colours_and_new_labels_are_written() -> None:
    from segio.interop.napari import from_napari, to_napari

    seg = small_segmentation("axial", n_segments=2)
    (data, meta, kind) = to_napari(seg)[0]
    data = data.copy()
    data[0, 0, 0] = 9  # a label painted in napari, described nowhere
    meta["features"].loc[0, "name"] = "renamed"
    meta["features"].at[1, "color"] = (0.0, 0.5, 1.0)
    back = from_napari([(data, meta, kind)])
    names = [s.name for s in back.segments.values()]
    assert names == ["renamed", seg.segments_in_layer(0)[1].name, "Segment_9"]
    assert list(back.segments.values())[1].color == (0.0, 0.5, 1.0)
    assert back.voxel_counts()["Segment_9"] == 1


def test_refusals(tmp_path: Path) -> None:
    from segio.interop.napari import from_napari, to_napari
    from segio.interop.napari.plugin import get_reader

    text = tmp_path / "notes.txt"
    text.write_text("not a segmentation")
    assert get_reader(str(text)) is None  # napari's other readers get their turn
    layers = to_napari(small_segmentation("oblique", overlapping=True))
    layers[1][1]["scale"] = (9.0, 9.0, 9.0)
    with pytest.raises(ValidationError, match="not on the grid"):
        from_napari(layers)
    with pytest.raises(ValidationError, match="2 dimensions"):
        from_napari([(np.zeros((4, 4), np.uint8), {"name": "flat"}, "labels")])
    with pytest.raises(ValidationError, match="no Labels layer"):
        from_napari([])


def test_the_plugin_is_declared_with_its_own_extra() -> None:
    """The manifest the entry point names ships in the package; napari is its own extra and
    the test extra's, never `all` (a format-only install must not pull a viewer)."""
    import tomllib

    from npe2 import PluginManifest

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    module, _, resource = project["project"]["entry-points"]["napari.manifest"]["segio"].partition(
        ":"
    )
    manifest = root.joinpath(*module.split(".")) / resource
    declared = PluginManifest.from_file(manifest)
    assert declared.name == "segio"
    from segio.registry import default_registry

    writable = {
        suffix
        for spec in default_registry().formats.values()
        if spec.writer is not None
        for suffix in spec.suffixes
    }
    (writer,) = declared.contributions.writers or []
    assert set(writer.filename_extensions) <= writable  # napari offers only what segio writes
    package_data = project["tool"]["setuptools"]["package-data"][module]
    assert resource in package_data and module in project["tool"]["setuptools"]["packages"]
    extras = project["project"]["optional-dependencies"]
    assert any(req.startswith("napari") for req in extras["napari"])
    assert "napari" not in extras["all"][0] and "napari" in extras["test"][0]
