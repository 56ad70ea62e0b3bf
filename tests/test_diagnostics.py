"""Closure and coverage diagnostics against analytic truth, and their figures."""

import math

import numpy as np
import pytest
from scipy import stats

from activesci import tasks
from activesci.errors import ValidationError
from activesci.inference.diagnostics import closure, coverage
from activesci.inference.grid import GridPosterior
from activesci.inference.likelihood import ExactLikelihood
from activesci.inference.particles import SamplePosterior
from activesci.plots import closure_figure, coverage_figure
from activesci.spaces import Real, Space
from activesci.typing import Observation

ONE_EVENT = Observation(design=[0.0], x=[[0.0]])


class Quadratic:
    """A fake estimator: ``log r = -|theta - mean|^2 / (2 std^2)`` for one event."""

    def __init__(self, mean, std):
        self.mean, self.std = np.atleast_1d(mean), np.atleast_1d(std)

    def log_ratio(self, x, theta, design):
        r = (np.asarray(theta) - self.mean) / self.std
        return np.repeat(-0.5 * (r * r).sum(axis=1)[:, None], len(x), axis=1)


def normal_posterior(mean, std, space=None, resolution=401):
    space = space or Space([Real("mu", -10.0, 10.0)])
    return GridPosterior(space, resolution).update(ONE_EVENT, Quadratic(mean, std))


def kl_normals(m1, s1, m2, s2):
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


# -- closure ----------------------------------------------------------------------------------
def test_closure_of_a_posterior_with_itself_is_perfect():
    sim = tasks.gaussian(dim=2).simulator
    exp = tasks.gaussian(dim=2).experiment(seed=2)
    post = GridPosterior(sim.parameters, simulator=sim)
    post.update(exp.run([np.pi]), ExactLikelihood(sim))
    m = closure(post, post.copy())
    assert m["kl"] == 0.0
    assert m["mean_shift"].tolist() == [0.0, 0.0]
    assert m["width_ratio"].tolist() == [1.0, 1.0]
    assert m["hdr_mismatch"].tolist() == [0.0, 0.0]


def test_closure_of_two_normals_matches_the_analytic_values():
    exact, learned = normal_posterior(0.0, 1.0), normal_posterior(0.5, 1.2)
    m = closure(exact, learned)
    assert m["kl"] == pytest.approx(kl_normals(0.0, 1.0, 0.5, 1.2), abs=1e-3)
    assert m["kl"] == pytest.approx(0.1163493, abs=1e-6)
    assert m["mean_shift"][0] == pytest.approx(0.5, abs=1e-4)
    assert m["width_ratio"][0] == pytest.approx(1.2, abs=1e-4)
    z = stats.norm.ppf(0.84)
    a, b = (-z, z), (0.5 - 1.2 * z, 0.5 + 1.2 * z)
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    symmetric = (a[1] - a[0]) + (b[1] - b[0]) - 2 * overlap
    assert m["hdr_mismatch"][0] == pytest.approx(symmetric / (a[1] - a[0]), abs=1e-3)
    reverse = closure(learned, exact)
    assert reverse["kl"] == pytest.approx(kl_normals(0.5, 1.2, 0.0, 1.0), abs=1e-3)


def test_closure_in_two_dimensions_adds_up_the_kl():
    space = Space([Real("a", -8.0, 8.0), Real("b", -8.0, 8.0)])
    exact = normal_posterior([0.0, 0.0], [1.0, 1.0], space, 161)
    learned = normal_posterior([0.3, 0.0], [1.0, 1.5], space, 161)
    expected = kl_normals(0, 1, 0.3, 1) + kl_normals(0, 1, 0, 1.5)
    assert closure(exact, learned)["kl"] == pytest.approx(expected, abs=1e-3)


def test_closure_needs_the_same_grid():
    with pytest.raises(ValidationError, match="same grid"):
        closure(normal_posterior(0, 1), normal_posterior(0, 1, resolution=201))
    particles = SamplePosterior(Space([Real("mu", -10.0, 10.0)]), 100)
    with pytest.raises(ValidationError, match="SamplePosterior"):
        closure(normal_posterior(0, 1), particles)


# -- coverage ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy():
    return tasks.gaussian().simulator


