"""Mesh file formats (STL, OBJ+MTL, PLY, VTK/VTP, glTF/GLB, 3MF) for closed surfaces.

Every reader returns a segmentation whose source representation is the closed surface
(one :class:`segio.surfaces.Surface` per segment, LPS millimetres); every writer takes
one. Each format's coordinate convention is explicit in its module docstring and in the
file it writes, so a file read back lands where it was.
"""
