"""One local training of the line shape, its members alone or stacked: a benchmark, never a test.

The learner's local estimator on ``tasks.weinberg_lineshape()`` is an ensemble of four ALICES
networks (two hidden layers of 64), trained on 1e5 samples for 30 epochs. Its members train
two at a time on Python threads on a 2-CPU machine (``activesci.threads.training_workers``).
A stack (``activesci.inference.networks._Stack``) trains several members as one module with
batched matrix products, so each operation's fixed cost is paid once per stack; the members'
numbers do not change (tests/test_ratio.py). This times, on the same simulated data:

* ``alone``: stacks of one, i.e. each member its own network (what activesci did before);
* ``stacks of 2``: the default (``_STACK``);

both with torch on one intra-op thread per Python thread, the workers as the thread policy
sets them. Arms are interleaved over ``--repeats``; the table gives each arm's median seconds,
the members' best validation losses (equal across arms up to rounding) and the ratio of the
medians.

Then the trained ensemble's evaluation on a posterior grid (what every grid update costs):
``log r`` of 16 events (a Chebyshev table's nodes) at 32768 parameter points, in forward
passes of ``_CACHE_ROWS`` rows (the default) against passes of 2^17 rows (before), in
nanoseconds per network row (median of ``--repeats``). Writes
``benchmarks/results/training.json``.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training.py               # ~2 min
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/training.py --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine_facts, positive_int, write_results

from activesci import tasks
from activesci.inference import neural, ratio
from activesci.inference.ratio import RatioEstimator
from activesci.inference.training import simulate_training_data
from activesci.threads import training_workers

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"
ARMS = {"alone": 1, "stacks of 2": 2}


def time_evaluation(est: RatioEstimator, repeats: int) -> dict[int, float]:
    """Median ns per network row of a grid evaluation, per rows of one forward pass."""
    rng = np.random.default_rng(0)
    bounds = est.parameters.bounds
    theta = rng.uniform(bounds[:, 0], bounds[:, 1], (32768, len(bounds)))
    x = rng.uniform(-1.0, 1.0, (16, est.n_features))
    design = est.designs.bounds.mean(axis=1)
    default = ratio._CACHE_ROWS
    result = {}
    for rows in (default, 1 << 17):
        ratio._CACHE_ROWS = rows
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            est._members_log_ratio(x, theta, design)
            times.append(time.perf_counter() - start)
        result[rows] = statistics.median(times) / (len(theta) * len(x) * len(est.members)) * 1e9
    ratio._CACHE_ROWS = default
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs per arm (3)")
    parser.add_argument("--samples", type=positive_int, default=100_000, help="(1e5)")
    parser.add_argument("--members", type=positive_int, default=4, help="ensemble (4)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    sim = tasks.weinberg_lineshape().simulator
    est = RatioEstimator(sim, method="alices", ensemble=args.members)
    data = simulate_training_data(
        sim, args.samples, theta_ref=est.theta_ref, gold=est._method.needs, seed=1
    )
    warm = RatioEstimator(sim, method="alices")
    warm.train(data=data, seed=0, epochs=1, progress=False)  # imports, allocator
    facts = {
        **machine_facts(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "training_workers": training_workers(),
    }
    print(
        f"line shape, alices, {args.members} members x {args.samples:g} samples x 30 epochs; "
        f"{facts['cpu_model']}, torch {facts['torch']} on {facts['torch_threads']} thread(s), "
        f"{facts['training_workers']} worker(s)",
        flush=True,
    )
    seconds: dict[str, list[float]] = {arm: [] for arm in ARMS}
    losses: dict[str, list[float]] = {}
    for repeat in range(args.repeats):
        for arm, size in ARMS.items():
            neural._STACK = size
            start = time.perf_counter()
            summary = est.train(data=data, seed=1, progress=False)
            seconds[arm].append(time.perf_counter() - start)
            losses[arm] = summary.best_val_loss
            print(f"  repeat {repeat + 1} {arm:<12} {seconds[arm][-1]:6.2f} s", flush=True)
    median = {arm: statistics.median(s) for arm, s in seconds.items()}
    print(f"\n{'arm':<12} {'median s':>9}  best validation losses")
    for arm in ARMS:
        print(f"{arm:<12} {median[arm]:9.2f}  {' '.join(f'{v:.5f}' for v in losses[arm])}")
    speedup = median["alone"] / median["stacks of 2"]
    print(f"alone / stacks of 2: {speedup:.2f}x")
    evaluation = time_evaluation(est, args.repeats)
    print(f"\n{'rows per forward pass':<22} {'ns per row':>10}")
    for rows, ns in evaluation.items():
        print(f"{rows:<22} {ns:10.1f}")
    write_results(
        args.out,
        {
            **facts,
            "config": vars(args) | {"out": str(args.out)},
            "seconds": seconds,
            "median_seconds": median,
            "best_val_loss": losses,
            "speedup": speedup,
            "evaluation_ns_per_row": evaluation,
        },
    )


if __name__ == "__main__":
    main()
