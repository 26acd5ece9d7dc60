"""DICOM Segmentation objects: BINARY, FRACTIONAL and LABELMAP SEG."""
