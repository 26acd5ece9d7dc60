"""Write and read time and file size of every mesh format, on about a million triangles.

Three closed icospheres (7 subdivisions: 327,680 triangles each, 983,040 in all) as one
closed-surface segmentation, written with each format's default options (and the notable
variants), then read back, in this process, best of ``--repeat`` runs. segio's mesh
readers and writers are numpy throughout; the slow ones are the text formats (ASCII STL,
OBJ, 3MF's XML), whose numbers are formatted or parsed as text.

    python benchmarks/mesh_io.py [--subdivisions 7] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import segio
from segio import Segment, Segmentation
from segio.representations import Representation
from segio.surfaces import Surface

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    (".stl", {}),
    (".stl", {"merge": True, "ascii": True}),
    (".obj", {}),
    (".ply", {}),
    (".vtk", {}),
    (".vtp", {}),
    (".glb", {}),
    (".glb", {"quantize": True}),
    (".gltf", {}),
    (".3mf", {}),
]


def scene(subdivisions: int) -> Segmentation:
    import trimesh

    segments, surfaces = [], {}
    for n in range(3):
        mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=30.0)
        mesh.apply_translation((80.0 * n, 0.0, 0.0))
        segment = Segment(f"S{n}", f"Structure {n}", (0.2 * n, 0.5, 0.7), label_value=n + 1)
        segments.append(segment)
        surfaces[segment.id] = Surface(mesh.vertices, mesh.faces)
    return Segmentation(
        segments, source_representation=Representation.CLOSED_SURFACE, surfaces=surfaces
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subdivisions", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    segmentation = scene(args.subdivisions)
    triangles = sum(len(s.faces) for s in segmentation.surfaces.values())
    print(f"{triangles} triangles, {len(segmentation.segments)} segments")
    print(f"{'format':6} {'options':32} {'write s':>8} {'read s':>8} {'MB':>7}")
    with tempfile.TemporaryDirectory() as folder:
        for n, (suffix, options) in enumerate(VARIANTS):
            path = Path(folder) / f"scene{n}{suffix}"
            writes, reads = [], []
            for _ in range(args.repeat):
                start = time.perf_counter()
                written = segio.write(segmentation, path, force=True, **options)
                writes.append(time.perf_counter() - start)
                start = time.perf_counter()
                segio.read(written[0])
                reads.append(time.perf_counter() - start)
            size = sum(p.stat().st_size for p in written) / 1e6
            label = ",".join(f"{k}={v}" for k, v in options.items()) or "default"
            print(f"{suffix:6} {label:32} {min(writes):8.2f} {min(reads):8.2f} {size:7.1f}")


if __name__ == "__main__":
    main()
