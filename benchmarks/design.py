"""Design strategies on Weinberg: how fast each one shrinks the sin2w posterior.

The design benchmark runs the active learner on ``activesci.tasks.weinberg(luminosity=0.2)``
(0.2 pb^-1 per round, ``sqrt_s`` in [20, 210] GeV, only ``sin2w`` unknown) against a hidden
truth ``sin2w = 0.2315``, for several seeds (the experiment and the learner share the seed)
and a fixed number of rounds, with each strategy:

* ``eig``: the learned loop, Bayesian optimisation of the EIG with an amortised ALICES
  estimator (``training_samples`` simulations) and ``refine_every=2``;
* ``eig-exact``: the same optimiser on the exact-likelihood EIG (``exact=True``);
* ``oracle``: the argmax of the exact EIG on a fine design grid (191 points over 20-210 GeV
  plus 41 in 86-96 GeV, common random numbers, 16 simulated experiments per point);
* ``grid`` (uniform 8-point scan), ``random`` and ``fixed`` (the Z pole, 91.19 GeV).

All but ``eig`` infer with the exact likelihood, so their differences are the design's alone.
Per strategy it reports the median over seeds of the posterior std after each round, the
median number of rounds to reach ``std <= target``, the final std and its ratio to the
oracle's, the median time per round and, for ``eig``, the training time. The JSON
(``benchmarks/results/design.json`` unless ``--out``, git-ignored) keeps every seed's designs,
means and stds, the versions, the CPU and the date.

Run from the repository root::

    .venv/bin/python benchmarks/design.py --quick                 # smoke run
    .venv/bin/python benchmarks/design.py                         # 20 seeds, 8 rounds
    .venv/bin/python benchmarks/design.py --seeds 5 --strategies oracle grid random fixed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import cpu_model, positive_int

import activesci
from activesci.design import register_strategy
from activesci.design.optimizer import DesignContext
from activesci.design.utility import expected_information_gain

TRUTH = {"sin2w": 0.2315}
LUMINOSITY = 0.2  # pb^-1 per round
STRATEGY_NAMES = ("eig", "eig-exact", "oracle", "grid", "random", "fixed")
ORACLE_GRID = np.unique(np.concatenate([np.linspace(20, 210, 191), np.linspace(86, 96, 41)]))
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "design.json"


@dataclass
class OracleStrategy:
    """The argmax of the exact EIG over a fixed fine grid of designs (common random numbers)."""

    n_samples: int = 16
    name: str = "oracle"
    record: dict[str, Any] = field(default_factory=dict)

    def propose(self, context: DesignContext) -> np.ndarray:
        """Evaluate the exact EIG at every grid point and return the best one."""
        values = np.array(
            [
                expected_information_gain(
                    context.posterior,
                    context.simulator,
                    [d],
                    exact=True,
                    n_samples=self.n_samples,
                    rng=context.rng(2),
                ).value
                for d in ORACLE_GRID
            ]
        )
        best = int(np.argmax(values))
        self.record = {"chosen_eig": float(values[best])}
        return context.space.validate([ORACLE_GRID[best]])[0]


register_strategy("oracle", OracleStrategy)


def learner_options(name: str, training_samples: int) -> dict[str, Any]:
    """The ``ActiveLearner`` keywords of one benchmark strategy."""
    if name == "eig":
        return {
            "estimator": "alices",
            "strategy": "eig",
            "refine_every": 2,
            "training_samples": training_samples,
        }
    if name == "eig-exact":
        return {"estimator": "exact", "strategy": "eig", "strategy_options": {"exact": True}}
    return {"estimator": "exact", "strategy": name}


def run_seed(name: str, seed: int, rounds: int, training_samples: int) -> dict[str, Any]:
    """One learner run: its designs, means, stds and timings, round by round."""
    task = activesci.tasks.weinberg(luminosity=LUMINOSITY)
    experiment = task.experiment(truth=TRUTH, seed=seed)
    start = time.perf_counter()
    learner = activesci.ActiveLearner(
        task,
        experiment=experiment,
        seed=seed,
        progress=False,
        **learner_options(name, training_samples),
    )
    training = time.perf_counter() - start
    refine_seconds: list[float] = []
    if learner.refine_every is not None:
        refine = learner._refine

        def timed_refine(n_observations: int) -> None:
            t0 = time.perf_counter()
            refine(n_observations)
            refine_seconds.append(time.perf_counter() - t0)

        learner._refine = timed_refine  # type: ignore[method-assign]
    designs, means, stds, seconds = [], [], [], []
    for state in learner.iterate(rounds):
        designs.append(float(state.design[0]))
        means.append(float(state.posterior.mean()[0]))
        stds.append(float(state.posterior.std()[0]))
        seconds.append(state.seconds)
    learner.close()
    return {
        "seed": seed,
        "designs": designs,
        "mean": means,
        "std": stds,
        "round_seconds": seconds,
        "training_seconds": training if name == "eig" else None,
        "refine_seconds": refine_seconds,
    }


def rounds_to_target(stds: list[float], target: float) -> float:
    """Rounds run until ``std <= target`` (infinity if never)."""
    return next((k + 1 for k, s in enumerate(stds) if s <= target), math.inf)


def summarise(name: str, runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Medians over seeds of one strategy's runs."""
    rounds = len(runs[0]["std"])
    per_round = [statistics.median(r["std"][k] for r in runs) for k in range(rounds)]
    reach = [rounds_to_target(r["std"], target) for r in runs]
    training = [r["training_seconds"] for r in runs if r["training_seconds"] is not None]
    refine = [s for r in runs for s in r["refine_seconds"]]
    return {
        "strategy": name,
        "seeds": len(runs),
        "median_std_per_round": per_round,
        "median_rounds_to_target": statistics.median(reach),
        "reached_target": sum(math.isfinite(x) for x in reach),
        "final_std": per_round[-1],
        "median_round_seconds": statistics.median(s for r in runs for s in r["round_seconds"]),
        "median_training_seconds": statistics.median(training) if training else None,
        "median_refine_seconds": statistics.median(refine) if refine else None,
        "median_design_per_round": [
            statistics.median(r["designs"][k] for r in runs) for k in range(rounds)
        ],
    }


