"""Posteriors against analytic truth: the Gaussian toy, the Weinberg mirror solution, bad input."""

import math

import numpy as np
import pytest
from scipy import optimize, stats

from activesci import tasks
from activesci.errors import (
    MissingCapabilityError,
    OutOfSpaceError,
    ShapeError,
    ValidationError,
)
from activesci.inference import likelihood as likelihood_module
from activesci.inference.grid import GridPosterior
from activesci.inference.likelihood import ExactLikelihood
from activesci.inference.particles import SamplePosterior
from activesci.simulators.weinberg import born_coefficients
from activesci.spaces import Real, Space
from activesci.typing import Observation

Z68 = stats.norm.ppf(0.84)  # 0.9945: half-width of the central 68% interval in sigma
PHASES = (np.pi, 0.5, 2.0, 4.0)
TRUTH = 0.2315


def gaussian_data(dim=1, events=10, seed=3, phases=PHASES):
    task = tasks.gaussian(dim=dim, events_per_experiment=events)
    exp = task.experiment(seed=seed)
    return task.simulator, [exp.run({"phase": p}) for p in phases]


def normal_entropy(std):
    return float(np.sum(0.5 * np.log(2 * np.pi * np.e * np.asarray(std) ** 2)))


@pytest.fixture(scope="module")
def gauss1d():
    sim, obs = gaussian_data()
    post = GridPosterior(sim.parameters, simulator=sim)
    est = ExactLikelihood(sim)
    for o in obs:
        post.update(o, est)
    mean, std = sim.posterior(obs)
    return post, mean, std


# -- GridPosterior on the Gaussian toy ------------------------------------------------------------
def test_grid_1d_moments_match_the_analytic_posterior(gauss1d):
    post, mean, std = gauss1d
    assert abs(post.mean()[0] - mean[0]) < 1e-3 * std[0]
    assert abs(post.std()[0] / std[0] - 1) < 1e-3
    assert post.cov().shape == (1, 1)
    assert post.n_events == 40 and len(post.observations) == 4 and len(post.history) == 4
    assert post.history[-1]["mean"] == pytest.approx(post.mean().tolist())
    assert post.history[-1]["n_events"] == 40


def test_grid_1d_interval_hdr_modes_entropy(gauss1d):
    post, mean, std = gauss1d
    expected = mean[0] + np.array([-Z68, Z68]) * std[0]
    np.testing.assert_allclose(post.interval(0.68)[0], expected, atol=1e-3 * std[0])
    (hdr,) = post.hdr(0.68)
    assert len(hdr) == 1
    np.testing.assert_allclose(hdr[0], expected, atol=2e-3 * std[0])
    z95 = stats.norm.ppf(0.975)
    np.testing.assert_allclose(
        post.interval(0.95)[0], mean[0] + np.array([-z95, z95]) * std[0], atol=2e-3 * std[0]
    )
    (modes,) = post.modes()
    assert modes.shape == (1,) and abs(modes[0] - mean[0]) < 1e-3 * std[0]
    assert post.entropy() == pytest.approx(normal_entropy(std), abs=1e-3)


def test_grid_1d_sample_density_and_marginal(gauss1d):
    post, mean, std = gauss1d
    draws = post.sample(200_000, np.random.default_rng(0))
    assert draws.shape == (200_000, 1)
    assert abs(draws.mean() - mean[0]) < 0.01 * std[0]
    assert abs(draws.std() / std[0] - 1) < 0.01
    assert np.array_equal(post.sample(5, 7), post.sample(5, 7))  # seeded: reproducible
    x = np.linspace(-5, 5, 40_001)
    assert np.trapezoid(np.exp(post.log_density(x[:, None])), x) == pytest.approx(1, abs=1e-4)
    points = mean[0] + np.array([-1.5, -0.5, 0.0, 0.7, 2.0]) * std[0]
    exact = stats.norm.logpdf(points, mean[0], std[0])
    np.testing.assert_allclose(post.log_density(points[:, None]), exact, atol=0.02)
    assert post.log_density({"mu0": [6.0, -7.0]}).tolist() == [-np.inf, -np.inf]
    grid, dens = post.marginal("mu0")
    assert grid.shape == dens.shape == (201,)
    assert dens.sum() * (grid[1] - grid[0]) == pytest.approx(1.0)
    np.testing.assert_allclose(post.density * post.cell_volume, post.probabilities)
    assert post.grid.shape == (201, 1)


