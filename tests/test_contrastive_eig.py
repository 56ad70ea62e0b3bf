"""Contrastive (PCE / NMC) EIG against analytic truth and the grid EIG with the exact likelihood.

The references never come from the contrastive code: the Gaussian toy's EIG is analytic,
``0.5 * dim * log(1 + n / sigma^2)``; on Weinberg the referee is the grid estimator
(:func:`expected_information_gain` on a :class:`GridPosterior`) with the exact likelihood.

Tolerances: PCE (``value``) is biased low and NMC (``upper``) high by amounts that vanish as the
contrasts grow, so the truth must lie in ``[value - 3 se, upper + 3 se']``, and an agreement
test allows the measured bracket width ``upper - value`` on top of 3 combined standard errors.
"""

import math

import numpy as np
import pytest
from scipy import special

from activesci import tasks
from activesci.design import EIGEstimate, contrastive_information_gain, expected_information_gain
from activesci.errors import ValidationError
from activesci.inference import ExactLikelihood, GridPosterior, SamplePosterior, pretrained


def gaussian_eig(sim, phase: float) -> float:
    """Analytic EIG of the Gaussian toy under its N(0, 1) prior (truncated at 5 sigma)."""
    sigma = 2.0 + math.cos(phase)
    return 0.5 * len(sim.parameters) * math.log(1 + sim.events_per_experiment / sigma**2)


def brackets(estimate: EIGEstimate, truth: float, k: float = 3.0) -> bool:
    return (
        estimate.value - k * estimate.stderr <= truth <= estimate.upper + k * estimate.upper_stderr
    )


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("kind", ["sample", "grid"])
def test_gaussian_contrastive_brackets_the_analytic_eig(dim, kind):
    task = tasks.gaussian(dim=dim)
    sim = task.simulator
    if kind == "sample":
        post = SamplePosterior(task.parameters, n_particles=4000, simulator=sim, seed=0)
    else:
        post = GridPosterior(task.parameters, 31 if dim == 3 else 401, simulator=sim)
    truth = gaussian_eig(sim, math.pi)  # 1.20 (dim 1), 3.60 (dim 3)
    n, contrasts = 800, 1600
    eig = contrastive_information_gain(
        post, sim, [math.pi], exact=True, n_samples=n, n_contrast=contrasts, rng=11
    )
    assert eig.n_samples == n
    assert eig.value <= eig.upper  # the NMC drops theta_i, which the PCE adds to its mean
    assert brackets(eig, truth)
    # log(2400) = 7.8 >> EIG: the PCE's saturation costs little, so the value alone is close
    assert abs(eig.value - truth) < 3 * eig.stderr + (eig.upper - eig.value) + 0.02
    assert eig.upper - eig.value < 0.15 * dim


@pytest.mark.parametrize("kind", ["sample", "grid"])
def test_gaussian_contrastive_draws_from_the_posterior_not_the_prior(kind):
    """After 10 events at phase pi the posterior precision is 1 + 10 = 11 per component, so
    the next 10 events at phase 0 (sigma = 3) add 0.5 log(1 + 10 / (9 * 11)) = 0.048 nats per
    component (from the prior they would add 0.5 log(1 + 10 / 9) = 0.37)."""
    task = tasks.gaussian(dim=2)
    sim = task.simulator
    if kind == "sample":
        post = SamplePosterior(task.parameters, n_particles=4000, simulator=sim, seed=0)
    else:
        post = GridPosterior(task.parameters, 81, simulator=sim)
    post.update(task.experiment(seed=0).run([math.pi]), ExactLikelihood(sim))
    truth = 0.5 * 2 * math.log(1 + 10 / (9 * 11))
    eig = contrastive_information_gain(
        post, sim, [0.0], exact=True, n_samples=800, n_contrast=800, rng=4
    )
    assert brackets(eig, truth)
    assert abs(eig.value - truth) < 3 * eig.stderr + (eig.upper - eig.value) + 0.005


def test_gaussian_pce_saturates_at_log_k_while_nmc_overshoots():
    task = tasks.gaussian(dim=3, events_per_experiment=1000)
    sim = task.simulator
    # a grid posterior: its draws are distinct (a particle posterior repeats particles, and a
    # contrast equal to theta_i makes that term log(K / 2))
    post = GridPosterior(task.parameters, 21, simulator=sim)
    truth = gaussian_eig(sim, math.pi)  # 1.5 log(1001) = 10.4 nats
    n, contrasts = 8, 8
    eig = contrastive_information_gain(
        post, sim, [math.pi], exact=True, n_samples=n, n_contrast=contrasts, rng=0
    )
    log_k = math.log(n + contrasts)  # 2.77
    assert truth > log_k + 7
    assert eig.value <= log_k + 1e-12  # every PCE term is at most log K
    assert eig.value > log_k - 0.05  # own likelihood dominates: each term is ~ log K
    assert eig.upper > truth  # NMC with 15 contrasts: far too high (an upper estimate)


