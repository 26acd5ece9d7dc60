"""Where the items run: local worker processes, or a Dask cluster; results stream back as
they finish, whatever the order they were handed out in.

Both engines run :func:`segio.batch.work.run_item` and keep a bounded number of items (on
Dask, of groups of small items: :class:`Grouping`) in flight (:class:`Window`): twice
the number of worker slots, so that a slot never waits for the parent to hand it the
next item, and no more than the memory budget allows. A
bounded window also keeps the scheduler's load and the client's memory flat however
many items the batch has: 100,000 items are never all submitted at once.

Local workers come from a ``forkserver`` (``spawn`` where there is none): a worker never
inherits the parent's threads or open files, and a worker that dies (killed for memory,
a crash in a native library) fails the items it held and is replaced; the others go on.
Dask is imported only here, only when asked for.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from segio.batch.work import Task, run_item, run_items
from segio.errors import ValidationError, one_line

__all__ = ["MIB", "Window", "execute", "first_estimate"]

MIB = 2**20
#: What a worker needs before its item: the interpreter, numpy, segio and a format's
#: libraries (measured: 80-115 MiB with small items, benchmarks/batch.py), with room to
#: spare; an item's own need is added to it.
WORKER_BASE = 256 * MIB
#: Bytes of memory per byte of input, before any item has been measured (a compressed
#: labelmap grows ~20-50x when read; the measured peaks take over after one item).
INPUT_FACTOR = 40

Result = dict[str, Any]
#: Seconds of work one Dask task carries at most, in items (:class:`Grouping`).
TASK_SECONDS = 0.25
GROUP_MAX = 64
#: Dask settings of the local cluster ``--dask`` starts: no statistical profiler
#: sampling every worker thread each 10 ms, no GIL monitor: CPU the items need on a
#: small machine, for a dashboard nobody looks at (there is none).
QUIET_WORKERS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
}


class Window:
    """How many items may be in flight: at most ``2 * slots``, and, with a memory
    ``budget`` (bytes), at most ``budget // estimate`` (at least one), ``estimate`` being
    the memory one worker needs: :func:`first_estimate` until an item has been measured,
    then the highest peak measured so far plus a quarter."""

    def __init__(self, slots: int, budget: int | None = None, estimate: int = WORKER_BASE):
        self.slots = max(1, slots)
        self.budget = budget
        self.estimate = estimate
        self.measured = 0

    def limit(self) -> int:
        limit = 2 * self.slots
        if self.budget is not None:
            limit = min(limit, max(1, self.budget // max(1, self.estimate)))
        return limit

    def workers(self) -> int:
        """How many items may run at once: the slots, or fewer under the budget."""
        return min(self.slots, self.limit())

    def measure(self, result: Result) -> None:
        peak = result.get("peak_memory_mb")
        if isinstance(peak, int | float) and peak > 0:
            self.measured = max(self.measured, int(peak * MIB))
            self.estimate = self.measured + self.measured // 4


def first_estimate(tasks: Iterable[Task]) -> int:
    """Memory of one worker before any item has run: :data:`WORKER_BASE` plus
    :data:`INPUT_FACTOR` times the largest item's input bytes."""
    largest = 0
    for task in tasks:
        size = 0
        for path in task.item.sources:
            try:
                size += Path(path).stat().st_size
            except OSError:
                continue
        largest = max(largest, size)
    return WORKER_BASE + INPUT_FACTOR * largest


def execute(
    tasks: Iterable[Task],
    *,
    jobs: int,
    budget: int | None = None,
    scheduler: str | None = None,
    local_dask: bool = False,
    on_submit: Callable[[Task], None] | None = None,
) -> Iterator[tuple[Task, Result]]:
    """Run ``tasks``, yielding each with its result as it finishes. ``jobs`` is the
    number of local processes (or of local Dask workers with ``local_dask``);
    ``scheduler`` the address of a running Dask scheduler. ``on_submit`` is called as
    each task is handed out (the ledger's ``started``)."""
    queue = deque(tasks)
    window = Window(jobs, budget, first_estimate(queue))
    if not queue:
        return  # nothing to run: no engine started
    if scheduler is not None or local_dask:
        yield from _dask(queue, window, on_submit, scheduler, jobs)
    else:
        yield from _local(queue, window, on_submit, jobs)


def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["segio.batch.work", "segio.conversion"])
        return context
    return multiprocessing.get_context("spawn")


