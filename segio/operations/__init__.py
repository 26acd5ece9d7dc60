"""Segment editing: select, drop, rename, recolour, relabel, merge, split, flatten, set
terminology; each function returns a NEW segmentation and leaves its input as it was.

>>> from segio.operations import select, rename, relabel, Edits
>>> liver = select(seg, ["liver"])
>>> plan = Edits(drop=["Segment_7"], rename={"Neoplasm, Primary": "tumour"}, flatten="smallest")
>>> edited = plan.apply(seg)

Segments are named by *keys* (:mod:`segio.operations.keys`): an id, an exact name, or
``label:N`` / ``layer:L:label:N``. The edits that need voxels (relabel, flatten, merging
different representations) convert surfaces, contours and fractional labelmaps to a
binary labelmap first and say so; the others work on any source representation.
:class:`Edits` is the plan ``segio convert`` builds from its options, applied in a fixed
order (docs/editing.md).
"""

from segio.operations.keys import parse_color, resolve, resolve_keys, resolve_list
from segio.operations.labels import FLATTEN_RULES, flatten, relabel, relabel_from_table
from segio.operations.merge import merge
from segio.operations.plan import RESAMPLE_MODES, EditResult, Edits
from segio.operations.segments import (
    drop,
    iter_split,
    recolor,
    rename,
    select,
    set_terminology,
    split,
)

__all__ = [
    "FLATTEN_RULES",
    "RESAMPLE_MODES",
    "EditResult",
    "Edits",
    "drop",
    "flatten",
    "iter_split",
    "merge",
    "parse_color",
    "recolor",
    "relabel",
    "relabel_from_table",
    "rename",
    "resolve",
    "resolve_keys",
    "resolve_list",
    "select",
    "set_terminology",
    "split",
]
