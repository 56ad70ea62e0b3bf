"""Pair marginals and corner plots against analytic (correlated Gaussian) posteriors."""

import json

import numpy as np
import plotly.graph_objects as go
import pytest

import activesci as asci
from activesci import learner as learner_module
from activesci import plots
from activesci.errors import ValidationError
from activesci.inference.grid import GridPosterior
from activesci.inference.particles import SamplePosterior
from activesci.learner import state as learner_state
from activesci.spaces import Integer, Real, Space
from activesci.typing import Observation

MEAN = np.array([0.3, -0.4, 0.1])
STD = np.array([0.5, 0.35, 0.8])
CORR = np.array([[1.0, 0.7, -0.5], [0.7, 1.0, 0.0], [-0.5, 0.0, 1.0]])
NAMES = ["a", "b", "c"]


class Gaussian:
    """An 'estimator' whose one event carries a multivariate normal likelihood in theta."""

    def __init__(self, dim):
        self.mean = MEAN[:dim]
        self.precision = np.linalg.inv(CORR[:dim, :dim] * np.outer(STD[:dim], STD[:dim]))

    def log_ratio(self, x, theta, design):
        d = np.asarray(theta) - self.mean
        q = np.einsum("ni,ij,nj->n", d, self.precision, d)
        return np.repeat(-0.5 * q[:, None], len(x), axis=1)


def space(dim):
    return Space([Real(n, -4.5, 4.5) for n in NAMES[:dim]])


def observe(post, dim):
    return post.update(Observation(design=[0.0], x=[[0.0]]), Gaussian(dim))


def moments(x, y, density):
    """Mean, std and correlation of a density ``(len(y), len(x))`` on equal cells."""
    area = (x[1] - x[0]) * (y[1] - y[0])
    p = density * area
    X, Y = np.meshgrid(x, y)
    mx, my = (p * X).sum(), (p * Y).sum()
    vx, vy = (p * (X - mx) ** 2).sum(), (p * (Y - my) ** 2).sum()
    rho = (p * (X - mx) * (Y - my)).sum() / np.sqrt(vx * vy)
    return np.array([mx, my]), np.sqrt([vx, vy]), rho


@pytest.fixture(scope="module")
def grid3():
    return observe(GridPosterior(space(3), resolution=(71, 61, 51)), 3)


@pytest.fixture(scope="module")
def particles2():
    return observe(SamplePosterior(space(2), n_particles=4000, seed=2), 2)


@pytest.mark.parametrize(("i", "j"), [(0, 1), (0, 2), (1, 2), (2, 0), ("c", "b")])
def test_grid_pair_marginal_is_the_analytic_gaussian(grid3, i, j):
    x, y, density = grid3.pair_marginal(i, j)
    ii, jj = (NAMES.index(k) if isinstance(k, str) else k for k in (i, j))
    assert x.shape == (grid3.resolution[ii],) and y.shape == (grid3.resolution[jj],)
    assert density.shape == (len(y), len(x))
    assert density.sum() * (x[1] - x[0]) * (y[1] - y[0]) == pytest.approx(1.0, abs=1e-12)
    mean, std, rho = moments(x, y, density)
    assert (abs(mean - MEAN[[ii, jj]]) < 1e-3 * STD[[ii, jj]]).all(), mean
    np.testing.assert_allclose(std, STD[[ii, jj]], rtol=1e-3)
    assert rho == pytest.approx(CORR[ii, jj], abs=2e-3)


def test_grid_pair_marginal_sums_to_the_one_dimensional_marginals(grid3):
    x, y, density = grid3.pair_marginal("a", "c")
    for axis, name, centres in ((0, "a", x), (1, "c", y)):
        width = (y if axis == 0 else x)[1] - (y if axis == 0 else x)[0]
        grid, marginal = grid3.marginal(name)
        np.testing.assert_allclose(grid, centres)
        np.testing.assert_allclose(density.sum(axis=axis) * width, marginal, atol=1e-12)
    x2, y2, swapped = grid3.pair_marginal("c", "a", bins=7)  # bins: ignored on a grid
    np.testing.assert_array_equal(swapped, density.T)
    np.testing.assert_array_equal(x2, y)
    np.testing.assert_array_equal(y2, x)


