"""The Weinberg 95% CL contour, learned against exact, and excursion searches for it.

``activesci.excursion.contour.weinberg_contour`` runs the line-shape task at 89.19, 91.19 and
93.19 GeV (0.5 pb^-1 each, seed ``--seed``), holds Gamma_Z at its true value, trains a ratio
estimator on the (sin2w, M_Z) box and builds q = -2 Delta log L from it and from the exact
likelihood. For each estimator (``--estimators``, ``METHOD:SAMPLES:EPOCHS``) the script measures,
on an 81^2 grid of the box: the learned contour's area relative to the exact one, the fraction of
grid points classified differently, the distance between the two maxima, the best validation
loss and the CPU time of the setup (simulation, training and the two maxima; on one thread it
is the wall time of an idle machine). Then, on the first estimator's q, an ``ExcursionSearch`` of
``--evaluations`` evaluations per acquisition and search seed: the area of its estimated region
(q below 5.99, on its default 61^2 grid) relative to the exact one on the same grid, and the
points it classifies differently from the exact q.

Prints two tables; writes ``benchmarks/results/contour.json`` (everything) and the README's
tables to ``benchmarks/quoted/contour.json`` and ``benchmarks/quoted/contour-search.json``.

Run from the repository root::

    .venv/bin/python benchmarks/contour.py                      # the README's run, a few minutes
    .venv/bin/python benchmarks/contour.py --estimators alice:1e5:10 --search-seeds 1  # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import ROOT, machine_facts, positive_int, write_quoted

from activesci.excursion import ExcursionSearch
from activesci.excursion.contour import ContourProblem, weinberg_contour

ACQUISITIONS = {"entropy": "entropy", "max_variance": "max-variance", "random": "random"}
DEFAULT_ESTIMATORS = ["alice:4e5:60", "alice:1e5:30", "alices:1e5:30"]


def estimator_spec(text: str) -> tuple[str, int, int]:
    """Argparse type: ``METHOD:SAMPLES:EPOCHS``, e.g. ``alice:4e5:60``."""
    try:
        method, samples, epochs = text.split(":")
        return method, positive_int(samples), positive_int(epochs)
    except (ValueError, argparse.ArgumentTypeError) as err:
        raise argparse.ArgumentTypeError(f"expected METHOD:SAMPLES:EPOCHS, got {text!r}") from err


def grid_of(problem: ContourProblem, resolution: int) -> np.ndarray:
    """The box as a ``(resolution**2, 2)`` grid, C order."""
    axes = [np.linspace(lo, hi, resolution) for lo, hi in problem.space.bounds]
    return np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=-1)


def compare(problem: ContourProblem, resolution: int) -> dict[str, float]:
    """Learned vs exact contour on the grid: area, disagreement, maxima."""
    grid = grid_of(problem, resolution)
    exact = problem.exact(grid) < problem.threshold
    learned = problem.learned(grid) < problem.threshold
    delta = np.abs(problem.learned.best - problem.exact.best)
    summary = problem.estimator.summary
    return {
        "area_exact": float(exact.mean()),
        "area_error_percent": 100.0 * (learned.mean() / exact.mean() - 1.0),
        "differ_percent": 100.0 * float((learned != exact).mean()),
        "max_delta_sin2w": float(delta[0]),
        "max_delta_mz_mev": 1000.0 * float(delta[1]),
        "best_val_loss": float(min(summary.best_val_loss)),
        "training_seconds": float(summary.seconds),
    }


def search(problem: ContourProblem, acquisition: str, seed: int, evaluations: int) -> dict:
    """One excursion search of the learned q; its region against the exact one."""
    start = time.perf_counter()
    found = ExcursionSearch(
        problem.learned, problem.space, problem.threshold, acquisition=acquisition, seed=seed
    ).run(evaluations)
    inside = found.classify() == 0  # q below the threshold: inside the 95% CL region
    exact = problem.exact(found.grid) < problem.threshold
    return {
        "acquisition": acquisition,
        "seed": seed,
        "area_error_percent": 100.0 * (inside.mean() / exact.mean() - 1.0),
        "differ_percent": 100.0 * float((inside != exact).mean()),
        "seconds": time.perf_counter() - start,
    }


def quote(results: dict[str, Any], command: str) -> None:
    """Write the README's two tables to ``benchmarks/quoted/``."""
    common = {
        "script": "benchmarks/contour.py",
        "command": command,
        "machine": results["machine"],
        "threads": results["threads"],
    }
    rows = [
        [
            None,
            [r["area_error_percent"]],
            [r["differ_percent"]],
            [r["max_delta_sin2w"], r["max_delta_mz_mev"]],
            [r["best_val_loss"]],
            [r["setup_cpu_seconds"]],
        ]
        for r in results["estimators"]
    ]
    columns = ["estimator (training events, epochs)", "area vs exact"]
    columns += ["grid points classified differently", "maxima apart: sin²θ_W, M_Z"]
    write_quoted(
        "contour", columns=[*columns, "best validation loss", "CPU time"], rows=rows, **common
    )
    seeds = results["search_seeds"]
    columns = ["acquisition", f"|area error| ({seeds} seeds)", "grid points classified differently"]
    rows = [[None, s["area"], s["differ"]] for s in results["search_summary"]]
    write_quoted("contour-search", columns=columns, rows=rows, **common)


