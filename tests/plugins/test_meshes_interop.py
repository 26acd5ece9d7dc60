"""Mesh files checked by the tools that consume them.

* Every glTF/GLB variant segio writes has zero errors and zero warnings in the Khronos glTF
  Validator (npm ``gltf-validator``, run from node).
* A GLB loads in three.js (npm ``three``) in headless Chromium and every segment's colour
  is on the screenshot.
* VTK itself reads the .vtk/.vtp segio writes (segment ids, field data), and segio reads
  what VTK writes in each of its layouts.
* lib3mf, the 3MF Consortium's reference library, reads the 3MF in strict mode without a
  warning and finds every body manifold and oriented, in millimetres, with its colour.

The tools are installed by ``make tools`` (``.tools/node_modules``, Debian ``chromium``);
without them these tests fail and say what to run, they do not skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segio
from segio import Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface
from segio.testing.compare import assert_same_segmentation
from segio.testing.synthetic import small_segmentation, surface_segmentation

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".tools" / "node_modules"


def _tool(path: Path | None, what: str) -> Path:
    if path is None or not path.exists():
        pytest.fail(f"{what} is missing: run `make tools` (it installs the interop tools)")
    return path


def _node_modules(package: str) -> Path:
    _tool(Path(shutil.which("node") or "/nonexistent"), "node")
    return _tool(NODE_MODULES / package, f"the npm package {package} in {NODE_MODULES}")


def _scene(n: int = 3) -> Segmentation:
    """Separated bodies with distinct colours; the third half transparent."""
    import trimesh

    colors = [(0.9, 0.2, 0.1), (0.1, 0.8, 0.2), (0.15, 0.3, 0.95), (0.95, 0.85, 0.1)]
    segments, surfaces = [], {}
    for k in range(n):
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=18.0)
        mesh.apply_translation((-75.0 + 50.0 * k, 40.0, -300.0 + 10.0 * k))
        segment = Segment(
            f"Segment_{k + 1}",
            f"Structure {k + 1}",
            colors[k],
            label_value=k + 1,
            properties={"opacity": "0.5"} if k == 2 else {},
        )
        segments.append(segment)
        surfaces[segment.id] = Surface(mesh.vertices, mesh.faces)
    return Segmentation(
        segments, source_representation=Representation.CLOSED_SURFACE, surfaces=surfaces
    )


# -- Khronos glTF Validator --------------------------------------------------------------------

_VALIDATE = """
const validator = require(process.argv[1]);  // node -e: argv[1] is the first argument
const fs = require('fs');
(async () => {
  const out = {};
  for (const file of process.argv.slice(2)) {
    out[file] = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)),
                                              {maxIssues: 200});
  }
  process.stdout.write(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(2); });
