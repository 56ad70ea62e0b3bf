"""Cost and value of one EIG evaluation: the grid method against the contrastive one.

For each task, posterior state and design, every method is run ``--repeats`` times (seeds
0..R-1) and the median seconds per candidate design and the mean value (with the spread of the
repeats) are reported:

* ``grid exact``: :func:`expected_information_gain` on a GridPosterior with the exact
  likelihood (the referee; 201 cells for Weinberg, ``--resolution``^3 for the line shape);
* ``contrastive exact``: :func:`contrastive_information_gain` with the exact likelihood;
* ``contrastive learned``: the same with a ratio estimator: the shipped flagship estimator
  for ``weinberg`` (``activesci.inference.pretrained``), and for ``weinberg_lineshape`` a
  ``RatioEstimator(method="alices")`` trained here on ``--training-samples`` (seed 0), whose
  training time is reported separately;
* ``grid learned``: the grid method with that estimator, on grids of at most
  ``MAX_GRID_LEARNED`` cells (Weinberg, and the line shape with ``--quick``).

Tasks run at ``--luminosity`` pb^-1 per experiment (0.2), from the prior and after two
observations (Weinberg: two at the pole; line shape: 89.19 and 93.19 GeV; task seed 0, exact
updates). The target is <= 250 ms per candidate with three parameters and a learned estimator
on one thread. Threads: ``OMP_NUM_THREADS`` and torch's intra-op threads are set to
``--threads`` (1) before anything runs. JSON: ``benchmarks/results/eig_cost.json`` (git-ignored).

Run from the repository root::

    .venv/bin/python benchmarks/eig_cost.py            # 5 repeats, line-shape grid 31^3
    .venv/bin/python benchmarks/eig_cost.py --quick    # 3 repeats, grid 15^3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    """The command line."""
    from _common import positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=5, help="per method (5)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch/BLAS threads (1)")
    parser.add_argument("--luminosity", type=float, default=0.2, help="pb^-1 per experiment")
    parser.add_argument("--resolution", type=positive_int, default=31, help="line-shape grid")
    parser.add_argument("--training-samples", type=positive_int, default=20_000)
    parser.add_argument("--n-samples", type=positive_int, default=None, help="N (default's)")
    parser.add_argument("--n-contrast", type=int, default=None, help="L (default's)")
    parser.add_argument("--tasks", nargs="+", default=["weinberg", "weinberg_lineshape"])
    parser.add_argument("--quick", action="store_true", help="3 repeats, line-shape grid 15^3")
    parser.add_argument("--out", type=Path, default=RESULTS / "eig_cost.json")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.resolution = 3, 15
    return args


def _estimator(task: Any, args: argparse.Namespace) -> tuple[Any, float | None, str]:
    """The learned estimator of ``task``, its training seconds (None if shipped) and a label."""
    from activesci.inference import RatioEstimator, pretrained

    if task.name == "weinberg":
        est = pretrained.find(task.simulator, "alices", 100_000, 0)
        if est is None:
            raise SystemExit("the shipped estimator does not match: make pretrained")
        return est, None, "shipped alices, 1e5 samples"
    est = RatioEstimator(task.simulator, method="alices")
    start = time.perf_counter()
    est.train(n_samples=args.training_samples, seed=0, progress=False)
    return est, time.perf_counter() - start, f"alices, {args.training_samples} samples, seed 0"


def _states(task: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The posteriors measured: the prior and after two exact updates."""
    from activesci.inference import ExactLikelihood, GridPosterior

    resolution = 201 if len(task.parameters) == 1 else args.resolution
    prior = GridPosterior(task.parameters, resolution, simulator=task.simulator)
    later = prior.copy()
    run = task.experiment(seed=0)
    designs = [91.19, 91.19] if task.name == "weinberg" else [89.19, 93.19]
    for energy in designs:
        later.update(run.run([energy]), ExactLikelihood(task.simulator))
    return {"prior": prior, f"after {designs}": later}


#: The grid method with a learned estimator costs cells x events network evaluations: run it
#: only on grids up to this size (Weinberg's 201 cells, the quick line-shape grid's 15^3).
MAX_GRID_LEARNED = 4000