@pytest.mark.parametrize(("energy", "luminosity"), [(91.19, 0.2), (60.0, 1.0)])
def test_weinberg_contrastive_exact_matches_the_grid_referee(energy, luminosity):
    task = tasks.weinberg(luminosity=luminosity)
    sim = task.simulator
    post = GridPosterior(task.parameters, 201, simulator=sim)
    referee = expected_information_gain(post, sim, [energy], exact=True, n_samples=600, rng=1)
    eig = contrastive_information_gain(
        post, sim, [energy], exact=True, n_samples=400, n_contrast=400, rng=2
    )
    # grid: 1.91 +- 0.03 at the pole (0.2 pb^-1), 0.048 +- 0.002 at 60 GeV (1 pb^-1)
    tolerance = 3 * math.hypot(referee.stderr, eig.stderr) + (eig.upper - eig.value)
    assert abs(eig.value - referee.value) < tolerance
    assert eig.value - 3 * eig.stderr <= referee.value + 3 * referee.stderr
    assert referee.value - 3 * referee.stderr <= eig.upper + 3 * eig.upper_stderr


@pytest.mark.slow  # 11 s: 400 x 65,000 network evaluations and 300 grid updates
def test_weinberg_learned_pce_is_the_exact_eig_less_the_posterior_kl():
    """With a learned estimator ``q`` the PCE tends (many contrasts) to the exact EIG minus
    ``E_x KL(p(theta | x) || q(theta | x))``, the mean divergence of the learned posterior
    from the exact one. That is an identity of the K -> infinity limit, not a tolerance: the
    referee computes both posteriors on a grid (``GridPosterior.update``) for experiments
    simulated from the prior, and the difference of the entropies less the KL is averaged.
    The shipped estimator's posterior at the Z pole is shifted by ~1 std on average, so
    this checks the learned PCE against a referee that knows about that shift (about -1.1
    nats), and that the PCE stays below the exact EIG (a lower bound for any estimator).
    """
    task = tasks.weinberg(luminosity=0.2)
    sim = task.simulator
    est = pretrained.find(sim, "alices", 100_000, 0)
    assert est is not None, "the shipped flagship estimator is missing"
    prior = GridPosterior(task.parameters, 201, simulator=sim)
    rng = np.random.default_rng(5)
    gains = []
    for theta in prior.sample(150, rng):
        obs = sim.run_experiment(theta, [91.19], rng)
        exact = prior.copy().update(obs, ExactLikelihood(sim)).probabilities
        learned = prior.copy().update(obs, est).probabilities
        with np.errstate(divide="ignore"):
            kl = special.rel_entr(exact, learned).sum()
        gains.append(prior.entropy() - (special.entr(exact).sum() + np.log(prior.cell_volume)) - kl)
    gains = np.array(gains)
    referee, referee_se = gains.mean(), gains.std(ddof=1) / np.sqrt(len(gains))
    exact_eig = expected_information_gain(prior, sim, [91.19], exact=True, n_samples=400, rng=1)
    eig = contrastive_information_gain(
        prior, sim, [91.19], estimator=est, n_samples=200, n_contrast=200, rng=2
    )
    tolerance = 3 * math.hypot(referee_se, eig.stderr) + abs(eig.upper - eig.value)
    assert abs(eig.value - referee) < tolerance
    assert eig.value < exact_eig.value + 3 * math.hypot(eig.stderr, exact_eig.stderr)


def test_weinberg_learned_and_exact_agree_where_the_data_say_little():
    task = tasks.weinberg(luminosity=1.0)
    sim = task.simulator
    est = pretrained.find(sim, "alices", 100_000, 0)
    post = GridPosterior(task.parameters, 201, simulator=sim)
    referee = expected_information_gain(post, sim, [60.0], exact=True, n_samples=400, rng=1)
    eig = contrastive_information_gain(
        post, sim, [60.0], estimator=est, n_samples=200, n_contrast=200, rng=2
    )
    # 5 events at 60 GeV: the EIG (0.05 nats) comes mostly from the count, which is exact
    assert abs(eig.value - referee.value) < 3 * math.hypot(eig.stderr, referee.stderr) + 0.01


def test_lineshape_contrastive_exact_matches_the_grid_referee():
    task = tasks.weinberg_lineshape(luminosity=0.2)
    sim = task.simulator
    post = GridPosterior(task.parameters, 15, simulator=sim)
    referee = expected_information_gain(post, sim, [91.19], exact=True, n_samples=64, rng=1)
    eig = contrastive_information_gain(
        post, sim, [91.19], exact=True, n_samples=200, n_contrast=800, rng=2
    )
    # about 2.8 nats from the prior at the pole; log(1000) = 6.9
    tolerance = 3 * math.hypot(referee.stderr, eig.stderr) + (eig.upper - eig.value)
    assert abs(eig.value - referee.value) < tolerance
    assert referee.value > 1.5  # the design is informative: the comparison means something


