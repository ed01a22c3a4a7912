"""Each implementation in a process of its own, timed in turn.

Implementations sharing one process share its heap, its threads and its allocators
(polars brings its own), and disturb each other: polars ran 10–15 % faster at
N = 10^6 in a process of its own than beside the others. So each
implementation gets a worker process of its own for each N: it draws the population
from the same seed, runs once as a warm-up and sends back its outcome (checked
against bankkpi's by the runner), then times one call whenever the runner asks.
The runner asks each worker in turn, one at a time, so the rounds stay interleaved
and only one implementation runs at any moment.

Workers fork from a server process that has imported the implementations once (no
implementation has run in it), so starting one costs milliseconds; where there is no
fork server (Windows) each starts a fresh interpreter.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import time
from multiprocessing.connection import Connection
from typing import Final, Self

from workload import DEFAULT, Outcome

PRELOAD: Final = ["workload", "peers", "bankkpi_workload"]
"""What the fork server imports before any worker forks from it."""


def _processor_seconds() -> tuple[float, float]:
    """This process's user and system seconds so far, every thread's.

    ``resource.getrusage`` (microseconds) where there is one, else ``os.times``
    (Windows; its ticks may be coarse).
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:
        times = os.times()
        return times.user, times.system
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _serve(conn: Connection, name: str, n: int, seed: int) -> None:
    """A worker: warm up, send the outcome, then time one call per request."""
    from bankkpi_workload import ROWS  # noqa: PLC0415 - preloaded in the server
    from peers import IMPLEMENTATIONS  # noqa: PLC0415
    from workload import make_population  # noqa: PLC0415

    impl = ROWS[name] if name in ROWS else IMPLEMENTATIONS[name]
    assert impl is not None  # noqa: S101 - the runner starts installed peers only
    scores, regions = make_population(n, seed)
    try:
        conn.send(impl(scores, regions, DEFAULT))
    except Exception as exc:  # noqa: BLE001 - reported by the runner, which stops
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    while conn.recv() == "time":
        gc.collect()
        before = _processor_seconds()
        started = time.perf_counter()
        try:
            impl(scores, regions, DEFAULT)
        except Exception as exc:  # noqa: BLE001 - reported by the runner, which stops
            conn.send(f"{type(exc).__name__}: {exc}")
            return
        wall = time.perf_counter() - started
        after = _processor_seconds()
        conn.send((wall, after[0] - before[0], after[1] - before[1]))


class Workers:
    """One worker process per implementation, for one population size."""

    def __init__(self, names: list[str], n: int, seed: int) -> None:
        """Start the workers one after another; each warms up before the next starts."""
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
        else:  # Windows: each worker starts a fresh interpreter (slower to start)
            context = multiprocessing.get_context("spawn")
        self.outcomes: dict[str, Outcome | str] = {}
        self.processor: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        """Each timed call's processor seconds in its worker: (user, system), all threads."""
        self._pipes: dict[str, Connection] = {}
        self._processes: dict[str, multiprocessing.process.BaseProcess] = {}
        try:
            for name in names:
                mine, theirs = context.Pipe()
                process = context.Process(target=_serve, args=(theirs, name, n, seed), daemon=True)
                process.start()
                theirs.close()
                self._pipes[name] = mine
                self._processes[name] = process
                self.outcomes[name] = self._receive(name)  # an Outcome, or why it failed
                if isinstance(self.outcomes[name], str):
                    break  # the runner stops: start no more workers
        except BaseException:
            self.close()
            raise

    def _receive(self, name: str) -> object:
        try:
            return self._pipes[name].recv()
        except EOFError:
            process = self._processes[name]
            process.join(timeout=10)
            raise RuntimeError(
                f"the {name} worker stopped (exit code {process.exitcode})"
            ) from None

    def time_once(self, name: str) -> float:
        """Seconds of one call of ``name``, in its own process.

        Its processor seconds (user, system) go to :attr:`processor`.

        Raises:
            RuntimeError: when the call fails or the worker stops.
        """
        self._pipes[name].send("time")
        reply = self._receive(name)
        if not isinstance(reply, tuple):  # why the call failed
            raise RuntimeError(f"{name} failed: {reply}")  # noqa: TRY004 - not a type error
        wall, user, system = reply
        self.processor[name].append((user, system))
        return float(wall)

    def close(self) -> None:
        """Stop every worker and wait for it."""
        for pipe in self._pipes.values():
            with contextlib.suppress(BrokenPipeError, OSError):  # it stopped already
                pipe.send("stop")
            pipe.close()
        for process in self._processes.values():
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
        self.outcomes.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
