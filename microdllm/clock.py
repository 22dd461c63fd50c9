"""Training's wall clock: the seconds a process has run, less any time it was stopped.

A run paused with Ctrl-Z or `kill -STOP` (to measure something else on a shared machine) and continued
later should not record the pause as training time: runs are compared by their wall time
(docs/experiments.md). A stopped process cannot see the signal (SIGSTOP is not catchable), so a daemon
thread ticks instead: when a tick arrives much later than it asked to, the process was stopped in
between, and that gap is left out.
"""
from __future__ import annotations

import threading
import time


class RunClock:
    """seconds(): time since start (until close), less the gaps in which the process did not run at all."""

    TICK = 0.25       # seconds between ticks
    SLACK = 1.0       # a tick this much later than asked counts as a stop (a busy machine wakes a thread in ms)

    def __init__(self):
        self.started = time.perf_counter()
        self.stopped = 0.0
        self.ended: float | None = None
        self._done = threading.Event()
        threading.Thread(target=self._tick, name="run-clock", daemon=True).start()

    def seconds(self) -> float:
        return (self.ended or time.perf_counter()) - self.started - self.stopped

    def close(self) -> None:
        self.ended = self.ended or time.perf_counter()
        self._done.set()

    def _tick(self) -> None:
        last = time.perf_counter()
        while not self._done.wait(self.TICK):
            now = time.perf_counter()
            late = now - last - self.TICK
            if late > self.SLACK:
                self.stopped += late
            last = now
