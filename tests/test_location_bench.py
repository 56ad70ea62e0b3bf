"""The location-finding benchmark's spec and the sPCE metric (activesci.bench.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from activesci import tasks
from activesci.bench import load_spec
from activesci.bench.metrics import history_log_likelihood, spce
from activesci.errors import ShapeError


def test_the_location_finding_spec_loads():
    spec = load_spec("location-finding")
    assert spec["task"] == "location_finding"
    assert spec["budget"]["rounds"] == 10
    assert "eig-exact" in spec["strategies"]
    assert spec["metrics"]["primary"] == "final_volume"


def _gaussian_history(sim, designs, rng):
    theta0 = sim.parameters.sample(1, rng)[0]
    xs = [sim.run_experiment(theta0, d, rng).x for d in designs]
    return theta0, xs


def test_spce_brackets_the_analytic_information_gain_of_the_gaussian_toy():
    # x ~ N(theta, 1) (phase pi), 10 events per experiment, prior N(0, 1): two experiments
    # gain 0.5 log(1 + 20) nats, the truncation at +-5 sigma changes it by ~1e-6
    sim = tasks.gaussian().simulator
    designs = [[math.pi], [math.pi]]
    exact = 0.5 * math.log(1 + 20)
    rng = np.random.default_rng(0)
    lower, upper = [], []
    for _ in range(300):
        theta0, xs = _gaussian_history(sim, designs, rng)
        bounds = spce(sim, designs, xs, theta0, n_contrast=4000, rng=rng, block=1500)
        assert bounds.spce <= math.log(4001) + 1e-12
        lower.append(bounds.spce)
        upper.append(bounds.snmc)
    stderr = np.std(lower) / math.sqrt(len(lower))
    assert np.mean(lower) == pytest.approx(exact, abs=4 * stderr + 0.01)
    assert np.mean(upper) == pytest.approx(exact, abs=4 * stderr + 0.01)
    assert np.mean(lower) <= np.mean(upper)


def test_spce_saturates_at_log_of_the_contrasts_plus_one():
    # 10 events at std 1 pin theta to ~0.3; 3 prior draws almost never come close
    sim = tasks.gaussian().simulator
    designs = [[math.pi]] * 5
    theta0, xs = _gaussian_history(sim, designs, np.random.default_rng(1))
    bounds = spce(sim, designs, xs, theta0, n_contrast=3, rng=2)
    assert bounds.spce == pytest.approx(math.log(4), abs=0.05)
    assert bounds.snmc > bounds.spce


def test_the_history_likelihood_sums_the_experiments_and_checks_their_number():
    sim = tasks.location_finding().simulator
    rng = np.random.default_rng(3)
    theta = sim.parameters.sample(5, rng)
    designs = [[0.0, 0.0], [1.0, -1.0]]
    xs = [sim.run_experiment(theta[0], d, rng).x for d in designs]
    total = history_log_likelihood(sim, designs, xs, theta)
    pairs = zip(designs, xs, strict=True)
    parts = sum(sim.log_likelihood(x, theta, [d]).sum(axis=1) for d, x in pairs)
    np.testing.assert_allclose(total, parts)
    with pytest.raises(ShapeError):
        history_log_likelihood(sim, designs, xs[:1], theta)
