"""Excursion benchmarks: how many evaluations each acquisition needs to classify a test function.

One run is an :class:`~activesci.excursion.ExcursionSearch` of a test function
(:data:`activesci.excursion.TEST_FUNCTIONS`) with one acquisition and one seed, for the spec's
budget of evaluations. Its history gives the accuracy (fraction of grid points classified
correctly) and the volume error of the excursion set after every evaluation; the summary is the
median over seeds of the evaluations needed to reach the target accuracy, of the final accuracy
and of the final volume error.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "evaluations_to_target",
    "excursion_rows",
    "excursion_spec",
    "format_excursion_table",
    "run_excursion_benchmark",
    "run_excursion_seed",
    "summarise_runs",
]


def evaluations_to_target(history: list[dict[str, float]], target: float) -> float:
    """Evaluations after which the accuracy first reaches ``target`` (infinity if never)."""
    return next((h["n_evaluations"] for h in history if h["accuracy"] >= target), math.inf)


def run_excursion_seed(
    spec: dict[str, Any], name: str, seed: int, factory: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """One search: accuracy and volume error after every evaluation, and its wall time.

    ``factory`` builds the acquisition (default: the one registered as ``name``).
    """
    from activesci.excursion import TEST_FUNCTIONS, ExcursionSearch, make_acquisition

    problem = TEST_FUNCTIONS[spec["task"]]
    options = spec["strategy_options"].get(name, {})
    acquisition = make_acquisition(name, **options) if factory is None else factory(**options)
    start = time.perf_counter()
    search = ExcursionSearch.from_test_function(
        problem, acquisition=acquisition, seed=seed, resolution=spec.get("resolution")
    )
    search.run(spec["budget"]["evaluations"], batch_size=spec["budget"]["batch_size"])
    return {"seed": seed, "history": search.history, "seconds": time.perf_counter() - start}


def excursion_spec(
    function: str,
    *,
    strategies: tuple[str, ...] = ("entropy", "max_variance", "random"),
    seeds: int = 10,
    evaluations: int = 40,
    target_accuracy: float = 0.99,
) -> dict[str, Any]:
    """A validated excursion spec for one test function (what the shipped YAML files hold)."""
    from activesci.bench.spec import validate_spec

    return validate_spec(
        {
            "name": f"excursion-{function.replace('_', '-')}",
            "kind": "excursion",
            "task": function,
            "strategies": list(strategies),
            "seeds": seeds,
            "budget": {"evaluations": evaluations},
            "metrics": {"primary": "evaluations_to_target", "target_accuracy": target_accuracy},
        }
    )


def summarise_runs(name: str, runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Medians over seeds of one acquisition's runs, and how many seeds reached ``target``."""
    reach = [evaluations_to_target(r["history"], target) for r in runs]
    return {
        "strategy": name,
        "seeds": len(runs),
        "evaluations_to_target": statistics.median(reach),
        "final_accuracy": statistics.median(r["history"][-1]["accuracy"] for r in runs),
        "final_volume_error": statistics.median(r["history"][-1]["volume_error"] for r in runs),
        "reached_target": sum(math.isfinite(x) for x in reach),
        "timing": {"median_seconds": statistics.median(r["seconds"] for r in runs)},
    }


def run_excursion_benchmark(
    spec: dict[str, Any],
    *,
    progress: bool = True,
    factories: dict[str, Callable[..., Any]] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Run every acquisition of a validated excursion spec on every seed.

    ``factories`` builds acquisitions by name where given (a spec's plug-ins, as
    :func:`~activesci.bench.spec.resolve_strategies` returns them); other names are looked up
    in :data:`~activesci.excursion.ACQUISITIONS`.

    Returns
    -------
    summaries : list of dict
        One per acquisition, in the spec's order.
    runs : dict
        Every seed's history, by acquisition.
    """
    from tqdm.auto import tqdm

    from activesci.errors import SpecError
    from activesci.excursion import TEST_FUNCTIONS

    if spec["task"] not in TEST_FUNCTIONS:
        raise SpecError(
            f"at task: unknown test function {spec['task']!r}; available: {sorted(TEST_FUNCTIONS)}"
        )
    target = spec["metrics"]["target_accuracy"]
    summaries, runs = [], {}
    total = len(spec["strategies"]) * spec["seeds"]
    with tqdm(total=total, disable=not progress, unit="run") as bar:
        for name in spec["strategies"]:
            bar.set_description(name)
            runs[name] = []
            for seed in range(spec["seeds"]):
                factory = (factories or {}).get(name)
                runs[name].append(run_excursion_seed(spec, name, seed, factory))
                bar.update(1)
            summaries.append(summarise_runs(name, runs[name], target))
    return summaries, runs


def excursion_rows(
    runs: list[dict[str, Any]], target: float, budget: dict[str, int]
) -> list[dict[str, Any]]:
    """One row per (function, acquisition) of runs from several functions, in order of appearance.

    Each run needs ``function``, ``acquisition``, ``history`` and ``seconds``; a row is the
    :func:`summarise_runs` summary with the ``function``, its ``budget`` and the median
    ``seconds_per_evaluation``.
    """
    rows = []
    for function, acquisition in dict.fromkeys((r["function"], r["acquisition"]) for r in runs):
        group = [r for r in runs if (r["function"], r["acquisition"]) == (function, acquisition)]
        summary = summarise_runs(acquisition, group, target)
        seconds = summary["timing"]["median_seconds"] / budget[function]
        rows.append(
            {"function": function, "budget": budget[function]}
            | summary
            | {"seconds_per_evaluation": seconds}
        )
    return rows


def format_excursion_table(rows: list[dict[str, Any]], target: float) -> str:
    """Rows of :func:`excursion_rows` as a fixed-width table (``>B``: not reached by most seeds)."""
    width = max([13, *(len(r["strategy"]) for r in rows)])
    head = (
        f"{'function':<14} {'acquisition':<{width}} {f'evals to {target:.0%}':>13} "
        f"{'reached':>8} {'final acc':>9} {'vol err':>8} {'s/eval':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        median = r["evaluations_to_target"]
        shown = f">{r['budget']}" if math.isinf(median) else f"{median:g}"
        lines.append(
            f"{r['function']:<14} {r['strategy']:<{width}} {shown:>13} "
            f"{r['reached_target']:>4}/{r['seeds']:<3} {r['final_accuracy']:>9.4f} "
            f"{r['final_volume_error']:>8.4f} {r['seconds_per_evaluation']:>7.3f}"
        )
    return "\n".join(lines)
