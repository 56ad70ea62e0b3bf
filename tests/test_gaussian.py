"""The Gaussian toy: sampling, exact likelihood, gold and the analytic posterior."""

import numpy as np
import pytest
from scipy import integrate, stats

from activesci.errors import ShapeError, ValidationError
from activesci.simulators import GaussianSimulator


def test_noise_depends_on_the_design():
    sim = GaussianSimulator()
    assert sim.noise([[0.0], [np.pi], [np.pi / 2]]) == pytest.approx([3.0, 1.0, 2.0])


@pytest.mark.parametrize("phase", [0.0, 1.0, np.pi])
def test_samples_are_normal_with_the_design_noise(phase):
    sim = GaussianSimulator(dim=2)
    x = sim.sample([0.5, -1.0], [phase], np.random.default_rng(1), n=100_000).x
    sigma = 2 + np.cos(phase)
    for j, mu in enumerate([0.5, -1.0]):
        assert stats.kstest(x[:, j], "norm", args=(mu, sigma)).pvalue > 1e-3


def test_analytic_posterior_matches_numerical_bayes():
    sim = GaussianSimulator(events_per_experiment=5)
    rng = np.random.default_rng(3)
    obs = [sim.run_experiment([0.7], [phase], rng) for phase in (0.3, 2.0, np.pi)]
    mean, std = sim.posterior(obs)
    grid = np.linspace(-5, 5, 20001)[:, None]
    log_post = sim.parameters.log_prior(grid)
    for o in obs:
        log_post = log_post + sim.log_likelihood(o.x, grid, o.design).sum(axis=1)
    post = np.exp(log_post - log_post.max())
    post /= integrate.trapezoid(post, grid[:, 0])
    num_mean = integrate.trapezoid(grid[:, 0] * post, grid[:, 0])
    num_std = np.sqrt(integrate.trapezoid((grid[:, 0] - num_mean) ** 2 * post, grid[:, 0]))
    assert mean[0] == pytest.approx(num_mean, abs=1e-6)
    assert std[0] == pytest.approx(num_std, rel=1e-5)


def test_joint_score_is_the_gradient_and_log_prob_is_normalised():
    sim = GaussianSimulator(dim=2)
    rng = np.random.default_rng(0)
    theta, design = sim.parameters.sample(20, rng), sim.designs.sample(20, rng)
    z = sim.sample(theta, design, rng).z
    score = sim.joint_score(z, theta, design)
    for j in range(2):
        up, down = theta.copy(), theta.copy()
        up[:, j] += 1e-6
        down[:, j] -= 1e-6
        fd = (sim.joint_log_prob(z, up, design) - sim.joint_log_prob(z, down, design)) / 2e-6
        assert score[:, j] == pytest.approx(fd, rel=1e-6, abs=1e-8)
    one = GaussianSimulator()
    total, _ = integrate.quad(lambda t: np.exp(one.joint_log_prob([[t]], [0.2], [1.0])[0]), -30, 30)
    assert total == pytest.approx(1.0, abs=1e-9)
    assert one.log_likelihood([[0.1]], [0.2], [1.0]) == pytest.approx(
        one.joint_log_prob([[0.1]], [0.2], [1.0])
    )


def test_experiments_record_a_fixed_number_of_events():
    sim = GaussianSimulator(events_per_experiment=7)
    obs = sim.run_experiment({"mu0": 0.1}, {"phase": 1.0}, np.random.default_rng(0))
    assert obs.n == 7 and obs.x.shape == (7, 1) and obs.luminosity is None
    assert "expected_count" not in sim.capabilities


def test_bad_input():
    with pytest.raises(ValidationError, match="dim must be a positive integer"):
        GaussianSimulator(dim=0)
    sim = GaussianSimulator(dim=2)
    with pytest.raises(ShapeError, match=r"x must have shape \(n, 2\)"):
        sim.log_likelihood(np.zeros((3, 3)), [0.0, 0.0], [1.0])
    with pytest.raises(ValidationError, match="NaN"):
        sim.joint_score([[np.nan, 0.0]], [0.0, 0.0], [1.0])
    with pytest.raises(
        ValueError, match=r"phase=7.0 is outside the allowed range \[0, 6.28319\] rad"
    ):
        sim.sample([0.0, 0.0], [7.0], np.random.default_rng(0), n=2)
