"""Reference excursion search: the ``excursion`` 0.0.1a0 package's PES on our test functions.

Runs the entropy-based acquisition ("PES") of the reference package ``excursion`` 0.0.1a0
(Heinrich, Cranmer and Stark, 2018; PyPI) on the test functions of ``activesci.excursion``
(``tanh_sine_1d``, ``xsec_eff_2d``, ``sphere_3d``) with the protocol of ``excursion.py`` beside
this file: the same classification grids (101, 61^2 and 31^3 points spanning the bounds), the
same budgets (30, 50 and 60 evaluations, initial points included), the same target (99% of the
grid classified right) and seeds 0..N-1. The table gives, per function, the median over seeds of
the evaluations needed to reach the target (``>B`` when fewer than half the seeds got there), how
many seeds got there and the median final accuracy.

What is the package's and what is this script's:

* the package's: the GP (``excursion.get_gp``: constant times RBF with one length-scale per
  dimension in [0.1, 100], ``alpha=1e-7``, targets not normalised, 10 optimiser restarts,
  ``random_state=1234``, refitted after every evaluation) and the acquisition
  (``excursion.optimize.gridsearch``: for every candidate of an acquisition grid, the mean over an
  integration grid ``meanX`` of the approximate mutual information between ``f`` at the
  candidate and the class there, ``excursion.optimize.core.info_gain``; the best candidate not
  yet evaluated is taken). Both are called unchanged, with one speed shim: the acquisition spends
  most of its time building frozen ``scipy.stats.norm`` objects (docstring formatting included),
  so the ``norm`` that ``excursion.optimize.core`` imported is replaced by :class:`FastNorm`,
  the same formulas (``scipy.special.ndtr``, ``exp(-x^2/2)/sqrt(2 pi)``, NaN where the scale is
  not positive) without the overhead: 4 to 10 times faster, and checked at start-up to give
  bit-identical acquisition values (``--scipy-norm`` runs without it).
* this script's: the inputs handed to the package are the unit cube (``--inputs unit``, default;
  the package's length-scale bounds are absolute and its own test cases span 1.5 to 2 units per
  axis) or the raw coordinates (``--inputs raw``); the acquisition and integration grids are
  sub-grids of our classification grid (every ``k``-th point per axis, ``--strides``), because
  the package's acquisition costs (acquisition points) x (integration points) x (evaluations)
  and our full grids would take hours (31^3 x 31^3 pairs per step in 3-D); the initial design
  (``--init``): ``lhs``, the very Latin hypercube our search starts from for that seed
  (``max(3, 2d + 1)`` points), or ``grid``, the package's own way (``runloop`` draws distinct
  points of the acquisition grid at random), with the same number of points. The GP is also fitted
  after each initial point so that, as in ``excursion.py``, accuracy is recorded after every
  evaluation. The classification is the posterior mean against the thresholds (as the package's
  ``diagnosis`` does), compared with ``TestFunction.true_classes`` on our grid.

The package needs its own virtual environment (Python 3.11). Its ``setup.py`` requires the PyPI
package ``sklearn``, which now refuses to install ("The 'sklearn' PyPI package is deprecated,
use 'scikit-learn'"), so it is installed without dependencies, next to the ones it really uses::

    /usr/bin/python3 -m venv /tmp/venv-excursion
    /tmp/venv-excursion/bin/pip install numpy scipy scikit-learn threadpoolctl click pyyaml
    /tmp/venv-excursion/bin/pip install --no-deps excursion==0.0.1a0

No compatibility shim is needed for what this script calls (``get_gp`` and
``optimize.gridsearch`` run unchanged on numpy 2.4, scipy 1.17 and scikit-learn 1.9). The
package's own test cases (``excursion.testcases``) do not run on numpy 2: ``utils.mesh2points``
calls ``np.product`` (removed in numpy 2.0) and ``utils.mgrid`` builds its grids from complex
slices, which numpy now returns as complex arrays that scikit-learn rejects ("Complex data not
supported"); this script does not use them. ``activesci`` is imported from the repository (its
folder is put on ``sys.path``); it needs numpy, scipy, scikit-learn and threadpoolctl, installed
above.

Run from the repository root (about 14 minutes with 2 processes on a busy 2-core machine)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        /tmp/venv-excursion/bin/python benchmarks/excursion_reference.py \\
        --seeds 10 --out benchmarks/results/excursion_reference.json
    /tmp/venv-excursion/bin/python benchmarks/excursion_reference.py --seeds 2 --budget 12 \\
        --out /tmp/excursion_reference_smoke.json                        # smoke run, 20 s

Measured so (10 seeds, load average 4 on 2 cores): 829 s in all; median evaluations to 99%
7 / 15.5 / 32.5 (1-D / 2-D / 3-D), all 10 seeds reaching it, where ``excursion.py``'s entropy
acquisition needs 7 / 15 / 26 from the same initial points.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from scipy import special
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: Evaluations per run, by function: the budgets of ``excursion.py``.
BUDGETS = {"tanh_sine_1d": 30, "xsec_eff_2d": 50, "sphere_3d": 60}
#: Per function, every how many points of our grid the package's acquisition grid and its
#: integration grid (``meanX``) take per axis: 101 / 101 points in 1-D, 21^2 / 21^2 in 2-D and
#: 11^3 / 7^3 in 3-D (the package's own test cases use 41^2 in 2-D and 11^3 or 16^3 in 3-D, for
#: both grids).
STRIDES = {"tanh_sine_1d": (1, 1), "xsec_eff_2d": (3, 3), "sphere_3d": (3, 5)}
LABEL = "excursion 0.0.1a0 PES"


def _import_path() -> None:
    """Make ``excursion`` the package, not ``benchmarks/excursion.py``, and add ``activesci``.

    Run as a script, this file's folder comes first on ``sys.path``, where ``excursion.py``
    would shadow the package.
    """
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """The package, its ``optimize`` module and ``activesci.excursion``."""
    _import_path()
    package = importlib.import_module("excursion")
    if Path(package.__file__ or "").resolve().is_relative_to(HERE):
        raise ImportError(f"'excursion' resolved to {package.__file__}, not the package")
    optimize = importlib.import_module("excursion.optimize")
    return package, optimize, importlib.import_module("activesci.excursion")


class _FrozenNorm:
    """``scipy.stats.norm(loc, scale)``'s ``cdf``, as scipy computes it."""

    def __init__(self, loc: Any, scale: Any) -> None:
        self.loc = np.asarray(loc, dtype=float)
        self.scale = np.asarray(scale, dtype=float)

    def cdf(self, x: Any) -> np.ndarray:
        """``ndtr((x - loc) / scale)``; NaN where the scale is not positive (scipy's rule)."""
        z = (np.asarray(x, dtype=float) - self.loc) / self.scale
        return np.where(self.scale > 0, special.ndtr(z), np.nan)


