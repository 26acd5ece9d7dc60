"""DICOM SEG write and read: segio against highdicom and dcmqi, same data, one run.

A synthetic 512 x 512 x 200 CT series (200 single-frame files) and a segmentation on its
grid from ``segio.testing.synthetic_segmentation`` (holes, islands, border-touching), with
24 segments and, with ``--segments 104``, a TotalSegmentator-sized one. Each job runs in a
fresh process (``_harness``); dcmqi runs under ``/usr/bin/time``.

Writes: BINARY and LABELMAP, uncompressed, by each tool from the same labelmap. Reads:
every tool reads the same files (dcmqi's BINARY and highdicom's LABELMAP SEG) into a volume
(highdicom ``get_volume``; dcmqi ``segimage2itkimage --mergeSegments`` into NRRD, its only
way to read). Prints the table and segio's ratios to the fastest peer.

    python benchmarks/dicom_seg.py [--segments 24] [--slices 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Result, print_table, ratio_line, repeat, run_command, run_python

BIN = Path(sys.executable).parent

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

SEGIO_READ = """
    import pydicom  # highdicom imports it at its own import: both clocks start after it
    import segio
    t = time.perf_counter(); seg = segio.read(work / "{file}")
    seg.layers[0].array.sum(); done(time.perf_counter() - t)
"""

HIGHDICOM_READ = """
    import highdicom as hd
    t = time.perf_counter(); seg = hd.seg.segread(work / "{file}")
    volume = seg.get_volume(combine_segments=True, skip_overlap_checks=True)
    volume.array.sum(); done(time.perf_counter() - t)
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

    (work / "ct").mkdir()
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


def dcmqi_read(work: Path, file: str) -> Result:
    out = work / f"dcmqi-read-{file}"
    out.mkdir(exist_ok=True)
    return run_command(
        [
            str(BIN / "segimage2itkimage"),
            "--inputDICOM",
            str(work / file),
            "--outputDirectory",
            str(out),
            "--outputType",
            "nrrd",
            "--mergeSegments",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--segments", type=int, default=24)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare(work, args.slices, args.segments)
        print(f"CT {args.slices} x 512 x 512, {args.segments} segments")
        results: dict[str, Result] = {}
        for kind in ("binary", "labelmap"):
            results[f"segio write {kind}"] = repeat(
                lambda kind=kind: run_python(SEGIO_WRITE.format(kind=kind), work), args.repeat
            )
            results[f"highdicom write {kind}"] = repeat(
                lambda kind=kind: run_python(
                    HIGHDICOM_WRITE.format(kind=kind, kind_upper=kind.upper()), work
                ),
                args.repeat,
            )
            results[f"dcmqi write {kind}"] = repeat(
                lambda kind=kind: dcmqi_write(work, kind), args.repeat
            )
        for file in ("dcmqi-binary.dcm", "highdicom-labelmap.dcm"):
            kind = file.split("-")[1].split(".")[0]
            results[f"segio read {kind}"] = repeat(
                lambda file=file: run_python(SEGIO_READ.format(file=file), work), args.repeat
            )
            results[f"highdicom read {kind}"] = repeat(
                lambda file=file: run_python(HIGHDICOM_READ.format(file=file), work), args.repeat
            )
            results[f"dcmqi read {kind}"] = repeat(
                lambda file=file: dcmqi_read(work, file), args.repeat
            )
    print_table(results)
    print("\nsegio / fastest peer (target: time <= 0.5, memory and size <= 1):")
    for verb in ("write", "read"):
        for kind in ("binary", "labelmap"):
            ours = results[f"segio {verb} {kind}"]
            peers = [results[f"{peer} {verb} {kind}"] for peer in ("highdicom", "dcmqi")]
            fastest = min(peers, key=lambda r: r["seconds"])
            print(ratio_line(f"{verb} {kind}", ours, fastest, size=verb == "write"))


if __name__ == "__main__":
    main()
