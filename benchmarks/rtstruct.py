"""RTSTRUCT write and read: segio against plastimatch and rt-utils, same data, one run.

The 512 x 512 x 200 CT series and the labelmap of ``dicom_seg.prepare`` (24 segments from
``synthetic_segmentation``: holes, islands, one cut by the border). Every job runs in a
fresh process (``_harness``); plastimatch runs under ``/usr/bin/time``, so its numbers
include start-up and reading the series, as segio's include imports-free work only for
Python (time) but the whole process (peak memory).

Writes, each from the same labelmap: segio (``midpoint`` contours, and ``centre`` ones for
rt-utils to read), plastimatch (from a
structure-set image: uint32 NRRD, bit n = structure n, the form its own labelmap export
takes) and rt-utils (one ``add_roi`` per segment). Reads go to a volume: segio with the
series as reference (a labelmap), plastimatch into a structure-set image (``--output-ss-img``,
one uncompressed MetaImage, not 24 masks), by default (OR) and with ``--xor-contours``; rt-utils one
``get_roi_mask_by_name`` per structure. Each reading is scored against the ground truth
(Dice per segment, mean and worst), outside the timed jobs.

Why these pairings: plastimatch is what SlicerRT exports with, so it is the reference for
speed; rt-utils is the common Python route. segio reads plastimatch's file too, and
plastimatch ours, so the time ratio is also given on the very same input.

    python benchmarks/rtstruct.py [--slices 200] [--segments 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, print_table, ratio_line, repeat, run_command, run_python
from dicom_seg import prepare

from segio.analysis.overlap import dice

SEGIO_WRITE = """
    import segio
    seg = load_segmentation()
    out = work / "{file}"; out.unlink(missing_ok=True)
    t = time.perf_counter()
    segio.write(seg, out, reference=work / "ct", contour_mode="{mode}")
    done(time.perf_counter() - t, out)
"""

# Results leave the jobs as bit images (bit n = n-th segment of meta.json) for scoring,
# after done(): neither timed nor in the reported peak.
SEGIO_READ = """
    import warnings, segio
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    seg = segio.read(work / "{file}", format="rtstruct", reference=work / "ct")
    seg.layers[0].array.sum(); done(time.perf_counter() - t)
    names = [s["name"] for s in json.loads((work / "meta.json").read_text())["segments"]]
    by_name = {{s.name: s.id for s in seg.segments.values()}}
    bits = np.zeros(seg.layers[0].array.shape, np.uint32)
    for n, name in enumerate(names):
        bits |= seg.mask(by_name[name]).astype(np.uint32) << np.uint32(n)
    np.save(work / "bits-{out}.npy", bits)
"""

RT_UTILS_WRITE = """
    import warnings
    warnings.simplefilter("ignore")
    from rt_utils import RTStructBuilder
    meta = json.loads((work / "meta.json").read_text())
    labels = np.load(work / "labels.npy")
    out = work / "rt-utils.dcm"; out.unlink(missing_ok=True)
    t = time.perf_counter()
    builder = RTStructBuilder.create_new(dicom_series_path=str(work / "ct"))
    for s in meta["segments"]:
        mask = labels == s["label"]
        if mask.any():  # rt-utils cannot write an empty ROI
            builder.add_roi(mask=mask.transpose(1, 2, 0), name=s["name"],
                            color=[round(c * 255) for c in s["color"]])
    builder.save(str(out))
    done(time.perf_counter() - t, out)
"""

RT_UTILS_READ = """
    import warnings
    warnings.simplefilter("ignore")
    from rt_utils import RTStructBuilder
    t = time.perf_counter()
    rt = RTStructBuilder.create_from(dicom_series_path=str(work / "ct"),
                                     rt_struct_path=str(work / "{file}"))
    masks = {{name: rt.get_roi_mask_by_name(name) for name in rt.get_roi_names()}}
    done(time.perf_counter() - t)
    names = [s["name"] for s in json.loads((work / "meta.json").read_text())["segments"]]
    shape = next(iter(masks.values())).transpose(2, 0, 1).shape
    bits = np.zeros(shape, np.uint32)
    for n, name in enumerate(names):
        if name in masks:
            bits |= masks[name].transpose(2, 0, 1).astype(np.uint32) << np.uint32(n)
    np.save(work / "bits-{out}.npy", bits)
"""


def structure_set_image(work: Path) -> None:
    """plastimatch's input: the labelmap as a bit image plus its list (``n|R\\G\\B|name``)."""
    import nrrd

    meta = json.loads((work / "meta.json").read_text())
    labels = np.load(work / "labels.npy")
    lut = np.zeros(int(labels.max()) + 1, dtype=np.uint32)
    lines = []
    for n, s in enumerate(meta["segments"]):
        lut[s["label"]] = np.uint32(1) << np.uint32(n)
        rgb = "\\".join(str(round(c * 255)) for c in s["color"])
        lines.append(f"{n}|{rgb}|{s['name']}\n")
    grid = np.array(meta["ijk_to_lps"])
    header = {
        "space": "left-posterior-superior",
        "space directions": grid[:3, :3].T,
        "space origin": grid[:3, 3],
        "kinds": ["domain"] * 3,
        "encoding": "raw",  # no gzip to undo: plastimatch's best case
    }
    nrrd.write(str(work / "ss.nrrd"), np.ascontiguousarray(lut[labels].T), header)
    (work / "ss.txt").write_text("".join(lines))


def plastimatch_write(work: Path) -> Result:
    out = work / "pm-write"
    shutil.rmtree(out, ignore_errors=True)
    result = run_command(
        [
            "plastimatch", "convert",
            "--input-ss-img", str(work / "ss.nrrd"),
            "--input-ss-list", str(work / "ss.txt"),
            "--referenced-ct", str(work / "ct"),
            "--output-dicom", str(out),
        ],
        out,
    )  # fmt: skip
    (path,) = out.glob("rtss*.dcm")
    shutil.copyfile(path, work / "plastimatch.rtstruct.dcm")
    return result


