"""Plotly figures. Functions take plain numbers and return ``plotly.graph_objects.Figure``."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import plotly.graph_objects as go

if TYPE_CHECKING:
    from activesci.inference.grid import GridPosterior

__all__ = [
    "afb_data_figure",
    "afb_figure",
    "closure_figure",
    "corner_figure",
    "coverage_figure",
    "design_history_figure",
    "eig_figure",
    "eig_scatter_figure",
    "posterior_figure",
    "posterior_rounds_figure",
]

_TEMPLATE = "plotly_white"
#: Plotly's first default colour, as an RGB triple (lines and fills of posteriors).
_BLUE = (99, 110, 250)


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
    if truth is not None:
        fig.add_vline(x=truth, line_dash="dash", annotation_text="truth")
    fig.update_xaxes(range=_zoom(grid, density, truth))
    fig.update_layout(
        template=_TEMPLATE,
        title=title or f"Posterior of {name}",
        xaxis_title=name,
        yaxis_title="density",
        showlegend=False,
    )
    return fig


def _zoom(grid: Any, density: Any, truth: float | None = None) -> list[float]:
    """An axis range around where a 1-D density exceeds 1e-3 of its peak (and the truth).

    Padded by 15% of that span, and kept inside the grid.
    """
    grid, density = np.asarray(grid, dtype=float), np.asarray(density, dtype=float)
    alive = grid[density > 1e-3 * np.max(density)]
    lo, hi = float(alive.min()), float(alive.max())
    if truth is not None:
        lo, hi = min(lo, truth), max(hi, truth)
    pad = 0.15 * (hi - lo) or 0.01 * (grid[-1] - grid[0])
    return [max(lo - pad, float(grid[0])), min(hi + pad, float(grid[-1]))]


def _credible_levels(density: np.ndarray, levels: Sequence[float]) -> list[float]:
    """Density thresholds whose superlevel sets hold the probabilities ``levels`` (equal cells)."""
    values = np.sort(density.ravel())[::-1]
    mass = np.cumsum(values) / values.sum()
    return [float(values[min(np.searchsorted(mass, p), len(values) - 1)]) for p in levels]


def _axis_labels(space: Any) -> dict[str, str]:
    """``{name: "label [unit]"}`` of the dimensions of a ``Space`` (label defaults to name)."""
    out = {}
    for d in space:
        unit = getattr(d, "unit", "")
        out[d.name] = (getattr(d, "label", "") or d.name) + (f" [{unit}]" if unit else "")
    return out


def corner_figure(
    marginals: Mapping[str, Mapping[str, Sequence[float]]],
    pairs: Mapping[str, Mapping[str, Any]],
    names: Sequence[str],
    *,
    truth: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | Any = None,
    title: str = "",
) -> go.Figure:
    """Corner plot: 1-D marginals on the diagonal, pair marginals below it.

    Draws from the JSON a run stores (a round summary's ``"marginals"`` and ``"pairs"``), so
    a stored run needs no posterior. Panel ``(r, c)`` with ``c < r`` shows ``names[c]``
    across and ``names[r]`` up: its density as a heatmap with the 68% and 95% credible
    contours (the smallest regions holding that probability, from the cells). Every column
    (and row) is zoomed like :func:`posterior_figure`.

    Parameters
    ----------
    marginals : dict
        ``{name: {"grid": [...], "density": [...]}}`` (``summary["marginals"]``).
    pairs : dict
        ``{"a|b": {"x": [...], "y": [...], "density": [[...]]}}`` (``summary["pairs"]``, from
        ``posterior.pair_marginals()``); a pair stored the other way round is transposed.
    names : sequence of str
        The parameters, in the order of the panels (at least one).
    truth : dict, optional
        ``{name: value}``: a dashed line on the diagonal, a black cross below it (names not
        in it are not marked).
    labels : dict or Space, optional
        Axis titles by name, or a ``Space`` whose labels and units make them; default the names.
    title : str
        Figure title (default "Posterior: pairwise marginals").

    Returns
    -------
    plotly.graph_objects.Figure
        One line trace per parameter, one contour trace per pair (``names[c]|names[r]``), and
        a ``"truth"`` marker trace per pair where both truths are given.

    Raises
    ------
    KeyError
        A name without a marginal, or a pair without a stored density.
    """
    from plotly.subplots import make_subplots

    names, truth = list(names), dict(truth or {})
    if labels is not None and not isinstance(labels, Mapping):
        labels = _axis_labels(labels)
    labels = {n: n for n in names} | dict(labels or {})
    size = len(names)
    specs = [[{} if c <= r else None for c in range(size)] for r in range(size)]
    fig = make_subplots(
        rows=size, cols=size, specs=specs, horizontal_spacing=0.03, vertical_spacing=0.03
    )
    ranges = {n: _zoom(marginals[n]["grid"], marginals[n]["density"], truth.get(n)) for n in names}
    line = "rgb({}, {}, {})".format(*_BLUE)
    for k, name in enumerate(names):
        m = marginals[name]
        fig.add_trace(
            go.Scatter(x=m["grid"], y=m["density"], mode="lines", name=name, line={"color": line}),
            row=k + 1,
            col=k + 1,
        )
        if name in truth:
            fig.add_vline(x=truth[name], line_dash="dash", row=k + 1, col=k + 1)
        fig.update_yaxes(showticklabels=False, rangemode="tozero", row=k + 1, col=k + 1)
    scale = [[0.0, "rgba(255, 255, 255, 0)"], [1.0, line]]
    for c, r in itertools.combinations(range(size), 2):  # column c across, row r up
        a, b = names[c], names[r]
        x, y, density = _pair_arrays(pairs, a, b)
        t95, t68 = _credible_levels(density, (0.95, 0.68))
        contours = {"coloring": "heatmap", "showlines": True}
        if t68 > t95:
            contours |= {"start": t95, "end": t68, "size": t68 - t95}
        fig.add_trace(
            go.Contour(
                x=x,
                y=y,
                z=density,
                name=f"{a}|{b}",
                colorscale=scale,
                zmin=0.0,
                zmax=float(density.max()),
                showscale=False,
                contours=contours,
                line={"color": "rgb(40, 45, 120)", "width": 1},
                hovertemplate=f"{a}=%{{x:.4g}}<br>{b}=%{{y:.4g}}<br>density=%{{z:.3g}}"
                "<extra></extra>",
            ),
            row=r + 1,
            col=c + 1,
        )
        if a in truth and b in truth:
            fig.add_trace(
                go.Scatter(
                    x=[truth[a]],
                    y=[truth[b]],
                    mode="markers",
                    name="truth",
                    marker={"symbol": "x", "color": "black", "size": 9},
                ),
                row=r + 1,
                col=c + 1,
            )
        fig.update_yaxes(range=ranges[b], row=r + 1, col=c + 1)
    for r in range(size):
        for c in range(r + 1):
            bottom, left = r == size - 1, c == 0 and r > 0
            fig.update_xaxes(
                range=ranges[names[c]],
                title_text=labels[names[c]] if bottom else None,
                showticklabels=bottom,
                row=r + 1,
                col=c + 1,
            )
            if c < r:
                fig.update_yaxes(
                    title_text=labels[names[r]] if left else None,
                    showticklabels=left,
                    row=r + 1,
                    col=c + 1,
                )
    fig.update_layout(
        template=_TEMPLATE,
        title=title or "Posterior: pairwise marginals",
        showlegend=False,
        width=max(450, 260 * size),
        height=max(450, 260 * size),
    )
    return fig


def _pair_arrays(
    pairs: Mapping[str, Mapping[str, Any]], a: str, b: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The x (of ``a``), y (of ``b``) and density ``(len(y), len(x))`` of a stored pair."""
    if f"{a}|{b}" in pairs:
        p = pairs[f"{a}|{b}"]
        return np.asarray(p["x"]), np.asarray(p["y"]), np.asarray(p["density"], dtype=float)
    p = pairs[f"{b}|{a}"]
    return np.asarray(p["y"]), np.asarray(p["x"]), np.asarray(p["density"], dtype=float).T


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


def eig_scatter_figure(
    record: dict[str, Any], design_names: list[str], chosen: Any, *, title: str
) -> go.Figure:
    """The designs an EIG strategy evaluated over a 2-D space, coloured by their EIG.

    ``record`` is the strategy's record (``"evaluated"`` ``(n, 2)``, ``"eig"`` ``(n,)``);
    ``chosen`` is the design the round ran, drawn as a star. There is no surrogate curve in
    2-D: only the points the optimiser evaluated.
    """
    evaluated = np.asarray(record["evaluated"], dtype=float)
    fig = go.Figure(
        go.Scatter(
            x=evaluated[:, 0],
            y=evaluated[:, 1],
            mode="markers",
            marker={
                "color": record["eig"],
                "colorscale": "Viridis",
                "size": 10,
                "showscale": True,
                "colorbar": {"title": {"text": "EIG [nats]"}},
            },
            name="EIG evaluations",
            hovertemplate=f"{design_names[0]}=%{{x:.4g}}<br>{design_names[1]}=%{{y:.4g}}"
            "<br>EIG=%{marker.color:.3g} nats<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[chosen[0]],
            y=[chosen[1]],
            mode="markers",
            marker={"symbol": "star", "size": 16, "color": "red", "line": {"width": 1}},
            name="chosen",
        )
    )
    fig.update_layout(
        template=_TEMPLATE,
        title=title,
        xaxis_title=design_names[0],
        yaxis_title=design_names[1],
        showlegend=False,
    )
    return fig


# -- closure and coverage (activesci.inference.diagnostics) ----------------------------------------
def _density_threshold(probabilities: np.ndarray, level: float) -> float:
    """Cell probability above which the cells hold ``level`` of the mass."""
    p = np.sort(probabilities)[::-1]
    k = min(int(np.searchsorted(np.cumsum(p), level)), len(p) - 1)
    return float(p[k])


def closure_figure(
    exact: GridPosterior, learned: GridPosterior, metrics: dict[str, Any] | None = None
) -> go.Figure:
    """Exact and learned posteriors overlaid, with the closure metrics in the title.

    1 parameter: both densities; 2: contour lines of both at the 68% and 95% regions;
    3: the three 1-D marginals side by side.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces named ``exact`` and ``learned`` (per panel for 3 parameters).
    """
    from plotly.subplots import make_subplots

    from activesci.inference.diagnostics import closure

    metrics = closure(exact, learned) if metrics is None else metrics
    names = exact.space.names
    colours = {"exact": "#1f77b4", "learned": "#d62728"}
    posts = {"exact": exact, "learned": learned}
    if len(names) == 2:
        fig = go.Figure()
        for label, post in posts.items():
            probs = post.probabilities
            t95, t68 = _density_threshold(probs, 0.95), _density_threshold(probs, 0.68)
            fig.add_trace(
                go.Contour(
                    x=post.axes[0],
                    y=post.axes[1],
                    z=(probs / post.cell_volume).reshape(post.shape).T,
                    contours={
                        "coloring": "lines",
                        "start": t95 / post.cell_volume,
                        "end": t68 / post.cell_volume,
                        "size": max(t68 - t95, 1e-300) / post.cell_volume,
                    },
                    line={"color": colours[label], "width": 2},
                    colorscale=[[0, colours[label]], [1, colours[label]]],
                    showscale=False,
                    showlegend=True,
                    name=label,
                )
            )
        fig.update_layout(xaxis_title=names[0], yaxis_title=names[1])
    else:
        fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
        for j, name in enumerate(names):
            for label, post in posts.items():
                x, f = post.marginal(j)
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=f,
                        mode="lines",
                        name=label,
                        legendgroup=label,
                        showlegend=j == 0,
                        line={
                            "color": colours[label],
                            "dash": "dash" if label == "learned" else "solid",
                        },
                    ),
                    row=1,
                    col=j + 1,
                )
            fig.update_xaxes(title_text=name, row=1, col=j + 1)
        fig.update_yaxes(title_text="density", row=1, col=1)
    shift = ", ".join(f"{v:.2g}" for v in np.atleast_1d(metrics["mean_shift"]))
    ratio = ", ".join(f"{v:.3g}" for v in np.atleast_1d(metrics["width_ratio"]))
    fig.update_layout(
        template=_TEMPLATE,
        title=(
            f"Closure: KL = {metrics['kl']:.3g} nats, mean shift = {shift} sigma, "
            f"width ratio = {ratio}"
        ),
    )
    return fig


def coverage_figure(result: dict[str, Any]) -> Any:
    """Empirical against nominal coverage, with binomial error bars and the diagonal.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``central (name)`` and ``HDR (name)`` per parameter, and ``nominal``.
    """
    levels = np.asarray(result["levels"], dtype=float)
    se = np.asarray(result["se"], dtype=float)
    fig = go.Figure()
    for j, name in enumerate(result["parameter_names"]):
        marks = (("central", "central", "circle", -0.006), ("hdr", "HDR", "diamond", 0.006))
        for key, label, symbol, offset in marks:  # side by side, so neither hides the other
            fig.add_trace(
                go.Scatter(
                    x=levels + offset,
                    y=np.asarray(result[key])[:, j],
                    error_y={"type": "data", "array": se},
                    mode="markers",
                    marker={"symbol": symbol, "size": 8},
                    name=f"{label} ({name})",
                )
            )
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="nominal", line={"dash": "dash", "color": "grey"}
        )
    )
    fig.update_layout(
        template=_TEMPLATE,
        title=f"Coverage over {result['n_datasets']} simulated datasets",
        xaxis_title="nominal credibility",
        yaxis_title="empirical coverage",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1.02],
    )
    return fig
