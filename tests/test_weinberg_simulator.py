"""The Weinberg simulator: exact sampling, exact likelihood, gold, counts and bad input."""

import itertools

import numpy as np
import pytest
from conftest import chi2_pvalue
from scipy import integrate, stats

from activesci import tasks
from activesci.errors import OutOfSpaceError, ShapeError, ValidationError
from activesci.simulators import AngularDetector, WeinbergSimulator
from activesci.simulators.weinberg import (
    _inverse_cdf,
    born_coefficients,
    count_asymmetry,
    cross_section,
    forward_backward_asymmetry,
)

POINTS = [(0.2315, 35.0), (0.2315, 88.0), (0.2315, 91.1876), (0.30, 80.0), (0.17, 199.5)]
EDGES = np.linspace(-1, 1, 51)


def truth_cdf(z, b):
    """CDF of 3/8 (1 + z^2) + 3/4 b z on [-1, 1], written independently of the sampler."""
    return 3 / 8 * ((z + 1) + (z**3 + 1) / 3) + 3 / 8 * b * (z**2 - 1)


def b_of(sin2w, sqrt_s):
    return 4 / 3 * float(forward_backward_asymmetry(sin2w, sqrt_s))


@pytest.mark.parametrize("b", [-0.9999, -0.97, -0.5, 0.0, 0.3, 0.74, 0.9999])
def test_inverse_cdf_is_exact(b):
    u = np.linspace(0, 1, 100_001)[:-1]
    z = _inverse_cdf(u.copy(), b, np.empty_like(u))
    assert np.all(np.diff(z) > 0)
    assert np.abs(truth_cdf(z, b) - u).max() < 2e-15  # 5.2e-16 measured (README)


@pytest.mark.parametrize(("sin2w", "sqrt_s"), POINTS)
def test_truth_level_sample_matches_density(sin2w, sqrt_s):
    sim = WeinbergSimulator(detector=AngularDetector.perfect())
    events = sim.sample({"sin2w": sin2w}, {"sqrt_s": sqrt_s}, np.random.default_rng(7), n=10**6)
    z = events.z[:, 0]
    b = b_of(sin2w, sqrt_s)
    counts, _ = np.histogram(z, EDGES)
    assert chi2_pvalue(counts, np.diff(truth_cdf(EDGES, b))) > 1e-3
    assert stats.kstest(z[:200_000], lambda t: truth_cdf(t, b)).pvalue > 1e-3
    afb, err = count_asymmetry(z)
    assert abs(afb - forward_backward_asymmetry(sin2w, sqrt_s)) < 3 * err
    assert np.array_equal(events.x, events.z)
    assert not events.x.flags.writeable


def test_rows_with_different_theta_and_design_follow_their_own_density():
    sim = WeinbergSimulator(detector=AngularDetector.perfect())
    n = 400_000
    sqrt_s = np.where(np.arange(n) % 2 == 0, 35.0, 88.0)[:, None]
    theta = np.where(np.arange(n) % 2 == 0, 0.2315, 0.3)[:, None]
    z = sim.sample(theta, sqrt_s, np.random.default_rng(3)).z[:, 0]
    for parity, (s2, rs) in enumerate([(0.2315, 35.0), (0.3, 88.0)]):
        counts, _ = np.histogram(z[parity::2], EDGES)
        assert chi2_pvalue(counts, np.diff(truth_cdf(EDGES, b_of(s2, rs)))) > 1e-3


@pytest.mark.parametrize(("sin2w", "sqrt_s"), POINTS)
def test_detector_sample_matches_exact_likelihood(sin2w, sqrt_s):
    sim = WeinbergSimulator()
    events = sim.sample([sin2w], [sqrt_s], np.random.default_rng(11), n=10**6)
    x = events.x[:, 0]
    a = sim.detector.acceptance
    assert np.abs(x).max() <= a
    edges = np.linspace(-a, a, 61)
    density = lambda t: float(np.exp(sim.log_likelihood([t], [sin2w], [sqrt_s])[0]))  # noqa: E731
    probs = np.array(
        [integrate.quad(density, lo, hi, epsabs=1e-13)[0] for lo, hi in itertools.pairwise(edges)]
    )
    counts, _ = np.histogram(x, edges)
    assert chi2_pvalue(counts, probs) > 1e-3
    afb, err = count_asymmetry(x)
    assert abs(afb - sim.observed_afb([sin2w], [sqrt_s])[0]) < 3 * err


