"""Helpers shared by the benchmark scripts: machine facts and command-line types."""

from __future__ import annotations

import argparse
import math
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` as fallback)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1, written as digits or as a float like ``1e5``."""
    value = float(text)
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)