def test_grid_result_does_not_depend_on_the_event_blocks(monkeypatch):
    sim, obs = gaussian_data(events=50)
    est = ExactLikelihood(sim)
    whole = GridPosterior(sim.parameters, simulator=sim)
    for o in obs:
        whole.update(o, est)
    monkeypatch.setattr(likelihood_module, "_BLOCK_ELEMENTS", 500)  # 2 events per block
    blocks = GridPosterior(sim.parameters, simulator=sim)
    for o in obs:
        blocks.update(o, est)
    np.testing.assert_allclose(blocks.log_posterior, whole.log_posterior, atol=1e-9)


def test_grid_blocks_bound_the_memory_of_one_call():
    class Recorder:
        largest = 0

        def log_ratio(self, x, theta, design):
            Recorder.largest = max(Recorder.largest, len(x) * len(theta))
            return np.broadcast_to(np.zeros(1), (len(theta), len(x)))

    space = Space([Real("a", 0, 1), Real("b", 0, 1)])
    post = GridPosterior(space, 100)  # 10^4 cells
    post.update(Observation(design=[0.0], x=np.zeros((100_000, 1))), Recorder())
    assert Recorder.largest * 8 <= 50e6


def test_grid_2d_matches_the_analytic_posterior():
    sim, obs = gaussian_data(dim=2)
    post = GridPosterior(sim.parameters, simulator=sim)
    assert post.shape == (61, 61)
    est = ExactLikelihood(sim)
    for o in obs:
        post.update(o, est)
    mean, std = sim.posterior(obs)
    np.testing.assert_allclose(post.mean(), mean, atol=1e-3 * std.min())
    np.testing.assert_allclose(post.std() / std, 1, atol=1e-3)
    assert abs(post.cov()[0, 1]) < 1e-6
    assert post.entropy() == pytest.approx(normal_entropy(std), abs=1e-3)
    expected = mean[:, None] + np.array([-Z68, Z68]) * std[:, None]
    np.testing.assert_allclose(post.interval(0.68), expected, atol=1e-2 * std.min())
    assert [len(h) for h in post.hdr()] == [1, 1]
    draws = post.sample(100_000, 1)
    np.testing.assert_allclose(draws.mean(axis=0), mean, atol=0.02 * std.min())
    node = post.grid[np.argmin(((post.grid - mean) ** 2).sum(axis=1))]  # interpolation-free
    exact = stats.norm.logpdf(node, mean, std).sum()
    assert post.log_density(node)[0] == pytest.approx(exact, abs=1e-3)
    assert post.log_density(mean)[0] == pytest.approx(stats.norm.logpdf(0, 0, std).sum(), abs=0.2)
    grid, dens = post.marginal(1)
    assert dens.sum() * (grid[1] - grid[0]) == pytest.approx(1.0)


def test_grid_3d_works_at_a_coarse_resolution():
    sim, obs = gaussian_data(dim=3, phases=(np.pi,))
    post = GridPosterior(sim.parameters, simulator=sim)
    assert post.grid.shape == (31**3, 3)
    post.update(obs[0], ExactLikelihood(sim))
    mean, std = sim.posterior(obs)  # std 0.30, cells 0.32 wide
    np.testing.assert_allclose(post.mean(), mean, atol=1e-3 * std.min())
    np.testing.assert_allclose(post.std() / std, 1, atol=1e-3)
    assert post.entropy() == pytest.approx(normal_entropy(std), abs=1e-3)
    assert post.sample(10, 0).shape == (10, 3)
    assert np.isfinite(post.log_density(mean)).all()
    assert GridPosterior(sim.parameters, 5).shape == (5, 5, 5)


def test_grid_resolution_per_dimension_and_copy_is_independent(gauss1d):
    post, _, _ = gauss1d
    space = Space([Real("a", 0, 1), Real("b", -1, 1)])
    assert GridPosterior(space, (11, 7)).grid.shape == (77, 2)
    twin = post.copy()
    sim, obs = gaussian_data(seed=9, phases=(np.pi,))
    twin.update(obs[0], ExactLikelihood(sim))
    assert len(twin.observations) == 5 and len(post.observations) == 4
    assert twin.std()[0] < post.std()[0]