class FastNorm:
    """The parts of ``scipy.stats.norm`` that ``excursion.optimize.core`` uses, without overhead.

    ``norm.cdf(x)``, ``norm.pdf(x)`` and ``norm(loc, scale).cdf(x)`` with scipy's own formulas
    (``_norm_cdf`` and ``_norm_pdf``), so the acquisition values are the same to the bit
    (:func:`check_fast_norm`).
    """

    def __call__(self, loc: Any = 0.0, scale: Any = 1.0) -> _FrozenNorm:
        """A normal distribution with ``loc`` and ``scale`` (arrays broadcast)."""
        return _FrozenNorm(loc, scale)

    def cdf(self, x: Any) -> np.ndarray:
        """The standard normal CDF."""
        return special.ndtr(np.asarray(x, dtype=float))

    def pdf(self, x: Any) -> np.ndarray:
        """The standard normal density."""
        x = np.asarray(x, dtype=float)
        return np.exp(-(x**2) / 2.0) / np.sqrt(2 * np.pi)


def check_fast_norm() -> bool:
    """Whether the package's acquisition gives identical values with scipy's norm and FastNorm.

    Scores a 7^3 grid of ``sphere_3d`` (and a 21^2 one of ``xsec_eff_2d``) from 12 random points
    both ways.
    """
    package, optimize, ours = _modules()
    core = importlib.import_module("excursion.optimize.core")
    scipy_norm = core.norm
    identical = True
    for function, stride in [("sphere_3d", 5), ("xsec_eff_2d", 3)]:
        problem = ours.TEST_FUNCTIONS[function]
        bounds = np.asarray(problem.space.bounds, dtype=float)
        d = len(bounds)
        unit = grid_points([np.linspace(0, 1, ours.DEFAULT_RESOLUTION[d])[::stride]] * d)
        scan = ScanDetails(list(problem.thresholds), unit, unit)
        X = np.random.default_rng(1).random((12, d))
        values = []
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            gp = package.get_gp(X, problem.func(bounds[:, 0] + X * (bounds[:, 1] - bounds[:, 0])))
            try:
                for norm in (scipy_norm, FastNorm()):
                    core.norm = norm
                    values.append(optimize.gridsearch([gp], X, scan)[1])
            finally:
                core.norm = scipy_norm
        identical &= bool(np.array_equal(values[0], values[1], equal_nan=True))
    return identical


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (10)")
    parser.add_argument(
        "--budget", type=int, default=None, help=f"evaluations per run (default {BUDGETS})"
    )
    parser.add_argument("--functions", nargs="+", choices=sorted(BUDGETS), default=list(BUDGETS))
    parser.add_argument("--target", type=float, default=0.99, help="accuracy to reach (0.99)")
    parser.add_argument(
        "--init",
        choices=["lhs", "grid"],
        default="lhs",
        help="initial design: our seed's Latin hypercube, or random acquisition-grid points",
    )
    parser.add_argument(
        "--inputs",
        choices=["unit", "raw"],
        default="unit",
        help="coordinates handed to the package: the unit cube (default) or the space's units",
    )
    parser.add_argument(
        "--strides",
        nargs="+",
        default=[],
        metavar="FUNCTION:ACQ:MEAN",
        help=f"sub-grid strides of the acquisition and integration grids (default {STRIDES})",
    )
    parser.add_argument(
        "--scipy-norm",
        action="store_true",
        help="run the package's acquisition with scipy.stats.norm (4 to 10 times slower)",
    )
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=RESULTS / "excursion_reference.json")
    args = parser.parse_args()
    if args.seeds < 1 or args.jobs < 1 or (args.budget is not None and args.budget < 1):
        parser.error("--seeds, --jobs and --budget must be positive")
    strides = dict(STRIDES)
    for text in args.strides:
        name, _, rest = text.partition(":")
        acq, _, mean = rest.partition(":")
        if name not in BUDGETS or not (acq.isdigit() and mean.isdigit()):
            parser.error(f"--strides expects FUNCTION:ACQ:MEAN, got {text!r}")
        strides[name] = (int(acq), int(mean))
    args.strides = strides
    return args