def _local(
    queue: deque[Task], window: Window, on_submit: Callable[[Task], None] | None, jobs: int
) -> Iterator[tuple[Task, Result]]:
    context = _context()
    pool = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context)
    pending: dict[Future[Result], Task] = {}
    broken = False
    try:
        while queue or pending:
            if broken and not pending:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context)
                broken = False
            while queue and not broken and len(pending) < window.limit():
                task = queue.popleft()
                if on_submit is not None:
                    on_submit(task)
                pending[pool.submit(run_item, task)] = task
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    result = _lost(task, "its worker process died (out of memory, or a crash)")
                window.measure(result)
                yield task, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _dask(
    queue: deque[Task],
    window: Window,
    on_submit: Callable[[Task], None] | None,
    scheduler: str | None,
    jobs: int,
) -> Iterator[tuple[Task, Result]]:
    try:  # untyped: used through Any
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise ValidationError(
            "running on Dask needs the distributed package",
            hint="pip install 'segio[dask]'",
        ) from None
    cluster = local_cluster(jobs) if scheduler is None else None
    try:
        client = distributed.Client(cluster if cluster is not None else scheduler, timeout="30s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ValidationError(
            f"cannot reach the Dask scheduler {scheduler}: {one_line(exc)}",
            hint="check --scheduler (tcp://HOST:PORT) and that the scheduler runs",
        ) from None
    try:
        window.slots = max(1, sum(client.nthreads().values()))
        grouping = Grouping()
        pending: dict[Any, list[Task]] = {}
        finished = distributed.as_completed()

        def submit() -> None:
            while queue and len(pending) < window.limit():
                size = grouping.size(len(queue), window.slots)
                group = [queue.popleft() for _ in range(min(size, len(queue)))]
                if on_submit is not None:
                    for task in group:
                        on_submit(task)
                future = client.submit(run_items, group, pure=False)
                pending[future] = group
                finished.add(future)

        submit()
        for future in finished:
            group = pending.pop(future)
            try:
                results = future.result()
            except Exception as exc:  # a lost worker (KilledWorker), a cancelled task
                reason = f"Dask lost it: {one_line(exc)} ({type(exc).__name__})"
                results = [_lost(task, reason) for task in group]
            future.release()
            for task, result in zip(group, results, strict=True):
                window.measure(result)
                grouping.measure(result)
                yield task, result
            submit()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_cluster(jobs: int) -> Any:
    """A Dask ``LocalCluster`` of ``jobs`` worker processes of one thread each, as
    ``--dask`` starts it (``benchmarks/batch.py`` starts the same one as an existing
    cluster for ``--scheduler``)."""
    distributed: Any = importlib.import_module("distributed")
    dask: Any = importlib.import_module("dask")
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    # Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off
    # glibc's adaptive thresholds: every array over 128 KiB is then mapped and
    # unmapped afresh, page faults included. An item took 40% longer on a Dask
    # worker than on a local one (31 vs 22 ms, benchmarks/batch.py); not here.
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    settings = {**QUIET_WORKERS, "distributed.nanny.pre-spawn-environ": environ}
    with dask.config.set(settings):  # the nannies hand it to their workers
        return distributed.LocalCluster(
            n_workers=max(1, jobs),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )


class Grouping:
    """How many items one Dask task carries: one until items have been timed, then as
    many as take about :data:`TASK_SECONDS` (the median of the last items' times), at
    most :data:`GROUP_MAX`, and few enough that the rest of the batch still makes four
    tasks per worker slot (the last tasks end together). The scheduler spends about a
    millisecond of its own and of the client's per task: for 20 ms items, one task per
    item would cost a third of the work; in groups it costs nothing, and a scheduler
    serves many more workers."""

    def __init__(self) -> None:
        self.seconds: deque[float] = deque(maxlen=50)

    def measure(self, result: Result) -> None:
        if isinstance(result.get("seconds"), int | float):
            self.seconds.append(float(result["seconds"]))

    def size(self, remaining: int, slots: int) -> int:
        if not self.seconds:
            return 1
        typical = max(statistics.median(self.seconds), 1e-3)
        size = min(int(TASK_SECONDS / typical), GROUP_MAX, remaining // (4 * slots))
        return max(1, size)


def _lost(task: Task, reason: str) -> Result:
    """The result of an item whose worker never answered."""
    now = round(time.time(), 3)
    return {
        "case": task.item.case,
        "output": task.item.output,
        "status": "failed",
        "written": [],
        "warnings": [],
        "error": reason,
        "seconds": None,
        "peak_memory_mb": None,
        "started": None,
        "finished": now,
    }
