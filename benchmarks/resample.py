"""Resampling: segio nearest and quality against SimpleITK's ResampleImageFilter, with its
nearest-neighbour interpolator and with ``sitkLabelGaussian`` (its label-aware smooth mode).

Speed is measured on ``synthetic_segmentation`` (24 or 104 segments, 512 x 512 x 200 CT
grid of 0.78 x 0.78 x 1.5 mm voxels, as ``benchmarks/surfaces.py``), resampled onto the
same grid at twice the spacing and at two thirds of it (1.5 times finer), corner kept
(:meth:`segio.Geometry.with_spacing`). Every job runs in a fresh process (``_harness``),
reads its input before the clock starts (SimpleITK the same labelmap as a NIfTI file) and
reports the resampling's wall time and the process's peak memory.

Accuracy is measured on an analytic phantom (256 x 256 x 100 voxels of the same size):
rotated ellipsoids of 2 to 15 mm radius, whose truth on the target grid is the analytic
shape at each target voxel centre (Dice per ellipsoid, mean and worst), and structures one
source voxel thin (axis-aligned plates and tubes at random positions, so every lattice
alignment occurs), of which the number that keep at least one voxel is counted.

    python benchmarks/resample.py [--segments 104] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, print_table, ratio_line, repeat, run_python

SPACING = (0.78125, 0.78125, 1.5)
ORIGIN = (-200.0, -180.0, -300.0)
TARGETS = {"2x coarser": 2.0, "1.5x finer": 1 / 1.5}

SEGIO = """
    from segio.converters.resample import resample
    from segio.geometry import Geometry
    seg = load_segmentation()
    meta = json.loads((work / "meta.json").read_text())["targets"]["{target}"]
    target = Geometry(meta["ijk_to_lps"], meta["shape"])
    t = time.perf_counter()
    result = resample(seg, target, mode="{mode}")
    done(time.perf_counter() - t)
    np.save(work / "{out}.npy", result.layers[0].array)
"""

SITK = """
    import SimpleITK as sitk  # noqa: N813
    image = sitk.ReadImage(str(work / "labels.nii"))
    meta = json.loads((work / "meta.json").read_text())["targets"]["{target}"]
    f = sitk.ResampleImageFilter()
    f.SetOutputSpacing(meta["spacing"])
    f.SetOutputOrigin(meta["origin"])
    f.SetOutputDirection(meta["direction"])
    f.SetSize(meta["size"])
    f.SetDefaultPixelValue(0)
    f.SetInterpolator(sitk.{interpolator})
    t = time.perf_counter()
    out = f.Execute(image)
    done(time.perf_counter() - t)
    np.save(work / "{out}.npy", sitk.GetArrayFromImage(out))