# -- SamplePosterior --------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 3])
def test_sample_posterior_matches_the_analytic_posterior(dim):
    sim, obs = gaussian_data(dim=dim, events=100, seed=10)
    post = SamplePosterior(sim.parameters, simulator=sim, seed=0)
    est = ExactLikelihood(sim)
    for o in obs:
        post.update(o, est)
    mean, std = sim.posterior(obs)
    assert post.history[0]["resampled"] >= 2  # resampling and MCMC moves did happen
    assert 0.15 < post.history[0]["acceptance"] < 0.7
    np.testing.assert_array_less(np.abs(post.mean() - mean) / std, 0.05)
    np.testing.assert_array_less(np.abs(post.std() / std - 1), 0.05)
    assert post.ess > post.n_particles / 2
    expected = mean[:, None] + np.array([-Z68, Z68]) * std[:, None]
    np.testing.assert_allclose(post.interval(0.68), expected, atol=0.1 * std.min())
    assert post.entropy() == pytest.approx(normal_entropy(std), abs=0.1)
    assert post.log_density(mean)[0] == pytest.approx(
        stats.norm.logpdf(0, 0, std).sum(), abs=0.1 * dim
    )
    assert [len(m) for m in post.modes()] == [1] * dim
    for (lo, hi), m in zip(np.array([h[0] for h in post.hdr(0.68)]), mean, strict=True):
        assert lo < m < hi
    assert post.sample(7, 0).shape == (7, dim)


class CorrelatedGaussian:
    """Fake estimator: one event whose log ratio is a correlated 2-D Gaussian in theta."""

    mean = np.array([1.0, -2.0])
    cov = np.array([[0.09, -0.87 * 0.3 * 0.5], [-0.87 * 0.3 * 0.5, 0.25]])

    def log_ratio(self, x, theta, design):
        d = np.asarray(theta) - self.mean
        q = np.einsum("ij,jk,ik->i", d, np.linalg.inv(self.cov), d)
        return np.repeat(-0.5 * q[:, None], len(x), axis=1)


def test_sample_posterior_recovers_a_correlated_gaussian():
    space = Space([Real("a", -10.0, 10.0), Real("b", -10.0, 10.0)])
    post = SamplePosterior(space, seed=3).update(Observation([0.0], [[0.0]]), CorrelatedGaussian())
    assert post.history[0]["resampled"] >= 5  # from a 20 x 20 box down to a narrow ridge
    sd = np.sqrt(np.diag(CorrelatedGaussian.cov))
    np.testing.assert_array_less(np.abs(post.mean() - CorrelatedGaussian.mean) / sd, 0.05)
    np.testing.assert_allclose(post.std() / sd, 1, atol=0.05)
    rho = post.cov()[0, 1] / np.prod(post.std())
    assert rho == pytest.approx(-0.87, abs=0.02)
    exact = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * CorrelatedGaussian.cov))
    assert post.entropy() == pytest.approx(exact, abs=0.05)
    grid = GridPosterior(space, 401).update(Observation([0.0], [[0.0]]), CorrelatedGaussian())
    assert grid.entropy() == pytest.approx(exact, abs=1e-3)
    np.testing.assert_allclose(grid.cov(), CorrelatedGaussian.cov, atol=1e-4)


def test_sample_posterior_is_reproducible_with_its_seed():
    sim, obs = gaussian_data(events=100, phases=(np.pi, 0.5))
    est = ExactLikelihood(sim)

    def run(seed):
        post = SamplePosterior(sim.parameters, 500, simulator=sim, seed=seed)
        for o in obs:
            post.update(o, est)
        return post.particles

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_a_failing_update_leaves_the_particles_alone():
    sim, obs = gaussian_data(events=100, phases=(np.pi,))
    exact = ExactLikelihood(sim)

    class Flaky:  # works for the reweighting, crashes inside the Metropolis moves
        calls = 0

        def log_ratio(self, x, theta, design):
            Flaky.calls += 1
            if Flaky.calls > 1:
                raise RuntimeError("estimator crashed")
            return exact.log_ratio(x, theta, design)

    post = SamplePosterior(sim.parameters, 500, simulator=sim, seed=0)
    before = post.particles
    with pytest.raises(RuntimeError, match="crashed"):
        post.update(obs[0], Flaky())
    assert np.array_equal(post.particles, before) and post.n_events == 0
    assert np.all(post.weights == 1 / 500)
    fresh = SamplePosterior(sim.parameters, 500, simulator=sim, seed=0)
    post.update(obs[0], exact)
    assert np.array_equal(post.particles, fresh.update(obs[0], exact).particles)


# -- Weinberg: rates, the mirror solution, 10^5 events ----------------------------------------
def mirror_solution(sqrt_s=88.0):
    """The other sin2w with the same angular shape C2/C1 as the truth at ``sqrt_s``."""

    def shape(s2):
        c1, c2 = born_coefficients(s2, sqrt_s)
        return float(c2 / c1)

    target = shape(TRUTH)
    grid = np.linspace(0.15, 0.35, 2001)
    diff = np.array([shape(s) for s in grid]) - target
    roots = [
        optimize.brentq(lambda s: shape(s) - target, grid[i], grid[i + 1])
        for i in np.flatnonzero(np.sign(diff[:-1]) != np.sign(diff[1:]))
    ]
    (mirror,) = [r for r in roots if abs(r - TRUTH) > 0.01]
    return mirror


