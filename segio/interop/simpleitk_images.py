"""SimpleITK images <-> :class:`~segio.model.Segmentation`.

A SimpleITK image carries what segio's :class:`~segio.geometry.Geometry` carries, in the
same space: origin, spacing and direction cosines in LPS millimetres (ITK's convention), and
``GetArrayFromImage`` gives the voxels in segio's ``(k, j, i)`` order, so no axis or sign
changes are needed. Names, colours and codes have no place in the image: they are passed
in the call. SimpleITK is imported only when an image is built.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from segio.errors import GeometryError, MissingDependencyError
from segio.interop.numpy_arrays import PerSegment, from_numpy, to_numpy
from segio.model import Color, Segmentation
from segio.terminology import Terminology


def _simpleitk() -> Any:
    try:
        return importlib.import_module("SimpleITK")
    except ImportError as error:
        raise MissingDependencyError(
            "SimpleITK is not installed", hint="pip install SimpleITK"
        ) from error


def from_simpleitk(
    image: Any,
    *,
    names: PerSegment[str] | None = None,
    colors: PerSegment[Color] | None = None,
    terminologies: PerSegment[Terminology] | None = None,
) -> Segmentation:
    """A segmentation from a 3D scalar label ``SimpleITK.Image``: its voxels, origin,
    spacing and direction (LPS). Vector (multi-component) and 2D images are refused."""
    sitk = _simpleitk()
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise GeometryError(
            f"a label image must be 3D with one value per voxel, got {image.GetDimension()}D "
            f"with {image.GetNumberOfComponentsPerPixel()} component(s)",
            hint="split a vector image into masks and pass them to "
            "segio.interop.from_numpy(..., masks=True)",
        )
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    affine[:3, 3] = image.GetOrigin()
    return from_numpy(
        sitk.GetArrayFromImage(image),
        affine,
        axes="kji",
        space="LPS",
        names=names,
        colors=colors,
        terminologies=terminologies,
    )


def to_simpleitk(seg: Segmentation) -> Any:
    """A scalar label ``SimpleITK.Image`` of the segments as one labelmap (overlapping
    segments are refused: use :func:`segio.interop.to_numpy` with ``masks=True``), with
    origin, spacing and direction in LPS. A sheared grid, which ITK cannot hold, is refused."""
    sitk = _simpleitk()
    geometry = seg.require_geometry()
    if not geometry.is_orthogonal:
        raise GeometryError(
            "the grid's axes are not perpendicular, which an ITK image cannot hold",
            hint="resample onto an orthogonal grid first (segio convert --resample)",
        )
    arrays = to_numpy(seg, axes="kji", space="LPS")
    image = sitk.GetImageFromArray(arrays.array)
    image.SetOrigin(tuple(float(v) for v in geometry.origin))
    image.SetSpacing(tuple(float(v) for v in geometry.spacing))
    image.SetDirection(tuple(float(v) for v in geometry.direction.ravel()))
    return image