"""


def validate(paths: list[Path]) -> dict[str, Any]:
    """Reports of the Khronos validator, one per file."""
    package = _node_modules("gltf-validator")
    done = subprocess.run(
        ["node", "-e", _VALIDATE, str(package), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"gltf-validator failed: {done.stderr}"
    reports: dict[str, Any] = json.loads(done.stdout)
    return reports


def test_every_gltf_variant_passes_the_khronos_validator(tmp_path: Path) -> None:
    empty = _scene()
    empty.surfaces["Segment_2"] = Surface(np.zeros((0, 3)), np.zeros((0, 3)))
    all_empty = _scene()
    for segment_id in all_empty.segments:
        all_empty.surfaces[segment_id] = Surface(np.zeros((0, 3)), np.zeros((0, 3)))
    cases: list[tuple[str, Segmentation, dict[str, Any]]] = [
        ("plain.glb", _scene(), {}),
        ("plain.gltf", _scene(), {}),
        ("millimetres.glb", _scene(), {"units": "mm"}),
        ("hierarchy.glb", surface_segmentation(5), {"hierarchy": True}),
        ("unicode.gltf", surface_segmentation(4, unicode_names=True), {}),
        ("empty_segment.glb", empty, {}),
        ("all_empty.gltf", all_empty, {}),  # no buffer at all
        ("all_empty.glb", all_empty, {}),
        ("single.glb", surface_segmentation(1), {}),
        ("from_labelmap.glb", small_segmentation("oblique"), {}),  # through the converters
        ("quantized.glb", _scene(), {"quantize": True}),
        ("quantized_tree.gltf", surface_segmentation(5), {"quantize": True, "hierarchy": True}),
        ("labelmap_empty_segment.gltf", small_segmentation("axial", empty_segment=True), {}),
    ]
    paths = []
    for name, segmentation, options in cases:
        segio.write(segmentation, tmp_path / name, **options)
        paths.append(tmp_path / name)
    reports = validate(paths)
    problems = []
    for path in paths:
        issues = reports[str(path)]["issues"]
        messages = [(m["code"], m.get("pointer"), m["message"]) for m in issues["messages"]]
        if issues["numErrors"] or issues["numWarnings"]:
            problems.append(
                f"{path.name}: {issues['numErrors']} errors, {issues['numWarnings']} warnings: "
                f"{messages[:5]}"
            )
        assert reports[str(path)]["info"]["version"] == "2.0"
    assert not problems, "\n".join(problems)


def test_the_validator_check_can_fail(tmp_path: Path) -> None:
    """A GLB with a wrong accessor bound is reported: the check above is not blind."""
    path = tmp_path / "broken.glb"
    segio.write(_scene(1), path)
    data = bytearray(path.read_bytes())
    text_start, length = 20, int.from_bytes(data[12:16], "little")
    document = json.loads(bytes(data[text_start : text_start + length]))
    document["accessors"][0]["max"][0] += 1.0
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (length - len(text))
    assert len(text) == length
    data[text_start : text_start + length] = text
    path.write_bytes(bytes(data))
    issues = validate([path])[str(path)]["issues"]
    assert issues["numErrors"] > 0
    assert any(m["code"] == "ACCESSOR_MAX_MISMATCH" for m in issues["messages"])


# -- three.js in headless Chromium -------------------------------------------------------------

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>LOADING</title>
<style>html,body{margin:0;background:#000;overflow:hidden}</style>
<script type="importmap">{"imports":{"three":"THREE_URL/build/three.module.js",
"three/addons/":"THREE_URL/examples/jsm/"}}</script>
<script>
window.addEventListener('error', e => {
  document.title = 'ERROR: ' + (e.message || (e.target && e.target.src));
}, true);
</script></head><body>
<script type="module">
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
try {
  const renderer = new THREE.WebGLRenderer({antialias: false, preserveDrawingBuffer: true});
  renderer.setSize(window.innerWidth, window.innerHeight);
  renderer.setClearColor(0x000000, 1);
  document.body.appendChild(renderer.domElement);
  const gltf = await new GLTFLoader().loadAsync('GLB_NAME');
  let meshes = 0;
  gltf.scene.traverse(o => {
    if (!o.isMesh) return;
    meshes++;
    const m = o.material;  // unlit, same colour and opacity: one colour per segment
    o.material = new THREE.MeshBasicMaterial(
      {color: m.color, opacity: m.opacity, transparent: m.transparent, depthWrite: !m.transparent});
  });
  const box = new THREE.Box3().setFromObject(gltf.scene);
  const size = box.getSize(new THREE.Vector3()), centre = box.getCenter(new THREE.Vector3());
  const aspect = window.innerWidth / window.innerHeight;
  const half = Math.max(size.x / aspect, size.y) * 0.6;
  const camera = new THREE.OrthographicCamera(-half * aspect, half * aspect, half, -half,
                                              0.0001, 10 * (size.z + 1));
  camera.position.set(centre.x, centre.y, box.max.z + size.z + 0.01);
  camera.lookAt(centre);
  renderer.render(gltf.scene, camera);
  document.title = 'OK ' + meshes;
} catch (e) { document.title = 'ERROR: ' + e; }
</script></body></html>
"""


