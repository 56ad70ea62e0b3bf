"""Likelihood-ratio test statistics and the Weinberg exclusion contour."""

import math

import numpy as np
import pytest

import activesci as asci
from activesci.errors import ValidationError
from activesci.excursion.contour import LikelihoodRatioStatistic, chi2_threshold, weinberg_contour
from activesci.inference import ExactLikelihood


def test_gaussian_statistic_is_the_analytic_chi2():
    # x ~ N(mu, sigma^2) with sigma = 2 + cos(phase): q(mu) = n (xbar - mu)^2 / sigma^2 exactly
    task = asci.tasks.gaussian(dim=2, events_per_experiment=50)
    experiment = task.experiment(seed=3)
    runs = [experiment.run([0.0]), experiment.run([math.pi])]
    q = LikelihoodRatioStatistic(
        task.simulator, runs, ExactLikelihood(task.simulator), scan=["mu0", "mu1"]
    )
    precision = sum(run.n / (2 + math.cos(run.design[0])) ** 2 for run in runs)
    xbar = sum(run.n * run.x.mean(axis=0) / (2 + math.cos(run.design[0])) ** 2 for run in runs)
    xbar /= precision
    np.testing.assert_allclose(q.best, xbar, atol=1e-4)
    points = np.array([[0.1, -0.2], [0.5, 0.5], [-1.0, 0.3]])
    analytic = precision * ((points - xbar) ** 2).sum(axis=1)
    np.testing.assert_allclose(q(points), analytic, rtol=1e-6, atol=1e-6)
    assert chi2_threshold(0.95, 2) == pytest.approx(5.9915, abs=1e-4)
    assert chi2_threshold(0.6827, 1) == pytest.approx(1.0, abs=1e-3)


def test_bad_statistics_name_the_problem():
    task = asci.tasks.weinberg_lineshape(luminosity=0.1)
    runs = [task.experiment(seed=1).run([91.2])]
    exact = ExactLikelihood(task.simulator)
    with pytest.raises(ValidationError, match=r"parameters \['gamma_z'\] are neither scanned"):
        LikelihoodRatioStatistic(task.simulator, runs, exact, scan=["sin2w", "mz"])
    with pytest.raises(ValidationError, match=r"unknown parameters \['mw'\]"):
        LikelihoodRatioStatistic(task.simulator, runs, exact, scan=["sin2w", "mw"])
    with pytest.raises(ValidationError, match="at least one observation"):
        LikelihoodRatioStatistic(task.simulator, [], exact, scan=["sin2w", "mz", "gamma_z"])
    q = LikelihoodRatioStatistic(
        task.simulator, runs, exact, scan=["sin2w", "mz"], fixed={"gamma_z": 2.5}
    )
    with pytest.raises(ValidationError, match=r"points must have shape \(n, 2\)"):
        q(np.zeros((3, 3)))
    with pytest.raises(ValidationError, match="cl must be in"):
        chi2_threshold(95)
    with pytest.raises(ValidationError, match="box must give ranges for sin2w and mz"):
        weinberg_contour(box={"sin2w": (0.2, 0.25)})


@pytest.fixture(scope="module")
def contour():
    return weinberg_contour()


def _area_fractions(problem, resolution=81):
    axes = [np.linspace(lo, hi, resolution) for lo, hi in problem.space.bounds]
    grid = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=-1)
    inside_exact = problem.exact(grid) < problem.threshold
    inside_learned = problem.learned(grid) < problem.threshold
    return inside_exact, inside_learned, grid


@pytest.mark.slow
def test_learned_contour_matches_the_exact_one(contour):
    inside_exact, inside_learned, _ = _area_fractions(contour)
    exact, learned = inside_exact.mean(), inside_learned.mean()
    assert 0.1 < exact < 0.4  # the contour sits well inside the box
    assert abs(learned - exact) / exact <= 0.05
    assert (inside_exact != inside_learned).mean() <= 0.02  # the same region, not just its size


def test_excursion_search_finds_the_95cl_contour_of_the_learned_statistic(contour):
    from activesci.excursion import ExcursionSearch

    inside_exact, _, grid = _area_fractions(contour, resolution=61)
    search = ExcursionSearch(
        contour.learned, contour.space, contour.threshold, seed=0, resolution=61
    ).run(24)
    assert len(search.history) == 24
    inside = search.classify() == 0  # q below the threshold: not excluded at 95% CL
    assert abs(inside.mean() - inside_exact.mean()) / inside_exact.mean() <= 0.05
    assert (inside != inside_exact).mean() <= 0.03
    # the grids agree: the search's grid is the same box at the same resolution
    np.testing.assert_allclose(search.grid_axes[0], np.unique(grid[:, 0]))