@pytest.fixture(scope="module")
def weinberg_88():
    sim = tasks.weinberg().simulator
    lumi = 2000 / sim.expected_count([TRUTH], [88.0])[0]  # ~2000 events at 88 GeV
    task = tasks.weinberg(luminosity=float(lumi))
    obs = task.experiment(seed=1).run({"sqrt_s": 88.0})
    return task.simulator, obs


def test_extended_posterior_at_the_pole_covers_the_truth():
    task = tasks.weinberg()
    sim = task.simulator
    obs = task.experiment(seed=1).run({"sqrt_s": 91.19})
    est = ExactLikelihood(sim)
    post = GridPosterior(sim.parameters, simulator=sim).update(obs, est)
    angles = GridPosterior(sim.parameters, simulator=sim, extended=False).update(obs, est)
    assert post.rate_term and not angles.rate_term
    assert any(lo <= TRUTH <= hi for lo, hi in post.hdr(0.95)[0])
    assert abs(post.mean()[0] - TRUTH) < 3 * post.std()[0]
    assert post.std()[0] < angles.std()[0]  # the count adds information


def test_angles_only_posterior_at_88_gev_is_bimodal(weinberg_88):
    sim, obs = weinberg_88
    mirror = mirror_solution()
    assert 0.27 < mirror < 0.30
    assert 1800 < obs.n < 2200
    post = GridPosterior(sim.parameters, simulator=sim, extended=False)
    post.update(obs, ExactLikelihood(sim))
    (modes,) = post.modes()
    assert len(modes) == 2
    assert min(abs(modes - TRUTH)) < 0.01 and min(abs(modes - mirror)) < 0.01
    (hdr,) = post.hdr(0.68)
    assert len(hdr) == 2
    (lo1, hi1), (lo2, hi2) = hdr
    assert lo1 <= TRUTH <= hi1 and lo2 <= mirror <= hi2 and hi1 < lo2


def test_the_event_count_breaks_the_tie(weinberg_88):
    sim, obs = weinberg_88
    post = GridPosterior(sim.parameters, simulator=sim, extended=True)
    post.update(obs, ExactLikelihood(sim))
    (modes,) = post.modes()
    assert len(modes) == 1 and abs(modes[0] - TRUTH) < 0.01
    (hdr,) = post.hdr(0.68)
    assert len(hdr) == 1 and hdr[0][0] <= TRUTH <= hdr[0][1]


def test_an_empty_observation_informs_through_the_rate():
    sim = tasks.weinberg().simulator
    post = GridPosterior(sim.parameters, simulator=sim)
    post.update(Observation(design=[91.19], x=np.empty((0, 1)), luminosity=1.0), never_called())
    assert np.ptp(post.log_posterior) > 100  # exp(-1600 events expected) is decisive


def test_the_rate_scales_with_the_observation_luminosity():
    one, two = tasks.weinberg(luminosity=1.0), tasks.weinberg(luminosity=2.0)
    obs = two.experiment(seed=3).run({"sqrt_s": 91.19})  # 2 pb^-1, says so
    assert obs.luminosity == 2.0
    est = ExactLikelihood(one.simulator)
    scaled = GridPosterior(one.parameters, simulator=one.simulator).update(obs, est)
    native = GridPosterior(two.parameters, simulator=two.simulator).update(obs, est)
    np.testing.assert_allclose(scaled.log_posterior, native.log_posterior, atol=1e-9)
    unknown = Observation(design=obs.design, x=obs.x)  # no luminosity: the simulator's
    wrong = GridPosterior(one.parameters, simulator=one.simulator).update(unknown, est)
    assert abs(wrong.mean()[0] - native.mean()[0]) > 3 * native.std()[0]


def never_called():
    class Never:
        def log_ratio(self, x, theta, design):
            raise AssertionError("no events: log_ratio must not be called")

    return Never()


def test_one_hundred_thousand_events_stay_finite():
    task = tasks.weinberg(luminosity=60.0)
    sim = task.simulator
    obs = task.experiment(seed=1).run({"sqrt_s": 91.19})
    assert obs.n > 90_000
    zoom = Space([Real("sin2w", 0.22, 0.24)])
    exact = ExactLikelihood(sim)
    post = GridPosterior(zoom, 401, simulator=sim).update(obs, exact)
    assert np.isfinite(post.log_posterior).all() and np.isfinite(post.entropy())
    assert 1e-4 < post.std()[0] < 1e-3
    assert abs(post.mean()[0] - TRUTH) < 4 * post.std()[0]

    class Float32:
        def log_ratio(self, x, theta, design):
            return exact.log_ratio(x, theta, design).astype(np.float32)

    single = GridPosterior(zoom, 401, simulator=sim).update(obs, Float32())
    assert abs(single.mean()[0] - post.mean()[0]) < 0.01 * post.std()[0]
    angles = GridPosterior(sim.parameters, simulator=sim, extended=False).update(obs, exact)
    assert np.isfinite(angles.mean()).all() and np.isfinite(angles.log_posterior).all()


