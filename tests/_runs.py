"""Helpers of the tests that kill a run with SIGKILL and compare stored runs."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from activesci.errors import StoreError
from activesci.store import SQLiteRunStore


def kill_after(proc: subprocess.Popen, run: Path, observations: int, timeout: float = 180) -> int:
    """SIGKILL ``proc`` once its store holds ``observations``; return how many it held then.

    Fails the test if the run ends first or does not get there within ``timeout`` seconds.
    """
    try:
        deadline = time.monotonic() + timeout
        while True:
            n = 0
            try:
                with SQLiteRunStore.open(run, readonly=True) as store:
                    n = len(store.observations())
            except StoreError:
                pass  # not created yet
            if n >= observations:
                break
            if proc.poll() is not None:
                pytest.fail(f"the run ended before it was killed: {proc.stderr.read().decode()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the run did not store {observations} rounds within {timeout} s")
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    with SQLiteRunStore.open(run, readonly=True) as store:
        return len(store.observations())
