"""Batches of experiments on the flagship: rounds to the target and wall time per round.

Weinberg at 0.2 pb^-1 per experiment, truth 0.2315, target sigma(sin2w) <= 0.004, each
experiment a workflow step (``activesci simulate`` in a subprocess, as a lab's would be) run
by a :class:`~activesci.workflow.experiment.WorkflowExperiment` on a 2-worker Dask
``LocalCluster``. The same learner runs with ``batch=1`` and ``batch=q`` (default 4) for each
seed: the flagship's learned loop (the shipped ALICES estimator for every seed, sequential
inference) or, with ``--exact``, the exact likelihood and exact EIG. A round is a batch: the
wall time per round is measured around it (design, the q steps, inference) and its ratio to
``batch=1`` is taken seed by seed, as the ratio of the medians over the same number of rounds
(``--rounds``, 6) for both: the first round, which trains the local estimator, counts once in
each.

Targets (issue 12): rounds to the target <= ceil(oracle rounds / q) + 1, with the oracle's
4 rounds of the design benchmark (``benchmarks/quoted/design.json``), and wall time per round
<= 1.5x that of q = 1.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/batch.py --seeds 5
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_facts, positive_int, write_results

import activesci as asci
from activesci.inference import pretrained
from activesci.inference.sequential import CalibratedEstimator
from activesci.workflow.executors import DaskExecutor
from activesci.workflow.experiment import WorkflowExperiment

RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.004
ORACLE_ROUNDS = 4  # benchmarks/quoted/design.json: the oracle's median rounds to the target


def run(seed: int, q: int, rounds: int, exact: bool, executor: Any, folder: Path) -> dict:
    """One learner run of ``rounds`` batches of ``q``; the wall time and std of each round."""
    task = asci.tasks.weinberg(luminosity=0.2)
    estimator: Any = "exact"
    if not exact:
        estimator = pretrained.find(task.simulator, "alices", 100_000, 0)
    experiment = WorkflowExperiment(
        task, seed=seed, workdir=folder / f"s{seed}-q{q}", executor=executor
    )
    learner = asci.ActiveLearner(
        task,
        experiment=experiment,
        estimator=estimator,
        strategy="eig",
        strategy_options={"exact": True} if exact else {},
        batch=q,
        seed=seed,
        progress=False,
    )
    walls, stds, designs = [], [], []
    start = time.perf_counter()
    for state in learner.iterate(rounds):
        designs.append(float(state.design[0]))
        if (state.round + 1) % q == 0:  # the end of a batch
            walls.append(time.perf_counter() - start)
            stds.append(float(state.posterior.std()[0]))
            start = time.perf_counter()
    learner.close()
    reached = next((k + 1 for k, s in enumerate(stds) if s <= TARGET), math.inf)
    return {"wall": walls, "std": stds, "designs": designs, "rounds_to_target": reached}


def components(folder: Path, repeats: int = 5) -> dict[str, float]:
    """What a batch multiplies by q: one workflow step, one calibration at a new design [s].

    Medians over ``repeats``: one run of the experiment (its ``activesci simulate`` step in a
    subprocess, on the inline executor, and the events read back), and
    :class:`CalibratedEstimator` on the shipped ALICES estimator at designs not calibrated
    before (its default 7 points x 50,000 events).
    """
    task = asci.tasks.weinberg(luminosity=0.2)
    experiment = WorkflowExperiment(task, seed=0, workdir=folder / "components")
    steps = []
    for _ in range(repeats):
        start = time.perf_counter()
        experiment.run([91.0])
        steps.append(time.perf_counter() - start)
    estimator = pretrained.find(task.simulator, "alices", 100_000, 0)
    cal = CalibratedEstimator(estimator, task.simulator, [[0.2, 0.26]], focus=[[0.225, 0.235]])
    calibrations = []
    for design in np.linspace(89.0, 93.0, repeats):
        start = time.perf_counter()
        cal.calibrate([design])
        calibrations.append(time.perf_counter() - start)
    return {
        "step_seconds": statistics.median(steps),
        "calibration_seconds": statistics.median(calibrations),
    }


def main() -> None:
    """Run both batch sizes for every seed, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=positive_int, default=5)
    parser.add_argument("--q", type=positive_int, default=4, help="batch size (4)")
    parser.add_argument("--rounds", type=positive_int, default=6, help="rounds (batches) (6)")
    parser.add_argument("--exact", action="store_true", help="exact likelihood and EIG")
    parser.add_argument("--out", type=Path, default=RESULTS / "batch.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    facts = machine_facts()
    runs: dict[str, list[dict]] = {"1": [], str(args.q): []}
    with tempfile.TemporaryDirectory() as tmp, DaskExecutor(workers=2) as executor:
        for seed in range(args.seeds):
            runs["1"].append(run(seed, 1, args.rounds, args.exact, executor, Path(tmp)))
            runs[str(args.q)].append(
                run(seed, args.q, args.rounds, args.exact, executor, Path(tmp))
            )
            print(f"seed {seed}: done", flush=True)
        parts = components(Path(tmp))
    summary = {}
    for key, seeds in runs.items():
        summary[key] = {
            "median_rounds_to_target": statistics.median(r["rounds_to_target"] for r in seeds),
            "median_wall_per_round": statistics.median(w for r in seeds for w in r["wall"]),
        }
    ratios = [
        statistics.median(b["wall"]) / statistics.median(a["wall"])
        for a, b in zip(runs["1"], runs[str(args.q)], strict=True)
    ]
    bound = math.ceil(ORACLE_ROUNDS / args.q) + 1
    reach = summary[str(args.q)]["median_rounds_to_target"]
    ratio = statistics.median(ratios)
    mode = "exact likelihood and EIG" if args.exact else "learned (shipped ALICES, sequential)"
    print(f"\nWeinberg, 0.2 pb^-1 per experiment, {mode}, {args.seeds} seeds, Dask 2 workers")
    print(f"{'batch':>6} {'rounds to σ<=0.004':>20} {'wall per round [s]':>20}")
    for key, s in summary.items():
        print(f"{key:>6} {s['median_rounds_to_target']:>20} {s['median_wall_per_round']:>20.2f}")
    print(
        f"q = {args.q}: rounds {reach} (target <= {bound}): {'PASS' if reach <= bound else 'FAIL'}"
    )
    print(f"wall per round / q = 1: median {ratio:.2f} (target <= 1.5): "
          f"{'PASS' if ratio <= 1.5 else 'FAIL'}")  # fmt: skip
    print(f"per experiment: a workflow step {parts['step_seconds']:.2f} s, a calibration at a "
          f"new design {parts['calibration_seconds']:.3f} s (medians of 5)")  # fmt: skip
    record = {
        **facts,
        "torch_threads": 1,
        "command": f"benchmarks/batch.py --seeds {args.seeds} --q {args.q}"
        + (" --exact" if args.exact else ""),
        "summary": summary,
        "wall_ratio_per_seed": ratios,
        "components": parts,
        "runs": runs,
    }
    write_results(args.out, record)


if __name__ == "__main__":
    main()
