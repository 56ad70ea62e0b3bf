"""Plotly figures. Functions take plain numbers and return ``plotly.graph_objects.Figure``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "afb_data_figure",
    "afb_figure",
    "design_history_figure",
    "eig_figure",
    "posterior_figure",
    "posterior_rounds_figure",
]

_TEMPLATE = "plotly_white"


def afb_figure(
    simulator: Any,
    sqrt_s: Sequence[float],
    afb: Sequence[float],
    afb_error: Sequence[float],
    curves: dict[str, float],
    *,
    grid: np.ndarray | None = None,
) -> go.Figure:
    """Measured forward-backward asymmetry against the detector-level prediction.

    Parameters
    ----------
    simulator : WeinbergSimulator
        Supplies ``observed_afb(theta, design)`` and the design range.
    sqrt_s, afb, afb_error : sequence of float
        The measurements: beam energy [GeV], counted ``A_FB`` of recorded events and its error.
    curves : dict
        ``{label: sin2w}`` of theory curves to draw.
    grid : numpy.ndarray, optional
        Energies for the curves; default 400 points over the design range.
    """
    lo, hi = simulator.designs["sqrt_s"].bounds
    grid = np.linspace(lo, hi, 400) if grid is None else grid
    fig = go.Figure()
    for label, value in curves.items():
        theta = np.full((grid.size, 1), value)
        fig.add_trace(
            go.Scatter(
                x=grid,
                y=simulator.observed_afb(theta, grid[:, None]),
                mode="lines",
                name=label,
            )
        )
    fig.add_trace(
        go.Scatter(
            x=list(sqrt_s),
            y=list(afb),
            error_y={"type": "data", "array": list(afb_error)},
            mode="markers",
            name="simulated data",
            marker={"color": "black", "size": 7},
        )
    )
    fig.update_layout(
        template=_TEMPLATE,
        title="Forward-backward asymmetry of recorded mu+mu- events",
        xaxis_title="√s [GeV]",
        yaxis_title="A_FB (detector level)",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def afb_data_figure(
    simulator: Any, observations: Sequence[Any], mean: float, std: float
) -> go.Figure:
    """Measured A_FB of each observation against the theory at the posterior mean +- std.

    Parameters
    ----------
    simulator : WeinbergSimulator
        A one-parameter (``sin2w``) Weinberg simulator.
    observations : sequence of Observation
        What was measured (observations with fewer than 2 events are skipped).
    mean, std : float
        The posterior of ``sin2w``: curves at ``mean`` and ``mean +- std``.
    """
    from activesci.simulators.weinberg import count_asymmetry

    measured = [(o.design[0], *count_asymmetry(o.x)) for o in observations if o.n > 1]
    lo, hi = simulator.parameters["sin2w"].bounds
    curves = {"posterior mean": mean, "mean - σ": mean - std, "mean + σ": mean + std}
    return afb_figure(
        simulator,
        [m[0] for m in measured],
        [m[1] for m in measured],
        [m[2] for m in measured],
        {k: float(np.clip(v, lo, hi)) for k, v in curves.items()},
    )


def posterior_figure(
    grid: np.ndarray,
    density: np.ndarray,
    *,
    name: str,
    truth: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """A 1-D posterior density on a grid, with the truth as a dashed line when known.

    The x axis zooms to where the density exceeds 1e-3 of its peak (and the truth), padded.
    ``title`` defaults to "Posterior of NAME".
    """
    fig = go.Figure(go.Scatter(x=grid, y=density, mode="lines", fill="tozeroy", name="posterior"))
    alive = grid[density > 1e-3 * np.max(density)]
    lo, hi = float(alive.min()), float(alive.max())
    if truth is not None:
        fig.add_vline(x=truth, line_dash="dash", annotation_text="truth")
        lo, hi = min(lo, truth), max(hi, truth)
    pad = 0.15 * (hi - lo) or 0.01 * (grid[-1] - grid[0])
    fig.update_xaxes(range=[max(lo - pad, grid[0]), min(hi + pad, grid[-1])])
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"Posterior of {name}",
        xaxis_title=name,
        yaxis_title="density",
        showlegend=False,
    )
    return fig


def posterior_rounds_figure(
    rounds: list[dict[str, Any]], name: str, *, truth: float | None = None
) -> go.Figure:
    """Each round's marginal posterior of ``name`` overlaid, darker for later rounds."""
    fig = go.Figure()
    n = len(rounds)
    for i, r in enumerate(rounds):
        marginal = r["marginals"][name]
        shade = int(220 - 180 * (i + 1) / max(n, 1))
        fig.add_trace(
            go.Scatter(
                x=marginal["grid"],
                y=marginal["density"],
                mode="lines",
                name=f"round {r['round'] + 1}",
                line={"color": f"rgb({shade}, {shade}, 255)"},
            )
        )
    if truth is not None:
        fig.add_vline(x=truth, line_dash="dash", annotation_text="truth")
    fig.update_layout(
        template=_TEMPLATE,
        title=f"Posterior of {name}, round by round",
        xaxis_title=name,
        yaxis_title="density",
    )
    return fig


def design_history_figure(rounds: list[dict[str, Any]], design_names: Sequence[str]) -> go.Figure:
    """The design chosen in each round (marker size: events recorded)."""
    fig = go.Figure()
    counts = np.array([r["n"] for r in rounds], dtype=float)
    size = 6 + 14 * np.sqrt(counts / max(counts.max(), 1.0))
    for j, name in enumerate(design_names):
        fig.add_trace(
            go.Scatter(
                x=[r["round"] + 1 for r in rounds],
                y=[r["design"][j] for r in rounds],
                mode="markers+lines",
                marker={"size": size},
                text=[f"{r['n']} events" for r in rounds],
                name=name,
            )
        )
    fig.update_layout(
        template=_TEMPLATE,
        title="Chosen designs",
        xaxis={"title": "round", "dtick": 1},
        yaxis_title=design_names[0] if len(design_names) == 1 else "design",
    )
    return fig


def eig_figure(record: dict[str, Any], design_name: str, *, title: str = "") -> go.Figure:
    """The EIG surrogate (mean and ±1σ band) over a 1-D design space with the evaluated points.

    The band is ``surrogate_lower``/``surrogate_upper`` where the record has them (the
    log-warped plot surrogate's asymmetric band), else mean ± ``surrogate_std`` (older runs).
    """
    fig = go.Figure()
    if record.get("curve") and record.get("surrogate_mean"):
        x = np.asarray(record["curve"])[:, 0]
        mean, std = np.asarray(record["surrogate_mean"]), np.asarray(record["surrogate_std"])
        lower, upper = mean - std, mean + std
        if record.get("surrogate_lower") and record.get("surrogate_upper"):
            lower = np.asarray(record["surrogate_lower"])
            upper = np.asarray(record["surrogate_upper"])
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([upper, lower[::-1]]),
                fill="toself",
                line={"width": 0},
                fillcolor="rgba(99, 110, 250, 0.2)",
                name="surrogate ± 1σ",
            )
        )
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name="surrogate mean"))
    evaluated = np.asarray(record.get("evaluated", []))
    if evaluated.size:
        fig.add_trace(
            go.Scatter(
                x=evaluated[:, 0],
                y=record["eig"],
                error_y={"type": "data", "array": record.get("eig_stderr", [])},
                mode="markers",
                marker={"color": "black"},
                name="EIG evaluations",
            )
        )
    fig.update_layout(
        template=_TEMPLATE,
        title=title or "Expected information gain",
        xaxis_title=design_name,
        yaxis_title="EIG [nats]",
    )
    return fig
