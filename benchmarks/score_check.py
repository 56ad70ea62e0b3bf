"""The amortised self-check against the exact referee, round by round, on location finding.

An ALICES estimator (``--samples``, 10^5 by default: a budget that is not quite enough) is
trained once; for each seed a learner designs 10 measurements with it (particles, amortised
inference, the learned contrastive EIG), and every round the learned posterior is compared
with the exact-likelihood particle posterior on the same data. The sources are
interchangeable, so both posteriors are read label-free: each draw's sources are ordered by
their x coordinate before the mean and std are taken. The table gives, per round, the
check's verdict and largest predicted shift (``activesci.inference.diagnostics.score_check``)
beside the actual largest shift (posterior std) and the width ratio farthest from 1.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/score_check.py --seeds 0 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from _common import machine_facts, positive_int, write_results

import activesci as asci
from activesci.inference import ExactLikelihood, RatioEstimator, SamplePosterior

RESULTS = Path(__file__).resolve().parent / "results"


def label_free(posterior: SamplePosterior) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of 4,000 draws with each draw's two sources ordered by their x."""
    points = posterior.sample(4000, 0)
    swap = points[:, 0] > points[:, 2]
    points[swap] = points[swap][:, [2, 3, 0, 1]]
    return points.mean(axis=0), points.std(axis=0)


def main() -> None:
    """Train, run every seed, print the per-round table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--samples", type=positive_int, default=100_000)
    parser.add_argument("--rounds", type=positive_int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS / "score_check.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    facts = machine_facts()
    task = asci.tasks.location_finding()
    sim = task.simulator
    estimator = RatioEstimator(sim, method="alices")
    estimator.train(n_samples=args.samples, seed=0, progress=False)
    rows = []
    print(f"{'seed':>4} {'round':>5} {'check':>6} {'predicted':>9} {'actual':>7} {'width':>6}")
    for seed in args.seeds:
        truth = task.parameters.sample(1, np.random.default_rng(seed))[0]
        learner = asci.ActiveLearner(
            task,
            experiment=task.experiment(truth=truth, seed=seed),
            estimator=estimator,
            strategy="eig",
            seed=seed,
            progress=False,
        )
        exact = SamplePosterior(task.parameters, 4000, simulator=sim, seed=seed)
        for state in learner.iterate(args.rounds):
            exact.update(state.observation, ExactLikelihood(sim))
            (lm, ls), (em, es) = label_free(state.posterior), label_free(exact)
            shift = float(np.max(np.abs(lm - em) / es))
            ratios = ls / es
            width = float(ratios[np.argmax(np.abs(ratios - 1))])
            row = {
                "seed": seed,
                "round": state.round,
                "ok": state.check["ok"],
                "predicted": max(state.check["score_shift"]),
                "actual_shift": shift,
                "width_ratio": width,
            }
            rows.append(row)
            verdict = "ok" if row["ok"] else "WARN"
            print(f"{seed:>4} {state.round:>5} {verdict:>6} {row['predicted']:>9.2f} "
                  f"{shift:>7.2f} {width:>6.2f}", flush=True)  # fmt: skip
    record = {**facts, "torch_threads": 1, "samples": args.samples, "rows": rows}
    write_results(args.out, record)


if __name__ == "__main__":
    main()
