"""Location finding (Deep Adaptive Design): sPCE of random, exact-EIG and learned designs.

Runs the active learner on ``activesci.tasks.location_finding()`` (2 sources in 2-D, 4
parameters, a 2-D design in [-4, 4]^2, one noisy log-intensity measurement per experiment) for
``--rounds`` measurements (10) and seeds 0..N-1 (``--seeds``, 10). Each seed draws its truth
from the prior (``task.parameters.sample(1, default_rng(seed))``), shared by every strategy:

* ``random``: uniform designs (the posterior, exact, does not enter the metric);
* ``eig-exact``: the oracle, skopt's Bayesian optimisation of the exact-likelihood contrastive
  EIG of the particle posterior (``strategy_options={"exact": True}``);
* ``eig``: the learned loop, the same optimiser on the EIG of an amortised ratio estimator
  (``--learned METHOD:SAMPLES``, default ``alices:3e5``) that also updates the particles.
  The estimator is trained once, before the seeds (amortised: one network serves every run),
  and its training time is reported apart. Several ``--learned`` entries give one row each.

The metric is DAD's: for each run's realised history ``h``, the sPCE lower bound (and the sNMC
upper bound) on the information gained, ``activesci.bench.metrics.spce`` with the exact
likelihood and ``--n-contrast`` (1e5) prior draws, the same draws for every strategy of a seed.
The table gives per strategy the mean +- standard error and the median over seeds, the paired
difference to ``random``, the median (and max) seconds per design decision (``state.seconds``:
design and posterior update) and per EIG evaluation, and the training time; then PASS/FAIL
against the targets: learned sPCE above random's, within 15% of the oracle's, <= 2 s per
decision. One BLAS/OpenMP and one torch thread (set here). The JSON
(``benchmarks/results/location.json`` unless ``--out``; git-ignored) keeps every run's truth,
designs, measurements, bounds and timings, the versions, the CPU, the load and the date.

Run from the repository root::

    .venv/bin/python benchmarks/location.py --quick          # 2 seeds, 4 rounds, 2e4 samples
    .venv/bin/python benchmarks/location.py                  # 10 seeds, 10 rounds
    .venv/bin/python benchmarks/location.py --strategies eig --learned alices:2e5 carl:1e5 \\
        --eig-options n_contrast=128
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"  # before numpy and torch start their pools
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_facts, machine_of, positive_int

import activesci
from activesci import ActiveLearner, tasks
from activesci.bench.metrics import spce
from activesci.inference import RatioEstimator

RESULTS = Path(__file__).resolve().parent / "results"
#: Targets of the learned loop: sPCE ratio to the oracle's and seconds per design decision.
WITHIN_ORACLE, MAX_SECONDS = 0.85, 2.0


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds 0..N-1 (10)")
    parser.add_argument("--rounds", type=positive_int, default=10, help="measurements T (10)")
    parser.add_argument(
        "--strategies", nargs="+", default=["random", "eig-exact", "eig"], help="(all three)"
    )
    parser.add_argument(
        "--learned", nargs="+", default=["alices:3e5"], metavar="METHOD:SAMPLES",
        help="the learned loop's estimator(s) (alices:3e5)",
    )  # fmt: skip
    parser.add_argument(
        "--eig-options", nargs="*", default=[], metavar="KEY=VALUE",
        help="EIGStrategy options of the learned loop (n_samples, n_contrast, n_calls, ...)",
    )  # fmt: skip
    parser.add_argument("--n-contrast", type=positive_int, default=100_000, help="L (1e5)")
    parser.add_argument("--particles", type=positive_int, default=4000, help="(4000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 4 rounds")
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.rounds, args.learned = 2, 4, ["alices:2e4"]
    return args


def _options(pairs: list[str]) -> dict[str, Any]:
    """``["n_contrast=64", "exact=false"]`` as ``{"n_contrast": 64, "exact": False}``."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        out[key] = json.loads(text.lower()) if text.lower() in ("true", "false") else float(text)
        if isinstance(out[key], float) and out[key].is_integer():
            out[key] = int(out[key])
    return out


