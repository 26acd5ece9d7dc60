"""Mesh files: segio's writers and readers against trimesh's, on about a million triangles.

Three closed icospheres (7 subdivisions: 327,680 triangles each, 983,040 in all), one
coloured, named segment each, written and read back by segio and by trimesh in the same
run. Every job runs in a fresh process (``_harness``): the meshes are loaded from an
``.npz`` and the library (segio: with the format's plugin module) imported before the
clock starts; peak memory is the process's
own high-water mark, imports and input included. Median of ``--repeat`` runs.

What each side writes, chosen to be the same content:

- STL (binary): one file per segment on both sides (segio's default, as 3D Slicer);
  reading reads the three files.
- OBJ: one file with one ``o`` object and ``usemtl`` material per segment, plus the MTL
  (trimesh: a ``Scene`` of three meshes with a ``PBRMaterial`` each).
- PLY (binary): one file, all segments; vertex colours on both sides (trimesh: the
  concatenated mesh with vertex colours; segio also writes a per-face segment index).
- GLB and 3MF: one file, one named node/object with its material/colour per segment
  (trimesh: the same ``Scene``).

segio-only variants (ASCII STL, VTK, VTP, glTF, quantized GLB) have no trimesh peer row.

``--segments 24|104`` runs instead the issue's paired whole-process section on the closed
surfaces of the 512 x 512 x 200 synthetic case (``to_closed_surface`` at its defaults, about
1.9 M triangles for 24 segments, normals included as the converter makes them), prepared
once into an ``.npz`` outside the clock: segio writing 3MF, segio writing GLB, and trimesh
writing the same meshes with their vertex normals as GLB (a ``Scene`` of one named mesh per
segment with its colour material, ``scene.export``). Every job is a whole process
(start-up, imports and loading the ``.npz`` on the clock), ``--pairs`` rounds in rotating
order (:func:`_harness.paired`); the ratios are medians of per-round ratios. Targets:
3MF / GLB <= 1 and segio GLB / trimesh GLB <= 1.

    python benchmarks/mesh_io.py [--subdivisions 7] [--repeat 3]
    python benchmarks/mesh_io.py --segments 24 [--pairs 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    Result,
    print_table,
    python_job,
    ratio_line,
    repeat,
    run_python,
    run_rounds,
)

# (label, suffix, segio options, trimesh writer or None)
VARIANTS: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("STL per segment", ".stl", {}, "stl"),
    ("STL ascii merge", ".stl", {"merge": True, "ascii": True}, None),
    ("OBJ+MTL", ".obj", {}, "scene"),
    ("PLY", ".ply", {}, "ply"),
    ("VTK", ".vtk", {}, None),
    ("VTP", ".vtp", {}, None),
    ("GLB", ".glb", {}, "scene"),
    ("GLB quantized", ".glb", {"quantize": True}, None),
    ("glTF", ".gltf", {}, None),
    ("3MF", ".3mf", {}, "scene"),
]

COLORS = [(0.0, 0.5, 0.7), (0.2, 0.5, 0.7), (0.4, 0.5, 0.7)]

SEGIO_WRITE = """
    import segio
    from segio import Segment, Segmentation
    from segio.representations import Representation
    from segio.surfaces import Surface
    data = np.load(work / "scene.npz")
    colors = {colors}
    segments, surfaces = [], {{}}
    for n, color in enumerate(colors):
        segment = Segment(f"S{{n}}", f"Structure {{n}}", color, label_value=n + 1)
        segments.append(segment)
        surfaces[segment.id] = Surface(data[f"v{{n}}"], data[f"f{{n}}"])
    seg = Segmentation(segments, source_representation=Representation.CLOSED_SURFACE,
                       surfaces=surfaces)
    out = work / "{folder}"
    out.mkdir(exist_ok=True)
    # The plugin module (and registry) is imported before the clock, like trimesh.
    from segio.registry import default_registry, writer_function
    writer_function(default_registry().writer_for(out / "scene{suffix}"))
    t = time.perf_counter()
    written = segio.write(seg, out / "scene{suffix}", force=True, **{options})
    seconds = time.perf_counter() - t
    (work / "{folder}.json").write_text(json.dumps([str(p) for p in written]))
    done(seconds)
"""

SEGIO_READ = """
    import segio
    from segio.registry import default_registry, reader_function
    paths = [Path(p) for p in json.loads((work / "{folder}.json").read_text())]
    reader_function(default_registry().reader_for(paths[0]))
    t = time.perf_counter()
    triangles = sum(len(s.faces) for p in paths if p.suffix == "{suffix}"
                    for s in segio.read(p).surfaces.values())
    seconds = time.perf_counter() - t
    assert triangles == {triangles}, triangles
    done(seconds)
