"""Self-contained HTML reports: one file with inline plotly.js that opens offline."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from activesci.errors import ActivesciError, StoreError
from activesci.io import atomic_write

__all__ = ["html_table", "write_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th { background: #f4f4f4; }
.note { color: #555; }
"""


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; floats are shown with 4 significant digits."""

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    path: str | os.PathLike[str], title: str, blocks: Sequence[str | go.Figure]
) -> Path:
    """Write a self-contained HTML page of text/HTML blocks and plotly figures.

    Strings are inserted as HTML (escape user text yourself); plotly.js is embedded once.
    """
    parts, first = [], True
    for block in blocks:
        if isinstance(block, go.Figure):
            parts.append(
                block.to_html(full_html=False, include_plotlyjs="inline" if first else False)
            )
            first = False
        else:
            parts.append(block)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = Path(path)
    with atomic_write(path, "w") as fh:
        fh.write(page)
    return path


def _trust_blocks(
    task: Any, meta: dict[str, Any], rounds: list[dict[str, Any]], observations: list[Any]
) -> list[str]:
    """The self-check of every round and, where the simulator has one, the exact referee."""
    from activesci.inference.diagnostics import rounds_against_exact

    blocks: list[str] = []
    checked = [r for r in rounds if r.get("check")]
    if checked:
        rows = [
            (
                r["round"] + 1,
                "ok" if r["check"]["ok"] else "WARNING",
                max(abs(v) for v in r["check"]["calibration_shift"]),
                r["check"]["width_ratio"] if r["check"]["width_ratio"] is not None else "n/a",
                "; ".join(r["check"]["warnings"]) or "",
                len(r.get("trainings") or []),
            )
            for r in checked
        ]
        blocks.append("<h2>Self-check of the learned posterior</h2>")
        blocks.append(
            html_table(
                (
                    "round",
                    "check",
                    "calibration shift (std)",
                    "implied width ratio",
                    "warnings",
                    "trainings",
                ),
                rows,
            )
        )
    learned = meta["estimator"]["kind"] != "exact"
    if learned and "log_likelihood" in task.simulator.capabilities and len(task.parameters) == 1:
        ref = rounds_against_exact(task.simulator, observations, rounds)
        blocks.append("<h2>Learned vs exact posterior, round by round</h2>")
        blocks.append(
            "<p>The exact likelihood referees every round: the same observations on the same "
            "grid. Targets: |shift| &le; 0.2 exact std, width ratio in [0.9, 1.1].</p>"
        )
        blocks.append(
            html_table(
                (
                    "round",
                    "events",
                    "learned mean",
                    "learned std",
                    "exact mean",
                    "exact std",
                    "shift (exact std)",
                    "width ratio",
                ),
                [
                    (
                        r["round"] + 1,
                        r["events"],
                        r["learned_mean"],
                        r["learned_std"],
                        r["exact_mean"],
                        r["exact_std"],
                        r["shift"],
                        r["width_ratio"],
                    )
                    for r in ref
                ],
            )
        )
    return blocks


def write_run_report(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    allow_plugins: bool = False,
) -> Path:
    """Write ``report.html`` for the run stored in folder ``path`` (or to ``out``).

    Shows the posterior per round (and, where the last round stored its ``"pairs"``, the
    corner plot of its pairwise marginals), the chosen designs, the EIG curves with the points
    the optimiser evaluated, and (for the Weinberg tasks) data against theory. A run whose
    task is ``"package.module:function"`` is drawn only with ``allow_plugins=True``, which
    imports that module (see :func:`activesci.tasks.load`).

    Raises
    ------
    ValidationError
        The run's task names a module and ``allow_plugins`` is false.
    StoreError
        ``path`` holds no run, or a run without settings (it stopped before it started), with
        malformed ones, or with a round summary the report cannot draw.
    """
    from activesci import tasks
    from activesci.learner.stored import _ABANDONED
    from activesci.store import SQLiteRunStore
    from activesci.typing import check_run_settings

    with SQLiteRunStore.open(path, readonly=True) as store:
        meta, rounds, observations = store.metadata(), store.rounds(), store.observations()
        abandoned = store.load_checkpoint(_ABANDONED)
    meta = check_run_settings(meta, str(path))
    task = tasks.load(meta["task"], meta["task_options"], allow_plugins=allow_plugins)
    experiment = meta.get("experiment")
    truth = experiment.get("truth") if isinstance(experiment, dict) else None
    truth = {} if truth is None else task.parameters.to_dict(task.parameters.validate(truth)[0])
    try:
        blocks = _run_blocks(task, meta, truth, rounds, [o for _, o in observations])
        if abandoned is not None:
            blocks += _abandoned_blocks(json.loads(abandoned))
    except ActivesciError:
        raise
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:  # data too
        raise StoreError(
            f"{path}: a stored round summary is malformed ({type(exc).__name__}: {exc}); "
            "the report cannot be drawn"
        ) from None
    target = Path(out) if out is not None else Path(path) / "report.html"
    return write_report(target, f"activesci run: {task.name}", blocks)


def _run_blocks(
    task: Any,
    meta: dict[str, Any],
    truth: dict[str, float],
    rounds: list[dict[str, Any]],
    observations: list[Any],
) -> list[str | go.Figure]:
    """The settings, posterior, design, EIG and trust blocks of a run's report."""
    from activesci import plots

    blocks: list[str | go.Figure] = [
        f"<p>{html.escape(task.description)}</p>",
        html_table(
            ("setting", "value"),
            [
                ("strategy", meta["strategy"]["name"]),
                ("estimator", meta["estimator"].get("method", meta["estimator"]["kind"])),
                ("seed", meta["seed"]),
                ("rounds", len(rounds)),
                ("activesci", meta.get("activesci_version", "")),
            ],
        ),
    ]
    if rounds:
        last = rounds[-1]
        rows = [
            (name, last["mean"][j], last["std"][j], truth.get(name, "hidden"))
            for j, name in enumerate(task.parameters.names)
        ]
        blocks.append(html_table(("parameter", "mean", "std", "truth"), rows))
        for name in task.parameters.names:
            blocks.append(plots.posterior_rounds_figure(rounds, name, truth=truth.get(name)))
        if last.get("pairs"):  # two or more parameters: their joint posterior
            blocks.append(
                plots.corner_figure(
                    last["marginals"],
                    last["pairs"],
                    task.parameters.names,
                    truth=truth,
                    labels=task.parameters,
                    title=f"Posterior after round {last['round'] + 1}: pairwise marginals",
                )
            )
        blocks.append(plots.design_history_figure(rounds, task.designs.names))
        with_eig = [r for r in rounds if r.get("strategy", {}).get("evaluated")]
        for r in with_eig[:: max(1, len(with_eig) // 3)][:3]:
            title = f"EIG before round {r['round'] + 1}"
            if len(task.designs) == 1:
                blocks.append(plots.eig_figure(r["strategy"], task.designs.names[0], title=title))
            elif len(task.designs) == 2:  # no curve in 2-D: the evaluated designs, coloured
                names = task.designs.names
                blocks.append(
                    plots.eig_scatter_figure(r["strategy"], names, r["design"], title=title)
                )
    blocks += _trust_blocks(task, meta, rounds, observations)
    if task.figures is not None and rounds:  # the task's own panels (Weinberg: A_FB)
        blocks += task.figures(task, observations, rounds[-1])
    return blocks


def _abandoned_blocks(entries: list[dict[str, Any]]) -> list[str]:
    """The designs the run abandoned (``ActiveLearner.abandon``), with their reasons."""
    rows = [
        (
            int(e["round"]) + 1,
            "; ".join(", ".join(f"{float(v):.4g}" for v in d) for d in e["designs"]),
            str(e["reason"]),
        )
        for e in entries
    ]
    return [
        "<h2>Abandoned designs</h2>",
        "<p class='note'>Asked, never run: nothing was stored for them and the next round "
        "proposed afresh.</p>",
        html_table(("before round", "designs", "reason"), rows),
    ]
