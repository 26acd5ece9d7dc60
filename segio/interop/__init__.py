"""In-memory bridges between a :class:`~segio.model.Segmentation` and the field's libraries.

One module per library (numpy arrays, nibabel and SimpleITK images, MONAI-style dicts,
pydicom/highdicom objects, meshes, napari), each importing its library only inside the
functions that need it: ``import segio.interop`` stays as light as ``import segio``.
The functions are exported here by name and loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> module that defines it (relative to this package). Other modules in this
# package add their own lines here.
_EXPORTS: dict[str, str] = {
    "from_numpy": "numpy_arrays",
    "to_numpy": "numpy_arrays",
    "from_nibabel": "nibabel_images",
    "to_nibabel": "nibabel_images",
    "from_simpleitk": "simpleitk_images",
    "to_simpleitk": "simpleitk_images",
    "from_monai": "monai_dicts",
    "to_monai": "monai_dicts",
    "from_trimesh": "trimesh_meshes",
    "to_trimesh": "trimesh_meshes",
    "from_pyvista": "pyvista_meshes",
    "to_pyvista": "pyvista_meshes",
    "from_dicom": "dicom_objects",
    "to_dicom": "dicom_objects",
    "from_highdicom": "dicom_objects",
    "to_highdicom": "dicom_objects",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load the adapter module on first use, so importing the package costs nothing."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segio.interop' has no attribute {name!r}")
    return getattr(importlib.import_module(f"segio.interop.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