"""

METHODS = {
    "segio nearest": ("segio", "nearest"),
    "segio quality": ("segio", "quality"),
    "SimpleITK nearest": ("sitk", "sitkNearestNeighbor"),
    "SimpleITK LabelGaussian": ("sitk", "sitkLabelGaussian"),
}


def _out(method: str, target: str) -> str:
    return f"{method}-{target}".replace(" ", "_")


def prepare(work: Path, labels: np.ndarray, segments: list[tuple[str, int]]) -> dict[str, object]:
    """labels.npy, labels.nii and meta.json (segments, grid, target grids) for the jobs."""
    import SimpleITK as sitk  # noqa: N813

    from segio.geometry import Geometry

    grid = Geometry.from_spacing(labels.shape, SPACING, ORIGIN)
    np.save(work / "labels.npy", labels)
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(tuple(np.eye(3).ravel()))
    sitk.WriteImage(image, str(work / "labels.nii"))
    targets = {}
    for name, factor in TARGETS.items():
        target = grid.with_spacing(np.array(SPACING) * factor)
        targets[name] = {
            "ijk_to_lps": target.ijk_to_lps.tolist(),
            "shape": list(target.shape),
            "spacing": target.spacing.tolist(),
            "origin": target.origin.tolist(),
            "direction": target.direction.ravel().tolist(),
            "size": list(target.size_ijk),
        }
    entries = [
        {"id": f"s{n + 1}", "name": name, "color": [0.5, 0.5, 0.5], "label": label}
        for n, (name, label) in enumerate(segments)
    ]
    meta = {"segments": entries, "targets": targets, "ijk_to_lps": grid.ijk_to_lps.tolist()}
    (work / "meta.json").write_text(json.dumps(meta))
    return meta


def run(work: Path, times: int, which: list[str]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for target in TARGETS:
        for method, (kind, arg) in METHODS.items():
            out = _out(method, target)
            if kind == "segio":
                code = SEGIO.format(target=target, mode=arg, out=out)
            else:
                code = SITK.format(target=target, interpolator=arg, out=out)
            # LabelGaussian onto the finer grid takes minutes: run once.
            n = 1 if "Gaussian" in method and "finer" in target else times
            if method in which:
                results[f"{method}, {target}"] = repeat(lambda c=code: run_python(c, work), n)
    return results


def dice_per_label(a: np.ndarray, b: np.ndarray, labels: int) -> np.ndarray:
    """Dice of every label 1..labels between two labelmaps, one pass (nan if both empty)."""
    pairs = np.bincount(
        a.astype(np.int64).ravel() * (labels + 1) + b.astype(np.int64).ravel(),
        minlength=(labels + 1) ** 2,
    ).reshape(labels + 1, labels + 1)
    both = np.diag(pairs)[1:]
    sizes = pairs.sum(axis=1)[1:] + pairs.sum(axis=0)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * both / sizes


# -- the analytic phantom -------------------------------------------------------------------


def phantom(shape: tuple[int, int, int], seed: int = 3) -> tuple[np.ndarray, list[dict]]:
    """Ellipsoids and one-voxel-thin plates and tubes, one per cell of a 4 x 4 x 3 split of
    the volume (so none touch), as a labelmap and the shapes' parameters (mm, LPS)."""
    from segio.geometry import Geometry

    rng = np.random.default_rng(seed)
    grid = Geometry.from_spacing(shape, SPACING, ORIGIN)
    labels = np.zeros(shape, np.uint8)
    cells = [(k, j, i) for k in range(3) for j in range(4) for i in range(4)]
    shapes: list[dict] = []
    size = np.array(shape[::-1]) / (4, 4, 3)  # cell size in voxels along i, j, k
    for n, (ck, cj, ci) in enumerate(cells):
        low = np.array([ci, cj, ck]) * size
        centre_ijk = low + size * rng.uniform(0.35, 0.65, 3)
        centre = grid.ijk_to_points([centre_ijk])[0]
        kind = "ellipsoid" if n < 32 else ("plate" if n < 40 else "tube")
        if kind == "ellipsoid":
            radii = rng.uniform(2.0, 15.0, 3)  # within its cell
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            shapes.append({"kind": kind, "centre": centre, "radii": radii, "axes": q})
        else:
            axis = int(rng.integers(3))
            shapes.append({"kind": kind, "centre": centre, "axis": axis})
        mask, box = inside(shapes[-1], grid, low, low + size)
        labels[box][mask] = n + 1
    return labels, shapes


def inside(shape: dict, grid: object, low: np.ndarray, high: np.ndarray) -> tuple:
    """The shape at the voxel centres of ``grid`` within the index box ``low``..``high``
    (i, j, k, in the phantom grid's voxels: converted for other grids by the caller)."""
    from segio.geometry import Geometry

    assert isinstance(grid, Geometry)
    lo = np.maximum(np.floor(low), 0).astype(int)
    hi = np.minimum(np.ceil(high), grid.size_ijk).astype(int)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    k, j, i = np.indices(tuple(hi[::-1] - lo[::-1]))
    ijk = np.column_stack([i.ravel() + lo[0], j.ravel() + lo[1], k.ravel() + lo[2]])
    points = grid.ijk_to_points(ijk) - shape["centre"]
    if shape["kind"] == "ellipsoid":
        local = points @ shape["axes"] / shape["radii"]
        mask = np.sum(local**2, axis=1) <= 1.0
    else:  # one source voxel thin across ``axis`` (plate) or across the other two (tube)
        half = np.array(SPACING) / 2
        across = np.abs(points) <= half * 0.999
        extent = np.abs(points) <= 12.0
        if shape["kind"] == "plate":
            mask = across[:, shape["axis"]] & np.all(np.delete(extent, shape["axis"], 1), axis=1)
        else:
            others = [a for a in range(3) if a != shape["axis"]]
            mask = np.all(across[:, others], axis=1) & extent[:, shape["axis"]]
    return mask.reshape(k.shape), box


