"""DICOM SEG write and read: segio against highdicom, dcmqi and pydicom-seg, same data, one run.

A synthetic 512 x 512 x 200 CT series (200 single-frame files) and a segmentation on its
grid from ``segio.testing.synthetic_segmentation`` (holes, islands, border-touching), with
24 segments and, with ``--segments 104``, a TotalSegmentator-sized one.

Reads (the issue's targets): every tool reads the same files, dcmqi's BINARY SEG (the
headline) and highdicom's LABELMAP SEG, as whole processes paired in the same rounds
(``_harness.paired``: start-up and imports on the clock, median of ``--pairs`` rounds):
segio ``segio.read``; highdicom ``segread`` + ``get_volume``; dcmqi ``segimage2itkimage
--mergeSegments`` (its only way to read, into NRRD); pydicom-seg ``MultiClassReader``
(its fastest full read, from its own environment, ``.tools/pydicom-seg``: it pins numpy 1;
it cannot read LABELMAP SEGs). Targets: time <= 0.25 x the fastest peer, peak memory <= the
leanest peer's.

Writes: BINARY and LABELMAP, uncompressed, by each tool from the same labelmap, each job a
fresh process timed inside (``--repeat`` runs); ``--skip-writes`` makes only the two files
the reads need.

    python benchmarks/dicom_seg.py [--segments 24] [--slices 200] [--pairs 5] [--repeat 3]
                                   [--skip-writes] [--work FOLDER]

``--work`` keeps the prepared data in FOLDER (reused when it is there already).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    Result,
    paired,
    print_pairs,
    print_table,
    python_job,
    ratio_line,
    repeat,
    run_command,
    run_python,
)

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
PYDICOM_SEG = ROOT / ".tools" / "pydicom-seg" / "bin" / "python"
#: The issue's targets for reads: time against the fastest peer, memory against the leanest.
TIME_TARGET, MEMORY_TARGET = 0.25, 1.0

SEGIO_WRITE = """
    import pydicom  # what highdicom imports at its own import: both clocks start after it
    import segio
    seg = load_segmentation(tissue=True)
    out = work / "segio-{kind}.dcm"; out.unlink(missing_ok=True)
    t = time.perf_counter()
    segio.write(seg, out, reference=work / "ct", seg_type="{kind}")
    done(time.perf_counter() - t, out)
"""

HIGHDICOM_WRITE = """
    import highdicom as hd, pydicom
    from pydicom.sr.codedict import codes
    meta = json.loads((work / "meta.json").read_text())
    labels = np.load(work / "labels.npy")
    t = time.perf_counter()  # reading the series is part of the job, as it is for segio
    sources = [pydicom.dcmread(work / "ct" / f"{{k:04d}}.dcm", stop_before_pixels=True)
               for k in range(labels.shape[0])]
    tissue = hd.sr.CodedConcept("85756007", "SCT", "Tissue")
    descriptions = [hd.seg.SegmentDescription(
        segment_number=s["label"], segment_label=s["name"], segmented_property_category=tissue,
        segmented_property_type=tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=hd.color.CIELabColor.from_rgb(*[round(c * 255) for c in s["color"]]))
        for s in meta["segments"]]
    out = work / "highdicom-{kind}.dcm"
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.{kind_upper},
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="bench",
        manufacturer_model_name="bench", software_versions="1", device_serial_number="1")
    seg.save_as(out)
    done(time.perf_counter() - t, out)
"""

# Whole-process reads (``python_job``): the interpreter's start-up and every import count.
SEGIO_READ = """
    import segio
    seg = segio.read(work / "{file}")
    seg.layers[0].array.sum()
"""

HIGHDICOM_READ = """
    import highdicom as hd
    seg = hd.seg.segread(work / "{file}")
    volume = seg.get_volume(combine_segments=True, skip_overlap_checks=True)
    volume.array.sum()
"""

PYDICOM_SEG_READ = """
    import pydicom, pydicom_seg
    result = pydicom_seg.MultiClassReader().read(pydicom.dcmread(work / "{file}"))
    result.data.sum()
