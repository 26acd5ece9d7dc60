"""Resume state of a batch: a JSON-lines ledger of what was started and how it ended.

One line per event, keyed by the item's output (absolute path): ``started`` when the item
is handed to a worker, then ``ok`` or ``failed`` with the options' digest, the sources'
fingerprints (path, size, modification time, SHA-256) and the reference's (path, size,
time), and the files written. The last line of an output wins. Lines are appended and
flushed one by one, so a process killed with SIGKILL loses at most the line it was
writing: a torn last line is ignored on reading, and the next writer starts on a fresh
line. ``fsync`` runs at most once a second and at the end: a kill of the process loses
nothing the kernel has; only a crash of the machine can lose the last second.

An item is **done** when its last entry is ``ok`` with the same options digest, the
same sources (size and time equal, or, when only the time changed, the same checksum:
a copied or touched dataset is not redone), the same reference (:func:`reference_print`),
and every file it wrote still there. An item whose last entry is ``failed`` under the
same conditions failed for a reason a rerun would meet again (a corrupt input): it is
retried only with ``--retry-failed``, or once its source, reference or options change.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from segio.batch.items import absolute
from segio.batch.work import fingerprint
from segio.errors import ValidationError

__all__ = ["Decision", "Ledger", "decide", "reference_print"]

#: Seconds between two fsyncs of the ledger.
SYNC_EVERY = 1.0


class Ledger:
    """The ledger file of a batch, locked for the run (two batches writing one ledger
    would each redo and misreport the other's items)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stream: IO[str] | None = None
        self._synced = 0.0

    def load(self) -> dict[str, dict[str, Any]]:
        """The last entry of each output; lines that do not parse (a torn last line) are
        skipped."""
        entries: dict[str, dict[str, Any]] = {}
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return entries
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("output"), str):
                entries[entry["output"]] = entry
        return entries

    def open(self) -> None:
        """Lock the ledger and open it for appending, on a fresh line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stream = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            stream.close()
            raise ValidationError(
                "another segio batch is running with this ledger",
                path=self.path,
                hint="wait for it, or give this batch its own --ledger",
            ) from None
        stream.seek(0, os.SEEK_END)
        if stream.tell():
            stream.seek(stream.tell() - 1)
            last = stream.read(1)
            stream.seek(0, os.SEEK_END)
            if last != "\n":
                stream.write("\n")
        self._stream = stream

    def append(self, entry: dict[str, Any]) -> None:
        stream = self._stream
        if stream is None:
            raise RuntimeError("the ledger is not open")
        stream.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        stream.flush()
        now = time.monotonic()
        if now - self._synced >= SYNC_EVERY:
            os.fsync(stream.fileno())
            self._synced = now

    def close(self) -> None:
        if self._stream is not None:
            self._stream.flush()
            os.fsync(self._stream.fileno())
            self._stream.close()  # releases the lock
            self._stream = None


@dataclass(frozen=True)
class Decision:
    """What to do with an item: ``run``, ``skip`` (done) or ``failed`` (failed before,
    not retried); ``reason`` says why; ``owned`` when a batch wrote or started its output
    (a rerun may replace it without --force); ``refreshed``: sources whose time changed
    but not their bytes, for the ledger."""

    action: str
    reason: str
    owned: bool = False
    refreshed: list[dict[str, Any]] | None = None


def key(output: str) -> str:
    """The ledger's key of an output."""
    return absolute(output)


def reference_print(reference: str | None) -> dict[str, Any] | None:
    """What identifies the reference, cheaply: a file's size and time; a folder's time
    and number of entries (a file added, removed or renamed in a series changes them),
    without a look at each file: 100,000 series of 300 files would be 30 million stats
    on a shared filesystem. A file rewritten in place inside the series is not seen."""
    if reference is None:
        return None
    path = Path(reference)
    try:
        stat = path.stat()
        entries = sum(1 for _ in os.scandir(path)) if path.is_dir() else None
    except OSError:
        return None
    found: dict[str, Any] = {"path": absolute(reference), "mtime_ns": stat.st_mtime_ns}
    if entries is None:
        found["size"] = stat.st_size
    else:
        found["entries"] = entries
    return found


def decide(
    entry: dict[str, Any] | None,
    sources: Sequence[str],
    digest: str,
    reference: dict[str, Any] | None,
    retry_failed: bool,
) -> Decision:
    """Run, skip or report as failed before: the rules of the module docstring."""
    if entry is None:
        return Decision("run", "new")
    state = entry.get("state")
    if state not in ("ok", "failed"):
        return Decision("run", "interrupted", owned=True)
    if entry.get("options") != digest:
        return Decision("run", "options changed", owned=True)
    if entry.get("reference") != reference:
        return Decision("run", "reference changed", owned=True)
    current, refreshed = _sources_current(entry.get("sources"), sources)
    if not current:
        return Decision("run", "source changed", owned=True)
    if state == "failed":
        if retry_failed:
            return Decision("run", "retrying a failure", owned=True)
        return Decision("failed", str(entry.get("error") or "failed"), True, refreshed)
    written = entry.get("written") or []
    if not written or not all(os.path.lexists(path) for path in written):
        return Decision("run", "output missing", owned=True)
    return Decision("skip", "done", owned=True, refreshed=refreshed)


def _sources_current(
    recorded: Any, sources: Sequence[str]
) -> tuple[bool, list[dict[str, Any]] | None]:
    """Whether the sources are those recorded, and their new fingerprints when only the
    times changed (the ledger then records them, so the checksum is not redone)."""
    if not isinstance(recorded, list) or len(recorded) != len(sources):
        return False, None
    refreshed = []
    touched = False
    for old, path in zip(recorded, sources, strict=True):
        if not isinstance(old, dict) or old.get("path") != absolute(path):
            return False, None
        if not Path(path).exists():
            return False, None
        new = fingerprint(path, checksum=False)
        if all(new[k] == old.get(k) for k in ("size", "mtime_ns", "files")):
            refreshed.append(old)
            continue
        if new["size"] != old.get("size") or new["files"] != old.get("files"):
            return False, None
        new = fingerprint(path)
        if new["sha256"] != old.get("sha256"):
            return False, None
        refreshed.append(new)
        touched = True
    return True, refreshed if touched else None
