"""nibabel NIfTI images <-> :class:`~segio.model.Segmentation`.

A NIfTI image holds a labelmap and an ``(i, j, k) -> RAS`` affine (``img.affine``). Names
and colours travel in a Caret XML label table in a header extension (TotalSegmentator's
label maps carry one; segio's NIfTI reader reads it): :func:`to_nibabel` adds it, and
:func:`from_nibabel` takes names and colours from it unless the call gives them. Coded
terms have no place in the image: pass them in the call. nibabel is imported only when an
image is built.
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
    affine as RAS, names and colours from its Caret XML label table when it has one and
    the call gives none. A 4D image with one volume is accepted; more volumes are refused."""
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
    table_names, table_colors = _label_table(image)
    return from_numpy(
        data,
        image.affine,
        axes="ijk",
        space="RAS",
        names=table_names if names is None else names,
        colors=table_colors if colors is None else colors,
        terminologies=terminologies,
    )


def _label_table(image: Any) -> tuple[dict[int, str] | None, dict[int, Color] | None]:
    """Names and colours from the first Caret XML ``<LabelTable>`` header extension."""
    from segio.labels.tables.caret_xml import parse_caret_xml

    header: Any = getattr(image, "header", None)
    for extension in getattr(header, "extensions", ()):
        content = extension.get_content()
        if isinstance(content, bytes) and b"<LabelTable" in content:
            entries = parse_caret_xml(content)
            names = {entry.value: entry.name for entry in entries}
            colors = {entry.value: entry.color for entry in entries if entry.color is not None}
            return names, colors
    return None, None


def to_nibabel(seg: Segmentation, *, label_table: bool = True) -> nibabel.Nifti1Image:
    """A ``Nifti1Image`` of the segments as one labelmap (overlapping segments are refused:
    use :func:`segio.interop.to_numpy` with ``masks=True``), with the RAS affine in both
    the sform and, for an orthogonal grid, the qform (code 1, scanner), as segio's NIfTI
    writer stores it; with ``label_table``, the names and colours in a Caret XML header
    extension."""
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
    if label_table and arrays.names:
        from segio.labels.tables import LabelEntry
        from segio.labels.tables.caret_xml import caret_xml

        entries = [
            LabelEntry(label, name, arrays.colors[label]) for label, name in arrays.names.items()
        ]
        header.extensions.append(nib.nifti1.Nifti1Extension(0, caret_xml(entries)))
    return image
