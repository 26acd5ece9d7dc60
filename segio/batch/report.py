"""The batch's report: one JSON line per item, written as each item ends (a killed batch
leaves the lines of every item finished until then), and the summary that names the
failures.

A line holds ``case``, ``inputs``, ``output``, ``status`` (``ok``, ``skipped``: done by an
earlier run and current, or ``failed``), ``reason`` (why it ran or was skipped: ``new``,
``options changed``, ``source changed``, ``done``, ...), ``seconds``, ``peak_memory_mb``
(and ``peak_memory_of``: ``item`` where the peak is reset per item, Linux; ``worker``
elsewhere), ``written``, ``warnings``, ``error`` (one line), ``worker`` (host:pid),
``started`` and ``finished`` (Unix times), and with ``--report`` the per-segment
``report`` of ``segio convert --report``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["ReportFile", "Summary"]

#: Failures the printed summary names one per line (the report holds every one).
FAILURES_SHOWN = 20


class ReportFile:
    """The JSON-lines report of one run (replaced by the next run)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._stream: IO[str] = self.path.open("w", encoding="utf-8")

    def write(self, line: dict[str, Any]) -> None:
        self._stream.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.close()


@dataclass
class Summary:
    """Counts by status, the failures by case, and the wall time of the run."""

    total: int
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, line: dict[str, Any]) -> None:
        self.counts[line["status"]] += 1
        if line["status"] == "failed":
            self.failures.append((line["case"], str(line.get("error") or "failed")))

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def lines(self) -> list[str]:
        """What the command prints: one line of counts, then the failures by case."""
        rate = self.counts["ok"] / self.seconds if self.seconds > 0 else 0.0
        head = (
            f"{self.counts['ok']} converted, {self.counts['skipped']} skipped (done before), "
            f"{self.counts['failed']} failed, of {self.total} items in {self.seconds:.1f} s"
            f" ({rate:.2f} items/s)"
        )
        shown = [f"failed: {case}: {error}" for case, error in self.failures[:FAILURES_SHOWN]]
        if len(self.failures) > FAILURES_SHOWN:
            shown.append(f"... and {len(self.failures) - FAILURES_SHOWN} more (see the report)")
        return [head, *shown]

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "ok": self.counts["ok"],
            "skipped": self.counts["skipped"],
            "failed": self.counts["failed"],
            "seconds": round(self.seconds, 3),
            "failures": [{"case": c, "error": e} for c, e in self.failures],
        }
