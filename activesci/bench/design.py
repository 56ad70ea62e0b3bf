"""Design benchmarks: how fast each strategy shrinks the posterior of a task.

A benchmark runs the active learner on one task against a hidden truth, for several seeds
(the experiment and the learner share the seed) and a fixed number of rounds, once per
strategy. Strategy names are those of :data:`activesci.design.STRATEGIES` plus three that
fix the estimator too:

* ``eig``: the learned loop, Bayesian optimisation of the EIG with an amortised ALICES
  estimator and periodic refinement (``refine_every``);
* ``eig-exact``: the same optimiser on the exact-likelihood EIG;
* ``oracle``: the argmax of the exact EIG over a fixed fine grid of designs.

Every other strategy (``grid``, ``random``, ``fixed``, ``scan`` or one you registered)
infers with the exact likelihood, so the differences between them are the design's alone.
Per strategy it reports the median over seeds of the posterior std and of the posterior
volume ``sqrt(det cov)`` after each round, the median over seeds of the mean log volume over
the rounds (``auc_log_volume``: lower means narrower sooner), the rounds needed to bring every
std below the target, and the time per round. Results are plain dicts, ready for JSON.

>>> from activesci.bench import DesignBenchmark, run_design_benchmark
>>> bench = DesignBenchmark("gaussian", strategies=("fixed", "random"), seeds=2, rounds=2)
>>> result = run_design_benchmark(bench, progress=False)
>>> [s["strategy"] for s in result["summaries"]]
['fixed', 'random']
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from activesci import tasks as task_registry
from activesci.design.optimizer import STRATEGIES, DesignContext, Strategy
from activesci.design.utility import expected_information_gain
from activesci.errors import ValidationError
from activesci.registry import build
from activesci.tasks import Task
from activesci.typing import check_count, check_positive

__all__ = [
    "DesignBenchmark",
    "OracleStrategy",
    "format_design_table",
    "run_design_benchmark",
]

#: Strategies that are benchmark configurations rather than registered strategies.
LEARNER_STRATEGIES = ("eig", "eig-exact", "oracle")


@dataclass
class OracleStrategy:
    """The argmax of the exact EIG over a list of designs (common random numbers).

    In a 1-D design space the best candidate is then refined on ``refine`` points between its
    neighbours, so the oracle's design is the exact-EIG optimum to a fraction of the spacing.

    Parameters
    ----------
    designs : array_like, optional
        Candidate designs ``(k, D)``; default 201 evenly spaced points of a 1-D design space.
    n_samples : int
        Simulated experiments per EIG estimate.
    refine : int
        Points of the 1-D refinement (0: none).
    """

    designs: Any = None
    n_samples: int = 16
    refine: int = 21
    name: str = "oracle"
    record: dict[str, Any] = field(default_factory=dict)

    def propose(self, context: DesignContext) -> np.ndarray:
        """Evaluate the exact EIG at every candidate and return the best one."""
        candidates = self._candidates(context)
        values = self._eig(context, candidates)
        best = int(np.argmax(values))
        evaluated = len(candidates)
        if self.refine and len(context.space) == 1 and len(candidates) > 1:
            order = np.argsort(candidates[:, 0])
            at = int(np.flatnonzero(order == best)[0])
            lo = candidates[order[max(at - 1, 0)], 0]
            hi = candidates[order[min(at + 1, len(order) - 1)], 0]
            fine = np.linspace(lo, hi, self.refine)[:, None]
            fine_values = self._eig(context, fine)
            evaluated += len(fine)
            if fine_values.max() > values[best]:
                candidates, values, best = fine, fine_values, int(np.argmax(fine_values))
        self.record = {"chosen_eig": float(values[best]), "candidates": evaluated}
        return candidates[best]

    def _eig(self, context: DesignContext, designs: np.ndarray) -> np.ndarray:
        return np.array(
            [
                expected_information_gain(
                    context.posterior,
                    context.simulator,
                    d,
                    exact=True,
                    n_samples=self.n_samples,
                    rng=context.rng(2),
                ).value
                for d in designs
            ]
        )

    def _candidates(self, context: DesignContext) -> np.ndarray:
        if self.designs is not None:
            return context.space.validate(self.designs)
        if len(context.space) != 1:
            raise ValidationError("the oracle needs explicit designs for a multi-dimensional space")
        lo, hi = context.space.bounds[0]
        return context.space.validate(np.linspace(lo, hi, 201)[:, None])


@dataclass
class DesignBenchmark:
    """What to benchmark: a task, its truth, the strategies, seeds, rounds and target.

    Parameters
    ----------
    task : str
        A task name (``activesci.tasks.TASKS``, an entry point) or the
        ``"package.module:function"`` of your own factory (imported: this is code you chose).
    task_options : dict
        Options of the task factory, e.g. ``{"luminosity": 0.2}``.
    truth : dict, optional
        The hidden truth (default: the task's).
    strategies : tuple of str
        ``eig``, ``eig-exact``, ``oracle`` or any registered strategy name.
    seeds, rounds : int
        Seeds ``0..seeds-1``; rounds per run.
    target_std : float
        Every parameter's posterior std must fall below it to count as reached.
    training_samples, refine_every : int
        Budget and refinement period of the learned ``eig`` estimator; ``refine_every=None``
        retrains only where sequential inference calls for it.
    local_ensemble, calibration_events : int, optional
        The learned ``eig``'s sequential inference: networks per local estimator and
        simulated events per calibration point (default: the learner's).
    strategy_options : dict
        Options per strategy name, e.g. ``{"oracle": {"designs": [[88.0], [91.0]]}}``.
    resolution : int, optional
        Grid cells per parameter of the posteriors.
    factories : dict, optional
        Strategy factories by name for names no registry holds (a spec's plug-ins, as
        :func:`~activesci.bench.spec.resolve_strategies` returns them).
    """

    task: str = "weinberg"
    task_options: dict[str, Any] = field(default_factory=dict)
    truth: dict[str, float] | None = None
    strategies: tuple[str, ...] = ("eig", "eig-exact", "oracle", "grid", "random", "fixed")
    seeds: int = 20
    rounds: int = 8
    target_std: float = 0.004
    training_samples: int = 100_000
    refine_every: int | None = 2
    local_ensemble: int | None = None
    calibration_events: int | None = None
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    resolution: int | None = None
    factories: dict[str, Callable[..., Strategy]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.strategies = tuple(self.strategies)
        known = set(STRATEGIES) | set(LEARNER_STRATEGIES) | set(self.factories)
        for name in self.strategies:
            if name not in known:
                raise ValidationError(f"unknown strategy {name!r}; available: {sorted(known)}")
        optional = ("refine_every", "local_ensemble", "calibration_events")
        for name in ("seeds", "rounds", "training_samples", *optional):
            if name in optional and getattr(self, name) is None:
                continue  # the learner's default (refine_every: only where inference calls)
            setattr(self, name, check_count(getattr(self, name), name, minimum=1))
        self.target_std = check_positive(self.target_std, "target_std")
        if not isinstance(self.task_options, dict):
            raise ValidationError(f"task_options must be a dict, got {self.task_options!r:.80}")
        task = self.build_task()  # an unknown task or bad options fail here
        if self.truth is not None:
            task.parameters.validate(self.truth)

    def build_task(self) -> Task:
        """The benchmark's task, built from ``task`` and ``task_options``."""
        return task_registry.load(self.task, self.task_options, allow_plugins=True)

    def learner_options(self, name: str) -> dict[str, Any]:
        """The ``ActiveLearner`` keywords of one strategy of this benchmark."""
        options = dict(self.strategy_options.get(name, {}))
        if name == "eig":
            return {
                "estimator": "alices",
                "strategy": "eig",
                "refine_every": self.refine_every,
                "training_samples": self.training_samples,
                "local_ensemble": self.local_ensemble,
                "calibration_events": self.calibration_events,
                "strategy_options": options,
            }
        if name == "eig-exact":
            return {
                "estimator": "exact",
                "strategy": "eig",
                "strategy_options": {"exact": True, **options},
            }
        own = {"oracle": OracleStrategy, **self.factories}
        if name in own:
            return {"estimator": "exact", "strategy": build("strategy", name, own[name], options)}
        return {"estimator": "exact", "strategy": name, "strategy_options": options}


def posterior_volume(posterior: Any) -> float:
    """``sqrt(det cov)`` of a posterior: the volume the design benchmarks compare."""
    return float(math.sqrt(max(np.linalg.det(np.atleast_2d(posterior.cov())), 0.0)))


def run_seed(bench: DesignBenchmark, name: str, seed: int) -> dict[str, Any]:
    """One learner run: designs, means, stds, volumes and timings, round by round."""
    from activesci.learner import ActiveLearner

    task = bench.build_task()
    start = time.perf_counter()
    learner = ActiveLearner(
        task,
        experiment=task.experiment(truth=bench.truth, seed=seed),
        seed=seed,
        progress=False,
        resolution=bench.resolution,
        **bench.learner_options(name),
    )
    training = time.perf_counter() - start if name == "eig" else None
    run: dict[str, Any] = {"seed": seed, "designs": [], "mean": [], "std": [], "volume": []}
    run |= {"round_seconds": [], "training_seconds": training, "eig_seconds": []}
    for state in learner.iterate(bench.rounds):
        post = state.posterior
        run["designs"].append(state.design.tolist())
        run["mean"].append(post.mean().tolist())
        run["std"].append(post.std().tolist())
        run["volume"].append(posterior_volume(post))
        run["round_seconds"].append(state.seconds)
        run["eig_seconds"] += state.strategy_record.get("eig_seconds", [])
    learner.close()
    return run


def rounds_to_target(stds: list[list[float]], target: float) -> float:
    """Rounds run until every std is ``<= target`` (infinity if never)."""
    return next((k + 1 for k, s in enumerate(stds) if max(s) <= target), math.inf)


def summarise(
    name: str, runs: list[dict[str, Any]], target: float, names: list[str]
) -> dict[str, Any]:
    """Medians over seeds of one strategy's runs."""
    rounds = len(runs[0]["std"])
    reach = [rounds_to_target(r["std"], target) for r in runs]
    training = [r["training_seconds"] for r in runs if r["training_seconds"] is not None]
    seconds = [s for r in runs for s in r["round_seconds"]]
    eig = [s for r in runs for s in r.get("eig_seconds", [])]

    def median_per_round(key: str, j: int | None = None) -> list[float]:
        return [
            statistics.median(r[key][k] if j is None else r[key][k][j] for r in runs)
            for k in range(rounds)
        ]

    return {
        "strategy": name,
        "seeds": len(runs),
        "median_std_per_round": {p: median_per_round("std", j) for j, p in enumerate(names)},
        "median_volume_per_round": median_per_round("volume"),
        "median_rounds_to_target": statistics.median(reach),
        "reached_target": sum(math.isfinite(x) for x in reach),
        "final_std": {p: median_per_round("std", j)[-1] for j, p in enumerate(names)},
        "final_volume": median_per_round("volume")[-1],
        "auc_log_volume": statistics.median(
            statistics.fmean(math.log(max(v, 1e-300)) for v in r["volume"]) for r in runs
        ),
        "median_round_seconds": statistics.median(seconds),
        # all a run cost, its estimator's training included, over its rounds (median of seeds)
        "median_wall_per_round": statistics.median(
            ((r["training_seconds"] or 0.0) + sum(r["round_seconds"])) / rounds for r in runs
        ),
        "max_round_seconds": max(seconds),
        "median_training_seconds": statistics.median(training) if training else None,
        "median_eig_seconds": statistics.median(eig) if eig else None,
        "median_design_per_round": [
            np.median([r["designs"][k] for r in runs], axis=0).tolist() for k in range(rounds)
        ],
    }


def run_design_benchmark(bench: DesignBenchmark, *, progress: bool = True) -> dict[str, Any]:
    """Run every strategy on every seed.

    Returns
    -------
    dict
        ``config`` (the benchmark), ``parameters`` (names), ``summaries`` (one per strategy,
        in order) and ``runs`` (every seed's rounds, by strategy).
    """
    from tqdm.auto import tqdm

    names = bench.build_task().parameters.names
    summaries, runs = [], {}
    with tqdm(total=len(bench.strategies) * bench.seeds, disable=not progress, unit="run") as bar:
        for name in bench.strategies:
            bar.set_description(name)
            runs[name] = []
            for seed in range(bench.seeds):
                runs[name].append(run_seed(bench, name, seed))
                bar.update(1)
            summaries.append(summarise(name, runs[name], bench.target_std, names))
    return {"config": asdict(bench), "parameters": names, "summaries": summaries, "runs": runs}


def format_design_table(result: dict[str, Any]) -> str:
    """A fixed-width table: median std (or volume) per round, rounds to target, timings.

    One parameter: the std of it per round, in units of 1e-3. Several: the posterior volume
    ``sqrt(det cov)`` per round, relative to the best strategy's final volume.
    """
    config, summaries, names = result["config"], result["summaries"], result["parameters"]
    rounds, target = config["rounds"], config["target_std"]
    one = len(names) == 1
    best = min(s["final_volume"] for s in summaries)
    reference = next((s for s in summaries if s["strategy"] == "oracle"), None)

    def per_round(s: dict[str, Any]) -> list[str]:
        if one:
            return [f"{v * 1e3:.2f}" for v in s["median_std_per_round"][names[0]]]
        return [f"{v / best:.3g}" for v in s["median_volume_per_round"]]

    header = (
        "strategy",
        "seeds",
        *(f"r{k + 1}" for k in range(rounds)),
        f"n(<={target:g})",
        "hit",
        "vs oracle",
        "s/round",
        "max s",
        "EIG ms",
        "train s",
    )
    rows = []
    for s in summaries:
        reach = s["median_rounds_to_target"]
        ratio = "-"
        if reference is not None:
            ratio = f"{s['final_volume'] / reference['final_volume']:.2f}"
        train = s["median_training_seconds"]
        rows.append(
            (
                s["strategy"],
                str(s["seeds"]),
                *per_round(s),
                f">{rounds}" if math.isinf(reach) else f"{reach:g}",
                f"{s['reached_target']}/{s['seeds']}",
                ratio,
                f"{s['median_round_seconds']:.2f}",
                f"{s['max_round_seconds']:.1f}",
                "-"
                if s.get("median_eig_seconds") is None
                else f"{1e3 * s['median_eig_seconds']:.0f}",
                "-" if train is None else f"{train:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    what = (
        f"median posterior std of {names[0]} per round (1e-3)"
        if one
        else f"median posterior volume sqrt(det cov) of {', '.join(names)} per round, "
        "relative to the best final one"
    )
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([what, line(header), rule, *(line(row) for row in rows)])
