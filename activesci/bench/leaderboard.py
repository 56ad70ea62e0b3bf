"""Run a benchmark spec and rank its strategies: results JSON, leaderboard CSV, HTML, table.

``run_spec`` runs every strategy of a spec on every seed and returns one dict: the validated
spec, the software versions, the seeds, each strategy's summary, every run, the timings (kept
apart: they are the only numbers that change between two runs of the same spec) and the
leaderboard, sorted by the spec's primary metric (ties broken by the other metrics in their
listed order, then by name).

>>> from activesci.bench import run_spec, format_leaderboard
>>> spec = {"name": "toy", "kind": "design", "task": "gaussian", "strategies": ["fixed", "random"],
...         "seeds": 2, "budget": {"rounds": 2}}
>>> result = run_spec(spec, progress=False)
>>> [row["strategy"] for row in result["leaderboard"]]
['fixed', 'random']
"""

from __future__ import annotations

import csv
import html
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from activesci.bench.spec import DESIGN_METRICS, EXCURSION_METRICS, load_spec, resolve_strategies
from activesci.io import atomic_write

__all__ = [
    "format_leaderboard",
    "leaderboard",
    "run_spec",
    "software_versions",
    "write_results",
]

_TIMING_KEYS = ("round_seconds", "training_seconds", "eig_seconds", "seconds", "ask_seconds")
_PACKAGES = (
    "activesci", "numpy", "scipy", "torch", "scikit-learn", "scikit-optimize", "adage",
    "plotly", "PyYAML", "jsonschema",
)  # fmt: skip