def format_table(summaries: list[dict[str, Any]], rounds: int, target: float) -> str:
    """A fixed-width table: std (1e-3) per round, rounds to target, final std, timings."""
    oracle = next((s["final_std"] for s in summaries if s["strategy"] == "oracle"), None)
    header = (
        "strategy",
        "seeds",
        *(f"r{k + 1}" for k in range(rounds)),
        f"n(<={target:g})",
        "hit",
        f"std@{rounds}/oracle",
        "s/round",
        "train s",
    )
    rows = []
    for s in summaries:
        reach = s["median_rounds_to_target"]
        rows.append(
            (
                s["strategy"],
                str(s["seeds"]),
                *(f"{v * 1e3:.2f}" for v in s["median_std_per_round"]),
                f">{rounds}" if math.isinf(reach) else f"{reach:g}",
                f"{s['reached_target']}/{s['seeds']}",
                "-" if oracle is None else f"{s['final_std'] / oracle:.2f}",
                f"{s['median_round_seconds']:.2f}",
                "-"
                if s["median_training_seconds"] is None
                else f"{s['median_training_seconds']:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=positive_int, default=20, help="seeds 0..N-1 (20)")
    parser.add_argument("--rounds", type=positive_int, default=8, help="rounds per run (8)")
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGY_NAMES,
        default=list(STRATEGY_NAMES),
        help="strategies to run (all)",
    )
    parser.add_argument(
        "--training-samples",
        type=positive_int,
        default=100_000,
        help="simulations per ALICES training of eig (1e5)",
    )
    parser.add_argument(
        "--target", type=float, default=0.004, help="posterior std to reach (0.004)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 seeds, 3 rounds, eig on 20000 samples"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file ({DEFAULT_OUT})"
    )
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.training_samples = 2, 3, 20_000
    return args


def main() -> None:
    """Run every strategy on every seed, print the table and write the JSON."""
    args = parse_args()
    machine = {
        "python": platform.python_version(),
        "activesci": activesci.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    config = {
        "task": "weinberg",
        "luminosity_per_round": LUMINOSITY,
        "truth": TRUTH,
        "seeds": args.seeds,
        "rounds": args.rounds,
        "target_std": args.target,
        "training_samples": args.training_samples,
        "oracle_grid_points": len(ORACLE_GRID),
    }
    print(
        f"Weinberg design benchmark: {args.seeds} seeds x {args.rounds} rounds, "
        f"{LUMINOSITY:g} pb^-1/round, truth sin2w = {TRUTH['sin2w']}; {machine['cpu_model']}, "
        f"torch {machine['torch']} on {machine['torch_threads']} threads",
        flush=True,
    )
    results: dict[str, Any] = {}
    summaries = []
    for name in args.strategies:
        start = time.perf_counter()
        runs = [
            run_seed(name, seed, args.rounds, args.training_samples) for seed in range(args.seeds)
        ]
        summary = summarise(name, runs, args.target)
        summaries.append(summary)
        results[name] = {"summary": summary, "runs": runs}
        designs = ", ".join(f"{d:.1f}" for d in summary["median_design_per_round"])
        print(
            f"  {name}: {time.perf_counter() - start:.0f} s; median design per round [GeV]: "
            f"{designs}",
            flush=True,
        )
    print(f"median posterior std of sin2w per round (1e-3); target std <= {args.target:g}")
    print(format_table(summaries, args.rounds, args.target))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {**machine, "config": config, "strategies": results}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
