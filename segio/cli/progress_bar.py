"""What the ``segio`` command shows of long steps (:mod:`segio.progress`): bars on a
terminal, timings with ``-v``, nothing in a pipe or with ``-q``.

A bar appears only for a task still running after :data:`DEFAULT_DELAY` seconds (the
environment variable ``SEGIO_PROGRESS_DELAY`` changes it; tests set it low), so quick
commands print nothing more than before: a timer per task shows the bar when it fires,
and a task closed before then never draws. Each bar says what runs, how far (``12/104``,
a bar, or a pulse when the total is unknown), the rate, the time elapsed and the time
left. Bars are transient: when the last task ends they are erased, and what the command
prints (written files, tables) stands alone. They go to stderr, so piping stdout (JSON,
CSV) keeps it clean.

Tasks are advanced from worker threads (the surface converters' pools): every change
goes through one lock. rich is imported only when a bar is first shown.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from segio.cli import printable
from segio.progress import Step

if TYPE_CHECKING:
    from rich.progress import Progress

#: Seconds a task runs before its bar appears.
DEFAULT_DELAY = 1.0
DELAY_VARIABLE = "SEGIO_PROGRESS_DELAY"


def delay() -> float:
    """The delay before a bar appears: ``SEGIO_PROGRESS_DELAY`` seconds, else 1."""
    text = os.environ.get(DELAY_VARIABLE, "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_DELAY
    except ValueError:
        return DEFAULT_DELAY


class CommandReporter:
    """A :class:`segio.progress.Reporter` for one command: bars on stderr (a terminal)
    when ``bars``, and one line per finished task with its time when ``timings``
    (``-v``; in a pipe too). While a bar is drawn, what is written to stderr (warnings,
    timings) and, on a terminal, to stdout is printed above the bars."""

    def __init__(self, *, bars: bool, timings: bool) -> None:
        self.bars = bars
        self.timings = timings
        self.delay = delay()
        self.lock = threading.RLock()
        self.progress: Progress | None = None
        self.shown = 0

    def open(self, description: str, total: int | None) -> Step:
        return _Task(self, description, total)

    def close(self) -> None:
        """Erase any bar left (the command ends, maybe by an error)."""
        with self.lock:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None
                self.shown = 0

    def _show(self, task: _Task) -> None:
        with self.lock:
            if task.closed:
                return
            if self.progress is None:
                self.progress = _progress()
                self.progress.start()
            task.bar = self.progress.add_task(
                task.description, total=task.total, completed=task.done, started=task.started
            )
            self.shown += 1

    def _hide(self, task: _Task) -> None:
        if self.progress is None or task.bar is None:
            return
        self.progress.remove_task(task.bar)  # type: ignore[arg-type]
        self.shown -= 1
        if not self.shown:  # the last bar: stop drawing until a task lasts again
            self.progress.stop()
            self.progress = None


class _Task(Step):
    """One running task: counts its steps, shows its bar once it has lasted."""

    __slots__ = ("bar", "closed", "description", "done", "reporter", "started", "timer", "total")

    def __init__(self, reporter: CommandReporter, description: str, total: int | None) -> None:
        self.reporter = reporter
        self.description = printable(description)  # a file name: no escape sequences
        self.total = total
        self.done = 0
        self.closed = False
        self.bar: object | None = None
        self.started = time.monotonic()
        self.timer: threading.Timer | None = None
        if reporter.bars:
            self.timer = threading.Timer(reporter.delay, reporter._show, (self,))
            self.timer.daemon = True
            self.timer.start()

    def advance(self, steps: int = 1) -> None:
        with self.reporter.lock:
            self.done += steps
            progress = self.reporter.progress
            if self.bar is not None and progress is not None:
                progress.update(self.bar, completed=self.done)  # type: ignore[arg-type]

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        with self.reporter.lock:
            self.closed = True
            self.reporter._hide(self)
        if self.reporter.timings:
            seconds = time.monotonic() - self.started
            count = f", {self.done} of {self.total}" if self.total is not None else ""
            sys.stderr.write(f"segio: {self.description}: {seconds:.2f} s{count}\n")
            sys.stderr.flush()


def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}", markup=False),  # file names are not markup
        BarColumn(),
        MofNCompleteColumn(),
        _timing_column(),
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=sys.stdout.isatty(),  # a pipe's output must not go to stderr
        redirect_stderr=True,
    )


def _timing_column() -> Any:
    """Rate, elapsed and left, all from the task's own start (its bar appears late, so
    rich's own clock, started with the bar, would under-count)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Timing(ProgressColumn):
        def render(self, task: Task) -> Text:
            elapsed = max(time.monotonic() - task.fields["started"], 1e-9)
            rate = task.completed / elapsed
            text = f"{rate:.3g}/s  {_clock(elapsed)}"
            if task.total is not None and rate > 0:
                text += f"  ETA {_clock(max(task.total - task.completed, 0) / rate)}"
            return Text(text, style="progress.elapsed")

    return Timing()


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds + 0.5), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"
