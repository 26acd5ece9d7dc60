"""NRRD: 3D Slicer ``.seg.nrrd`` segmentations and plain NRRD labelmaps."""
