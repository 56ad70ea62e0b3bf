"""Design strategies on Weinberg: how fast each one shrinks the posterior.

A thin driver of :mod:`activesci.bench` (the same code as ``activesci bench``) that adds the
machine facts and the benchmark's reference settings:

* ``--task weinberg`` (default): ``activesci.tasks.weinberg(luminosity=0.2)``, 0.2 pb^-1 per
  round, ``sqrt_s`` in [20, 210] GeV, only ``sin2w`` unknown, truth 0.2315, target std 0.004;
  the oracle searches 191 points over 20-210 GeV plus 41 in 86-96 GeV.
* ``--task weinberg_lineshape``: ``sin2w``, ``M_Z`` and ``Gamma_Z`` unknown, ``sqrt_s`` in
  [80, 100] GeV; strategies are compared by the posterior volume ``sqrt(det cov)``; the oracle
  searches 81 points and the scan is LEP-style (peak-2, peak, peak+2 GeV).

The strategies are those of ``activesci.bench`` (``eig`` learned, ``eig-exact``, ``oracle``,
``grid``, ``random``, ``fixed``, ``scan``). The JSON (``benchmarks/results/design.json`` or
``design_lineshape.json`` unless ``--out``; git-ignored) keeps every seed's designs, means,
stds and volumes, the versions, the CPU and the date.

Run from the repository root::

    .venv/bin/python benchmarks/design.py --quick                 # smoke run
    .venv/bin/python benchmarks/design.py                         # 20 seeds, 8 rounds
    .venv/bin/python benchmarks/design.py --seeds 5 --strategies oracle grid random fixed
    .venv/bin/python benchmarks/design.py --task weinberg_lineshape --strategies eig-exact scan
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_facts, machine_of, positive_int, write_quoted

import activesci
from activesci.bench import DesignBenchmark, format_design_table, run_design_benchmark

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = {
    "weinberg": {
        "strategies": ["eig", "eig-exact", "oracle", "grid", "random", "fixed"],
        "oracle": np.unique(np.concatenate([np.linspace(20, 210, 191), np.linspace(86, 96, 41)])),
        "target": 0.004,
        "out": RESULTS / "design.json",
    },
    "weinberg_lineshape": {
        "strategies": ["eig", "eig-exact", "oracle", "scan", "fixed"],
        "oracle": np.linspace(80, 100, 81),
        "target": 0.004,
        "out": RESULTS / "design_lineshape.json",
    },
}


#: The README's row order, and what each quoted table records.
README_ORDER = {
    "weinberg": ["oracle", "eig", "eig-exact", "fixed", "grid", "random"],
    "weinberg_lineshape": ["oracle", "eig-exact", "scan", "grid", "fixed"],
}
QUOTED = {"weinberg": "design", "weinberg_lineshape": "design-lineshape"}


def quote(record: dict[str, Any], command: str) -> Path:
    """Write the README's table for ``record``'s task (``benchmarks/quoted/design*.json``).

    Rows in :data:`README_ORDER`; the strategy's label is the README's (not checked).
    One parameter: rounds to the target (with the seeds that reached it), the final std, its
    ratio to the oracle's and the median seconds per round. Several: the final volume over
    the oracle's, each final std, the range of the median design over rounds and the median
    seconds per round.
    """
    config, names = record["config"], record["parameters"]
    by_name = {s["strategy"]: s for s in record["summaries"]}
    oracle = by_name["oracle"]["final_volume"]
    rows: list[list[Any]] = []
    for name in [n for n in README_ORDER[config["task"]] if n in by_name]:
        s = by_name[name]
        ratio = [s["final_volume"] / oracle]
        seconds = [s["median_round_seconds"]]
        if len(names) == 1:
            reach = s["median_rounds_to_target"]
            reach = config["rounds"] if math.isinf(reach) else reach
            final = [s["final_std"][names[0]]]
            rows.append([None, [reach, s["reached_target"], s["seeds"]], final, ratio, seconds])
        else:
            stds = [s["final_std"][n] for n in names]
            designs = np.asarray(s["median_design_per_round"], dtype=float)[:, 0]
            rows.append([None, ratio, stds, [designs.min(), designs.max()], seconds])
    n = config["rounds"]
    if len(names) == 1:
        columns = ["strategy", f"rounds to σ ≤ {config['target_std']:g}", f"σ after {n} rounds",
                   f"σ@{n} / oracle", "time per round"]  # fmt: skip
    else:
        labels = activesci.tasks.get(config["task"], **config["task_options"]).parameters
        sigmas = ", ".join(f"σ({p.label or p.name})" for p in labels)
        columns = ["strategy", f"volume after {n} rounds / oracle", f"{sigmas} after {n} rounds",
                   "median designs chosen", "time per round"]  # fmt: skip
    return write_quoted(
        QUOTED[config["task"]],
        script="benchmarks/design.py",
        command=command,
        machine=machine_of(record),
        threads=f"{record['torch_threads']} torch thread(s), one run at a time",
        columns=columns,
        rows=rows,
    )


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(SETTINGS), default="weinberg")
    parser.add_argument("--seeds", type=positive_int, default=20, help="seeds 0..N-1 (20)")
    parser.add_argument("--rounds", type=positive_int, default=8, help="rounds per run (8)")
    parser.add_argument("--strategies", nargs="+", default=None, help="(the task's list)")
    parser.add_argument("--luminosity", type=float, default=0.2, help="pb^-1 per round (0.2)")
    parser.add_argument(
        "--training-samples", type=positive_int, default=100_000, help="eig's budget (1e5)"
    )
    parser.add_argument(
        "--refine-every",
        type=int,
        default=2,
        help="eig's extra retraining period (2); 0: only where sequential inference calls for it",
    )
    parser.add_argument(
        "--local-ensemble", type=positive_int, default=None, help="eig's networks per local one"
    )
    parser.add_argument(
        "--calibration-events", type=positive_int, default=None, help="eig's per calibration point"
    )
    parser.add_argument("--resolution", type=positive_int, default=None, help="posterior grid")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 3 rounds")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument(
        "--requote", type=Path, metavar="RESULTS", help="only rebuild the quoted table from RESULTS"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.training_samples = 2, 3, 20_000
    return args


def main() -> None:
    """Run the benchmark, print the table and write the JSON."""
    args = parse_args()
    if args.requote:
        record = json.loads(args.requote.read_text())
        print(f"wrote {quote(record, _command(record['config']))}")
        return
    settings = SETTINGS[args.task]
    machine = {
        **machine_facts(),
        "activesci": activesci.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    options = {"oracle": {"designs": settings["oracle"][:, None].tolist()}}
    bench = DesignBenchmark(
        task=args.task,
        task_options={"luminosity": args.luminosity},
        strategies=tuple(args.strategies or settings["strategies"]),
        seeds=args.seeds,
        rounds=args.rounds,
        target_std=settings["target"],
        training_samples=args.training_samples,
        refine_every=args.refine_every or None,
        local_ensemble=args.local_ensemble,
        calibration_events=args.calibration_events,
        strategy_options=options,
        resolution=args.resolution,
    )
    print(
        f"{args.task} design benchmark: {args.seeds} seeds x {args.rounds} rounds, "
        f"{args.luminosity:g} pb^-1/round; {machine['cpu_model']}, torch {machine['torch']} "
        f"on {machine['torch_threads']} threads",
        flush=True,
    )
    start = time.perf_counter()
    result = run_design_benchmark(bench)
    print(format_design_table(result))
    print(f"total {time.perf_counter() - start:.0f} s")
    out = args.out or settings["out"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**machine, **result}, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.quick and args.seeds >= 5 and args.rounds == 8:  # what the README quotes
        print(f"wrote {quote({**machine, **result}, _command(result['config']))}")


def _command(config: dict[str, Any]) -> str:
    """The command line that reproduces ``config``'s run."""
    return (
        f"python benchmarks/design.py --task {config['task']} --seeds {config['seeds']} "
        f"--strategies {' '.join(config['strategies'])}"
    )


if __name__ == "__main__":
    main()
