"""3D Slicer markups JSON (``.mrk.json``): point annotations as a fiducial list."""
