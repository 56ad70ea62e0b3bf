"""Excursion search: evaluations needed to classify each test function to 99% accuracy.

Runs ``activesci.excursion.ExcursionSearch`` with each acquisition (``entropy``,
``max_variance``, ``random``; one evaluation per ask) on each registered test function
(``tanh_sine_1d``, ``xsec_eff_2d``, ``sphere_3d``; default grids 101, 61^2 and 31^3) for seeds
0..N-1, the seed fixing the initial Latin hypercube (shared by all acquisitions) and the
acquisition's randomness. After every evaluation the grid classification is compared with the
truth. The table gives, per function and acquisition, the median over seeds of the evaluations
needed to reach ``--target`` accuracy (``>B`` when fewer than half the seeds got there within
the budget ``B``), how many seeds got there, and the median final accuracy and relative
volume error of the excursion set (the worst over thresholds).

The reference implementation (the ``excursion`` package of Heinrich, Cranmer and Stark) is
reported when importable; it is not a dependency and is not installed by the project.

Everything goes to ``benchmarks/results/excursion.json`` (git-ignored); a default run (10 seeds,
every function and acquisition) also writes the README's table to
``benchmarks/quoted/excursion.json`` (its reference column comes from ``excursion_reference.py``
and is not part of this record). ``--requote RESULTS`` rebuilds that record from a results JSON.

Run from the repository root::

    .venv/bin/python benchmarks/excursion.py --seeds 2 --budget 15     # smoke run
    .venv/bin/python benchmarks/excursion.py                          # 10 seeds, ~10 min
    .venv/bin/python benchmarks/excursion.py --functions xsec_eff_2d --acquisitions entropy random
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.machinery import PathFinder
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine_facts, positive_int, write_quoted
from threadpoolctl import threadpool_limits

import activesci
from activesci.bench.excursion import (
    excursion_rows,
    excursion_spec,
    format_excursion_table,
    run_excursion_seed,
)
from activesci.excursion import ACQUISITIONS, TEST_FUNCTIONS

RESULTS = Path(__file__).resolve().parent / "results"
#: Evaluations per run, by function: enough for every acquisition to have a chance.
BUDGETS = {"tanh_sine_1d": 30, "xsec_eff_2d": 50, "sphere_3d": 60}


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds 0..N-1 (10)")
    parser.add_argument(
        "--budget", type=positive_int, default=None, help=f"evaluations per run {BUDGETS}"
    )
    parser.add_argument(
        "--functions", nargs="+", choices=sorted(TEST_FUNCTIONS), default=list(TEST_FUNCTIONS)
    )
    parser.add_argument(
        "--acquisitions",
        nargs="+",
        choices=sorted(ACQUISITIONS),
        default=["entropy", "max_variance", "random"],
    )
    parser.add_argument("--target", type=float, default=0.99, help="accuracy to reach (0.99)")
    parser.add_argument(
        "--jobs", type=positive_int, default=os.cpu_count() or 1, help="worker processes"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "excursion.json")
    parser.add_argument("--requote", type=Path, help="only rebuild the quoted table from this JSON")
    parser.add_argument("--commit", help="with --requote: the commit that RESULTS measured")
    return parser.parse_args()


README_COLUMNS = ["function", "entropy", "max-variance", "random", "excursion 0.0.1a0 PES"]


def quote(results: dict[str, Any], commit: str | None = None) -> Path:
    """Write the README's table (``benchmarks/quoted/excursion.json``) from ``results``.

    A cell is [median evaluations to the target, seeds that reached it, seeds]; the reference
    package's column is not measured here and is left unchecked.
    """
    rows = []
    for function in TEST_FUNCTIONS:
        cells: list[Any] = [None]
        for acquisition in ("entropy", "max_variance", "random"):
            r = next(
                r
                for r in results["summary"]
                if (r["function"], r["strategy"]) == (function, acquisition)
            )
            cells.append([r["evaluations_to_target"], r["reached_target"], r["seeds"]])
        rows.append([*cells, None])
    return write_quoted(
        "excursion",
        script="benchmarks/excursion.py",
        command=f"python benchmarks/excursion.py --seeds {results['seeds']}",
        machine=results,
        threads=f"1 BLAS thread per process, {results['jobs']} processes",
        columns=README_COLUMNS,
        rows=rows,
        commit=commit,
    )


def one_run(function: str, acquisition: str, seed: int, budget: int) -> dict[str, Any]:
    """One search of ``budget`` evaluations on one BLAS thread; its history and timing."""
    spec = excursion_spec(function, strategies=(acquisition,), seeds=1, evaluations=budget)
    with threadpool_limits(1):
        return {"function": function, "acquisition": acquisition} | run_excursion_seed(
            spec, acquisition, seed
        )


def reference_package() -> str:
    """Whether the ``excursion`` package is importable, for the table's last line."""
    here = Path(__file__).resolve().parent  # this script is excursion.py: skip its folder
    path = [p for p in sys.path if Path(p or ".").resolve() != here]
    if PathFinder.find_spec("excursion", path) is None:
        return "excursion package: not installed"
    try:
        found = version("excursion")
    except PackageNotFoundError:
        found = "unknown version"
    return f"excursion package: {found} importable, but this script has no adapter to run it"


def main() -> None:
    """Run every (function, acquisition, seed), print the table and write the JSON."""
    args = parse_args()
    if args.requote:
        print(f"wrote {quote(json.loads(args.requote.read_text()), args.commit)}")
        return
    budget = {f: args.budget or BUDGETS[f] for f in args.functions}
    machine = {
        **machine_facts(),
        "activesci": activesci.__version__,
        "numpy": np.__version__,
        "scikit-learn": version("scikit-learn"),
        "scipy": version("scipy"),
        "jobs": args.jobs,
    }
    print(
        f"excursion benchmark: {args.seeds} seeds, budgets {budget}, acquisitions "
        f"{args.acquisitions}; {machine['cpu_model']}, {args.jobs} processes",
        flush=True,
    )
    jobs = [
        (f, a, s, budget[f]) for f in args.functions for a in args.acquisitions
        for s in range(args.seeds)
    ]  # fmt: skip
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(one_run, *zip(*jobs, strict=True)))
    rows = excursion_rows(runs, args.target, budget)
    reference = reference_package()
    print(format_excursion_table(rows, args.target))
    print(reference)
    print(f"total {time.perf_counter() - start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"seeds": args.seeds, "budget": budget, "target": args.target}
    args.out.write_text(
        json.dumps(
            {**machine, **settings, "reference": reference, "summary": rows, "runs": runs},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    readme = len(args.functions) == len(TEST_FUNCTIONS) and len(args.acquisitions) == 3
    if readme and args.budget is None and args.target == 0.99:  # the README's run
        print(f"wrote {quote(json.loads(args.out.read_text()))}")


if __name__ == "__main__":
    main()
