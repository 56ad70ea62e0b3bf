"""Helpers shared by the benchmark scripts: machine facts and command-line types."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Committed records of the numbers README.md quotes, one JSON per README table.
QUOTED = ROOT / "benchmarks" / "quoted"


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


#: The tracked paths whose uncommitted changes make a measurement ``-dirty``.
MEASURED = ("activesci", "benchmarks", "examples", "pyproject.toml")


def git_commit() -> str:
    """The checkout's short commit, with ``-dirty`` when code it measures differs from it."""
    try:
        run = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(  # changes to what is measured, not to the README
            ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", *MEASURED], check=False
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return run.stdout.strip() + ("-dirty" if dirty else "")


def machine_facts() -> dict[str, Any]:
    """Python, the CPU, its count, the load average, the date and the commit: every header."""
    return {
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
    }


#: The machine facts a quoted record keeps (those of :func:`machine_facts`).
MACHINE_KEYS = ("python", "cpu_model", "cpu_count", "load_average_at_start", "date", "commit")


def machine_of(record: dict[str, Any]) -> dict[str, Any]:
    """The :data:`MACHINE_KEYS` of a results record that holds them at its top level."""
    return {k: record[k] for k in MACHINE_KEYS}


def write_quoted(
    name: str,
    *,
    script: str,
    command: str,
    machine: dict[str, Any],
    threads: int | str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    commit: str | None = None,
) -> Path:
    """Write ``benchmarks/quoted/<name>.json``: the numbers of one README table, and where from.

    ``tests/test_readme_numbers.py`` compares the README table that follows the comment
    ``<!-- quoted: benchmarks/quoted/<name>.json -->`` with this record, cell by cell.

    Parameters
    ----------
    name : str
        The record's file name without ``.json``.
    script, command : str
        The script that measured (path from the repository root) and its command line.
    machine : dict
        ``machine_facts()`` of the run (CPU, cores, load, date, commit).
    threads : int or str
        Torch/BLAS threads per process (or a short phrase, e.g. ``"1 per job, 2 jobs"``).
    columns : sequence of str
        The table's header cells, as in the README (``|`` unescaped).
    rows : sequence of sequences
        One entry per table row and column: ``None`` (a label, not checked), a string (the
        cell's exact text, emphasis removed) or a list of numbers (the cell's numbers, in
        order, each equal to the README's figure when rounded to the decimals shown).
    commit : str, optional
        The commit measured (default: ``machine["commit"]``).

    Returns
    -------
    Path
        The file written.
    """
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"every row needs {len(columns)} cells, one per column")
    record = {
        "format": "activesci.quoted/1",
        "script": script,
        "command": command,
        "commit": commit or machine.get("commit", "unknown"),
        "machine": {
            key: machine.get(key)
            for key in ("cpu_model", "cpu_count", "load_average_at_start", "date", "python")
        },
        "threads": threads,
        "columns": list(columns),
        "rows": [list(row) for row in rows],
    }
    QUOTED.mkdir(parents=True, exist_ok=True)
    path = QUOTED / f"{name}.json"
    head = json.dumps(
        {k: v for k, v in record.items() if k != "rows"}, indent=1, ensure_ascii=False
    )
    body = ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in record["rows"])
    path.write_text(f'{head[:-2]},\n "rows": [\n{body}\n ]\n}}\n')  # a row per line
    return path


def write_results(path: Path, record: dict[str, Any]) -> None:
    """Write a run's JSON record to ``path`` (folders made) and print where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"results": str(path)}))


def positive_int(text: str) -> int:
    """Argparse type: an integer >= 1, written as digits or as a float like ``1e5``."""
    value = float(text)
    if not math.isfinite(value) or value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(value)
