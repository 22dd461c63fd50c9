"""Training's wall clock leaves out the time a run was stopped (Ctrl-Z, kill -STOP)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from microdllm.clock import RunClock

CHILD = """
import sys, time
from microdllm.clock import RunClock
clock = RunClock()
print("started", flush=True)
time.sleep(float(sys.argv[1]))
print(round(clock.seconds(), 2), flush=True)
"""


def test_a_stopped_process_does_not_count_the_stop():
    # The child runs 4 s of wall time, of which the parent stops it for 2.5 s: its clock says about 1.5 s.
    child = subprocess.Popen([sys.executable, "-c", CHILD, "4"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "started"
        time.sleep(0.5)
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(2.5)
        os.kill(child.pid, signal.SIGCONT)
        seconds = float(child.stdout.readline())
    finally:
        child.kill()
        child.wait()
    assert 1.0 < seconds < 2.5, seconds


def test_a_running_clock_counts_its_time_and_stops_when_closed():
    clock = RunClock()
    time.sleep(0.6)
    clock.close()
    seconds = clock.seconds()
    time.sleep(0.3)
    assert 0.5 < seconds < 1.5 and clock.seconds() == seconds and clock.stopped == 0