def software_versions() -> dict[str, str]:
    """Python, the platform and the versions of the packages a benchmark's numbers depend on."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _metrics_of(kind: str) -> dict[str, bool]:
    return DESIGN_METRICS if kind == "design" else EXCURSION_METRICS


def leaderboard(spec: dict[str, Any], summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank strategies by the spec's primary metric (best first).

    Parameters
    ----------
    spec : dict
        A validated spec (``metrics.primary`` names the ranking metric).
    summaries : list of dict
        One per strategy, each with ``strategy``, ``seeds`` and every metric of the kind.

    Returns
    -------
    list of dict
        ``rank``, ``strategy``, ``seeds`` and the metrics, primary first.
    """
    lower = _metrics_of(spec["kind"])
    primary = spec["metrics"]["primary"]
    order = [primary, *(m for m in lower if m != primary)]

    def key(summary: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for metric in order:
            value = summary[metric]
            value = math.inf if value is None else float(value)
            values.append(value if lower[metric] else -value)
        return (*values, summary["strategy"])

    rows = []
    for rank, summary in enumerate(sorted(summaries, key=key), start=1):
        rows.append(
            {"rank": rank, "strategy": summary["strategy"], "seeds": summary["seeds"]}
            | {metric: summary[metric] for metric in order}
        )
    return rows


def _split_timings(runs: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Move the wall-clock numbers out of every run (in place); return them by strategy."""
    timings: dict[str, list[dict[str, Any]]] = {}
    for name, seeds in runs.items():
        timings[name] = [{k: run.pop(k) for k in _TIMING_KEYS if k in run} for run in seeds]
    return timings


def _run_design(
    spec: dict[str, Any], progress: bool, factories: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    from activesci.bench.design import DesignBenchmark, run_design_benchmark

    estimator = spec.get("estimator", {})
    bench = DesignBenchmark(
        task=spec["task"],
        task_options=spec["task_options"],
        truth=spec.get("truth"),
        strategies=tuple(spec["strategies"]),
        seeds=spec["seeds"],
        rounds=spec["budget"]["rounds"],
        target_std=spec["metrics"]["target_std"],
        training_samples=estimator.get("training_samples", 100_000),
        refine_every=estimator.get("refine_every", 2),
        local_ensemble=estimator.get("local_ensemble"),
        calibration_events=estimator.get("calibration_events"),
        strategy_options=spec["strategy_options"],
        resolution=spec.get("resolution"),
        factories=factories,
    )
    result = run_design_benchmark(bench, progress=progress)
    timing_keys = (
        "median_round_seconds", "max_round_seconds", "median_training_seconds",
        "median_eig_seconds", "median_wall_per_round",
    )  # fmt: skip
    summaries = []
    for summary in result["summaries"]:
        timing = {k: summary.pop(k) for k in timing_keys}
        summaries.append(
            summary | {"rounds_to_target": summary["median_rounds_to_target"], "timing": timing}
        )
    return summaries, result["runs"]


def _run_excursion(
    spec: dict[str, Any], progress: bool, factories: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    from activesci.bench.excursion import run_excursion_benchmark

    return run_excursion_benchmark(spec, progress=progress, factories=factories)


def run_spec(
    spec: str | os.PathLike[str] | dict[str, Any],
    *,
    progress: bool = True,
    allow_plugins: bool = False,
) -> dict[str, Any]:
    """Run a benchmark spec: every strategy on seeds ``0..seeds-1``.

    Parameters
    ----------
    spec : str, path or dict
        A shipped spec's name, a YAML file, or a spec as a dict (validated either way).
    progress : bool
        Show a progress bar.
    allow_plugins : bool
        Import ``"package.module:factory"`` strategies, i.e. run code the spec names; without
        it such a spec is a :class:`~activesci.errors.SpecError`. Registered strategies and
        installed entry points need no permission.

    Returns
    -------
    dict
        ``format``, ``spec``, ``versions``, ``seeds``, ``leaderboard``, ``summaries``, ``runs``
        and ``timings``. Everything but ``versions`` (machine) and the timings is reproduced
        exactly by running the same spec again with the same versions.
    """
    spec = load_spec(spec, allow_plugins=allow_plugins)
    factories = resolve_strategies(spec, allow_plugins=allow_plugins)
    runner = _run_design if spec["kind"] == "design" else _run_excursion
    summaries, runs = runner(spec, progress, factories)
    timings = _split_timings(runs)
    for summary in summaries:
        timings[summary["strategy"]].append(summary.pop("timing"))
    return {
        "format": "activesci.bench-result/1",
        "spec": spec,
        "versions": software_versions(),
        "seeds": list(range(spec["seeds"])),
        "leaderboard": leaderboard(spec, summaries),
        "summaries": summaries,
        "runs": runs,
        "timings": timings,
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "never"
        return f"{value:.4g}"
    return str(value)


def format_leaderboard(result: dict[str, Any]) -> str:
    """The leaderboard as a fixed-width table for a terminal."""
    rows = result["leaderboard"]
    spec = result["spec"]
    header = list(rows[0])
    cells = [[_cell(row[k]) for k in header] for row in rows]
    widths = [max(len(x) for x in column) for column in zip(header, *cells, strict=True)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.ljust(w) if i == 1 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    title = (
        f"{spec['name']}: {spec['kind']} benchmark on {spec['task']}, {spec['seeds']} seeds, "
        f"ranked by {spec['metrics']['primary']} (median over seeds)"
    )
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(header), rule, *(line(c) for c in cells)])


def _html(result: dict[str, Any]) -> str:
    rows = result["leaderboard"]
    header = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    spec = result["spec"]
    return (
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(spec['name'])} leaderboard</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f4f4f4}</style>"
        f"<h1>{html.escape(spec['name'])}</h1><p>{html.escape(spec['description'])}</p>"
        f"<p>{html.escape(spec['kind'])} benchmark on <b>{html.escape(spec['task'])}</b>, seeds "
        f"0..{spec['seeds'] - 1}, ranked by <b>{html.escape(spec['metrics']['primary'])}</b> "
        "(median over seeds).</p>"
        f"<table><tr>{header}</tr>\n{body}</table>"
        f"<p><small>{html.escape(versions)}</small></p>\n"
    )


def write_results(result: dict[str, Any], out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``results.json``, ``leaderboard.csv`` and ``leaderboard.html`` into ``out``.

    Returns
    -------
    dict
        The paths written, by kind.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "csv": folder / "leaderboard.csv",
        "html": folder / "leaderboard.html",
    }
    with atomic_write(paths["json"], "w") as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    rows = result["leaderboard"]
    with atomic_write(paths["csv"], "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with atomic_write(paths["html"], "w") as handle:
        handle.write(_html(result))
    return paths