def _methods(post: Any, sim: Any, est: Any, energy: float, n: int, contrasts: int) -> dict:
    """The EIG evaluations compared, as functions of the seed."""
    from activesci.design.utility import contrastive_information_gain, expected_information_gain

    def grid(seed: int, **kw: Any) -> Any:
        return expected_information_gain(post, sim, [energy], n_samples=n, rng=seed, **kw)

    def contrastive(seed: int, **kw: Any) -> Any:
        return contrastive_information_gain(
            post, sim, [energy], n_samples=n, n_contrast=contrasts, rng=seed, **kw
        )

    methods = {
        "grid exact": lambda seed: grid(seed, exact=True),
        "contrastive exact": lambda seed: contrastive(seed, exact=True),
        "contrastive learned": lambda seed: contrastive(seed, estimator=est),
    }
    if len(post.grid) <= MAX_GRID_LEARNED:
        methods["grid learned"] = lambda seed: grid(seed, estimator=est)
    return methods


def _measure(fn: Any, repeats: int) -> dict[str, Any]:
    import numpy as np

    seconds, values, stderrs, uppers = [], [], [], []
    for seed in range(repeats):
        start = time.perf_counter()
        est = fn(seed)
        seconds.append(time.perf_counter() - start)
        values.append(est.value)
        stderrs.append(est.stderr)
        uppers.append(est.upper)
    return {
        "median_seconds": float(np.median(seconds)),
        "seconds": seconds,
        "value": float(np.mean(values)),
        "value_spread": float(np.std(values, ddof=1)) if repeats > 1 else None,
        "stderr": float(np.median(stderrs)),
        "upper": None if uppers[0] is None else float(np.mean(uppers)),
        "values": values,
    }


def main() -> None:
    """Run, print the table and write the JSON."""
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before numpy and torch load
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    import activesci
    from activesci.design.utility import N_CONTRAST

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import machine_facts

    n_samples = args.n_samples or 32
    n_contrast = N_CONTRAST if args.n_contrast is None else args.n_contrast
    machine = {
        **machine_facts(),
        "activesci": activesci.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_threads": os.environ["OMP_NUM_THREADS"],
    }
    print(
        f"EIG cost: N={n_samples} experiments, L={n_contrast} contrasts, {args.repeats} repeats,"
        f" {args.luminosity:g} pb^-1; {machine['cpu_model']}, torch {machine['torch']} on "
        f"{machine['torch_threads']} thread(s), OMP_NUM_THREADS={machine['omp_threads']}, load "
        f"{machine['load_average_at_start'][0]:.1f}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    training: dict[str, Any] = {}
    for name in args.tasks:
        task = activesci.tasks.get(name, luminosity=args.luminosity)
        sim = task.simulator
        est, train_s, label = _estimator(task, args)
        training[name] = {"estimator": label, "training_seconds": train_s}
        if train_s is not None:
            print(f"{name}: trained {label} in {train_s:.1f} s", flush=True)
        for state, post in _states(task, args).items():
            for energy in (91.19, 89.0) if name != "weinberg" else (91.19, 60.0):
                methods = _methods(post, sim, est, energy, n_samples, n_contrast)
                for method, fn in methods.items():
                    row = {
                        "task": name,
                        "parameters": len(task.parameters),
                        "grid_cells": int(np.prod(post.shape)),
                        "state": state,
                        "design": energy,
                        "method": method,
                        **_measure(fn, args.repeats),
                    }
                    rows.append(row)
                    upper = "" if row["upper"] is None else f"  upper {row['upper']:6.3f}"
                    print(
                        f"{name:19s} {state:24s} {energy:6.2f} GeV  {method:20s} "
                        f"{1000 * row['median_seconds']:9.1f} ms  EIG {row['value']:6.3f} "
                        f"+- {row['value_spread']:.3f} (spread of repeats){upper}",
                        flush=True,
                    )
    record = {
        **machine,
        "config": {
            "n_samples": n_samples,
            "n_contrast": n_contrast,
            "repeats": args.repeats,
            "luminosity": args.luminosity,
            "lineshape_resolution": args.resolution,
            "training_samples": args.training_samples,
            "target_ms_3_parameters": 250,
        },
        "training": training,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
