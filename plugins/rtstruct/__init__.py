"""DICOM RT Structure Set (RTSTRUCT): planar contours referencing an image series."""