"""

TRIMESH_WRITE = """
    import trimesh
    from trimesh.visual import TextureVisuals
    from trimesh.visual.material import PBRMaterial
    data = np.load(work / "scene.npz")
    colors = {colors}
    meshes = []
    for n, color in enumerate(colors):
        mesh = trimesh.Trimesh(data[f"v{{n}}"], data[f"f{{n}}"], process=False)
        rgba = [round(255 * c) for c in color] + [255]
        if "{kind}" == "ply":
            mesh.visual.vertex_colors = rgba
        elif "{kind}" == "scene":
            mesh.visual = TextureVisuals(material=PBRMaterial(name=f"S{{n}}",
                                                              baseColorFactor=rgba))
        meshes.append(mesh)
    scene = trimesh.Scene()
    for n, mesh in enumerate(meshes):
        scene.add_geometry(mesh, geom_name=f"Structure {{n}}", node_name=f"Structure {{n}}")
    out = work / "{folder}"
    out.mkdir(exist_ok=True)
    t = time.perf_counter()
    if "{kind}" == "stl":
        for n, mesh in enumerate(meshes):
            mesh.export(out / f"scene_Structure {{n}}.stl")
    elif "{kind}" == "ply":
        trimesh.util.concatenate(meshes).export(out / "scene.ply", encoding="binary")
    else:
        scene.export(out / "scene{suffix}")
    seconds = time.perf_counter() - t
    done(seconds)
"""

TRIMESH_READ = """
    import trimesh
    paths = sorted((work / "{folder}").glob("*{suffix}"))
    t = time.perf_counter()
    loaded = [trimesh.load(p) for p in paths]
    seconds = time.perf_counter() - t
    triangles = sum(len(g.faces) for x in loaded
                    for g in (x.geometry.values() if hasattr(x, "geometry") else [x]))
    assert triangles == {triangles}, triangles
    done(seconds)