def test_pair_marginals_are_json_in_index_order(grid3):
    pairs = grid3.pair_marginals()
    assert list(pairs) == ["a|b", "a|c", "b|c"]
    stored = json.loads(json.dumps(pairs))
    x, y, density = grid3.pair_marginal(1, 2)
    assert stored["b|c"]["x"] == x.tolist() and stored["b|c"]["y"] == y.tolist()
    np.testing.assert_array_equal(np.array(stored["b|c"]["density"]), density)
    assert set(stored["a|b"]) == {"x", "y", "density"}
    assert GridPosterior(space(1)).pair_marginals() == {}


def test_particle_pair_marginal_matches_the_analytic_gaussian(particles2):
    x, y, density = particles2.pair_marginal("a", "b")
    assert x.shape == (30,) and y.shape == (30,) and density.shape == (30, 30)
    assert density.sum() * (x[1] - x[0]) * (y[1] - y[0]) == pytest.approx(1.0, abs=1e-9)
    # the window follows the particles, not the prior box (+-4.5): cells a fraction of a std
    assert x[1] - x[0] < 0.4 * STD[0] and y[1] - y[0] < 0.4 * STD[1]
    mean, std, rho = moments(x, y, density)
    assert (abs(mean - MEAN[:2]) < 0.1 * STD[:2]).all(), mean
    np.testing.assert_allclose(std, STD[:2], rtol=0.06)
    assert rho == pytest.approx(CORR[0, 1], abs=0.04)
    grid, marginal = particles2.marginal("b")  # a KDE on its own grid: compare moments
    m = np.sum(grid * marginal) / marginal.sum()
    s = np.sqrt(np.sum((grid - m) ** 2 * marginal) / marginal.sum())
    assert mean[1] == pytest.approx(m, abs=0.05 * STD[1])
    assert std[1] == pytest.approx(s, rel=0.05)
    x10, _, d10 = particles2.pair_marginal(0, 1, bins=10)
    assert x10.shape == (10,) and d10.shape == (10, 10)


