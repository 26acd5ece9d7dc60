"""Progress of long steps, reported without knowing who, if anyone, shows it.

Library code marks its long loops and nothing else::

    with progress.task("closed surfaces", total=len(jobs)) as step:
        for job in jobs:
            ...
            step.advance()

    for file in progress.track(files, "reading DICOM headers"):
        ...

Who sees it is decided by the caller, through the reporter installed in the current
context (:func:`reporting`, a :class:`~contextvars.ContextVar`): by default none, so a
library user, a test or a batch worker sees nothing, and pays one call to a method that
does nothing per step (:data:`NULL_STEP`; :func:`track` then hands back the iterable's
own iterator: not even that). The ``segio`` command installs a reporter that draws a bar
on a terminal (:mod:`segio.cli.progress_bar`); a batch runner can install its own, or
:func:`silenced` for the items it runs in-process. This module imports neither rich nor
anything that knows about terminals, so any module may use it.

A reporter may be called from worker threads (the surface converters advance a step as
each job of their thread pool ends): it must be thread-safe. A context variable is not
inherited by a pool's threads, which is why a step is opened in the calling thread and
handed to the jobs (:meth:`Step.counting`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Protocol, TypeVar

__all__ = [
    "NULL_STEP",
    "Reporter",
    "Step",
    "current",
    "reporting",
    "silenced",
    "task",
    "track",
]

T = TypeVar("T")


class Step:
    """The handle of one running task. This base class does nothing: it is what code
    gets when no reporter is installed. Reporters subclass it."""

    __slots__ = ()

    def advance(self, steps: int = 1) -> None:
        """``steps`` more units of the task are done."""

    def close(self) -> None:
        """The task has ended (done, or left by an exception); called once."""

    def counting(self, job: Callable[[], T], steps: int = 1) -> Callable[[], T]:
        """``job``, advancing this task by ``steps`` when it returns: for jobs a thread
        pool runs. Without a reporter, ``job`` itself."""
        if type(self) is Step:
            return job

        def counted() -> T:
            result = job()
            self.advance(steps)
            return result

        return counted


#: The step of every task when no reporter is installed.
NULL_STEP = Step()


class Reporter(Protocol):
    """What shows progress: opens a :class:`Step` for each task (tasks may nest)."""

    def open(self, description: str, total: int | None) -> Step:
        """A task starts: ``total`` units of work (None: unknown)."""
        ...


_REPORTER: ContextVar[Reporter | None] = ContextVar("segio_progress", default=None)


def current() -> Reporter | None:
    """The reporter of the current context, None when progress goes nowhere."""
    return _REPORTER.get()


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Report the progress of the code run inside to ``reporter`` (None: to nobody)."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def silenced() -> AbstractContextManager[None]:
    """No progress reported inside, whatever an outer caller installed (batch items run
    in the calling process use this, so their steps do not fight the batch's own bar)."""
    return reporting(None)


@contextmanager
def task(description: str, total: int | None = None) -> Iterator[Step]:
    """A task of ``total`` units (None: unknown); advance the step it gives."""
    reporter = _REPORTER.get()
    if reporter is None:
        yield NULL_STEP
        return
    step = reporter.open(description, total)
    try:
        yield step
    finally:
        step.close()


def track(iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """The items of ``iterable``, one step each; ``total`` defaults to its length."""
    if _REPORTER.get() is None:
        return iter(iterable)
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    return _tracked(iterable, description, total)


def _tracked(iterable: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    with task(description, total) as step:
        for item in iterable:
            yield item
            step.advance()
