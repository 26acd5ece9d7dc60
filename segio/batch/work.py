"""The work of one batch item: the same pure function on a local worker process and on a
Dask worker.

:func:`run_item` takes a picklable :class:`Task` and returns a picklable result (a dict,
the report's line for the item); it never raises for what goes wrong with the item, so a
failing item never stops the others. The conversion goes through
:func:`segio.conversion.run_conversion`, as ``segio convert`` does: the same early
checks, the same atomic writes (an interrupted item leaves no partial file).
"""

from __future__ import annotations

import hashlib
import os
import resource
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segio import progress
from segio.batch.items import Item, absolute
from segio.errors import ReadError, SegioError, WriteError, one_line

__all__ = ["Task", "fingerprint", "run_item", "run_items"]

#: Warnings of one item kept in its result (the rest are counted).
WARNINGS_KEPT = 20
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Task:
    """An item with what to do to it: the plan of edits and the keyword arguments of
    ``run_conversion`` (``segio.cli.convert.conversion_plan``), and whether to read the
    output back for a per-segment report (``--report``)."""

    item: Item
    edits: Any
    arguments: dict[str, Any] = field(default_factory=dict)
    report: bool = False


def run_item(task: Task) -> dict[str, Any]:
    """Convert one item; the result says ``status`` (``ok`` or ``failed``), ``seconds``,
    ``peak_memory_mb`` (see :func:`_peak_mb`), ``written`` files, ``warnings``,
    ``error`` (one line) and the ``sources`` fingerprint the resume ledger records."""
    item = task.item
    started = time.time()
    clock = time.perf_counter()
    per_item = _reset_peak()
    result: dict[str, Any] = {
        "case": item.case,
        "output": item.output,
        "status": "failed",
        "written": [],
        "warnings": [],
        "error": None,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    with warnings.catch_warnings(record=True) as caught, progress.silenced():
        warnings.simplefilter("always")
        try:
            result["sources"] = _fingerprints(item)
            result.update(_convert(task))
            result["status"] = "ok"
        except SegioError as exc:
            result["error"] = one_line(exc)
        except Exception as exc:  # a failing item must never stop the batch
            reason = one_line(exc) or "no reason was given"
            result["error"] = f"{reason} ({type(exc).__name__})"
    messages = list(dict.fromkeys(one_line(w.message) for w in caught))
    result["warnings"] = messages[:WARNINGS_KEPT]
    if len(messages) > WARNINGS_KEPT:
        result["warnings"].append(f"... {len(messages) - WARNINGS_KEPT} more")
    result["seconds"] = round(time.perf_counter() - clock, 4)
    result["peak_memory_mb"] = round(_peak_mb(), 1)
    result["peak_memory_of"] = "item" if per_item else "worker"
    result["started"] = round(started, 3)
    result["finished"] = round(time.time(), 3)
    return result


def run_items(tasks: list[Task]) -> list[dict[str, Any]]:
    """:func:`run_item` for each of a group of tasks, in order (one Dask task carries a
    group of small items: :class:`segio.batch.runner.Grouping`)."""
    return [run_item(task) for task in tasks]


def _fingerprints(item: Item) -> list[dict[str, Any]]:
    for path in item.sources:
        if not Path(path).exists():
            raise ReadError("the input does not exist", path=path, hint="check the batch's inputs")
    return [fingerprint(path) for path in item.sources]


def _convert(task: Task) -> dict[str, Any]:
    from segio.conversion import report_rows, run_conversion

    item = task.item
    if item.problem:
        raise SegioError(item.problem)
    arguments = dict(task.arguments)
    if item.reference is not None:
        arguments["reference"] = Path(item.reference)
    if arguments.get("reference") is not None:
        arguments["reference"] = _reference(arguments["reference"])
    _make_folder(item.output, bool(arguments.get("split")))
    conversion = run_conversion(list(item.sources), item.output, edits=task.edits, **arguments)
    found: dict[str, Any] = {"written": [str(p) for p in conversion.written]}
    if task.report:
        found["report"] = report_rows(conversion)
    return found


#: References read by this worker process, by path and stamp (last used last).
_REFERENCES: dict[tuple[str, int, int], Any] = {}
#: References a worker keeps read: a batch often cites one series for every item, or
#: each case its own (then the cache only costs a few headers' memory).
REFERENCES_KEPT = 4


def _reference(path: Any) -> Any:
    """The reference read once per worker while its folder or file is unchanged (same
    time, same number of entries or size): reading a series' headers was a third of a
    small item's time. What is not a path is passed on as it is."""
    from segio.reference import read_reference

    if not isinstance(path, str | os.PathLike):
        return path
    where = Path(path)
    try:
        stat = where.stat()
        count = sum(1 for _ in os.scandir(where)) if where.is_dir() else stat.st_size
    except OSError:
        return path  # the conversion says what is wrong with it
    key = (absolute(where), stat.st_mtime_ns, count)
    found = _REFERENCES.pop(key, None)
    if found is None:
        found = read_reference(where)
    _REFERENCES[key] = found
    while len(_REFERENCES) > REFERENCES_KEPT:
        del _REFERENCES[next(iter(_REFERENCES))]
    return found


def _make_folder(output: str, split: bool) -> None:
    """The output's folder, made as ``{case}/seg.dcm`` needs (a ``--split`` target
    without fields is itself the folder)."""
    folder = Path(output) if split and "{" not in output else Path(output).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(
            f"cannot make the output folder {folder}: {exc.strerror or exc}",
            path=output,
            hint="check --output: a file may stand where a folder must be",
        ) from None


def fingerprint(path: str, *, checksum: bool = True) -> dict[str, Any]:
    """What the ledger records of a source: its path, size, newest modification time
    (ns) and, with ``checksum``, the SHA-256 of its bytes, streamed. For a folder (a
    DICOM series) the same over every file in it, by relative path: a file added,
    removed or changed changes it."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    size = newest = 0
    for file in files:
        stat = file.stat()
        size += stat.st_size
        newest = max(newest, stat.st_mtime_ns)
        if checksum:
            if root.is_dir():
                digest.update(file.relative_to(root).as_posix().encode() + b"\0")
            with file.open("rb") as stream:
                for chunk in iter(lambda: stream.read(_CHUNK), b""):
                    digest.update(chunk)
    found: dict[str, Any] = {
        "path": absolute(path),
        "size": size,
        "mtime_ns": newest,
        "files": len(files),
    }
    if checksum:
        found["sha256"] = digest.hexdigest()
    return found


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (Linux: ``clear_refs`` 5), so that the
    peak read after the item is the item's own (imports and the worker's baseline
    included). Elsewhere, False: the peak is then the worker's since it started."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _peak_mb() -> float:
    """Peak resident memory in MiB: ``VmHWM`` (reset per item by :func:`_reset_peak`),
    else ``ru_maxrss``, which only grows over a reused worker's life."""
    try:
        status = _STATUS.read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
