"""nibabel NIfTI images <-> :class:`~segio.model.Segmentation`.

A NIfTI image holds a labelmap and an ``(i, j, k) -> RAS`` affine (``img.affine``) and
nothing else a segmentation needs: names, colours and codes are passed in the call and
come back from :func:`segio.interop.to_numpy` (or use ``segio.write`` for a label table
beside the file). nibabel is imported only when an image is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from segio.errors import GeometryError, MissingDependencyError
from segio.interop.numpy_arrays import PerSegment, from_numpy, to_numpy
from segio.model import Color, Segmentation
from segio.terminology import Terminology

if TYPE_CHECKING:
    import nibabel


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError as error:
        raise MissingDependencyError(
            "nibabel is not installed", hint="pip install 'segio[nifti]' or pip install nibabel"
        ) from error
    return nibabel


def from_nibabel(
    image: nibabel.spatialimages.SpatialImage,
    *,
    names: PerSegment[str] | None = None,
    colors: PerSegment[Color] | None = None,
    terminologies: PerSegment[Terminology] | None = None,
) -> Segmentation:
    """A segmentation from a 3D label image (any nibabel image with an affine, e.g.
    ``Nifti1Image``): its voxels as they are stored (no float scaling of labels), its
    affine as RAS. A 4D image with a single volume is accepted; more volumes are refused."""
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise GeometryError(
            f"a label image must be 3D, got shape {data.shape}",
            hint="for one mask per volume, pass np.moveaxis(data, 3, 0) to "
            "segio.interop.from_numpy(..., masks=True)",
        )
    if image.affine is None:
        raise GeometryError(
            "the image has no affine, so its voxels have no place in space",
            hint="build it with nibabel.Nifti1Image(data, affine)",
        )
    return from_numpy(
        data,
        image.affine,
        axes="ijk",
        space="RAS",
        names=names,
        colors=colors,
        terminologies=terminologies,
    )


def to_nibabel(seg: Segmentation) -> nibabel.Nifti1Image:
    """A ``Nifti1Image`` of the segments as one labelmap (overlapping segments are refused:
    use :func:`segio.interop.to_numpy` with ``masks=True``), with the RAS affine in both
    the sform and, for an orthogonal grid, the qform (code 1, scanner), as segio's NIfTI
    writer stores it."""
    nib = _nibabel()
    arrays = to_numpy(seg, axes="ijk", space="RAS")
    image: nibabel.Nifti1Image = nib.Nifti1Image(arrays.array, arrays.affine)
    header: Any = image.header
    header.set_sform(arrays.affine, code=1)
    if seg.require_geometry().is_orthogonal:
        header.set_qform(arrays.affine, code=1)
    else:  # a qform is a rotation: a sheared grid would be stored wrong there
        header.set_qform(None, code=0)
    header.set_xyzt_units("mm")
    header.set_intent("label")
    header.set_data_dtype(arrays.array.dtype)
    return image
