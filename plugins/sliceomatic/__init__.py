"""SliceOmatic (TomoVision) ``.tag`` label files: one 8-bit label per voxel of a DICOM image."""
