"""The core's label-table formats, declared through the ``segio_label_tables`` hook as an
outside plugin would declare its own (declarations only: nothing is imported until a
table is looked for, read or written).

The order is the order sidecars are looked for next to an image: ``<stem>.json`` first
(segio's own, lossless; or dcmqi's JSON, told apart by content), then ``.dcmqi.json``,
Slicer's ``.labels.csv``, ``.csv``, ``.tsv``, ``.ctbl``,
ITK-SNAP's ``.label``, a ``.txt`` LUT, and last nnU-Net's shared ``dataset.json``.
"""

from __future__ import annotations

from segio.hookspecs import LabelTableSpec, hookimpl

_HERE = "segio.labels.tables"


def _table(
    name: str,
    module: str,
    description: str,
    *,
    sidecar_suffixes: tuple[str, ...] = (),
    folder_file: str | None = None,
    layers: bool = False,
    complete: bool = False,
) -> LabelTableSpec:
    """A built-in table format: ``sniff``, ``read`` and ``write`` of one module here."""
    return LabelTableSpec(
        name=name,
        description=description,
        sniff=f"{_HERE}.{module}:sniff",
        reader=f"{_HERE}.{module}:read",
        writer=f"{_HERE}.{module}:write",
        sidecar_suffixes=sidecar_suffixes,
        folder_file=folder_file,
        layers=layers,
        complete=complete,
    )


@hookimpl
def segio_label_tables() -> list[LabelTableSpec]:
    return [
        _table(
            "segio-json",
            "segio_json",
            "segio's label table: every field, layers, the exact grid (lossless)",
            sidecar_suffixes=(".json",),
            layers=True,
            complete=True,
        ),
        _table(
            "dcmqi-json",
            "dcmqi_json",
            "dcmqi's segmentation metadata JSON (segmentAttributes), with codes and layers",
            sidecar_suffixes=(".dcmqi.json",),
            layers=True,
        ),
        _table(
            "slicer-csv",
            "slicer_csv",
            "3D Slicer colour table as CSV/TSV, with terminology codes",
            sidecar_suffixes=(".labels.csv", ".csv", ".tsv"),
        ),
        _table(
            "slicer-ctbl",
            "slicer_ctbl",
            "3D Slicer colour table file (.ctbl)",
            sidecar_suffixes=(".ctbl",),
        ),
        _table(
            "itksnap",
            "itksnap",
            "ITK-SNAP label description file",
            sidecar_suffixes=(".label",),
        ),
        _table(
            "freesurfer",
            "freesurfer",
            "FreeSurfer colour lookup table",
            sidecar_suffixes=(".txt",),
        ),
        _table(
            "nnunet",
            "nnunet",
            "nnU-Net / Medical Segmentation Decathlon dataset.json labels",
            folder_file="dataset.json",
        ),
        _table(
            "json-map",
            "json_map",
            'plain JSON map {"1": "liver"} or {"liver": 1}',
            sidecar_suffixes=(".json",),
        ),
        _table(
            "caret-xml",
            "caret_xml",
            "TotalSegmentator's Caret XML label table (in a NIfTI header extension)",
        ),
    ]
