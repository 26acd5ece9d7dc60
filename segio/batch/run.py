"""A batch from end to end: decide per item (run, skip as done, or report a failure of an
earlier run), run the rest on the chosen engine, and record each result in the ledger
and the report as it arrives.

Only this process writes the ledger and the report (one writer, also on a cluster: the
workers only convert), so they need no lock between workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segio.batch.items import Item, absolute
from segio.batch.ledger import Ledger, decide, key, reference_print
from segio.batch.report import ReportFile, Summary
from segio.batch.runner import execute
from segio.batch.work import Task

__all__ = ["Plan", "default_root", "options_digest", "run_batch"]

#: Parameters that do not change what is written (``force`` only allows replacing).
_NOT_IN_DIGEST = ("force",)


@dataclass(frozen=True)
class Plan:
    """How items with one set of options are converted: the edits, the keyword
    arguments of ``run_conversion``, and the digest of the options the ledger records."""

    edits: Any
    arguments: dict[str, Any]
    digest: str


def options_digest(params: Mapping[str, Any]) -> str:
    """A digest of the conversion options: changing any option that changes the output
    makes every item stale."""
    kept = {k: v for k, v in params.items() if k not in _NOT_IN_DIGEST}
    text = json.dumps(kept, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def default_root(items: Sequence[Item]) -> Path:
    """The folder the ledger and report go in by default: the deepest folder holding
    every output (with ``--split`` fields cut off)."""
    folders = [str(Path(absolute(item.output.split("{")[0] + "x")).parent) for item in items]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def run_batch(
    items: Sequence[Item],
    plans: Mapping[tuple[str, ...], Plan],
    *,
    ledger: str | os.PathLike[str],
    report: str | os.PathLike[str],
    jobs: int = 1,
    budget: int | None = None,
    scheduler: str | None = None,
    local_dask: bool = False,
    retry_failed: bool = False,
    segment_report: bool = False,
    on_line: Callable[[dict[str, Any]], None] | None = None,
) -> Summary:
    """Run ``items`` (each with the plan of its ``options``), recording every item's
    line in ``report`` and calling ``on_line`` with it; returns the summary."""
    clock = time.perf_counter()
    book = Ledger(ledger)
    entries = book.load()
    book.open()
    summary = Summary(len(items))
    out = ReportFile(report)
    prints: dict[str | None, dict[str, Any] | None] = {}

    def emit(item: Item, line: dict[str, Any]) -> None:
        line = {"case": item.case, "inputs": list(item.sources), "output": item.output, **line}
        out.write(line)
        summary.add(line)
        if on_line is not None:
            on_line(line)

    try:
        tasks: list[Task] = []
        meta: dict[int, tuple[str, dict[str, Any] | None, str]] = {}
        for item in items:
            plan = plans[item.options]
            if item.problem:
                emit(item, {"status": "failed", "reason": "not run", "error": item.problem})
                continue
            reference = item.reference or plan.arguments.get("reference")
            reference = None if reference is None else str(reference)
            if reference not in prints:
                prints[reference] = reference_print(reference)
            ref_print = prints[reference]
            entry = entries.get(key(item.output))
            decision = decide(entry, item.sources, plan.digest, ref_print, retry_failed)
            if decision.refreshed is not None and entry is not None:
                book.append({**entry, "sources": decision.refreshed, "time": time.time()})
            if decision.action == "skip":
                written = (entry or {}).get("written", [])
                emit(item, {"status": "skipped", "reason": "done", "written": written})
                continue
            if decision.action == "failed":
                error = f"{decision.reason} (an earlier run; --retry-failed retries it)"
                emit(item, {"status": "failed", "reason": "failed before", "error": error})
                continue
            arguments = plan.arguments
            if decision.owned and not arguments.get("force"):
                arguments = {**arguments, "force": True}  # this batch's own output
            task = Task(_absolute(item), plan.edits, arguments, segment_report)
            meta[id(task)] = (decision.reason, ref_print, plan.digest)
            tasks.append(task)

        entries.clear()  # ~2.4 kB an item in memory: 240 MB for 100,000 items

        def started(task: Task) -> None:
            book.append({"output": key(task.item.output), "state": "started", "time": time.time()})

        for task, result in execute(
            tasks,
            jobs=jobs,
            budget=budget,
            scheduler=scheduler,
            local_dask=local_dask,
            on_submit=started,
        ):
            reason, ref_print, digest = meta[id(task)]
            written = [absolute(p) for p in result.get("written", [])]
            book.append(
                {
                    "output": key(task.item.output),
                    "state": result["status"],
                    "options": digest,
                    "sources": result.get("sources"),
                    "reference": ref_print,
                    "written": written,
                    "error": result.get("error"),
                    "time": time.time(),
                }
            )
            line = {k: v for k, v in result.items() if k not in ("case", "output", "sources")}
            emit(task.item, {"reason": reason, **line})
    finally:
        summary.seconds = time.perf_counter() - clock
        out.close()
        book.close()
    return summary


def _absolute(item: Item) -> Item:
    """The item with absolute paths: a Dask worker runs in a folder of its own."""
    reference = absolute(item.reference) if item.reference is not None else None
    sources = tuple(absolute(path) for path in item.sources)
    return replace(item, sources=sources, output=absolute(item.output), reference=reference)