def test_rows_are_redrawn_with_their_own_theta_after_rejection():
    # wide acceptance losses make many rows need a second draw; each must keep its own b
    sim = WeinbergSimulator(detector=AngularDetector(acceptance=0.5, resolution=0.05, misid=0.0))
    n = 200_000
    theta = np.where(np.arange(n) < n // 2, 0.2315, 0.3)[:, None]
    x = sim.sample(theta, [80.0], np.random.default_rng(5)).x[:, 0]
    for rows, s2 in [(slice(0, n // 2), 0.2315), (slice(n // 2, n), 0.3)]:
        afb, err = count_asymmetry(x[rows])
        assert abs(afb - sim.observed_afb([s2], [80.0])[0]) < 3 * err


@pytest.mark.parametrize(
    "detector", [AngularDetector(), AngularDetector(0.9, 0.05, 0.02), AngularDetector.perfect()]
)
@pytest.mark.parametrize(("sin2w", "sqrt_s"), POINTS[:3])
def test_log_likelihood_is_normalised(detector, sin2w, sqrt_s):
    sim = WeinbergSimulator(detector=detector)
    f = lambda t: float(np.exp(sim.log_likelihood([t], [sin2w], [sqrt_s])[0]))  # noqa: E731
    a = detector.acceptance
    total, _ = integrate.quad(f, -a, a, epsabs=1e-12, epsrel=1e-12, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_log_likelihood_equals_brute_force_convolution():
    det = AngularDetector(acceptance=0.95, resolution=0.03, misid=0.01)
    sim = WeinbergSimulator(detector=det)
    b = b_of(0.2315, 88.0)
    truth = lambda z: 3 / 8 * (1 + z * z) + 3 / 4 * b * z  # noqa: E731
    gauss = lambda t: stats.norm.pdf(t, scale=det.resolution)  # noqa: E731
    p_acc, _ = integrate.quad(
        lambda z: truth(z) * det.acceptance_probability(z),
        -1,
        1,
        epsabs=1e-14,
        points=[-0.95, 0.95],
    )
    for x in [-0.94, -0.5, 0.0, 0.3, 0.9, 0.949]:
        conv, _ = integrate.quad(
            lambda z, x=x: truth(z) * ((1 - det.misid) * gauss(x - z) + det.misid * gauss(-x - z)),
            -1, 1, epsabs=1e-14, epsrel=1e-12, points=[x, -x], limit=200,
        )  # fmt: skip
        exact = float(np.exp(sim.log_likelihood([x], [0.2315], [88.0])[0]))
        assert exact == pytest.approx(conv / p_acc, rel=1e-8)


def test_log_likelihood_shapes_and_outside_acceptance():
    sim = WeinbergSimulator()
    x = np.array([[-0.5], [0.1], [0.97]])
    grid = np.linspace(0.2, 0.3, 4)[:, None]
    ll = sim.log_likelihood(x, grid, {"sqrt_s": 88.0})
    assert ll.shape == (4, 3)
    assert np.isneginf(ll[:, 2]).all()  # outside |x| <= 0.95
    assert sim.log_likelihood(x[:, 0], [0.23], [88.0]).shape == (3,)
    assert np.allclose(ll[1], sim.log_likelihood(x, grid[1], [88.0]))


def test_acceptance_probability_matches_simulation():
    det = AngularDetector(acceptance=0.8, resolution=0.05, misid=0.01)
    sim = WeinbergSimulator(detector=det)
    truth = WeinbergSimulator(detector=AngularDetector.perfect())
    z = truth.sample([0.2315], [88.0], np.random.default_rng(2), n=10**6).z[:, 0]
    x = det.respond(z, np.random.default_rng(3), np.empty_like(z))
    accepted = det.accepted(x).mean()
    p = sim.expected_count([0.2315], [88.0])[0] / (cross_section(0.2315, 88.0) * sim.luminosity)
    assert abs(accepted - p) < 3 * np.sqrt(p * (1 - p) / z.size)
    assert (
        det.misid * 0.9
        < np.mean(np.sign(x[np.abs(z) > 0.3]) != np.sign(z[np.abs(z) > 0.3]))
        < det.misid * 1.1
    )


def test_acceptance_moments_equal_numerical_integrals():
    for det in [AngularDetector(), AngularDetector(0.7, 0.1, 0.0), AngularDetector(0.9, 0.0, 0.0)]:
        for k in range(3):
            value, _ = integrate.quad(
                lambda z, k=k, det=det: z**k * det.acceptance_probability(z),
                -1,
                1,
                epsabs=1e-13,
                points=[-det.acceptance, det.acceptance],
            )
            assert det.acceptance_moments[k] == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(
    "det",
    [AngularDetector(), AngularDetector(0.7, 0.1, 0.03), AngularDetector(0.9, 0.0, 0.01)],
    ids=["default", "wide-smearing", "no-smearing"],
)
def test_forward_backward_moment_is_the_integral_of_the_recorded_density(det):
    # the closed form against 2 * int_0^a B_1(x) dx done numerically on the recorded density
    value, _ = integrate.quad(
        lambda x: det.basis(np.array([x]))[0, 1], 0.0, det.acceptance, epsabs=1e-13, epsrel=1e-12
    )
    assert det.forward_backward_moment == pytest.approx(2.0 * value, abs=1e-12)


def test_expected_count_and_poisson_experiments():
    sim = WeinbergSimulator(luminosity=0.5)
    nu = sim.expected_count({"sin2w": 0.2315}, {"sqrt_s": 91.1876})[0]
    assert nu == pytest.approx(
        cross_section(0.2315, 91.1876) * 0.5 * sim.detector.acceptance_moments @ [3 / 8, 0, 3 / 8]
    )
    rng = np.random.default_rng(0)
    counts = np.array([sim.run_experiment([0.2315], [91.1876], rng).n for _ in range(400)])
    assert abs(counts.mean() - nu) < 4 * np.sqrt(nu / counts.size)
    assert counts.var() == pytest.approx(nu, rel=0.2)
    obs = sim.run_experiment([0.2315], [91.1876], rng)
    assert obs.luminosity == 0.5 and obs.design.tolist() == [91.1876]


@pytest.mark.parametrize("convention", ["a", "b"])
@pytest.mark.parametrize("lineshape", [False, True])
def test_joint_score_is_the_gradient_of_joint_log_prob(convention, lineshape):
    task = (
        tasks.weinberg_lineshape(convention=convention)
        if lineshape
        else tasks.weinberg(convention=convention)
    )
    sim = task.simulator
    rng = np.random.default_rng(4)
    theta = sim.parameters.sample(50, rng)
    design = sim.designs.sample(50, rng)
    z = sim.sample(theta, design, rng).z
    score = sim.joint_score(z, theta, design)
    assert score.shape == (50, len(sim.parameters))
    for j in range(len(sim.parameters)):
        h = 1e-6 * (1 if j == 0 else 100)
        up, down = theta.copy(), theta.copy()
        up[:, j] += h
        down[:, j] -= h
        numeric = (sim.joint_log_prob(z, up, design) - sim.joint_log_prob(z, down, design)) / (
            2 * h
        )
        assert score[:, j] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_joint_log_prob_is_a_normalised_density_of_recorded_events():
    sim = WeinbergSimulator(detector=AngularDetector(acceptance=0.8, resolution=0.05, misid=0.01))
    f = lambda z: float(np.exp(sim.joint_log_prob([z], [0.26], [88.0])[0]))  # noqa: E731
    total, _ = integrate.quad(f, -1, 1, epsabs=1e-12, points=[-0.8, 0.8])
    assert total == pytest.approx(1.0, abs=1e-9)


def test_joint_ratio_is_the_truth_level_density_ratio():
    sim = WeinbergSimulator()
    z = np.array([-0.9, -0.2, 0.4, 0.99])
    ratio = sim.joint_log_prob(z, [0.21], [88.0]) - sim.joint_log_prob(z, [0.25], [88.0])
    b0, b1 = b_of(0.21, 88.0), b_of(0.25, 88.0)
    expected = np.log((1 + z * z + 2 * b0 * z) / (1 + z * z + 2 * b1 * z))  # symmetric acceptance
    assert ratio == pytest.approx(expected, rel=1e-12)


def test_lineshape_peak_moves_with_mz():
    sim = tasks.weinberg_lineshape().simulator
    energies = np.linspace(89, 93, 4001)[:, None]
    for mz in (90.5, 91.1876, 92.0):
        counts = sim.expected_count(np.tile([0.2315, mz, 2.4952], (energies.shape[0], 1)), energies)
        assert energies[np.argmax(counts), 0] == pytest.approx(mz + 0.0, abs=0.05)
    c1, _ = born_coefficients(0.2315, 91.1876)
    assert c1 > 0


@pytest.mark.parametrize(
    ("theta", "design", "error", "words"),
    [
        ({"sin2w": 0.5}, {"sqrt_s": 91.0}, OutOfSpaceError, ["sin2w=0.5", "[0.15, 0.35]"]),
        ({"sin2w": 0.23}, {"sqrt_s": 300.0}, OutOfSpaceError, ["sqrt_s=300", "[20, 210] GeV"]),
        ([np.nan], [91.0], OutOfSpaceError, ["sin2w=nan", "not a finite number"]),
        ({"sinw": 0.23}, {"sqrt_s": 91.0}, ValidationError, ["unknown name", "'sinw'", "sin2w"]),
        (np.zeros((3, 2)), [91.0], ShapeError, ["shape (n, 1)", "(3, 2)"]),
        (np.full((3, 1), 0.2), np.full((2, 1), 91.0), ShapeError, ["3 rows", "2 rows"]),
    ],
)
def test_bad_input_names_value_and_range(theta, design, error, words):
    sim = WeinbergSimulator()
    rng = np.random.default_rng(0)
    for call in (
        lambda: sim.sample(theta, design, rng, n=None if np.ndim(theta) == 2 else 3),
        lambda: sim.expected_count(theta, design),
    ):
        with pytest.raises(error) as info:
            call()
        assert isinstance(info.value, ValueError)
        for w in words:
            assert w in str(info.value)


def test_bad_latent_and_settings_are_rejected():
    sim = WeinbergSimulator()
    with pytest.raises(ValidationError, match=r"within \[-1, 1\]"):
        sim.joint_log_prob([1.5], [0.23], [88.0])
    with pytest.raises(ShapeError, match="z has 2 rows"):
        sim.joint_score([0.1, 0.2], np.full((3, 1), 0.23), [88.0])
    with pytest.raises(ValidationError, match="NaN"):
        sim.log_likelihood([np.nan], [0.23], [88.0])
    with pytest.raises(ValidationError, match="luminosity"):
        WeinbergSimulator(luminosity=-1)
    with pytest.raises(ValidationError, match="unknown Weinberg parameter"):
        WeinbergSimulator(parameters=tasks.gaussian().parameters)
    with pytest.raises(ValidationError, match="acceptance must be in"):
        AngularDetector(acceptance=1.5)
    with pytest.raises(ValidationError, match="misid must be in"):
        AngularDetector(misid=0.7)
    with pytest.raises(ValidationError, match="n must be a non-negative integer"):
        sim.sample([0.23], [88.0], np.random.default_rng(0), n=-5)


def test_seeded_sampling_is_reproducible():
    sim = WeinbergSimulator()
    a = sim.sample([0.23], [88.0], np.random.default_rng(9), n=70_000).x
    b = sim.sample([0.23], [88.0], np.random.default_rng(9), n=70_000).x
    assert np.array_equal(a, b)


@pytest.mark.parametrize("misid", [1e-20, 1e-9, 0.3])
def test_charge_flips_are_bernoulli_for_any_probability(misid):
    det = AngularDetector(acceptance=1.0, resolution=0.0, misid=misid)
    n = 200_000
    flipped = det._flipped(n, np.random.default_rng(0))
    assert flipped.min(initial=0) >= 0 and flipped.max(initial=0) < n
    assert np.unique(flipped).size == flipped.size
    assert abs(flipped.size - n * misid) <= 5 * np.sqrt(n * misid * (1 - misid)) + 1
