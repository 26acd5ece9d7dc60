"""Plain NRRD labelmaps: one integer image (4D ``list`` for several layers) + a label table.

Unlike ``.seg.nrrd`` the header carries no segment fields, so any NRRD reader sees an
ordinary labelmap; names, colours and terminology go to a sidecar (segio's JSON by default).
Reading is shared with ``.seg.nrrd`` (``segnrrd.read``), which falls back to the sidecar when
the header has no segment fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segio.fileio.outputs import OutputFiles
from segio.labels.segments import DEFAULT_SIDECAR, storage_dtype, write_sidecar
from segio.model import Segmentation

from . import nrrdfile
from .segnrrd import nrrd_geometry_fields


def write(
    segmentation: Segmentation,
    path: Path,
    files: OutputFiles,
    *,
    encoding: str = "gzip",
    level: int | None = None,
    sidecar: str = DEFAULT_SIDECAR,
) -> None:
    geometry = segmentation.require_geometry()
    dtype = storage_dtype(segmentation)
    arrays = [layer.array.astype(dtype, copy=False) for layer in segmentation.layers]
    data = arrays[0] if len(arrays) == 1 else np.stack(arrays, axis=-1)
    write_sidecar(segmentation, path, ".nrrd", files, sidecar)
    options: dict[str, int] = {} if level is None else {"level": int(level)}
    nrrdfile.write(
        files.stage(path),
        data,
        fields=nrrd_geometry_fields(geometry, list_axis=len(arrays) > 1),
        key_values={},
        encoding=encoding,
        **options,
    )
