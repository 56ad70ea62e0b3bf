"""The location-finding benchmark of Deep Adaptive Design: signal, exact density, score, inference.

Reference values come from the model's formula written out here, not from the simulator.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from activesci.errors import OutOfSpaceError, ShapeError, ValidationError
from activesci.experiments import SimulatedExperiment
from activesci.inference import ExactLikelihood, SamplePosterior
from activesci.simulators import LocationFindingSimulator
from activesci.spaces import Normal
from activesci.typing import Simulator

TRUTH = np.array([1.0, 0.5, -0.8, -1.0])  # s1 = (1, 0.5), s2 = (-0.8, -1)
SWAPPED = TRUTH[[2, 3, 0, 1]]


def naive_log_mu(theta, design, b=0.1, m=1e-4, alpha=(1.0, 1.0)):
    """``log(b + sum_k alpha_k / (m + |theta_k - xi|^2))`` for one point, written out."""
    theta = np.asarray(theta, dtype=float).reshape(len(alpha), -1)
    d2 = ((theta - np.asarray(design, dtype=float)) ** 2).sum(axis=1)
    return math.log(b + sum(a / (m + d) for a, d in zip(alpha, d2, strict=True)))


def test_spaces_follow_the_dad_benchmark():
    sim = LocationFindingSimulator()
    assert isinstance(sim, Simulator)
    assert sim.parameters.names == ["s1_x", "s1_y", "s2_x", "s2_y"]
    assert sim.designs.names == ["xi_x", "xi_y"]
    assert sim.feature_names == ("y",)
    for d in sim.parameters:
        assert d.bounds == (-4.0, 4.0) and d.prior == Normal(0.0, 1.0)
    assert sim.designs.bounds.tolist() == [[-4.0, 4.0], [-4.0, 4.0]]
    assert sim.capabilities == {"joint_log_prob", "joint_score", "log_likelihood"}
    big = LocationFindingSimulator(n_sources=3, dim=5)
    assert big.parameters.names[:6] == ["s1_x", "s1_y", "s1_z", "s1_a3", "s1_a4", "s2_x"]
    assert len(big.parameters) == 15 and big.designs.names[-1] == "xi_a4"


def test_signal_matches_the_formula_by_hand():
    sim = LocationFindingSimulator()
    # source 1 exactly at the design: log(b + 1/m + 1/(m + |s2 - xi|^2)), |s2 - xi|^2 = 1.5^2 + 1
    theta, design = [0.5, 0.0, -1.0, 1.0], [0.5, 0.0]
    expected = math.log(0.1 + 1e4 + 1.0 / (1e-4 + 3.25))
    assert sim.log_signal(theta, design) == pytest.approx([expected], rel=1e-13)
    # both sources far away: the background dominates
    far = sim.log_signal([4.0, 4.0, 4.0, 4.0], [-4.0, -4.0])
    assert far == pytest.approx([math.log(0.1 + 2.0 / (1e-4 + 128.0))], rel=1e-13)
    # rows broadcast, with other options
    other = LocationFindingSimulator(base_signal=0.3, max_signal=0.01, alpha=[2.0, 0.5])
    rng = np.random.default_rng(4)
    th, de = other.parameters.sample(7, rng), other.designs.sample(7, rng)
    want = [naive_log_mu(*td, b=0.3, m=0.01, alpha=(2.0, 0.5)) for td in zip(th, de, strict=True)]
    assert other.log_signal(th, de) == pytest.approx(want, rel=1e-12)
    one = LocationFindingSimulator(n_sources=1, dim=1, base_signal=0.0)
    assert one.log_signal([[0.5]], [[-0.5]]) == pytest.approx([-math.log(1e-4 + 1.0)])


def test_log_signal_is_stable_where_the_intensity_overflows():
    # 1 / m overflows a float for m = 1e-320; log mu = -log m = 736.8 must not
    sim = LocationFindingSimulator(max_signal=1e-320, base_signal=0.0)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        log_mu = sim.log_signal([0.5, 0.0, -1.0, 1.0], [0.5, 0.0])
        score = sim.joint_score([[700.0]], [0.5, 0.0, -1.0, 1.0], [0.5, 0.0])
    assert log_mu == pytest.approx([-math.log(1e-320)], rel=1e-12)
    assert np.isfinite(score).all()


@pytest.mark.parametrize(
    ("theta", "design"),
    [
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0]),
        ([1.0, 0.5, -0.8, -1.0], [1.02, 0.48]),
        ([3.0, -2.0, 0.1, 0.4], [-3.5, 3.9]),
    ],
)
def test_density_is_normalised_and_centred_on_log_mu(theta, design):
    sim = LocationFindingSimulator()
    mu = naive_log_mu(theta, design)

    def density(y):
        return math.exp(sim.joint_log_prob([[y]], theta, design)[0])

    total, _ = integrate.quad(density, mu - 10, mu + 10, points=[mu])
    mean, _ = integrate.quad(lambda y: y * density(y), mu - 10, mu + 10, points=[mu])
    var, _ = integrate.quad(lambda y: (y - mu) ** 2 * density(y), mu - 10, mu + 10, points=[mu])
    assert total == pytest.approx(1.0, abs=1e-9)
    assert mean == pytest.approx(mu, abs=1e-8)
    assert var == pytest.approx(0.25, rel=1e-8)
    y = np.array([[mu - 1.0], [mu], [mu + 0.3]])
    assert sim.log_likelihood(y, theta, design) == pytest.approx(
        sim.joint_log_prob(y, theta, design)
    )
    assert sim.log_likelihood(y, theta, design) == pytest.approx(
        stats.norm.logpdf(y[:, 0], mu, 0.5), rel=1e-12
    )


def test_joint_score_is_the_gradient_of_joint_log_prob():
    sim = LocationFindingSimulator()
    rng = np.random.default_rng(0)
    theta, design = sim.parameters.sample(30, rng), sim.designs.sample(30, rng)
    theta[0, :2] = design[0] + [0.03, -0.02]  # a source close to the design: steep signal
    theta[1, 2:] = design[1] + [0.2, 0.1]
    theta = np.clip(theta, -3.9, 3.9)
    z = sim.sample(theta, design, rng).z
    score = sim.joint_score(z, theta, design)
    assert score.shape == (30, 4)
    h = 1e-6
    for j in range(4):
        up, down = theta.copy(), theta.copy()
        up[:, j] += h
        down[:, j] -= h
        fd = (sim.joint_log_prob(z, up, design) - sim.joint_log_prob(z, down, design)) / (2 * h)
        assert score[:, j] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_samples_follow_the_likelihood():
    sim = LocationFindingSimulator()
    rng = np.random.default_rng(11)
    theta, design = sim.parameters.sample(20_000, rng), sim.designs.sample(20_000, rng)
    y = sim.sample(theta, design, rng).x[:, 0]
    mu = np.array([naive_log_mu(t, d) for t, d in zip(theta, design, strict=True)])
    assert stats.kstest((y - mu) / 0.5, "norm").pvalue > 1e-3
    # one configuration, many events
    y = sim.sample(TRUTH, [1.0, 0.5], rng, n=20_000).x[:, 0]
    assert stats.kstest(y, "norm", args=(naive_log_mu(TRUTH, [1.0, 0.5]), 0.5)).pvalue > 1e-3


def test_an_experiment_is_one_measurement():
    sim = LocationFindingSimulator()
    truth = dict(zip(sim.parameters.names, TRUTH, strict=True))
    obs = sim.run_experiment(truth, {"xi_x": 0.0, "xi_y": 0.0}, np.random.default_rng(0))
    assert obs.n == 1 and obs.x.shape == (1, 1) and obs.luminosity is None
    assert obs.design.tolist() == [0.0, 0.0]
    exp = SimulatedExperiment(sim, truth, seed=3)
    assert exp.run([1.0, 0.5]).n == 1


def test_swapping_the_sources_leaves_the_likelihood_unchanged():
    sim = LocationFindingSimulator()
    rng = np.random.default_rng(5)
    theta = sim.parameters.sample(50, rng)
    swapped = theta[:, [2, 3, 0, 1]]
    y = rng.normal(0.0, 2.0, size=(50, 1))
    design = [0.3, -0.7]
    assert sim.log_likelihood(y, swapped, design) == pytest.approx(
        sim.log_likelihood(y, theta, design), rel=1e-13
    )
    score = sim.joint_score(y, theta, design)  # one event per row of theta
    assert sim.joint_score(y, swapped, design) == pytest.approx(score[:, [2, 3, 0, 1]])
    # unequal strengths break the symmetry
    uneven = LocationFindingSimulator(alpha=[1.0, 3.0])
    assert not np.allclose(
        uneven.log_likelihood(y, swapped, design), uneven.log_likelihood(y, theta, design)
    )


def test_log_likelihood_shapes_and_bad_input():
    sim = LocationFindingSimulator()
    x = np.zeros((5, 1))
    assert sim.log_likelihood(x, np.zeros((3, 4)), [0.0, 0.0]).shape == (3, 5)
    assert sim.log_likelihood(np.zeros(5), [0.0] * 4, [0.0, 0.0]).shape == (5,)
    with pytest.raises(ShapeError, match="one design"):
        sim.log_likelihood(x, np.zeros((3, 4)), np.zeros((2, 2)))
    with pytest.raises(ShapeError, match=r"x must have shape \(n, 1\)"):
        sim.log_likelihood(np.zeros((5, 2)), [0.0] * 4, [0.0, 0.0])
    with pytest.raises(ValidationError, match="NaN"):
        sim.joint_score([[np.nan]], [0.0] * 4, [0.0, 0.0])
    with pytest.raises(ShapeError, match="z has 3 rows"):
        sim.joint_log_prob(np.zeros((3, 1)), np.zeros((2, 4)), [0.0, 0.0])
    with pytest.raises(OutOfSpaceError, match=r"xi_x=5.0 is outside the allowed range \[-4, 4\]"):
        sim.sample([0.0] * 4, [5.0, 0.0], np.random.default_rng(0), n=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_sources": 0}, "n_sources must be a positive integer"),
        ({"n_sources": 2.0}, "n_sources must be a positive integer"),
        ({"dim": 0}, "dim must be a positive integer"),
        ({"n_sources": 9, "dim": 8}, r"n_sources \* dim must be at most 64"),
        ({"sigma": 0.0}, "sigma must be a positive finite number, got 0.0"),
        ({"sigma": float("nan")}, "sigma must be a positive finite number"),
        ({"base_signal": -0.1}, "base_signal must be a non-negative finite number, got -0.1"),
        ({"base_signal": "0.1"}, "base_signal must be a non-negative finite number"),
        ({"max_signal": 0.0}, "max_signal must be a positive finite number"),
        ({"alpha": -1.0}, "alpha must be a positive finite number, got -1.0"),
        ({"alpha": [1.0, 2.0, 3.0]}, "alpha must be one positive number or 2"),
        ({"alpha": [1.0, float("inf")]}, r"alpha\[1\] must be a positive finite number"),
        ({"bound": -4.0}, "bound must be a positive finite number"),
        ({"design_bound": True}, "design_bound must be a positive finite number"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValidationError, match=message):
        LocationFindingSimulator(**options)


def test_exact_posterior_concentrates_on_the_sources_up_to_label_switching():
    sim = LocationFindingSimulator()
    # at each source and 0.3 from it (where the signal is steep), and four farther away
    offsets = np.array([[0.0, 0.0], [0.3, 0.0], [0.0, -0.3]])
    designs = [*(TRUTH[:2] + offsets), *(TRUTH[2:] - offsets)]
    designs += [[0.0, 0.0], [1.5, -1.5], [-1.5, 1.5], [0.0, 1.5]]
    rng = np.random.default_rng(2)
    post = SamplePosterior(sim.parameters, n_particles=2000, simulator=sim, seed=2)
    exact = ExactLikelihood(sim)
    for design in designs:
        post = post.update(sim.run_experiment(TRUTH, design, rng), exact)
    p, w = post.particles, post.weights
    # undo label switching: each particle in the labelling nearer the truth
    swap = np.linalg.norm(p - SWAPPED, axis=1) < np.linalg.norm(p - TRUTH, axis=1)
    aligned = np.where(swap[:, None], p[:, [2, 3, 0, 1]], p)
    # prior mass within 0.3 of either labelling: about 2 (pi 0.3^2)^2 N(truth; 0, I) = 1e-3
    assert w[np.linalg.norm(aligned - TRUTH, axis=1) < 0.3].sum() > 0.9
    mean = w @ aligned
    assert np.abs(mean - TRUTH).max() < 0.1


def test_alices_ratio_estimator_trains_on_the_benchmark():
    torch = pytest.importorskip("torch")
    from activesci.inference import RatioEstimator

    torch.manual_seed(0)
    sim = LocationFindingSimulator()
    est = RatioEstimator(sim, method="alices", hidden=(16,))
    assert est.theta_ref.tolist() == [0.0, 0.0, 0.0, 0.0]
    est.train(n_samples=2000, epochs=2, progress=False)
    theta = sim.parameters.sample(3, np.random.default_rng(0))
    log_r = est.log_ratio(np.array([[0.5], [1.0], [9.0], [-2.0]]), theta, [0.5, -0.5])
    assert log_r.shape == (3, 4) and np.isfinite(log_r).all()
