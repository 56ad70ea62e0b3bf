"""CPU time of ``activesci demo`` (8 rounds, sequential inference): a benchmark, never a test.

Wall time on a shared machine measures the neighbours; the demo's CPU time (user + system of
its process, 1 torch thread) does not, or far less. ``--checkout DIR`` runs the demo of
another checkout (e.g. ``git worktree add /tmp/old 3ff9cee``) to compare commits in one run.
``--make`` times what a newcomer runs instead: ``make demo`` in a fresh ``git clone`` of the
checkout's HEAD (a new ``.venv``, the install from pip's cache, the demo), its wall time and
the peak resident memory of its largest process. ``--notebook`` times notebook 01 at its
defaults (8 rounds) through ``activesci notebook`` (papermill and its kernel): wall time, the
peak resident memory of its largest process (the kernel) and the learned and exact posteriors
it records. Prints each run and the median; writes ``benchmarks/results/demo_cost.json``.

Run from the repository root::

    .venv/bin/python benchmarks/demo_cost.py --runs 2
    .venv/bin/python benchmarks/demo_cost.py --runs 2 --checkout /tmp/old --label old
    .venv/bin/python benchmarks/demo_cost.py --runs 2 --make
    .venv/bin/python benchmarks/demo_cost.py --runs 1 --notebook
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine_facts, positive_int

ROOT = Path(__file__).resolve().parent.parent


def one_run(checkout: Path) -> dict[str, float]:
    """One ``activesci demo`` in a fresh folder; its CPU and wall seconds."""
    env = os.environ | {"PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "activesci.cli", "demo", "--out", f"{out}/demo"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_seconds": cpu, "wall_seconds": time.perf_counter() - start}


def one_make_demo(checkout: Path) -> dict[str, float]:
    """``make demo`` in a fresh clone of ``checkout``'s HEAD: wall seconds and peak RSS (GB)."""
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "activesci"
        subprocess.run(["git", "clone", "-q", str(checkout), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        start = time.perf_counter()
        subprocess.run(
            ["make", "demo"],
            cwd=clone,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    return {"wall_seconds": wall, "peak_rss_gb": peak_kb / 1024**2}


def one_notebook(checkout: Path) -> dict[str, float]:
    """Notebook 01 at its defaults: wall seconds, peak RSS (GB) and its recorded posteriors."""
    env = os.environ | {"PYTHONPATH": str(checkout)}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "activesci.cli", "notebook", "01", "--out", f"{tmp}/01.ipynb"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
    records = json.loads(done.stdout)["records"]
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
    return {
        "wall_seconds": wall,
        "peak_rss_gb": peak_kb / 1024**2,
        "learned_mean": records["learned"]["mean"],
        "learned_std": records["learned"]["std"],
        "exact_mean": records["exact"]["mean"],
        "exact_std": records["exact"]["std"],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the demo ``--runs`` times and print its CPU time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=positive_int, default=3)
    parser.add_argument("--checkout", default=str(ROOT), help="the activesci source to run")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--make", action="store_true", help="time make demo in a fresh clone")
    parser.add_argument("--notebook", action="store_true", help="time notebook 01 (papermill)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "demo_cost.json"))
    args = parser.parse_args(argv)
    run, key, unit, label = (one_run, "cpu_seconds", "CPU-s", args.label)
    if args.make:
        run, key, unit, label = (one_make_demo, "wall_seconds", "s wall", "make demo")
    elif args.notebook:
        run, key, unit, label = (one_notebook, "wall_seconds", "s wall", "notebook 01")
    runs = []
    for k in range(args.runs):
        runs.append(run(Path(args.checkout).resolve()))
        print(f"{label} run {k + 1}: " + ", ".join(f"{n} {v:.4g}" for n, v in runs[-1].items()))
    median = statistics.median(r[key] for r in runs)
    print(f"{label}: median {median:.1f} {unit} over {args.runs} runs")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine_facts(), "label": label, "checkout": args.checkout}
    out.write_text(json.dumps(record | {"runs": runs, f"median_{key}": median}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