"""


def prepare(work: Path, slices: int, n_segments: int) -> None:
    """The CT series, the labelmap (npy + NRRD for dcmqi) and dcmqi's metadata JSON."""
    import nrrd
    import numpy as np
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    from segio.dicom.series import read_image_series
    from segio.testing.synthetic import synthetic_segmentation

    (work / "ct").mkdir(exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pixels = np.zeros((512, 512), np.int16).tobytes()
    for k in range(slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.Modality = "Bench^Mark", "BENCH", "CT"
        ds.PatientBirthDate, ds.PatientSex, ds.AccessionNumber = "19700101", "O", "1"
        ds.ReferringPhysicianName, ds.StudyID = "", "1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.SeriesNumber, ds.InstanceNumber = (
            "20260101",
            "1200",
            1,
            k + 1,
        )
        ds.ImagePositionPatient = [-200.0, -180.0, -300.0 + 1.5 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.78125, 0.78125], 1.5
        ds.Rows = ds.Columns = 512
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PixelData = pixels
        ds.save_as(work / "ct" / f"{k:04d}.dcm", enforce_file_format=True)
    grid = read_image_series(work / "ct").geometry
    segmentation = synthetic_segmentation(
        shape=grid.shape, n_segments=n_segments, geometry=grid, seed=1, terminology=False
    )
    labels = segmentation.layers[0].array
    np.save(work / "labels.npy", labels)
    segments = [
        {"id": s.id, "name": s.name, "color": list(s.color), "label": s.label_value}
        for s in segmentation.segments.values()
    ]
    (work / "meta.json").write_text(
        json.dumps({"ijk_to_lps": grid.ijk_to_lps.tolist(), "segments": segments})
    )
    header = {
        "space": "left-posterior-superior",
        "space directions": grid.ijk_to_lps[:3, :3].T,
        "space origin": grid.origin,
        "kinds": ["domain"] * 3,
        "encoding": "gzip",
    }
    nrrd.write(str(work / "labels.nrrd"), labels.astype(np.int16).T, header)
    tissue = {"CodeValue": "85756007", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Tissue"}
    attributes = [
        {
            "labelID": s["label"],
            "SegmentLabel": s["name"][:64],
            "SegmentedPropertyCategoryCodeSequence": tissue,
            "SegmentedPropertyTypeCodeSequence": tissue,
            "SegmentAlgorithmType": "MANUAL",
            "recommendedDisplayRGBValue": [round(c * 255) for c in s["color"]],
        }
        for s in segments
    ]
    (work / "dcmqi.json").write_text(
        json.dumps(
            {
                "ContentCreatorName": "Bench",
                "ClinicalTrialSeriesID": "1",
                "ClinicalTrialTimePointID": "1",
                "SeriesDescription": "bench",
                "SeriesNumber": "300",
                "InstanceNumber": "1",
                "segmentAttributes": [attributes],
                "ContentLabel": "SEGMENTATION",
                "ContentDescription": "bench",
                "ClinicalTrialCoordinatingCenterName": "bench",
                "BodyPartExamined": "",
            }
        )
    )


def dcmqi_write(work: Path, kind: str) -> Result:
    out = work / f"dcmqi-{kind}.dcm"
    return run_command(
        [
            str(BIN / "itkimage2segimage"),
            "--inputImageList",
            str(work / "labels.nrrd"),
            "--inputDICOMDirectory",
            str(work / "ct"),
            "--inputMetadata",
            str(work / "dcmqi.json"),
            "--outputDICOM",
            str(out),
            "--segmentationType",
            kind,
            "--useLabelIDAsSegmentNumber",
        ],
        out,
    )


def dcmqi_read(work: Path, file: str) -> list[str]:
    """The argv of dcmqi reading ``file`` into one merged NRRD (its only way to read).

    Through ``sh -c 'exec ...'``: :func:`_harness.paired` appends the work folder to every
    job, which becomes ``$0`` here; ``exec`` leaves dcmqi alone in the timed process.
    """
    out = work / f"dcmqi-read-{file}"
    out.mkdir(exist_ok=True)
    command = [
        str(BIN / "segimage2itkimage"),
        "--inputDICOM",
        str(work / file),
        "--outputDirectory",
        str(out),
        "--outputType",
        "nrrd",
        "--mergeSegments",
    ]
    return ["/bin/sh", "-c", f"exec {shlex.join(command)} >/dev/null"]


def check_pydicom_seg() -> None:
    """Exit non-zero, saying how to make it, when pydicom-seg's environment is missing."""
    works = (
        PYDICOM_SEG.exists()
        and not subprocess.run(
            [str(PYDICOM_SEG), "-c", "import pydicom_seg"], capture_output=True, check=False
        ).returncode
    )
    if not works:
        raise SystemExit(
            f"pydicom-seg is not usable at {PYDICOM_SEG}; create it (it pins numpy 1, and "
            "0.4.1 needs pydicom 2) with:\n  python3 -m venv .tools/pydicom-seg && "
            ".tools/pydicom-seg/bin/pip install pydicom-seg 'pydicom<3'"
        )


@contextlib.contextmanager
def workspace(folder: str | None) -> Iterator[Path]:
    """``folder`` (kept), or a temporary folder removed at the end."""
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        yield Path(folder)
        return
    with tempfile.TemporaryDirectory() as temporary:
        yield Path(temporary)


def writes(work: Path, repeats: int) -> dict[str, Result]:
    """Every tool writes BINARY and LABELMAP (in-process clocks, fresh processes)."""
    results: dict[str, Result] = {}
    for kind in ("binary", "labelmap"):
        results[f"segio write {kind}"] = repeat(
            lambda kind=kind: run_python(SEGIO_WRITE.format(kind=kind), work), repeats
        )
        results[f"highdicom write {kind}"] = repeat(
            lambda kind=kind: run_python(
                HIGHDICOM_WRITE.format(kind=kind, kind_upper=kind.upper()), work
            ),
            repeats,
        )
        results[f"dcmqi write {kind}"] = repeat(lambda kind=kind: dcmqi_write(work, kind), repeats)
    return results


def reads(work: Path, file: str, pairs: int) -> None:
    """Whole processes, paired: segio against every peer that reads ``file``."""
    jobs = {
        "segio": python_job(SEGIO_READ.format(file=file)),
        "highdicom": python_job(HIGHDICOM_READ.format(file=file)),
        "dcmqi": dcmqi_read(work, file),
    }
    if "binary" in file:  # pydicom-seg reads no LABELMAP SEG
        jobs["pydicom-seg"] = python_job(PYDICOM_SEG_READ.format(file=file), python=PYDICOM_SEG)
    results, ratios = paired(jobs, work, pairs=pairs)
    fastest = print_pairs(f"read {file}: whole processes, {pairs} pairs", results, ratios)
    leanest = min(ratios, key=lambda name: results[name]["peak_mb"])
    memory = results["segio"]["peak_mb"] / results[leanest]["peak_mb"]
    for what, value, target, peer in (
        ("time", ratios[fastest], TIME_TARGET, f"the fastest peer, {fastest}"),
        ("peak memory", memory, MEMORY_TARGET, f"the leanest peer, {leanest}"),
    ):
        verdict = "met" if value <= target else "MISSED"
        print(f"  target {what}: segio / {peer} = {value:.2f} (<= {target:.2f}) {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=5, help="rounds of paired reads")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each write")
    parser.add_argument("--skip-writes", action="store_true", help="time the reads only")
    parser.add_argument("--work", help="keep the prepared data in this folder (reused)")
    args = parser.parse_args()
    check_pydicom_seg()
    with workspace(args.work) as work:
        if not (work / "meta.json").exists():
            prepare(work, args.slices, args.segments)
        print(f"CT {args.slices} x 512 x 512, {args.segments} segments")
        if not args.skip_writes:
            results = writes(work, args.repeat)
            print_table(results)
            print("\nsegio / fastest peer (target: time <= 0.5, memory and size <= 1):")
            for kind in ("binary", "labelmap"):
                ours = results[f"segio write {kind}"]
                peers = [results[f"{peer} write {kind}"] for peer in ("highdicom", "dcmqi")]
                fastest = min(peers, key=lambda r: r["seconds"])
                print(ratio_line(f"write {kind}", ours, fastest, size=True))
        else:  # the two files the reads need, written once
            if not (work / "dcmqi-binary.dcm").exists():
                dcmqi_write(work, "binary")
            if not (work / "highdicom-labelmap.dcm").exists():
                run_python(HIGHDICOM_WRITE.format(kind="labelmap", kind_upper="LABELMAP"), work)
        for file in ("dcmqi-binary.dcm", "highdicom-labelmap.dcm"):
            reads(work, file, args.pairs)


if __name__ == "__main__":
    main()