def test_particle_pair_marginal_of_an_integer_parameter_has_a_bin_per_value():
    post = SamplePosterior(Space([Integer("k", 0, 5), Real("a", 0.0, 1.0)]), n_particles=500)
    x, y, density = post.pair_marginal("k", "a", bins=8)
    np.testing.assert_array_equal(x, np.arange(6.0))
    assert y.shape == (8,) and density.shape == (8, 6)
    assert density.sum() * (y[1] - y[0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [(("a", "a"), "two different parameters"), (("a", "z"), "unknown parameter"),
     (("a", "b", 1), "bins must be an integer >= 2"), (("a", "b", True), "bins must be")],
)  # fmt: skip
def test_bad_pair_arguments_are_named(args, message):
    with pytest.raises(ValidationError, match=message):
        GridPosterior(space(2), resolution=5).pair_marginal(*args)


def stored(post):
    """What a round summary stores: the learner's marginals and the pair marginals."""
    return learner_state._marginals(post), json.loads(json.dumps(post.pair_marginals()))


def test_corner_figure_has_a_panel_per_marginal_and_pair_and_marks_the_truth(grid3):
    marginals, pairs = stored(grid3)
    truth = {"a": 0.25, "b": -0.5, "c": 0.0}
    fig = plots.corner_figure(marginals, pairs, NAMES, truth=truth, labels=space(3))
    lines = [t for t in fig.data if isinstance(t, go.Scatter) and t.mode == "lines"]
    contours = [t for t in fig.data if isinstance(t, go.Contour)]
    marks = [t for t in fig.data if t.name == "truth"]
    assert [t.name for t in lines] == NAMES
    assert [t.name for t in contours] == ["a|b", "a|c", "b|c"]
    assert sorted((t.x[0], t.y[0]) for t in marks) == sorted(
        [(0.25, -0.5), (0.25, 0.0), (-0.5, 0.0)]
    )
    for t in contours:  # the stored density, x across and y up
        a, b = t.name.split("|")
        assert np.shape(t.z) == (len(pairs[t.name]["y"]), len(pairs[t.name]["x"]))
        assert list(t.x) == pairs[t.name]["x"] and list(t.y) == pairs[t.name]["y"]
        for axis, name in ((t.xaxis.replace("x", "xaxis"), a), (t.yaxis.replace("y", "yaxis"), b)):
            lo, hi = fig.layout[axis].range  # zoomed around the mass, not the prior box
            k = NAMES.index(name)
            assert -4.5 < lo < MEAN[k] - 2 * STD[k] and MEAN[k] + 2 * STD[k] < hi < 4.5
    for t in contours:  # a Gaussian's 95% and 68% regions end at 5% and 32% of its peak
        i, j = (NAMES.index(n) for n in t.name.split("|"))
        peak = 1 / (2 * np.pi * STD[i] * STD[j] * np.sqrt(1 - CORR[i, j] ** 2))
        assert t.contours.start == pytest.approx(0.05 * peak, rel=0.05)
        assert t.contours.end == pytest.approx(0.32 * peak, rel=0.05)
    vlines = [s.x0 for s in fig.layout.shapes if s.type == "line"]
    assert sorted(vlines) == sorted(truth.values())
    # each contour sits in the panel of its column (x) and row (y): the same axes as the
    # truth marker of that pair
    for t, m in zip(contours, marks, strict=True):
        assert (t.xaxis, t.yaxis) == (m.xaxis, m.yaxis)
    no_truth = plots.corner_figure(marginals, pairs, ["c", "a"])  # the other order: transposed
    (contour,) = [t for t in no_truth.data if isinstance(t, go.Contour)]
    np.testing.assert_array_equal(np.array(contour.z), np.array(pairs["a|c"]["density"]).T)
    assert not [t for t in no_truth.data if t.name == "truth"] and not no_truth.layout.shapes


def test_the_report_of_a_two_parameter_run_shows_its_corner_plot(tmp_path, monkeypatch):
    from activesci.report import write_run_report
    from activesci.store import SQLiteRunStore

    summary = learner_module.RoundState.summary

    def with_pairs(self):
        out = summary(self)
        return out if "pairs" in out else out | {"pairs": self.posterior.pair_marginals()}

    monkeypatch.setattr(learner_module.RoundState, "summary", with_pairs)
    task = asci.tasks.gaussian(dim=2)
    run = tmp_path / "run"
    learner = asci.ActiveLearner(task, estimator="exact", strategy="fixed", store=run)
    learner.run(2)
    learner.close()
    with SQLiteRunStore.open(run, readonly=True) as store:
        last, observations = store.rounds()[-1], [o for _, o in store.observations()]
    mean, std = task.simulator.posterior(observations)  # analytic, independent parameters
    x, y, density = (np.array(last["pairs"]["mu0|mu1"][k]) for k in ("x", "y", "density"))
    got_mean, got_std, rho = moments(x, y, density)
    assert (abs(got_mean - mean) < 0.02 * std).all(), (got_mean, mean)
    np.testing.assert_allclose(got_std, std, rtol=0.02)
    assert abs(rho) < 0.02
    page = write_run_report(run).read_text()
    assert "Posterior after round 2: pairwise marginals" in page
    assert page.count('"name":"mu0|mu1"') == 1
    assert page.count('"name":"truth"') == 1  # the stored experiment's truth, marked