# -- bad input ------------------------------------------------------------------------------
class Transposed:
    def log_ratio(self, x, theta, design):
        return np.zeros((len(x), len(theta)))


class Poisoned:
    value = np.nan

    def log_ratio(self, x, theta, design):
        out = np.zeros((len(theta), len(x)))
        out[3, 0] = self.value
        out[4, 1] = -np.inf  # allowed: zero likelihood
        return out


class Infinite(Poisoned):
    value = np.inf


@pytest.fixture
def toy():
    sim, obs = gaussian_data(phases=(np.pi,))
    return sim, obs[0], GridPosterior(sim.parameters, simulator=sim)


def test_four_parameters_need_a_sample_posterior():
    sim = tasks.gaussian(dim=4).simulator
    with pytest.raises(ValidationError, match=r"at most 3 parameters.*SamplePosterior"):
        GridPosterior(sim.parameters)
    assert SamplePosterior(sim.parameters, 100).particles.shape == (100, 4)


def test_empty_observation_without_rate_term_is_refused(toy):
    sim, _, post = toy
    empty = Observation(design=[np.pi], x=np.empty((0, 1)))
    with pytest.raises(ValidationError, match=r"0 events.*no information"):
        post.update(empty, ExactLikelihood(sim))
    weinberg = tasks.weinberg().simulator
    angles = GridPosterior(weinberg.parameters, simulator=weinberg, extended=False)
    with pytest.raises(ValidationError, match="no rate"):
        angles.update(Observation(design=[91.0], x=np.empty((0, 1))), ExactLikelihood(weinberg))


def test_wrong_shape_from_the_estimator_is_named(toy):
    _, obs, post = toy
    with pytest.raises(ShapeError, match=r"Transposed\.log_ratio returned shape \(10, 201\)"):
        post.update(obs, Transposed())
    assert post.n_events == 0 and post.history == []  # a failed update changes nothing


def test_nan_from_the_estimator_is_named(toy):
    _, obs, post = toy
    before = post.log_posterior
    with pytest.raises(ValidationError, match=r"Poisoned\.log_ratio returned NaN.*\(201, 10\)"):
        post.update(obs, Poisoned())
    np.testing.assert_array_equal(post.log_posterior, before)
    with pytest.raises(ValidationError, match=r"Infinite\.log_ratio returned NaN or \+inf"):
        post.update(obs, Infinite())
    particles = SamplePosterior(post.space, 100, seed=0)
    with pytest.raises(ValidationError, match="Poisoned"):
        particles.update(obs, Poisoned())


def test_design_outside_the_space_is_refused(toy):
    sim, obs, post = toy
    bad = Observation(design=[7.0], x=obs.x)
    with pytest.raises(OutOfSpaceError, match=r"design \[7.0\] is not in.*phase=7.0"):
        post.update(bad, ExactLikelihood(sim))


def test_other_bad_input(toy):
    sim, obs, post = toy
    with pytest.raises(ValidationError, match="log_ratio"):
        post.update(obs, object())
    with pytest.raises(ValidationError, match="Observation"):
        post.update(obs.x, ExactLikelihood(sim))
    with pytest.raises(MissingCapabilityError, match="log_likelihood"):
        ExactLikelihood(object())
    with pytest.raises(ValidationError, match="resolution"):
        GridPosterior(sim.parameters, 1)
    with pytest.raises(ValidationError, match="resolution"):
        GridPosterior(sim.parameters, (10, 10))
    with pytest.raises(ValidationError, match="level"):
        post.interval(1.5)
    with pytest.raises(ValidationError, match="unknown parameter 'mu9'"):
        post.marginal("mu9")
    with pytest.raises(ValidationError, match="simulator has"):
        GridPosterior(Space([Real("other", 0, 1)]), simulator=sim)
    with pytest.raises(OutOfSpaceError, match="not a finite number"):
        post.log_density([[math.nan]])
    with pytest.raises(ShapeError):
        post.log_density(np.zeros((2, 3)))
    with pytest.raises(ValidationError, match="n_particles"):
        SamplePosterior(sim.parameters, 3)