def plastimatch_read(work: Path, file: str, out: str, *, xor: bool) -> Result:
    argv = [
        "plastimatch", "convert",
        "--input", str(work / file),
        "--referenced-ct", str(work / "ct"),
        "--output-ss-img", str(work / f"pm-{out}.mha"),
        "--output-ss-list", str(work / f"pm-{out}.txt"),
    ]  # fmt: skip
    return run_command([*argv, "--xor-contours"] if xor else argv)


def plastimatch_bits(work: Path, out: str) -> NDArray[np.uint32]:
    """plastimatch's structure-set image re-keyed to the bit order of meta.json.

    It writes bit n of structure n as a vector of uchar (bit n % 8 of channel n // 8);
    as MetaImage, because uncompressed (its NRRD is gzipped, which would cost it time).
    """
    names = [s["name"] for s in json.loads((work / "meta.json").read_text())["segments"]]
    raw = (work / f"pm-{out}.mha").read_bytes()
    head, _, data = raw.partition(b"ElementDataFile = LOCAL\n")
    fields = dict(line.split(" = ", 1) for line in head.decode().splitlines())
    assert fields["ElementType"] == "MET_UCHAR" and fields["CompressedData"] == "False"
    i, j, k = (int(v) for v in fields["DimSize"].split())
    channels = int(fields.get("ElementNumberOfChannels", "1"))
    array = np.frombuffer(data, np.uint8).reshape(k, j, i, channels)
    bits = np.zeros((k, j, i), np.uint32)
    for line in (work / f"pm-{out}.txt").read_text().splitlines():
        index, _, name = line.split("|", 2)
        n = int(index)
        if name in names:
            plane = (array[..., n // 8] >> np.uint8(n % 8)) & 1
            bits |= plane.astype(np.uint32) << np.uint32(names.index(name))
    return bits


def scores(work: Path, bits: NDArray[np.uint32]) -> list[float]:
    """Dice per non-empty segment against the labelmap the writers started from."""
    meta = json.loads((work / "meta.json").read_text())
    labels = np.load(work / "labels.npy")
    result = []
    for n, s in enumerate(meta["segments"]):
        truth = labels == s["label"]
        if truth.any():
            result.append(dice(truth, (bits >> np.uint32(n)) & 1))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("plastimatch") is None:
        raise SystemExit("plastimatch is missing: `make tools` installs it")
    results: dict[str, Result] = {}
    dice: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.slices, args.segments)
        structure_set_image(work)
        print(f"CT {args.slices} x 512 x 512, {args.segments} segments, RTSTRUCT")
        times = args.repeat
        for mode, file in (
            ("midpoint", "segio.rtstruct.dcm"),
            ("centre", "segio-centre.rtstruct.dcm"),
        ):
            code = SEGIO_WRITE.format(file=file, mode=mode)
            job = "segio write" + ("" if mode == "midpoint" else " centre")
            results[job] = repeat(partial(run_python, code, work), times)
        results["plastimatch write"] = repeat(lambda: plastimatch_write(work), times)
        results["rt-utils write"] = repeat(lambda: run_python(RT_UTILS_WRITE, work), times)
        reads = {
            "segio read own": ("segio.rtstruct.dcm", None),
            "segio read plastimatch's": ("plastimatch.rtstruct.dcm", None),
            "segio read rt-utils'": ("rt-utils.dcm", None),
            "plastimatch read own": ("plastimatch.rtstruct.dcm", False),
            "plastimatch read own xor": ("plastimatch.rtstruct.dcm", True),
            "plastimatch read segio's xor": ("segio.rtstruct.dcm", True),
        }
        for job, (file, xor) in reads.items():
            out = job.replace(" ", "-").replace("'", "")
            if xor is None:
                code = SEGIO_READ.format(file=file, out=out)
                results[job] = repeat(partial(run_python, code, work), times)
                dice[job] = scores(work, np.load(work / f"bits-{out}.npy"))
            else:
                results[job] = repeat(partial(plastimatch_read, work, file, out, xor=xor), times)
                dice[job] = scores(work, plastimatch_bits(work, out))
        for job, file in (
            ("rt-utils read own", "rt-utils.dcm"),
            ("rt-utils read segio's centre", "segio-centre.rtstruct.dcm"),
        ):
            out = job.replace(" ", "-").replace("'", "")
            code = RT_UTILS_READ.format(file=file, out=out)
            results[job] = repeat(partial(run_python, code, work), times)
            dice[job] = scores(work, np.load(work / f"bits-{out}.npy"))
    print_table(results)
    print("\nDice vs ground truth per segment (reading <- writer):")
    for job, values in dice.items():
        print(f"  {job:<30} mean {np.mean(values):.5f}  worst {min(values):.5f}")
    print("\nsegio / plastimatch (target: time <= 0.2, peak memory <= 1):")
    print(ratio_line("write", results["segio write"], results["plastimatch write"], size=True))
    own, own_xor = results["plastimatch read own"], results["plastimatch read own xor"]
    theirs = results["segio read plastimatch's"]
    print(ratio_line("read, own files (vs default)", results["segio read own"], own))
    print(ratio_line("read, own files (vs --xor)", results["segio read own"], own_xor))
    print(ratio_line("read plastimatch's file (vs --xor)", theirs, own_xor))
    print("\nsegio / rt-utils:")
    print(ratio_line("write", results["segio write"], results["rt-utils write"], size=True))
    print(ratio_line("read, own files", results["segio read own"], results["rt-utils read own"]))


if __name__ == "__main__":
    main()
