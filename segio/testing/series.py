"""A fake DICOM reference series: the images a DICOM SEG or RTSTRUCT is drawn on.

DICOM derived objects must cite the images they were drawn on, so writing one needs a
series on the segmentation's grid. Tests, fixtures and the conformance battery make one
here, on any grid (oblique and anisotropic ones included), without a real CT.
"""

from __future__ import annotations

from pathlib import Path

from segio.geometry import Geometry

__all__ = ["reference_series"]


def reference_series(geometry: Geometry, folder: Path) -> Path:
    """Write a minimal CT series on ``geometry`` (one file per slice) into ``folder``.

    For formats that write DICOM derived objects (SEG, RTSTRUCT), which must reference
    the images they were drawn on. Pixels are zeros; the header is a valid CT image.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    rows, columns = geometry.shape[1], geometry.shape[2]
    spacing = geometry.spacing
    for k, position in enumerate(geometry.slice_positions()):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            "Test^Case",
            "T1",
            "",
            "O",
        )
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = (
            "",
            "CT",
            1,
            k + 1,
        )
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in geometry.image_orientation()]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PhotometricInterpretation, ds.ImageType = "MONOCHROME2", ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = bytes(rows * columns * 2)
        ds.save_as(folder / f"{k:04d}.dcm", enforce_file_format=True)
    return folder
