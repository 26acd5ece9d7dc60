"""OsiriX / Horos ROI exports (plist, JSON, CSV, ROI SR DICOM) as planar contours."""