"""


def prepare(work: Path, subdivisions: int) -> int:
    """The three icospheres in ``work/scene.npz``; returns the triangle count.

    Each sphere's vertices and triangles are shuffled differently, as the meshes of three
    segments would differ: three identical index arrays would let a writer that shares
    equal buffers (trimesh's glTF exporter) store one instead of three.
    """
    import trimesh

    rng = np.random.default_rng(0)
    arrays = {}
    for n in range(3):
        mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=30.0)
        mesh.apply_translation((80.0 * n, 0.0, 0.0))
        order = rng.permutation(len(mesh.vertices))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        arrays[f"v{n}"] = np.asarray(mesh.vertices, dtype=np.float64)[order]
        arrays[f"f{n}"] = rank[np.asarray(mesh.faces, dtype=np.int64)][
            rng.permutation(len(mesh.faces))
        ]
    np.savez(work / "scene.npz", **arrays)
    return sum(len(arrays[f"f{n}"]) for n in range(3))


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def job(template: str, work: Path, times: int, **fields: Any) -> Result:
    code = template.format(colors=COLORS, **fields)
    return repeat(lambda: run_python(code, work), times)


# -- the section: closed surfaces of the synthetic CT case, whole processes, paired ------

# segio: the segmentation as the converter leaves it (surfaces with their normals).
SEGIO_SURFACES = """
import json
import numpy as np
import segio
from segio import Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface
data = np.load(work / "surfaces.npz")
segments, surfaces = [], {{}}
for k, m in enumerate(json.loads((work / "meta.json").read_text())):
    segment = Segment(m["id"], m["name"], tuple(m["color"]), label_value=m["label"])
    segments.append(segment)
    surfaces[segment.id] = Surface(data[f"v{{k}}"], data[f"f{{k}}"], data[f"n{{k}}"])
seg = Segmentation(segments, source_representation=Representation.CLOSED_SURFACE,
                   surfaces=surfaces)
segio.write(seg, work / "out" / "segio{suffix}", force=True)
"""

# trimesh: one named mesh per segment, its colour as a PBR material, the same vertex normals
# (given, so trimesh does not recompute them).
TRIMESH_SURFACES = """
import json
import numpy as np
import trimesh
from trimesh.visual import TextureVisuals
from trimesh.visual.material import PBRMaterial
data = np.load(work / "surfaces.npz")
scene = trimesh.Scene()
for k, m in enumerate(json.loads((work / "meta.json").read_text())):
    mesh = trimesh.Trimesh(data[f"v{k}"], data[f"f{k}"], vertex_normals=data[f"n{k}"],
                           process=False)
    rgba = [round(255 * c) for c in m["color"]] + [255]
    mesh.visual = TextureVisuals(material=PBRMaterial(name=m["name"], baseColorFactor=rgba))
    scene.add_geometry(mesh, geom_name=m["name"], node_name=m["name"])
# The normals are unit already: trimesh's fastest faithful export skips unitizing them.
scene.export(work / "out" / "trimesh.glb", include_normals=True, unitize_normals=False)
"""


def prepare_surfaces(work: Path, n_segments: int) -> int:
    """``surfaces.npz`` (``v<k>``, ``f<k>``, ``n<k>``) and ``meta.json`` in ``work`` (kept if
    already there, for ``--work``); returns the triangle count."""
    if not (work / "surfaces.npz").exists():
        from segio.converters.labelmap_to_surface import to_closed_surface
        from segio.geometry import Geometry
        from segio.testing.synthetic import FULL_SHAPE, synthetic_segmentation

        grid = Geometry.from_spacing(FULL_SHAPE, (0.78125, 0.78125, 1.5), (-200.0, -180.0, -300.0))
        surfaces = to_closed_surface(synthetic_segmentation(n_segments=n_segments, geometry=grid))
        arrays: dict[str, Any] = {}
        meta = []
        for k, segment in enumerate(surfaces.segments.values()):
            surface = surfaces.surfaces[segment.id]
            assert surface.normals is not None
            arrays.update({f"v{k}": surface.vertices, f"f{k}": surface.faces})
            arrays[f"n{k}"] = surface.normals
            meta.append(
                {
                    "id": segment.id,
                    "name": segment.name,
                    "color": list(segment.color),
                    "label": segment.label_value,
                }
            )
        np.savez(work / "surfaces.npz", **arrays)
        (work / "meta.json").write_text(json.dumps(meta))
    with np.load(work / "surfaces.npz") as data:
        return sum(len(data[name]) for name in data.files if name.startswith("f"))


def surfaces_section(n_segments: int, pairs: int, folder: Path | None) -> None:
    """segio 3MF, segio GLB and trimesh GLB, whole processes in rotating rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        work = folder or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "out").mkdir(exist_ok=True)
        triangles = prepare_surfaces(work, n_segments)
        jobs = {
            "segio 3MF": python_job(SEGIO_SURFACES.format(suffix=".3mf")),
            "segio GLB": python_job(SEGIO_SURFACES.format(suffix=".glb")),
            "trimesh GLB": python_job(TRIMESH_SURFACES),
        }
        files = {
            "segio 3MF": work / "out" / "segio.3mf",
            "segio GLB": work / "out" / "segio.glb",
            "trimesh GLB": work / "out" / "trimesh.glb",
        }
        rounds = run_rounds(jobs, work, pairs)
        results = rounds.summary(files)

        print(
            f"\nclosed surfaces of the {n_segments}-segment 512 x 512 x 200 case: "
            f"{triangles:,} triangles; whole processes, median of {pairs} rounds"
        )
        print_table(results)
        for label, ours, theirs in (
            ("3MF / GLB (segio)", "segio 3MF", "segio GLB"),
            ("segio GLB / trimesh GLB", "segio GLB", "trimesh GLB"),
        ):
            value = rounds.ratio(ours, theirs)
            memory = results[ours]["peak_mb"] / results[theirs]["peak_mb"]
            verdict = "met" if value <= 1.0 else "missed"
            print(
                f"  {label:<26} time {value:.2f} (target <= 1: {verdict})  peak memory {memory:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subdivisions", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--segments", type=int, help="24 or 104: the paired closed-surface section instead"
    )
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--work", type=Path, help="folder keeping the prepared surfaces")
    args = parser.parse_args()
    if args.segments:
        surfaces_section(args.segments, args.pairs, args.work)
        return
    results: dict[str, Result] = {}
    ratios: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        triangles = prepare(work, args.subdivisions)
        print(f"{triangles} triangles, 3 segments, median of {args.repeat}")
        for n, (label, suffix, options, peer) in enumerate(VARIANTS):
            ours = f"segio{n}"
            write = job(SEGIO_WRITE, work, args.repeat, folder=ours, suffix=suffix, options=options)
            write["bytes"] = folder_size(work / ours)
            read = job(
                SEGIO_READ, work, args.repeat, folder=ours, suffix=suffix, triangles=triangles
            )
            results[f"segio {label} write"] = write
            results[f"segio {label} read"] = read
            if peer is None:
                continue
            theirs = f"trimesh{n}"
            peer_write = job(
                TRIMESH_WRITE, work, args.repeat, folder=theirs, suffix=suffix, kind=peer
            )
            peer_write["bytes"] = folder_size(work / theirs)
            peer_read = job(
                TRIMESH_READ, work, args.repeat, folder=theirs, suffix=suffix, triangles=triangles
            )
            results[f"trimesh {label} write"] = peer_write
            results[f"trimesh {label} read"] = peer_read
            ratios.append(ratio_line(f"{label} write", write, peer_write, size=True))
            ratios.append(ratio_line(f"{label} read", read, peer_read))
    print_table(results)
    print("\nratio segio / trimesh:")
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
