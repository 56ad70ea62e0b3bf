"""Workflow throughput: a 10^8-event simulation campaign on each executor.

The campaign is an adage DAG run by ``activesci.workflow.dag.run_flow``: ``chunks`` nodes each
simulate ``events / chunks`` Weinberg events at detector level (sin2w = 0.2315, 91.19 GeV,
seeded by the chunk) and return a 100-bin histogram of cos(theta), and one merge node sums the
histograms. (Histograms instead of event files keep 10^8 events within memory and disk: the
file-based ``Campaign`` is the same DAG with npz outputs.) For every executor (inline,
processes and Dask ``LocalCluster`` with 1 and 2 workers) it reports the wall time, events/s,
the speed-up over inline and the per-chunk overhead, measured separately as the wall time of a
DAG of empty chunks divided by their number. All executors must give the same histogram.
Everything goes to ``benchmarks/results/workflow.json``; a run with the defaults also writes
the README's table to ``benchmarks/quoted/workflow.json``. Wall times: run it on an otherwise
idle machine.

Run from the repository root::

    .venv/bin/python benchmarks/workflow.py --quick        # 10^7 events
    .venv/bin/python benchmarks/workflow.py                # 10^8 events, 64 chunks
    .venv/bin/python benchmarks/workflow.py --workers 1 2 4 8 16    # on a bigger machine
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import adage
import numpy as np
from _common import machine_facts, positive_int, write_quoted

import activesci
from activesci.workflow.dag import DagTracker, run_flow
from activesci.workflow.executors import make_executor

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "workflow.json"
BINS = np.linspace(-1.0, 1.0, 101)


def simulate_chunk(events: int, seed: int) -> np.ndarray:
    """Simulate ``events`` detector-level events in blocks; return their cos(theta) histogram."""
    sim = activesci.tasks.weinberg().simulator
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(BINS) - 1, dtype=np.int64)
    for lo in range(0, events, 1_000_000):
        n = min(1_000_000, events - lo)
        counts += np.histogram(sim.sample([0.2315], [91.19], rng, n=n).x[:, 0], BINS)[0]
    return counts


def add_histograms(flow: Any) -> np.ndarray:
    """The merge: sum every chunk node's histogram."""
    dag = flow.dag
    nodes = [dag.getNode(n) for n in dag.nodes() if dag.getNode(n).name.startswith("chunk")]
    return np.sum([n.result for n in nodes], axis=0)


def campaign(executor: Any, events: int, chunks: int, seed: int) -> tuple[float, np.ndarray]:
    """Run the chunk DAG on an open executor; return the wall time and the summed histogram."""
    flow = adage.adageobject()
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(chunks)]
    sizes = [events // chunks + (k < events % chunks) for k in range(chunks)]
    for k, (n, s) in enumerate(zip(sizes, seeds, strict=True)):
        flow.dag.addTask(functools.partial(simulate_chunk, n, s), nodename=f"chunk-{k}")
    start = time.perf_counter()
    run_flow(flow, executor, DagTracker(progress=False), expected=chunks)
    return time.perf_counter() - start, add_histograms(flow)


def measure(name: str, workers: int, events: int, chunks: int, repeats: int) -> dict[str, Any]:
    """Median wall time of the campaign and the per-chunk overhead on one executor."""
    options = {} if name == "inline" else {"workers": workers}
    with make_executor(name, **options) as executor:
        campaign(executor, chunks * 1000, chunks, seed=99)  # warm the workers' imports
        runs = [campaign(executor, events, chunks, seed=0) for _ in range(repeats)]
        empty = [campaign(executor, 0, chunks, seed=0)[0] for _ in range(repeats)]
    seconds = statistics.median(t for t, _ in runs)
    return {
        "executor": name,
        "workers": workers if name != "inline" else 1,
        "seconds": seconds,
        "events_per_second": events / seconds,
        "overhead_ms_per_chunk": 1e3 * statistics.median(empty) / chunks,
        "histogram": runs[0][1].tolist(),
    }


def quote(payload: dict[str, Any]) -> Path:
    """Write the README's table (``benchmarks/quoted/workflow.json``) from the results."""
    rows = [
        [
            None,
            [r["workers"]],
            [r["seconds"]],
            [r["events_per_second"] / 1e6],
            [r["speedup"]],
            [r["overhead_ms_per_chunk"]],
        ]
        for r in payload["rows"]
    ]
    columns = ["executor", "workers", "seconds", "M events/s", "speed-up", "overhead per chunk"]
    return write_quoted(
        "workflow",
        script="benchmarks/workflow.py",
        command="python benchmarks/workflow.py",
        machine=payload,
        threads="one process per worker",
        columns=columns,
        rows=rows,
    )


def main() -> None:
    """Run every executor, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=positive_int, default=10**8, help="events (1e8)")
    parser.add_argument("--chunks", type=positive_int, default=64, help="chunk nodes (64)")
    parser.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs per executor (3)")
    parser.add_argument(
        "--executors", nargs="+", default=["processes", "dask"], choices=["processes", "dask"]
    )
    parser.add_argument("--quick", action="store_true", help="10^7 events, one repeat")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON ({DEFAULT_OUT})")
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeats = 10**7, 1
    machine = {
        **machine_facts(),
        "activesci": activesci.__version__,
    }
    print(
        f"{args.events:.0e} events in {args.chunks} chunks; {machine['cpu_model']}, "
        f"{machine['cpu_count']} CPUs",
        flush=True,
    )
    rows = [measure("inline", 1, args.events, args.chunks, args.repeats)]
    for name in args.executors:
        for w in args.workers:
            rows.append(measure(name, w, args.events, args.chunks, args.repeats))
            print(f"  {name} x{w}: {rows[-1]['seconds']:.1f} s", flush=True)
    same = all(r["histogram"] == rows[0]["histogram"] for r in rows)
    inline = rows[0]["seconds"]
    print(f"{'executor':<10} {'workers':>7} {'seconds':>8} {'Mevents/s':>10} {'speed-up':>9} "
          f"{'ms/chunk':>9}")  # fmt: skip
    for r in rows:
        r["speedup"] = inline / r["seconds"]
        print(
            f"{r['executor']:<10} {r['workers']:>7} {r['seconds']:>8.2f} "
            f"{r['events_per_second'] / 1e6:>10.1f} {r['speedup']:>8.2f}x "
            f"{r['overhead_ms_per_chunk']:>9.1f}"
        )
    print(f"identical histograms on every executor: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**machine, "config": vars(args) | {"out": str(args.out)}, "identical": same}
    args.out.write_text(json.dumps(payload | {"rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    defaults = (10**8, 64, [1, 2], 3, ["processes", "dask"])
    if (args.events, args.chunks, args.workers, args.repeats, args.executors) == defaults:
        print(f"wrote {quote(payload | {'rows': rows})}")  # the README's table


if __name__ == "__main__":
    main()
