"""Plotly figures of an excursion search: 1-D bands, 2-D contours, 3-D slices, accuracy curves.

The figures read a fitted :class:`~activesci.excursion.search.ExcursionSearch` (they compute
no science beyond predicting on a grid) and share the template of :mod:`activesci.plots`.
Estimated level sets are solid lines, true ones (when ``truth``, a callable like ``func``, is
given) dashed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import DEFAULT_PLOTLY_COLORS
from plotly.subplots import make_subplots

from activesci.errors import ValidationError
from activesci.plots import _TEMPLATE

__all__ = ["accuracy_figure", "band_figure", "contour_figure", "slices_figure"]


def _need(search: Any, d: int, figure: str) -> None:
    if len(search.space) != d:
        raise ValidationError(
            f"{figure} draws {d}-D searches; this search has d={len(search.space)}"
        )
    if search.posterior is None:
        raise ValidationError(f"{figure}: nothing told yet, so there is no estimate to draw")


def _color(k: int) -> str:
    return DEFAULT_PLOTLY_COLORS[k % len(DEFAULT_PLOTLY_COLORS)]


def _label(search: Any, j: int) -> str:
    dim = search.space[j]
    return f"{dim.label or dim.name} [{dim.unit}]" if dim.unit else (dim.label or dim.name)


def _level_contours(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, thresholds: np.ndarray, *, true: bool
) -> list[go.Contour]:
    """One line contour of ``z`` (shape ``(len(y), len(x))``) per threshold."""
    traces = []
    for k, t in enumerate(thresholds):
        traces.append(
            go.Contour(
                x=x,
                y=y,
                z=z,
                contours={"start": t, "end": t, "size": 1.0, "coloring": "lines"},
                line={"color": _color(k), "width": 2, "dash": "dash" if true else "solid"},
                showscale=False,
                showlegend=True,
                name=f"{'true' if true else 'estimated'} f = {t:g}",
                hoverinfo="skip",
            )
        )
    return traces


def band_figure(
    search: Any, *, truth: Callable[[np.ndarray], Any] | None = None, title: str = ""
) -> go.Figure:
    """1-D: the GP mean ± 2 std over the grid, the thresholds, the evaluations and the truth.

    Parameters
    ----------
    search : ExcursionSearch
        A 1-D search with at least one evaluation.
    truth : callable, optional
        The true ``f`` (``(n, 1)`` in, ``(n,)`` out), drawn dashed.
    title : str
        Figure title; default names the search's acquisition.
    """
    _need(search, 1, "band_figure")
    x = search.grid_axes[0]
    mean, std = search.predict(x[:, None])
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([x, x[::-1]]),
            y=np.concatenate([mean + 2 * std, (mean - 2 * std)[::-1]]),
            fill="toself",
            line={"width": 0},
            fillcolor="rgba(99, 110, 250, 0.2)",
            name="GP mean ± 2σ",
        )
    )
    fig.add_trace(go.Scatter(x=x, y=mean, mode="lines", name="GP mean", line={"color": _color(0)}))
    if truth is not None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.asarray(truth(x[:, None]), dtype=float).ravel(),
                mode="lines",
                name="true f",
                line={"color": "black", "dash": "dash"},
            )
        )
    for t in search.thresholds:
        fig.add_hline(y=float(t), line_dash="dot", line_color="gray", annotation_text=f"{t:g}")
    fig.add_trace(
        go.Scatter(
            x=search.X[:, 0],
            y=search.y,
            mode="markers",
            name="evaluations",
            marker={"color": "black", "size": 7},
        )
    )
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"Excursion search ({search.acquisition.name}), {len(search.y)} evaluations",
        xaxis_title=_label(search, 0),
        yaxis_title="f",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def contour_figure(
    search: Any, *, truth: Callable[[np.ndarray], Any] | None = None, title: str = ""
) -> go.Figure:
    """2-D: estimated (solid) and true (dashed) contours at the thresholds, and the evaluations.

    Parameters
    ----------
    search : ExcursionSearch
        A 2-D search with at least one evaluation.
    truth : callable, optional
        The true ``f`` (``(n, 2)`` in, ``(n,)`` out).
    title : str
        Figure title; default names the search's acquisition.
    """
    _need(search, 2, "contour_figure")
    ax, ay = search.grid_axes
    points = search.grid
    shape = (len(ax), len(ay))
    mean = search.predict(points)[0].reshape(shape).T
    fig = go.Figure(_level_contours(ax, ay, mean, search.thresholds, true=False))
    if truth is not None:
        values = np.asarray(truth(points), dtype=float).reshape(shape).T
        fig.add_traces(_level_contours(ax, ay, values, search.thresholds, true=True))
    fig.add_trace(
        go.Scatter(
            x=search.X[:, 0],
            y=search.X[:, 1],
            mode="markers",
            name="evaluations",
            marker={"color": "black", "size": 6},
        )
    )
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"Excursion search ({search.acquisition.name}), {len(search.y)} evaluations",
        xaxis_title=_label(search, 0),
        yaxis_title=_label(search, 1),
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def slices_figure(
    search: Any,
    *,
    truth: Callable[[np.ndarray], Any] | None = None,
    n_slices: int = 3,
    title: str = "",
) -> go.Figure:
    """3-D: slices at ``n_slices`` values of the third coordinate, estimated vs true contours.

    Each evaluation is drawn in the panel of its nearest slice.

    Parameters
    ----------
    search : ExcursionSearch
        A 3-D search with at least one evaluation.
    truth : callable, optional
        The true ``f`` (``(n, 3)`` in, ``(n,)`` out).
    n_slices : int
        Panels, at evenly spaced interior grid values of the third coordinate.
    title : str
        Figure title; default names the search's acquisition.
    """
    _need(search, 3, "slices_figure")
    if not (isinstance(n_slices, int) and n_slices >= 1):
        raise ValidationError(f"n_slices must be an integer >= 1, got {n_slices!r}")
    ax, ay, az = search.grid_axes
    index = np.unique(np.round(np.linspace(0, len(az) - 1, n_slices + 2)[1:-1]).astype(int))
    levels = az[index]
    fig = make_subplots(
        rows=1,
        cols=len(levels),
        subplot_titles=[f"{search.space[2].name} = {z:.3g}" for z in levels],
        shared_yaxes=True,
    )
    mx, my = np.meshgrid(ax, ay, indexing="ij")
    nearest = np.argmin(np.abs(search.X[:, 2, None] - levels[None, :]), axis=1)
    for col, z in enumerate(levels, start=1):
        points = np.stack([mx.ravel(), my.ravel(), np.full(mx.size, z)], axis=1)
        mean = search.predict(points)[0].reshape(mx.shape).T
        traces = _level_contours(ax, ay, mean, search.thresholds, true=False)
        if truth is not None:
            values = np.asarray(truth(points), dtype=float).reshape(mx.shape).T
            traces += _level_contours(ax, ay, values, search.thresholds, true=True)
        near = search.X[nearest == col - 1]
        traces.append(
            go.Scatter(
                x=near[:, 0],
                y=near[:, 1],
                mode="markers",
                name="evaluations (nearest slice)",
                marker={"color": "black", "size": 6},
            )
        )
        for trace in traces:
            trace.showlegend = col == 1
            fig.add_trace(trace, row=1, col=col)
        fig.update_xaxes(title_text=_label(search, 0), row=1, col=col)
    fig.update_yaxes(title_text=_label(search, 1), row=1, col=1)
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"Excursion search ({search.acquisition.name}), {len(search.y)} evaluations",
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def accuracy_figure(
    histories: Mapping[str, Sequence[Sequence[Mapping[str, float]]]],
    *,
    target: float = 0.99,
    title: str = "Classification accuracy",
) -> go.Figure:
    """Accuracy against evaluations per acquisition: median over runs, min-max band.

    Parameters
    ----------
    histories : mapping
        ``{label: [history, ...]}``: for each acquisition the :attr:`ExcursionSearch.history`
        of each run (seed); records without ``accuracy`` are skipped.
    target : float
        Accuracy drawn as a dotted line.
    title : str
        Figure title.
    """
    fig = go.Figure()
    for k, (label, runs) in enumerate(histories.items()):
        by_n: dict[int, list[float]] = {}
        for history in runs:
            for record in history:
                if "accuracy" in record:
                    by_n.setdefault(int(record["n_evaluations"]), []).append(record["accuracy"])
        if not by_n:
            continue
        n = np.array(sorted(by_n))
        values = [np.asarray(by_n[i]) for i in n]
        color = _color(k)
        if len(runs) > 1:
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([n, n[::-1]]),
                    y=np.concatenate([[v.max() for v in values], [v.min() for v in values][::-1]]),
                    fill="toself",
                    line={"width": 0},
                    fillcolor=color.replace("rgb", "rgba").replace(")", ", 0.15)"),
                    name=f"{label} (min-max)",
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=n,
                y=[float(np.median(v)) for v in values],
                mode="lines+markers",
                name=label,
                line={"color": color},
            )
        )
    fig.add_hline(y=target, line_dash="dot", line_color="gray", annotation_text=f"{target:g}")
    fig.update_layout(
        template=_TEMPLATE,
        title=title,
        xaxis_title="evaluations",
        yaxis_title="accuracy (median over runs)",
    )
    return fig