def _learned(entries: list[str]) -> list[tuple[str, str, int]]:
    """``(label, method, samples)`` per ``--learned`` entry; a lone one is labelled ``eig``."""
    out = []
    for entry in entries:
        method, _, samples = entry.partition(":")
        n = positive_int(samples or "1e5")
        label = "eig" if len(entries) == 1 else f"eig-{method}-{n:.0e}".replace("+0", "")
        out.append((label, method, n))
    return out


def run_one(
    task: Any, seed: int, learner_options: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """One learner run on seed ``seed``: its history, the bounds and the timings."""
    sim = task.simulator
    truth = sim.parameters.sample(1, np.random.default_rng(seed))[0]
    learner = ActiveLearner(
        task,
        experiment=task.experiment(truth=sim.parameters.to_dict(truth), seed=seed),
        seed=seed,
        progress=False,
        particles=args.particles,
        **learner_options,
    )
    run: dict[str, Any] = {"seed": seed, "truth": truth.tolist(), "designs": [], "x": []}
    run |= {"seconds": [], "eig_seconds": []}
    for state in learner.iterate(args.rounds):
        run["designs"].append(state.design.tolist())
        run["x"].append(state.observation.x.tolist())
        run["seconds"].append(state.seconds)
        run["eig_seconds"] += state.strategy_record.get("eig_seconds", [])
    learner.close()
    start = time.perf_counter()
    bounds = spce(sim, run["designs"], run["x"], truth, args.n_contrast, rng=[seed, 2021])
    run |= {"spce": bounds.spce, "snmc": bounds.snmc, "metric_seconds": time.perf_counter() - start}
    return run


def summarise(label: str, runs: list[dict[str, Any]], training: float | None) -> dict[str, Any]:
    """Mean, standard error and median of the bounds; medians of the timings."""

    def stats(key: str) -> dict[str, float]:
        values = [r[key] for r in runs]
        sd = statistics.stdev(values) if len(values) > 1 else math.nan
        return {
            "mean": statistics.fmean(values),
            "stderr": sd / math.sqrt(len(values)),
            "median": statistics.median(values),
        }

    seconds = [s for r in runs for s in r["seconds"]]
    eig = [s for r in runs for s in r["eig_seconds"]]
    return {
        "strategy": label,
        "seeds": len(runs),
        "spce": stats("spce"),
        "snmc": stats("snmc"),
        "median_decision_seconds": statistics.median(seconds),
        "max_decision_seconds": max(seconds),
        "median_eig_seconds": statistics.median(eig) if eig else None,
        "training_seconds": training,
    }


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean and standard error of the per-seed sPCE difference ``a - b``."""
    diff = [x["spce"] - y["spce"] for x, y in zip(a, b, strict=True)]
    sd = statistics.stdev(diff) if len(diff) > 1 else math.nan
    return statistics.fmean(diff), sd / math.sqrt(len(diff))


def table(summaries: list[dict[str, Any]], runs: dict[str, list[dict[str, Any]]]) -> str:
    """A fixed-width table of the summaries."""
    header = ("strategy", "seeds", "sPCE mean±se", "median", "sNMC mean±se", "Δ random",
              "s/decision", "max s", "EIG ms", "train s")  # fmt: skip
    rows = []
    for s in summaries:
        diff = "-"
        if "random" in runs and s["strategy"] != "random":
            d, se = paired(runs[s["strategy"]], runs["random"])
            diff = f"{d:+.2f}±{se:.2f}"
        eig, train = s["median_eig_seconds"], s["training_seconds"]
        rows.append(
            (
                s["strategy"],
                str(s["seeds"]),
                f"{s['spce']['mean']:.3f}±{s['spce']['stderr']:.3f}",
                f"{s['spce']['median']:.3f}",
                f"{s['snmc']['mean']:.3f}±{s['snmc']['stderr']:.3f}",
                diff,
                f"{s['median_decision_seconds']:.2f}",
                f"{s['max_decision_seconds']:.2f}",
                "-" if eig is None else f"{1e3 * eig:.1f}",
                "-" if train is None else f"{train:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def verdicts(summaries: list[dict[str, Any]]) -> list[str]:
    """PASS/FAIL lines of every learned row against random and the oracle."""
    by = {s["strategy"]: s for s in summaries}
    lines = []
    for s in summaries:
        if not s["strategy"].startswith("eig") or s["strategy"] == "eig-exact":
            continue
        name, mean = s["strategy"], s["spce"]["mean"]
        if "random" in by:
            ref = by["random"]["spce"]["mean"]
            ok = "PASS" if mean > ref else "FAIL"
            lines.append(f"{ok}  {name}: sPCE {mean:.3f} > random's {ref:.3f}")
        if "eig-exact" in by:
            ref = by["eig-exact"]["spce"]["mean"]
            ok = "PASS" if mean >= WITHIN_ORACLE * ref else "FAIL"
            lines.append(
                f"{ok}  {name}: sPCE {mean:.3f} >= {WITHIN_ORACLE:.2f} x oracle's {ref:.3f} "
                f"(ratio {mean / ref:.3f})"
            )
        sec = s["median_decision_seconds"]
        ok = "PASS" if sec <= MAX_SECONDS else "FAIL"
        lines.append(f"{ok}  {name}: {sec:.2f} s per design decision (median) <= {MAX_SECONDS:g}")
    return lines


def main() -> None:
    """Run the benchmark, print the table and the verdicts, write the JSON."""
    args = parse_args()
    torch.set_num_threads(1)
    task = tasks.location_finding()
    record: dict[str, Any] = {
        **machine_facts(),
        "activesci": activesci.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_threads": os.environ["OMP_NUM_THREADS"],
    }
    eig_options = _options(args.eig_options)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    record["config"] = config | {"eig_options": eig_options}
    facts = machine_of(record)
    print(
        f"location finding: {args.seeds} seeds x {args.rounds} measurements, sPCE with L = "
        f"{args.n_contrast:.0e}; {facts['cpu_model']} ({facts['cpu_count']} cores, load "
        f"{facts['load_average_at_start'][0]:.2f}), torch {torch.__version__} on "
        f"{torch.get_num_threads()} thread(s), OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}",
        flush=True,
    )
    plans: list[tuple[str, dict[str, Any], float | None]] = []
    for name in args.strategies:
        if name == "random":
            plans.append(("random", {"estimator": "exact", "strategy": "random"}, None))
        elif name == "eig-exact":
            options = {"estimator": "exact", "strategy": "eig"}
            plans.append(("eig-exact", options | {"strategy_options": {"exact": True}}, None))
        elif name == "eig":
            for label, method, samples in _learned(args.learned):
                start = time.perf_counter()
                est = RatioEstimator(task.simulator, method=method)
                est.train(n_samples=samples, seed=0, progress=False)
                training = time.perf_counter() - start
                print(f"trained {method} on {samples:.0e} samples: {training:.1f} s", flush=True)
                options = {"estimator": est, "strategy": "eig", "strategy_options": eig_options}
                plans.append((label, options, training))
        else:
            raise SystemExit(f"unknown strategy {name!r}: expected random, eig-exact or eig")
    start = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {}
    summaries = []
    for label, options, training in plans:
        runs[label] = []
        for seed in range(args.seeds):
            run = run_one(task, seed, options, args)
            runs[label].append(run)
            print(
                f"  {label:>12} seed {seed}: sPCE {run['spce']:.3f} sNMC {run['snmc']:.3f} "
                f"({sum(run['seconds']):.1f} s)",
                flush=True,
            )
        summaries.append(summarise(label, runs[label], training))
    wall = time.perf_counter() - start
    print(table(summaries, runs))
    for line in verdicts(summaries):
        print(line)
    print(f"total {wall:.0f} s (runs and metric; trainings apart)")
    out = args.out or RESULTS / "location.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record |= {"wall_seconds": wall, "summaries": summaries, "runs": runs}
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
