"""Whole datasets: ``segio batch`` converts many items on local processes or a Dask
cluster, resumably, with a JSON-lines report (docs/batch.md).

- :mod:`segio.batch.items`: what to convert (glob, folder tree, manifest) and the output
  of each item, from a pattern;
- :mod:`segio.batch.work`: the pure per-item function every engine runs;
- :mod:`segio.batch.runner`: local worker processes or Dask, a bounded window in flight;
- :mod:`segio.batch.ledger`: what is done, for a rerun to skip;
- :mod:`segio.batch.report`: the report lines and the summary;
- :mod:`segio.batch.run`: all of it together (:func:`run_batch`).

Nothing heavy is imported here: Dask only when a batch runs on it.
"""

from __future__ import annotations

from segio.batch.items import Item, assign_outputs, from_manifest, from_paths, from_tree
from segio.batch.run import Plan, options_digest, run_batch
from segio.batch.work import Task, run_item

__all__ = [
    "Item",
    "Plan",
    "Task",
    "assign_outputs",
    "from_manifest",
    "from_paths",
    "from_tree",
    "options_digest",
    "run_batch",
    "run_item",
]
