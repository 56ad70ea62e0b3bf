"""Accuracy and cost of the neural ratio estimators on Weinberg: a benchmark, never a unit test.

On ``activesci.tasks.weinberg()`` at ``sqrt_s = 88`` GeV (every estimator is trained with
``designs=[[88.0]]``), for each training budget (simulated events) and each method, over
several training seeds, this measures

* closure against the exact likelihood: ``KL(exact || learned)`` (with ``mean_shift``,
  ``width_ratio`` and ``hdr_mismatch``, ``activesci.inference.closure``) on a 2001-cell
  ``GridPosterior`` of ``sin2w``, averaged over observed datasets of 1,000 events drawn at
  ``sin2w = 0.2315`` with the luminosity that makes 1,000 the expected count; once with the
  extended likelihood (angles and event count, the default) and once from the angles alone
  (``extended=False``), whose posterior at 88 GeV is bimodal and much harder to get right;
* the coverage of the learned posterior's central 68% interval (``activesci.inference.
  coverage``, extended likelihood, 401 cells) over datasets whose truth is drawn from the
  prior, at the same luminosity (about 1,000 events);
* the wall time of the training (simulation included), on every core torch uses here;
* the median time of ``GridPosterior(task.parameters, 200, simulator=sim).update(obs, est)``
  for a 1,000-event observation.

Per (method, budget) the table gives the median and the min-max over training seeds of the
KLs and the mean over seeds of everything else. Targets, printed next to ``alices``: KL <=
0.01 at 10^5 on every seed, training <= 15 s, coverage 0.68 +- 0.07, update <= 50 ms.

Side by side, when they are importable (each skipped with a message otherwise):

* **madminer**: its ALICES and CARL through ``activesci.inference.madminer``;
* **sbi**: NRE-C (``sbi.inference.NRE_C``) trained on one event per ``theta ~ prior`` at the
  same budget, its per-event log ratio summed over the events by the same ``GridPosterior``.

Everything, with the per-seed and per-dataset numbers and the machine, goes to
``benchmarks/results/inference.json`` (git-ignored).

Run from the repository root::

    .venv/bin/python benchmarks/inference.py --quick                  # smoke run, ~1 min
    .venv/bin/python benchmarks/inference.py --budgets 1e4 1e5        # our six methods
    .venv-bench/bin/python benchmarks/inference.py --methods alices --budgets 1e5 \\
        --compare madminer sbi                                        # side by side
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_facts, machine_of, positive_int, write_quoted

import activesci
from activesci import tasks
from activesci.inference import (
    METHODS,
    ExactLikelihood,
    GridPosterior,
    RatioEstimator,
    closure,
    coverage,
    simulate_training_data,
)
from activesci.inference.methods import default_theta_ref
from activesci.typing import Observation

SQRT_S = 88.0
TRUTH = 0.2315
N_EVENTS = 1000  # events per observed dataset (and the expected count of the coverage runs)
CLOSURE_CELLS = 2001  # grid of the closure posteriors
COVERAGE_CELLS = 401  # grid of the coverage posteriors (cells of 5e-4, ~1/10 of a std)
UPDATE_CELLS = 200  # grid of the timed update
UPDATE_REPEATS = 11
SBI_EPOCHS = 30  # cap on sbi's epochs (ours train for 30)
LEVEL = 0.68
SEED = 20240611  # observed datasets; training seed k is k, coverage uses SEED + 1
TARGETS = {"kl": 0.01, "train_s": 15.0, "coverage": (0.61, 0.75), "update_ms": 50.0}
OUR_METHODS = [m for m in METHODS if m != "sally"]
COMPARISONS = ("madminer", "sbi")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "inference.json"


@dataclass
class SeedRun:
    """What one trained estimator scored."""

    seed: int
    train_s: float
    update_ms: float
    coverage: float
    closure: dict[str, list[dict[str, float]]]  # "extended" / "angles" -> one dict per dataset

    def mean(self, kind: str, key: str) -> float:
        return float(np.mean([d[key] for d in self.closure[kind]]))


@dataclass
class Row:
    """One (implementation, method, budget): its runs over training seeds, or why none ran."""

    impl: str
    method: str
    budget: int
    runs: list[SeedRun] = field(default_factory=list)
    skipped: str | None = None

    def kls(self, kind: str) -> list[float]:
        return [r.mean(kind, "kl") for r in self.runs]

    def mean_of(self, get: Callable[[SeedRun], float]) -> float:
        return float(np.mean([get(r) for r in self.runs]))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"impl": self.impl, "method": self.method, "budget": self.budget}
        if self.skipped:
            return {**out, "skipped": self.skipped}
        for kind in ("extended", "angles"):
            kls = self.kls(kind)
            out[f"kl_{kind}"] = {
                "median": statistics.median(kls),
                "min": min(kls),
                "max": max(kls),
                "per_seed": kls,
            }
            for key in ("mean_shift", "width_ratio", "hdr_mismatch"):
                out[f"{key}_{kind}"] = self.mean_of(lambda r, k=kind, q=key: r.mean(k, q))
        out["coverage_68"] = self.mean_of(lambda r: r.coverage)
        out["train_s"] = self.mean_of(lambda r: r.train_s)
        out["update_ms"] = self.mean_of(lambda r: r.update_ms)
        out["runs"] = [r.__dict__ for r in self.runs]
        return out


# -- the problem -------------------------------------------------------------------------------
class Problem:
    """The task, the observed datasets and their exact posteriors, shared by every estimator."""

    def __init__(self, n_datasets: int, n_coverage: int) -> None:
        self.task = tasks.weinberg()
        self.sim = self.task.simulator
        nu = float(self.sim.expected_count([TRUTH], [SQRT_S])[0])
        self.luminosity = self.sim.luminosity * N_EVENTS / nu
        # the coverage datasets are Poisson draws at this luminosity: ~1,000 events each
        self.coverage_sim = tasks.weinberg(luminosity=self.luminosity).simulator
        self.n_coverage = n_coverage
        children = np.random.SeedSequence(SEED).spawn(n_datasets)
        self.observations = [
            Observation(
                design=[SQRT_S],
                x=self.sim.sample([TRUTH], [SQRT_S], np.random.default_rng(c), n=N_EVENTS).x,
                luminosity=self.luminosity,
            )
            for c in children
        ]
        exact = ExactLikelihood(self.sim)
        self.exact = {
            kind: [self.posterior(kind).update(obs, exact) for obs in self.observations]
            for kind in ("extended", "angles")
        }

    def posterior(self, kind: str, cells: int = CLOSURE_CELLS) -> GridPosterior:
        return GridPosterior(
            self.task.parameters, cells, simulator=self.sim, extended=kind == "extended"
        )

    def evaluate(self, est: Any, seed: int, train_s: float) -> SeedRun:
        """Closure on every dataset, coverage and the update time of a trained estimator."""
        cached = _LastCall(est)
        metrics: dict[str, list[dict[str, float]]] = {"extended": [], "angles": []}
        for i, obs in enumerate(self.observations):
            for kind in metrics:
                m = closure(self.exact[kind][i], self.posterior(kind).update(obs, cached))
                metrics[kind].append(
                    {
                        "kl": m["kl"],
                        "mean_shift": float(m["mean_shift"][0]),
                        "width_ratio": float(m["width_ratio"][0]),
                        "hdr_mismatch": float(m["hdr_mismatch"][0]),
                    }
                )
        sim = self.coverage_sim
        cov = coverage(
            sim,
            est,
            lambda: GridPosterior(sim.parameters, COVERAGE_CELLS, simulator=sim),
            n_datasets=self.n_coverage,
            levels=(LEVEL,),
            seed=SEED + 1,
            design=[SQRT_S],
            progress=False,
        )
        return SeedRun(
            seed=seed,
            train_s=train_s,
            update_ms=self.update_ms(est),
            coverage=float(cov["central"][0, 0]),
            closure=metrics,
        )

    def update_ms(self, est: Any) -> float:
        """Median milliseconds of a 200-cell update with the first dataset, after a warm-up."""
        obs = self.observations[0]
        seconds = []
        for _ in range(UPDATE_REPEATS + 1):
            post = GridPosterior(self.task.parameters, UPDATE_CELLS, simulator=self.sim)
            start = time.perf_counter()
            post.update(obs, est)
            seconds.append(time.perf_counter() - start)
        return statistics.median(seconds[1:]) * 1e3


class _LastCall:
    """An estimator that remembers its last call, so that the extended and the angles-only
    posterior of one dataset evaluate the network once."""

    def __init__(self, est: Any) -> None:
        self.est = est
        self.last: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        x, theta, design = (np.asarray(a, dtype=float) for a in (x, theta, design))
        if self.last is not None:
            lx, lt, ld, out = self.last
            if (
                lx.shape == x.shape
                and lt.shape == theta.shape
                and np.array_equal(lx, x)
                and np.array_equal(lt, theta)
                and np.array_equal(ld, design)
            ):
                return out
        out = np.asarray(self.est.log_ratio(x, theta, design), dtype=float)
        self.last = (x.copy(), theta.copy(), design.copy(), out)
        return out


# -- the estimators ----------------------------------------------------------------------------
def train_activesci(problem: Problem, method: str, budget: int, seed: int) -> Any:
    est = RatioEstimator(problem.sim, method=method)
    est.train(n_samples=budget, seed=seed, designs=[[SQRT_S]], progress=False)
    return est


def train_madminer(problem: Problem, method: str, budget: int, seed: int) -> Any:
    """MadMiner's ``method`` through ``activesci.inference.madminer`` (imported lazily).

    The same samples ours would train on (``simulate_training_data``, same seed and reference),
    MadMiner's network and schedule as the bridge sets them (100-100 tanh, 50 epochs of
    batches of 128, lr 1e-3 to 1e-4, early stopping).
    """
    module = importlib.import_module("activesci.inference.madminer")
    sim = problem.sim
    data = simulate_training_data(
        sim, budget, theta_ref=default_theta_ref(sim.parameters), designs=[[SQRT_S]], seed=seed
    )
    est = module.MadMinerRatioEstimator(parameters=sim.parameters, designs=sim.designs)
    est.train(data, method, seed=seed)
    return est


class _NoTracker:
    """sbi's ``Tracker`` protocol, doing nothing (sbi's default writes TensorBoard logs)."""

    log_dir = None

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def add_figure(self, name: str, figure: Any, step: int | None = None) -> None:
        pass

    def flush(self) -> None:
        pass


class SbiRatio:
    """An sbi ``RatioEstimator`` of single events as a ``log_ratio(x, theta, design)``.

    NRE learns ``log p(x | theta) / p(x)`` up to a constant for one event ``x`` at the design
    it was trained at (88 GeV, not an input); the posterior sums it over the events.
    """

    def __init__(self, net: Any) -> None:
        self.net = net.eval()

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        if not np.allclose(np.asarray(design, dtype=float), SQRT_S):
            raise ValueError(f"this sbi estimator knows sqrt_s={SQRT_S} only, got {design}")
        xt = torch.tensor(np.asarray(x, dtype=float), dtype=torch.float32)  # copies: the grid
        tt = torch.tensor(np.asarray(theta, dtype=float), dtype=torch.float32)  # is read-only
        with torch.no_grad():
            # sbi broadcasts nothing: theta and x both (n_theta, n_x, features)
            out = self.net.unnormalized_log_ratio(
                tt[:, None, :].expand(-1, len(xt), -1), xt[None].expand(len(tt), -1, -1)
            )
        return out.double().numpy()


def train_sbi(problem: Problem, method: str, budget: int, seed: int) -> Any:
    """sbi's NRE-C on ``budget`` single events, each at its own ``theta ~ prior``.

    sbi's defaults (resnet classifier, 5 classes, batches of 200, lr 5e-4, early stopping after
    20 epochs without improvement) except at most ``SBI_EPOCHS`` epochs: its default has no cap.
    """
    from sbi.inference import NRE_C
    from sbi.utils import BoxUniform

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sim = problem.sim
    theta = sim.parameters.sample(budget, rng)
    x = sim.sample(theta, np.full((budget, 1), SQRT_S), rng).x
    lo, hi = sim.parameters.bounds.T
    prior = BoxUniform(torch.tensor(lo, dtype=torch.float32), torch.tensor(hi, dtype=torch.float32))
    inference = NRE_C(prior=prior, show_progress_bars=False, tracker=_NoTracker())
    inference.append_simulations(
        torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
    )
    with warnings.catch_warnings():  # "max_num_epochs reached": the cap is deliberate
        warnings.simplefilter("ignore")
        net = inference.train(max_num_epochs=SBI_EPOCHS)
    print()  # sbi ends its "converged after n epochs" message with a carriage return
    return SbiRatio(net)


TRAINERS: dict[str, Callable[[Problem, str, int, int], Any]] = {
    "activesci": train_activesci,
    "madminer": train_madminer,
    "sbi": train_sbi,
}


def availability(impl: str) -> str | None:
    """``None`` if ``impl`` can run here, else why not."""
    if impl == "madminer":
        try:
            importlib.import_module("madminer")
        except ImportError as exc:
            return f"madminer not installed ({exc})"
        try:
            importlib.import_module("activesci.inference.madminer")
        except ImportError as exc:
            return f"activesci.inference.madminer not importable ({exc})"
    if impl == "sbi":
        try:
            importlib.import_module("sbi.inference")
        except ImportError as exc:
            return f"sbi not installed ({exc})"
    return None


def run_row(
    problem: Problem, impl: str, method: str, budget: int, seeds: int, log: Callable[[str], None]
) -> Row:
    row = Row(impl, method, budget)
    row.skipped = availability(impl)
    if row.skipped:
        log(f"{impl} {method} {budget:.0e}: skipped, {row.skipped}")
        return row
    for seed in range(seeds):
        start = time.perf_counter()
        try:
            est = TRAINERS[impl](problem, method, budget, seed)
        except (ImportError, AttributeError) as exc:  # an adapter without the expected API
            row.skipped = f"{type(exc).__name__}: {exc}"
            log(f"{impl} {method} {budget:.0e}: skipped, {row.skipped}")
            return row
        train_s = time.perf_counter() - start
        run = problem.evaluate(est, seed, train_s)
        row.runs.append(run)
        log(
            f"{impl} {method} {budget:.0e} seed {seed}: train {train_s:.1f} s, "
            f"KL ext {run.mean('extended', 'kl'):.3g}, angles {run.mean('angles', 'kl'):.3g}, "
            f"coverage {run.coverage:.2f}, update {run.update_ms:.1f} ms "
            f"({time.perf_counter() - start:.0f} s in all)"
        )
    return row


# -- output ------------------------------------------------------------------------------------
def _kl_cell(kls: list[float]) -> str:
    med = statistics.median(kls)
    return f"{med:.3g} [{min(kls):.2g}-{max(kls):.2g}]" if len(kls) > 1 else f"{med:.3g}"


def format_table(rows: list[Row]) -> str:
    """A fixed-width text table, one line per row, targets on lines of their own."""
    header = (
        "impl",
        "method",
        "budget",
        "seeds",
        "KL ext med [min-max]",
        "shift",
        "width",
        "hdr",
        "KL angles med [min-max]",
        "shift",
        "width",
        "cov68",
        "train s",
        "update ms",
    )
    lines: list[tuple[str, ...]] = []
    for r in rows:
        head = (r.impl, r.method, f"{r.budget:.0e}")
        if r.skipped:
            lines.append((*head, "-", r.skipped, *([""] * 9)))
            continue
        lines.append(
            (
                *head,
                str(len(r.runs)),
                _kl_cell(r.kls("extended")),
                f"{r.mean_of(lambda s: s.mean('extended', 'mean_shift')):.2f}",
                f"{r.mean_of(lambda s: s.mean('extended', 'width_ratio')):.2f}",
                f"{r.mean_of(lambda s: s.mean('extended', 'hdr_mismatch')):.2f}",
                _kl_cell(r.kls("angles")),
                f"{r.mean_of(lambda s: s.mean('angles', 'mean_shift')):.2f}",
                f"{r.mean_of(lambda s: s.mean('angles', 'width_ratio')):.2f}",
                f"{r.mean_of(lambda s: s.coverage):.2f}",
                f"{r.mean_of(lambda s: s.train_s):.1f}",
                f"{r.mean_of(lambda s: s.update_ms):.1f}",
            )
        )
        if r.method == "alices" and not r.skipped:
            lo, hi = TARGETS["coverage"]
            lines.append(
                (
                    "  target",
                    "",
                    "",
                    "",
                    f"max <= {TARGETS['kl']:g} at 1e5",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    f"{lo:.2f}-{hi:.2f}",
                    f"<= {TARGETS['train_s']:g}",
                    f"<= {TARGETS['update_ms']:g}",
                )
            )
    skip_rows = {i for i, ln in enumerate(lines) if ln[3] == "-"}
    widths = [
        max(len(ln[i]) for k, ln in enumerate([header, *lines]) if k - 1 not in skip_rows)
        for i in range(len(header))
    ]
    numeric = set(range(3, len(header)))

    def line(cells: tuple[str, ...], skipped: bool = False) -> str:
        if skipped:
            return "  ".join(c.ljust(w) for c, w in zip(cells[:4], widths, strict=False)) + (
                "  " + cells[4]
            )
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(ln, i in skip_rows) for i, ln in enumerate(lines)]
    return "\n".join([line(header), rule, *body])


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "activesci": activesci.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
    }
    for name in COMPARISONS:
        try:
            out[name] = metadata.version(name)  # madminer has no __version__
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# -- the README's tables -------------------------------------------------------------------------
#: Budgets as the README prints them.
POWERS = {10**4: "10⁴", 10**5: "10⁵", 10**6: "10⁶"}
#: The machine facts a quoted record keeps.
COLUMNS = ["estimator", "budget", "KL, extended likelihood", "KL, angles only", "coverage 68%",
           "training", "update (1000 events, 200 θ)"]  # fmt: skip


def quote(record: dict[str, Any], name: str, command: str) -> Path:
    """Write ``benchmarks/quoted/NAME.json``: one row per (implementation, method, budget).

    Columns: the estimator (the README's label, not checked), the budget, the KLs with the
    extended likelihood and from the angles alone (median, min, max over training seeds), the
    68% coverage, the training seconds and the update milliseconds.
    """
    rows = []
    for r in record["results"]:
        if r.get("skipped"):
            continue
        kls = [[r[f"kl_{k}"][q] for q in ("median", "min", "max")] for k in ("extended", "angles")]
        budget = POWERS.get(r["budget"], f"{r['budget']:.0e}")
        rows.append([None, budget, *kls, [r["coverage_68"]], [r["train_s"]], [r["update_ms"]]])
    return write_quoted(
        name,
        script="benchmarks/inference.py",
        command=command,
        machine=machine_of(record),
        threads=f"{record['torch_threads']} torch thread(s)",
        columns=COLUMNS,
        rows=rows,
    )


# -- command line --------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budgets",
        type=positive_int,
        nargs="+",
        default=[10**4, 10**5, 10**6],
        help="simulated training events (1e4 1e5 1e6)",
    )
    parser.add_argument(
        "--methods",
        nargs="*",
        choices=OUR_METHODS,
        default=OUR_METHODS,
        help=f"activesci methods ({' '.join(OUR_METHODS)}; none: comparisons only)",
    )
    parser.add_argument(
        "--train-seeds", type=positive_int, default=3, help="training seeds per method (3)"
    )
    parser.add_argument(
        "--datasets", type=positive_int, default=20, help="observed datasets for closure (20)"
    )
    parser.add_argument(
        "--coverage-seeds", type=positive_int, default=50, help="coverage datasets (50)"
    )
    parser.add_argument(
        "--compare",
        nargs="*",
        choices=COMPARISONS,
        default=list(COMPARISONS),
        help="side-by-side implementations, each skipped if not importable (madminer sbi)",
    )
    parser.add_argument(
        "--compare-methods",
        nargs="+",
        default=["alices", "carl"],
        help="madminer methods (alices carl); sbi always runs NRE-C",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results file ({DEFAULT_OUT})"
    )
    parser.add_argument(
        "--quote",
        metavar="NAME",
        help="also write the README's table to benchmarks/quoted/NAME.json (or, with --requote, "
        "only that)",
    )
    parser.add_argument(
        "--requote", type=Path, metavar="RESULTS", help="rebuild the quoted table from RESULTS"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: budget 1e4, alices and carl, 1 seed, 3 datasets, 5 coverage seeds",
    )
    args = parser.parse_args()
    if args.quick:
        args.budgets, args.methods, args.train_seeds = [10**4], ["alices", "carl"], 1
        args.datasets, args.coverage_seeds = 3, 5
    return args


def main() -> None:
    """Train every estimator, score it, print the table and write the JSON."""
    args = parse_args()
    if args.requote:
        record = json.loads(args.requote.read_text())
        command = record.get("command", "python benchmarks/inference.py")
        print(f"wrote {quote(record, args.quote or 'inference', command)}")
        return
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {msg}", flush=True)

    machine = {
        **machine_facts(),
        **versions(),
        "torch_threads": torch.get_num_threads(),
    }
    settings = {
        "sqrt_s": SQRT_S,
        "truth": TRUTH,
        "events_per_dataset": N_EVENTS,
        "budgets": args.budgets,
        "methods": args.methods,
        "train_seeds": args.train_seeds,
        "datasets": args.datasets,
        "coverage_seeds": args.coverage_seeds,
        "closure_cells": CLOSURE_CELLS,
        "coverage_cells": COVERAGE_CELLS,
        "update_cells": UPDATE_CELLS,
        "level": LEVEL,
        "targets": TARGETS,
    }
    problem = Problem(args.datasets, args.coverage_seeds)
    log(
        f"{args.datasets} datasets of {N_EVENTS} events at {SQRT_S} GeV "
        f"(luminosity {problem.luminosity:.3f} pb^-1), exact posteriors done"
    )
    rows: list[Row] = []
    for budget in args.budgets:
        for method in args.methods:
            rows.append(run_row(problem, "activesci", method, budget, args.train_seeds, log))
    for impl in args.compare:
        methods = ["nre_c"] if impl == "sbi" else args.compare_methods
        for budget in args.budgets:
            for method in methods:
                rows.append(run_row(problem, impl, method, budget, args.train_seeds, log))

    print(
        f"\nWeinberg at sqrt_s = {SQRT_S} GeV, {N_EVENTS}-event datasets: {args.datasets} for "
        f"closure ({CLOSURE_CELLS} cells), {args.coverage_seeds} for coverage; "
        f"{machine['cpu_model']}, {machine['cpu_count']} CPUs, torch "
        f"{machine['torch']} on {machine['torch_threads']} threads, load average at start "
        f"{machine['load_average_at_start'][0]:.2f}"
    )
    print(
        "KL in nats, median [min-max] over training seeds of the mean over datasets; shift, "
        "width, hdr, cov68, train s, update ms: means"
    )
    print(format_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        **machine,
        "command": "python benchmarks/inference.py " + " ".join(sys.argv[1:]),
        "settings": settings,
        "seconds": time.perf_counter() - started,
        "results": [r.as_json() for r in rows],
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s in all)")
    if args.quote:
        print(f"wrote {quote(payload, args.quote, payload['command'])}")


if __name__ == "__main__":
    main()