def grid_axes(bounds: np.ndarray, resolution: int) -> list[np.ndarray]:
    """Our classification grid's coordinates per axis: ``resolution`` points, bounds included."""
    return [np.linspace(lo, hi, resolution) for lo, hi in bounds]


def grid_points(axes: list[np.ndarray]) -> np.ndarray:
    """The grid's points ``(n, d)`` in C order (the last axis fastest)."""
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


class ScanDetails:
    """What ``excursion.optimize.gridsearch`` reads from a test case module.

    Parameters
    ----------
    thresholds : list of float
        The thresholds (the package's ``scandetails.thresholds``).
    acqX : numpy.ndarray
        Candidate points ``(n, d)``.
    meanX : numpy.ndarray
        Integration points ``(m, d)`` over which the information gain is averaged.
    """

    def __init__(self, thresholds: list[float], acqX: np.ndarray, meanX: np.ndarray) -> None:
        self.thresholds = thresholds
        self.acqX = acqX
        self.meanX = meanX


def one_run(
    function: str,
    seed: int,
    budget: int,
    init: str,
    inputs: str,
    strides: tuple[int, int],
    fast_norm: bool = True,
) -> dict[str, Any]:
    """One search with the package's GP and PES; accuracy after every evaluation.

    Returns
    -------
    dict
        ``function``, ``seed``, ``history`` (``n_evaluations``, ``accuracy``,
        ``volume_error`` after each evaluation), ``seconds`` and ``X`` (the points, space units).
    """
    package, optimize, ours = _modules()
    if fast_norm:
        importlib.import_module("excursion.optimize.core").norm = FastNorm()
    warnings.simplefilter("ignore")  # the package's divide-by-zero and the GP's convergence
    problem = ours.TEST_FUNCTIONS[function]
    bounds = np.asarray(problem.space.bounds, dtype=float)
    d = len(bounds)
    low, width = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    axes = grid_axes(bounds, ours.DEFAULT_RESOLUTION[d])
    grid = grid_points(axes)
    truth = problem.true_classes(grid)

    def to_model(x: np.ndarray) -> np.ndarray:
        return (x - low) / width if inputs == "unit" else x

    def from_model(z: np.ndarray) -> np.ndarray:
        return low + z * width if inputs == "unit" else z

    acq_stride, mean_stride = strides
    scan = ScanDetails(
        list(problem.thresholds),
        to_model(grid_points([a[::acq_stride] for a in axes])),
        to_model(grid_points([a[::mean_stride] for a in axes])),
    )
    n_initial = max(3, 2 * d + 1)
    if init == "lhs":  # the points our ExcursionSearch asks first for this seed
        search = ours.ExcursionSearch(None, problem.space, problem.thresholds, seed=seed)
        X = to_model(search.ask(n_initial))
    else:  # the package's runloop: distinct random points of the acquisition grid
        rng = np.random.default_rng(seed)
        X = scan.acqX[rng.choice(len(scan.acqX), size=n_initial, replace=False)]
    y = problem.func(from_model(X))
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    with threadpool_limits(1), contextlib.redirect_stdout(io.StringIO()):
        for n in range(1, budget + 1):
            gp = package.get_gp(X[:n], y[:n])
            predicted = np.searchsorted(problem.thresholds, gp.predict(to_model(grid)))
            history.append(
                {
                    "n_evaluations": n,
                    "accuracy": ours.accuracy(predicted, truth),
                    "volume_error": max(
                        ours.volume_error(predicted, truth, level=k)
                        for k in range(1, len(problem.thresholds) + 1)
                    ),
                }
            )
            if n == len(X) and n < budget:
                new, _ = optimize.gridsearch([gp], X, scan)
                X = np.vstack([X, new])
                y = np.concatenate([y, problem.func(from_model(X[-1:]))])
    return {
        "function": function,
        "acquisition": LABEL,
        "seed": seed,
        "history": history,
        "seconds": time.perf_counter() - start,
        "X": from_model(X).tolist(),
    }


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    """Run every (function, seed), print the table and write the JSON."""
    args = parse_args()
    fast_norm = not args.scipy_norm
    if fast_norm and not check_fast_norm():
        sys.exit("FastNorm changes the package's acquisition values: run with --scipy-norm")
    budget = {f: args.budget or BUDGETS[f] for f in args.functions}
    strides = {f: args.strides[f] for f in args.functions}
    machine = {
        "python": platform.python_version(),
        "excursion": _version("excursion"),
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "scikit-learn": _version("scikit-learn"),
        "cpu_count": os.cpu_count(),
        "jobs": args.jobs,
        "load_average_at_start": list(os.getloadavg()),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(
        f"{LABEL}: {args.seeds} seeds, budgets {budget}, init {args.init}, inputs {args.inputs}, "
        f"strides (acquisition, integration) {strides}, FastNorm {fast_norm}, "
        f"{args.jobs} processes",
        flush=True,
    )
    jobs = [  # the slowest (highest-dimensional) runs first, for an even finish
        (f, s, budget[f], args.init, args.inputs, strides[f], fast_norm)
        for f in reversed(args.functions)
        for s in range(args.seeds)
    ]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(one_run, *zip(*jobs, strict=True)))
    runs.sort(key=lambda r: (args.functions.index(r["function"]), r["seed"]))
    wall = time.perf_counter() - start
    _import_path()
    tables = importlib.import_module("activesci.bench.excursion")
    rows = tables.excursion_rows(runs, args.target, budget)
    print(tables.format_excursion_table(rows, args.target))
    print(f"total {wall:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {
        "seeds": args.seeds,
        "budget": budget,
        "target": args.target,
        "init": args.init,
        "inputs": args.inputs,
        "strides": strides,
        "fast_norm": fast_norm,
        "wall_seconds": wall,
    }
    args.out.write_text(
        json.dumps({**machine, **settings, "summary": rows, "runs": runs}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