def test_exact_posterior_covers_at_the_nominal_rate(toy):
    sim = toy
    result = coverage(
        sim,
        ExactLikelihood,
        lambda: GridPosterior(sim.parameters, simulator=sim),
        n_datasets=100,
        design=[[np.pi], [1.0]],
        progress=False,
    )
    levels = result["levels"]
    assert levels.tolist() == [0.5, 0.68, 0.9, 0.95]
    assert result["flags_central"].shape == result["flags_hdr"].shape == (100, 4, 1)
    assert result["truths"].shape == (100, 1)
    for key in ("central", "hdr"):
        pull = (result[key][:, 0] - levels) / result["se"]
        assert (np.abs(pull) < 3).all(), (key, result[key])
    np.testing.assert_allclose(result["se"], np.sqrt(levels * (1 - levels) / 100))
    np.testing.assert_array_equal(result["central"], result["flags_central"].mean(axis=0))


def test_an_overconfident_posterior_fails_coverage(toy):
    sim = toy
    exact = ExactLikelihood(sim)

    class Overconfident:  # the likelihood to the 4th power: intervals half as wide
        def log_ratio(self, x, theta, design):
            return 4.0 * exact.log_ratio(x, theta, design)

    result = coverage(
        sim,
        Overconfident(),
        lambda: GridPosterior(sim.parameters, simulator=sim),
        n_datasets=60,
        design=[np.pi],
        seed=1,
        progress=False,
    )
    pull = (result["central"][:, 0] - result["levels"]) / result["se"]
    assert (pull < -3).all()


def test_coverage_is_reproducible_and_checks_its_input(toy):
    sim = toy

    def run(seed):
        return coverage(
            sim,
            ExactLikelihood(sim),
            lambda: GridPosterior(sim.parameters, 101),
            n_datasets=4,
            levels=(0.68,),
            seed=seed,
            design={"phase": 2.0},
            progress=False,
        )["truths"]

    assert np.array_equal(run(5), run(5)) and not np.array_equal(run(5), run(6))
    factory = lambda: GridPosterior(sim.parameters)  # noqa: E731
    with pytest.raises(ValidationError, match="levels"):
        coverage(sim, ExactLikelihood, factory, levels=(0.5, 1.0), design=[1.0])
    with pytest.raises(ValidationError, match="log_ratio"):
        coverage(sim, 42, factory, design=[1.0])
    with pytest.raises(ValidationError, match="phase"):
        coverage(sim, ExactLikelihood, factory, design=[9.0])


# -- figures ----------------------------------------------------------------------------------
def test_closure_figures_overlay_both_posteriors():
    fig = closure_figure(normal_posterior(0, 1), normal_posterior(0.5, 1.2))
    assert [t.name for t in fig.data] == ["exact", "learned"]
    assert fig.data[0].type == "scatter" and "KL = 0.116" in fig.layout.title.text

    space2 = Space([Real("a", -6.0, 6.0), Real("b", -6.0, 6.0)])
    exact2 = normal_posterior([0, 0], [1, 1], space2, 61)
    fig2 = closure_figure(exact2, normal_posterior([0.2, 0], [1, 1.1], space2, 61))
    assert [t.type for t in fig2.data] == ["contour", "contour"]
    assert [t.name for t in fig2.data] == ["exact", "learned"]
    assert fig2.data[0].contours.start < fig2.data[0].contours.end

    space3 = Space([Real(n, -6.0, 6.0) for n in "abc"])
    exact3 = normal_posterior([0, 0, 0], [1, 1, 1], space3, 21)
    fig3 = closure_figure(exact3, exact3.copy(), closure(exact3, exact3))
    assert len(fig3.data) == 6 and "KL = 0 nats" in fig3.layout.title.text


def test_coverage_figure_has_points_error_bars_and_the_diagonal():
    result = {
        "levels": np.array([0.5, 0.9]),
        "parameter_names": ["a", "b"],
        "n_datasets": 10,
        "central": np.array([[0.4, 0.5], [0.9, 1.0]]),
        "hdr": np.array([[0.5, 0.5], [0.8, 0.9]]),
        "se": np.array([0.16, 0.09]),
    }
    fig = coverage_figure(result)
    names = [t.name for t in fig.data]
    assert names == ["central (a)", "HDR (a)", "central (b)", "HDR (b)", "nominal"]
    assert list(fig.data[2].y) == [0.5, 1.0]
    assert list(fig.data[0].error_y.array) == [0.16, 0.09]
    assert list(fig.data[-1].x) == [0, 1] and "10" in fig.layout.title.text