def test_auto_dispatch_sends_grids_to_the_grid_and_samples_to_contrasts():
    task = tasks.gaussian()
    sim = task.simulator
    grid = GridPosterior(task.parameters, simulator=sim)
    by_default = expected_information_gain(grid, sim, [1.0], exact=True, n_samples=8, rng=3)
    on_grid = expected_information_gain(
        grid, sim, [1.0], exact=True, n_samples=8, rng=3, method="grid"
    )
    assert by_default == on_grid and on_grid.upper is None
    samples = SamplePosterior(task.parameters, n_particles=500, simulator=sim)
    auto = expected_information_gain(samples, sim, [1.0], exact=True, n_samples=8, rng=3)
    direct = contrastive_information_gain(samples, sim, [1.0], exact=True, n_samples=8, rng=3)
    assert auto == direct and auto.upper is not None
    forced = expected_information_gain(
        grid, sim, [1.0], exact=True, n_samples=8, n_contrast=5, rng=3, method="contrastive"
    )
    assert forced == contrastive_information_gain(
        grid, sim, [1.0], exact=True, n_samples=8, n_contrast=5, rng=3
    )
    assert EIGEstimate(1.0, 0.1, 8) == EIGEstimate(value=1.0, stderr=0.1, n_samples=8)


def test_an_empty_experiment_still_counts_through_the_rate():
    task = tasks.weinberg(luminosity=0.2)
    sim = task.simulator
    post = GridPosterior(task.parameters, 201, simulator=sim)
    eig = contrastive_information_gain(post, sim, [200.0], exact=True, n_samples=16, rng=0)
    assert np.isfinite(eig.value) and abs(eig.value) < 0.05  # < 1 event expected at 200 GeV


class _Broken:
    def __init__(self, kind):
        self.kind = kind

    def log_ratio(self, x, theta, design):
        out = np.zeros((len(theta), len(x)))
        if self.kind == "nan":
            out[0, 0] = np.nan
            return out
        return out[:, :-1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 1}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"n_samples": 8.0}, "n_samples"),
        ({"n_contrast": -1}, "n_contrast"),
        ({"n_contrast": 2.5}, "n_contrast"),
        ({"exact": False}, "estimator"),
        ({"exact": False, "estimator": object()}, "log_ratio"),
        ({"exact": False, "estimator": _Broken("nan")}, "NaN"),
        ({"exact": False, "estimator": _Broken("shape")}, "shape"),
        ({"design": [[1.0], [2.0]]}, "one design"),
    ],
)
def test_bad_inputs_are_refused(kwargs, match):
    task = tasks.gaussian()
    sim = task.simulator
    post = SamplePosterior(task.parameters, n_particles=100, simulator=sim)
    args = {"exact": True, "n_samples": 4, "rng": 0, "design": [1.0], **kwargs}
    design = args.pop("design")
    with pytest.raises(ValidationError, match=match):
        contrastive_information_gain(post, sim, design, **args)


def test_bad_posteriors_and_methods_are_refused():
    task = tasks.gaussian()
    sim = task.simulator
    samples = SamplePosterior(task.parameters, n_particles=100, simulator=sim)
    grid = GridPosterior(task.parameters, simulator=sim)
    with pytest.raises(ValidationError, match="dict"):
        contrastive_information_gain({}, sim, [1.0], exact=True)
    with pytest.raises(ValidationError, match="dict"):
        expected_information_gain({}, sim, [1.0], exact=True)
    with pytest.raises(ValidationError, match="'nested'"):
        expected_information_gain(grid, sim, [1.0], exact=True, method="nested")
    with pytest.raises(ValidationError, match="SamplePosterior"):
        expected_information_gain(samples, sim, [1.0], exact=True, method="grid")
    with pytest.raises(ValidationError, match="n_contrast"):
        expected_information_gain(grid, sim, [1.0], exact=True, n_contrast=4)


def test_the_eig_strategy_takes_the_grid_only_where_it_is_cheap_and_exact():
    """Nested on a grid for the exact likelihood or one parameter; contrastive otherwise."""
    from activesci.design.optimizer import DesignContext, EIGStrategy

    def method(task, posterior, exact):
        strategy = EIGStrategy(n_calls=1, n_initial_points=1, n_samples=4, exact=exact)
        estimator = ExactLikelihood(task.simulator)
        context = DesignContext(0, task.designs, posterior, task.simulator, estimator, seed=0)
        strategy.propose(context)
        return strategy.record["eig_method"]

    one, two = tasks.gaussian(), tasks.gaussian(dim=2)
    grid1 = GridPosterior(one.parameters, 41, simulator=one.simulator)
    grid2 = GridPosterior(two.parameters, 21, simulator=two.simulator)
    particles = SamplePosterior(two.parameters, 200, simulator=two.simulator)
    assert method(one, grid1, exact=False) == "grid"
    assert method(two, grid2, exact=True) == "grid"
    assert method(two, grid2, exact=False) == "contrastive"
    assert method(two, particles, exact=True) == "contrastive"