def _srgb(linear: float) -> float:
    if linear <= 0.0031308:
        return 12.92 * linear
    return float(1.055 * linear ** (1 / 2.4) - 0.055)


def render(glb: Path, folder: Path, size: tuple[int, int] = (480, 360)) -> tuple[str, Any]:
    """Load ``glb`` with three.js in headless Chromium: (page title, RGB screenshot)."""
    from PIL import Image

    three = _node_modules("three")
    chromium = _tool(Path(shutil.which("chromium") or "/nonexistent"), "chromium")
    page = folder / "view.html"
    page.write_text(
        _PAGE.replace("THREE_URL", three.as_uri()).replace("GLB_NAME", glb.name),
        encoding="utf-8",
    )
    shot = folder / "shot.png"
    done = subprocess.run(
        [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--allow-file-access-from-files",
            "--enable-unsafe-swiftshader",
            "--virtual-time-budget=15000",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={shot}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=folder,
    )
    title = done.stdout.partition("<title>")[2].partition("</title>")[0]
    assert shot.exists(), f"chromium wrote no screenshot: {done.stderr[-2000:]}"
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(np.int64)
    return title, pixels


@pytest.mark.parametrize("quantize", [False, True])
def test_glb_renders_every_segment_in_threejs(quantize: bool, tmp_path: Path) -> None:
    scene = _scene()
    glb = tmp_path / "scene.glb"
    segio.write(scene, glb, quantize=quantize)
    title, pixels = render(glb, tmp_path)
    assert title == f"OK {len(scene.segments)}", f"the page reported: {title!r}"
    flat = pixels.reshape(-1, 3)
    for segment in scene.segments.values():
        expected = np.array([round(255 * _srgb(c)) for c in segment.color])
        opacity = float(segment.properties.get("opacity", 1.0))
        if opacity == 1.0:
            hits = np.all(np.abs(flat - expected) <= 3, axis=1)
        else:  # blended over the black background (one or two layers of the surface)
            single = np.round(opacity * expected)
            double = np.round((1 - (1 - opacity) ** 2) * expected)
            hits = np.all(np.abs(flat - single) <= 4, axis=1) | np.all(
                np.abs(flat - double) <= 4, axis=1
            )
        assert hits.sum() > 200, (
            f"{segment.name}: colour {expected.tolist()} (opacity {opacity}) on "
            f"{int(hits.sum())} pixels only"
        )
    assert np.all(pixels[0, 0] == 0), "the corner is background"


def test_the_render_check_can_fail(tmp_path: Path) -> None:
    """A segment whose colour is not drawn is noticed (the colour check is not blind)."""
    scene = _scene(2)
    glb = tmp_path / "scene.glb"
    segio.write(scene, glb)
    title, pixels = render(glb, tmp_path)
    assert title == "OK 2"
    absent = np.array([round(255 * _srgb(c)) for c in (0.15, 0.3, 0.95)])  # segment 3's colour
    assert not np.any(np.all(np.abs(pixels.reshape(-1, 3) - absent) <= 3, axis=1))


# -- VTK ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".vtk", ".vtp"])
def test_vtk_reads_what_segio_writes(suffix: str, tmp_path: Path) -> None:
    from vtkmodules.util.numpy_support import vtk_to_numpy

    original = surface_segmentation(3)
    path = tmp_path / f"scene{suffix}"
    segio.write(original, path)
    if suffix == ".vtk":
        from vtkmodules.vtkIOLegacy import vtkPolyDataReader

        reader: Any = vtkPolyDataReader()
    else:
        from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

        reader = vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    poly = reader.GetOutput()
    assert poly.GetNumberOfPoints() == sum(len(s.vertices) for s in original.surfaces.values())
    assert poly.GetNumberOfPolys() == sum(len(s.faces) for s in original.surfaces.values())
    ids = vtk_to_numpy(poly.GetCellData().GetArray("SegmentId"))
    assert np.bincount(ids).tolist() == [len(s.faces) for s in original.surfaces.values()]
    info = json.loads(vtk_to_numpy(poly.GetFieldData().GetArray("SegmentInfo")).tobytes())
    assert [s["name"] for s in info["segments"]] == [s.name for s in original.segments.values()]
    if suffix == ".vtk":
        assert reader.GetHeader() == "3D Slicer output. SPACE=LPS"


def _vtk_written(original: Segmentation, folder: Path) -> list[Path]:
    """The same PolyData saved by VTK in every layout it has."""
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader, vtkXMLPolyDataWriter

    source = folder / "segio.vtp"
    segio.write(original, source)
    reader = vtkXMLPolyDataReader()
    reader.SetFileName(str(source))
    reader.Update()
    poly = reader.GetOutput()
    paths = []
    for name, setup in [
        ("legacy_binary.vtk", lambda w: w.SetFileTypeToBinary()),
        ("legacy_ascii.vtk", lambda w: w.SetFileTypeToASCII()),
        ("legacy_42.vtk", lambda w: (w.SetFileTypeToBinary(), w.SetFileVersion(42))),
        ("xml_default.vtp", lambda w: None),
        ("xml_ascii.vtp", lambda w: w.SetDataModeToAscii()),
        ("xml_inline.vtp", lambda w: w.SetDataModeToBinary()),
        ("xml_raw.vtp", lambda w: w.EncodeAppendedDataOff()),
        ("xml_plain.vtp", lambda w: (w.EncodeAppendedDataOff(), w.SetCompressorTypeToNone())),
        ("xml_inline_plain.vtp", lambda w: (w.SetDataModeToBinary(), w.SetCompressorTypeToNone())),
        ("xml_uint32.vtp", lambda w: w.SetHeaderTypeToUInt32()),
    ]:
        writer: Any = vtkPolyDataWriter() if name.endswith(".vtk") else vtkXMLPolyDataWriter()
        writer.SetInputData(poly)
        writer.SetFileName(str(folder / name))
        setup(writer)
        assert writer.Write() == 1
        paths.append(folder / name)
    return paths


def test_segio_reads_every_vtk_layout(tmp_path: Path) -> None:
    original = surface_segmentation(3)
    for path in _vtk_written(original, tmp_path):
        try:
            assert_same_segmentation(original, segio.read(path))
        except AssertionError as exc:
            raise AssertionError(f"{path.name}: {exc}") from None


# -- lib3mf, the 3MF Consortium's reference implementation --------------------------------------


def test_lib3mf_reads_the_3mf_strictly(tmp_path: Path) -> None:
    try:
        import lib3mf
    except ImportError:
        pytest.fail("lib3mf is missing: pip install -e '.[test]' (it is in the test extra)")
    original = surface_segmentation(4, unicode_names=True)
    path = tmp_path / "print.3mf"
    segio.write(original, path)
    model = lib3mf.get_wrapper().CreateModel()
    reader = model.QueryReader("3mf")
    reader.SetStrictModeActive(True)
    reader.ReadFromFile(str(path))
    warnings = [reader.GetWarning(n) for n in range(reader.GetWarningCount())]
    assert warnings == []
    assert model.GetUnit() == lib3mf.ModelUnit.MilliMeter
    objects = model.GetMeshObjects()
    found = []
    while objects.MoveNext():
        mesh = objects.GetCurrentMeshObject()
        assert mesh.IsManifoldAndOriented(), mesh.GetName()
        found.append((mesh.GetName(), mesh.GetTriangleCount()))
    assert found == [
        (s.name, len(original.surfaces[s.id].faces)) for s in original.segments.values()
    ]
    items = model.GetBuildItems()
    count = 0
    while items.MoveNext():
        count += 1
    assert count == len(original.segments)
    group = model.GetBaseMaterialGroupByID(1)
    colors = [group.GetDisplayColor(p) for p in group.GetAllPropertyIDs()]
    for color, segment in zip(colors, original.segments.values(), strict=True):
        assert (color.Red, color.Green, color.Blue) == tuple(round(c * 255) for c in segment.color)
