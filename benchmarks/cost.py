"""Cost-aware design on the flagship: the cost to reach the target, with and without a price.

Weinberg at 0.2 pb^-1 per experiment, truth 0.2315, target sigma(sin2w) <= 0.004. Every run
costs 1, plus ``--move-cost`` per GeV that sqrt(s) moves from the run before
(:func:`activesci.tasks.moving_cost`; 0.1 by default: moving 10 GeV costs as much as a run).
The cost-aware ``eig`` strategy maximises the information per unit cost
(``tasks.weinberg(move_cost=...)``); the cost-blind one maximises the information, and its
designs are priced afterwards with the same model. Both use the exact likelihood and exact EIG
by default (the design rule alone), or with ``--learned`` the flagship's learned loop (the
shipped ALICES estimator for every seed, sequential inference).

Target (issue 12): total cost to the target <= the cost-blind EIG's, with the final sigma
within 10% of it.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cost.py --seeds 10
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_facts, positive_int, write_results

import activesci as asci
from activesci.inference import pretrained

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.004


def run(seed: int, rounds: int, move_cost: float, aware: bool, learned: bool) -> dict[str, Any]:
    """One run; each round's design, std and (priced) cost."""
    task = asci.tasks.weinberg(luminosity=0.2, move_cost=move_cost if aware else 0.0)
    estimator: Any = "exact"
    if learned:
        estimator = pretrained.find(task.simulator, "alices", 100_000, 0)
    learner = asci.ActiveLearner(
        task,
        experiment=task.experiment(seed=seed),
        estimator=estimator,
        strategy="eig",
        strategy_options={} if learned else {"exact": True},
        seed=seed,
        progress=False,
    )
    states = list(learner.iterate(rounds))
    learner.close()
    price = asci.tasks.moving_cost(move_cost)
    designs = [s.design for s in states]
    costs = [price(d, designs[k - 1] if k else None) for k, d in enumerate(designs)]
    stds = [float(s.posterior.std()[0]) for s in states]
    reached = next((k for k, s in enumerate(stds) if s <= TARGET), None)
    return {
        "designs": [float(d[0]) for d in designs],
        "std": stds,
        "cost": costs,
        "cost_to_target": math.inf if reached is None else float(np.sum(costs[: reached + 1])),
        "total_cost": float(np.sum(costs)),
        "seconds": [s.seconds for s in states],
    }


def main() -> None:
    """Run both strategies for every seed, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=positive_int, default=10)
    parser.add_argument("--rounds", type=positive_int, default=8)
    parser.add_argument("--move-cost", type=float, default=0.1, help="per GeV moved (0.1)")
    parser.add_argument("--learned", action="store_true", help="the flagship's learned loop")
    parser.add_argument("--out", type=Path, default=RESULTS / "cost.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    facts = machine_facts()
    runs: dict[str, list[dict[str, Any]]] = {"cost-blind": [], "cost-aware": []}
    for seed in range(args.seeds):
        for name in runs:
            runs[name].append(
                run(seed, args.rounds, args.move_cost, name == "cost-aware", args.learned)
            )
        print(f"seed {seed}: done", flush=True)
    summary = {
        name: {
            "median_cost_to_target": statistics.median(r["cost_to_target"] for r in seeds),
            "median_total_cost": statistics.median(r["total_cost"] for r in seeds),
            "median_final_std": statistics.median(r["std"][-1] for r in seeds),
            "median_seconds_per_round": statistics.median(s for r in seeds for s in r["seconds"]),
        }
        for name, seeds in runs.items()
    }
    blind, aware = summary["cost-blind"], summary["cost-aware"]
    mode = "learned (shipped ALICES, sequential)" if args.learned else "exact likelihood and EIG"
    print(f"\nWeinberg, 0.2 pb^-1 per run, 1 + {args.move_cost:g}/GeV moved, {mode}, "
          f"{args.seeds} seeds, {args.rounds} rounds")  # fmt: skip
    print(
        f"{'strategy':>11} {'cost to σ<=0.004':>17} {'cost of 8':>10} {'final σ':>9} {'s/round':>8}"
    )
    for name, s in summary.items():
        print(f"{name:>11} {s['median_cost_to_target']:>17.2f} {s['median_total_cost']:>10.2f} "
              f"{s['median_final_std']:>9.5f} {s['median_seconds_per_round']:>8.2f}")  # fmt: skip
    cheaper = aware["median_cost_to_target"] <= blind["median_cost_to_target"]
    close = abs(aware["median_final_std"] / blind["median_final_std"] - 1) <= 0.10
    print(f"cost to the target <= cost-blind: {'PASS' if cheaper else 'FAIL'}; "
          f"final σ within 10%: {'PASS' if close else 'FAIL'}")  # fmt: skip
    record = {
        **facts,
        "torch_threads": 1,
        "command": f"benchmarks/cost.py --seeds {args.seeds} --move-cost {args.move_cost:g}"
        + (" --learned" if args.learned else ""),
        "summary": summary,
        "runs": runs,
    }
    write_results(args.out, record)


if __name__ == "__main__":
    main()