def main(argv: list[str] | None = None) -> int:
    """Train, compare, search; print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--estimators", nargs="+", type=estimator_spec, default=None)
    parser.add_argument("--seed", type=int, default=0, help="experiments and training (0)")
    parser.add_argument("--resolution", type=positive_int, default=81)
    parser.add_argument("--evaluations", type=positive_int, default=16)
    parser.add_argument("--search-seeds", type=positive_int, default=3)
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "contour.json"
    )
    args = parser.parse_args(argv)
    estimators = args.estimators or [estimator_spec(e) for e in DEFAULT_ESTIMATORS]
    torch.set_num_threads(args.threads)
    machine = machine_facts()
    print(
        f"{machine['cpu_model']}, {args.threads} thread(s), load {machine['load_average_at_start']}"
    )

    rows, first = [], None
    print(
        f"{'estimator':<22} {'area %':>7} {'differ %':>8} {'d sin2w':>8} {'d M_Z MeV':>9} ", end=""
    )
    print(f"{'val loss':>8} {'CPU s':>7}")
    for method, samples, epochs in estimators:
        cpu = time.process_time()  # CPU time: on a shared machine the wall time is the load's
        problem = weinberg_contour(
            method=method, training_samples=samples, epochs=epochs, seed=args.seed
        )
        cpu = time.process_time() - cpu
        first = first or problem
        row = {"method": method, "samples": samples, "epochs": epochs}
        row |= compare(problem, args.resolution) | {"setup_cpu_seconds": cpu}
        rows.append(row)
        print(
            f"{f'{method} {samples:.0e} x {epochs}':<22} {row['area_error_percent']:>+7.2f} "
            f"{row['differ_percent']:>8.2f} {row['max_delta_sin2w']:>8.5f} "
            f"{row['max_delta_mz_mev']:>9.1f} {row['best_val_loss']:>8.3g} "
            f"{row['setup_cpu_seconds']:>7.1f}",
            flush=True,
        )

    assert first is not None
    searches = [
        search(first, acquisition, seed, args.evaluations)
        for acquisition in ACQUISITIONS
        for seed in range(args.search_seeds)
    ]
    print(f"\nsearches of the first q: {args.evaluations} evaluations, {args.search_seeds} seeds")
    print(f"{'acquisition':<14} {'|area error| %':>16} {'differ %':>14}")
    summary = []
    for acquisition in ACQUISITIONS:
        mine = [s for s in searches if s["acquisition"] == acquisition]
        area = [abs(s["area_error_percent"]) for s in mine]
        differ = [s["differ_percent"] for s in mine]
        area_range, differ_range = [min(area), max(area)], [min(differ), max(differ)]
        summary.append({"acquisition": acquisition, "area": area_range, "differ": differ_range})
        print(
            f"{acquisition:<14} {area_range[0]:>7.2f}-{area_range[1]:<8.2f} "
            f"{differ_range[0]:>6.2f}-{differ_range[1]:<7.2f}"
        )

    results = {
        "machine": machine,
        "threads": args.threads,
        "seed": args.seed,
        "resolution": args.resolution,
        "evaluations": args.evaluations,
        "search_seeds": args.search_seeds,
        "estimators": rows,
        "searches": searches,
        "search_summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    if args.estimators is None:  # the README quotes the default run only
        command = "python benchmarks/contour.py " + " ".join(argv or sys.argv[1:])
        quote(results, command.strip())
        print("wrote benchmarks/quoted/contour.json and contour-search.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