def truth_on(target: object, shapes: list[dict], source: object) -> np.ndarray:
    """The analytic ellipsoids at the target's voxel centres (thin shapes left out)."""
    from segio.geometry import Geometry

    assert isinstance(target, Geometry) and isinstance(source, Geometry)
    labels = np.zeros(target.shape, np.uint8)
    for n, shape in enumerate(shapes):
        if shape["kind"] != "ellipsoid":
            continue
        reach = np.max(shape["radii"]) + 1
        corners = shape["centre"] + np.array(np.meshgrid(*[(-reach, reach)] * 3)).reshape(3, -1).T
        ijk = target.points_to_ijk(corners)
        mask, box = inside(shape, target, ijk.min(axis=0), ijk.max(axis=0) + 1)
        labels[box][mask] = n + 1
    return labels


def accuracy(repeat_times: int) -> None:
    from segio.geometry import Geometry

    shape = (100, 256, 256)
    labels, shapes = phantom(shape)
    source = Geometry.from_spacing(shape, SPACING, ORIGIN)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        names = [(f"{s['kind']} {n + 1}", n + 1) for n, s in enumerate(shapes)]
        meta = prepare(work, labels, names)
        results = run(work, repeat_times, list(METHODS))
        print(f"\nanalytic phantom {shape[2]} x {shape[1]} x {shape[0]}: {len(shapes)} shapes")
        print_table(results)
        thick = [n for n, s in enumerate(shapes) if s["kind"] == "ellipsoid"]
        thin = [n for n, s in enumerate(shapes) if s["kind"] != "ellipsoid"]
        print(
            f"\n{'method, target':<44}{'Dice mean':>10}{'Dice min':>10}{'volume err %':>13}"
            f"{'thin kept':>11}"
        )
        targets = meta["targets"]
        assert isinstance(targets, dict)
        for target_name in TARGETS:
            grid = Geometry(targets[target_name]["ijk_to_lps"], targets[target_name]["shape"])
            truth = truth_on(grid, shapes, source)
            for method in METHODS:
                out = np.load(work / f"{_out(method, target_name)}.npy")
                dice = dice_per_label(out, truth, len(shapes))[thick]
                got = np.bincount(out.ravel(), minlength=len(shapes) + 1)[1:] * grid.voxel_volume
                analytic = np.array([4 / 3 * np.pi * np.prod(shapes[n]["radii"]) for n in thick])
                error = np.abs(got[thick] / analytic - 1) * 100
                kept = int(np.count_nonzero(got[thin]))
                print(
                    f"{method + ', ' + target_name:<44}{np.mean(dice):>10.4f}{np.min(dice):>10.4f}"
                    f"{np.mean(error):>13.2f}{kept:>6} of {len(thin)}"
                )


def speed(segments: int, repeat_times: int) -> None:
    from segio.geometry import Geometry
    from segio.testing.synthetic import FULL_SHAPE, synthetic_segmentation

    grid = Geometry.from_spacing(FULL_SHAPE, SPACING, ORIGIN)
    seg = synthetic_segmentation(n_segments=segments, geometry=grid)
    assert len(seg.layers) == 1
    order = list(seg.segments.values())
    labels = seg.layers[0].array
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, labels, [(s.name, s.label_value) for s in order])
        print(f"labelmap 512 x 512 x 200, {segments} segments, {SPACING} mm")
        results = run(work, repeat_times, list(METHODS))
        print_table(results)
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
        top = max(s.label_value for s in order)
        for target in TARGETS:
            arrays = {m: np.load(work / f"{_out(m, target)}.npy") for m in METHODS}
            print(f"\n{target}: mean (min) Dice per segment against segio quality")
            for method in METHODS:
                dice = dice_per_label(arrays[method], arrays["segio quality"], top)
                dice = dice[~np.isnan(dice)]
                print(f"  {method:<28}{np.mean(dice):.4f} ({np.min(dice):.4f})")
            same = dice_per_label(arrays["segio nearest"], arrays["SimpleITK nearest"], top)
            print(f"  segio nearest vs SimpleITK nearest: min Dice {np.nanmin(same):.6f}")
            print(f"\n{target}, segio / SimpleITK:")
            for ours, theirs in (
                ("segio nearest", "SimpleITK nearest"),
                ("segio quality", "SimpleITK LabelGaussian"),
                ("segio quality", "SimpleITK nearest"),
            ):
                print(
                    ratio_line(
                        f"{ours} / {theirs}",
                        results[f"{ours}, {target}"],
                        results[f"{theirs}, {target}"],
                    )
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=104)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--accuracy-only", action="store_true", help="skip the speed run")
    args = parser.parse_args()
    if not args.accuracy_only:
        speed(args.segments, args.repeat)
    accuracy(args.repeat)


if __name__ == "__main__":
    main()
