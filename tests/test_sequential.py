"""Sequential inference: truncation, score calibration and the self-check, against exact truth."""

import numpy as np
import pytest
from conftest import closure_against_exact

import activesci as asci
from activesci.errors import ValidationError
from activesci.inference import ExactLikelihood, GridPosterior, closure
from activesci.inference.selfcheck import self_check
from activesci.inference.sequential import CalibratedEstimator, _gradient_design, _quadratic
from activesci.inference.truncation import (
    MIN_AXIS_CELLS,
    RestrictedSimulator,
    edge_mass,
    grid_resolution,
    narrowed_space,
    shrink_factor,
    truncation_region,
)


class _Biased:
    """The Gaussian toy's exact likelihood plus a spurious ``slope * theta`` per event."""

    def __init__(self, sim, slope):
        self.exact, self.slope = ExactLikelihood(sim), slope

    def log_ratio(self, x, theta, design):
        return self.exact.log_ratio(x, theta, design) + self.slope * np.asarray(theta)[:, :1]

    def score(self, x, theta, design):
        sd = 2.0 + np.cos(np.asarray(design, dtype=float).reshape(-1)[0])
        return (np.asarray(x) - np.asarray(theta)[0]) / sd**2 + self.slope


def _posterior(task, observations, estimator, bounds=((-1.0, 2.0),), cells=601):
    post = GridPosterior(narrowed_space(task.parameters, bounds), cells, simulator=task.simulator)
    for obs in observations:
        post.update(obs, estimator)
    return post


def test_calibration_removes_a_score_bias_that_grows_with_the_data():
    task = asci.tasks.gaussian(events_per_experiment=500)
    exp = task.experiment(truth={"mu0": 0.5}, seed=3)
    observations = [exp.run([np.pi]) for _ in range(8)]  # 4000 events: std ~ 0.016
    biased = _Biased(task.simulator, 0.05)
    calibrated = CalibratedEstimator(biased, task.simulator, [[0.3, 0.7]], events=20_000)
    exact = _posterior(task, observations, ExactLikelihood(task.simulator), ((0.3, 0.7),))
    raw = closure(exact, _posterior(task, observations, biased, ((0.3, 0.7),)))
    fixed = closure(exact, _posterior(task, observations, calibrated, ((0.3, 0.7),)))
    assert abs(raw["mean_shift"][0]) > 2.0  # 0.05 * 4000 * var / std = 3.2 std
    assert abs(fixed["mean_shift"][0]) < 0.05
    assert fixed["width_ratio"][0] == pytest.approx(1.0, abs=0.01)
    record = calibrated.calibrate([np.pi])
    assert record["gradient"][0] == pytest.approx(0.05, abs=1e-3)  # the gold control variate


class _Distorted:
    """The exact likelihood in a distorted parametrisation: ``log r(x | c + (theta - c) A)``.

    Its score is ``A t(x | phi)``: too flat where ``A`` shrinks, too steep where it stretches,
    as a classifier's score often is for the parameters it resolves worst.
    """

    def __init__(self, sim, centre, matrix):
        self.exact, self.c, self.a = ExactLikelihood(sim), np.asarray(centre), np.asarray(matrix)

    def _phi(self, theta):
        return self.c + (np.atleast_2d(np.asarray(theta, dtype=float)) - self.c) @ self.a

    def log_ratio(self, x, theta, design):
        return self.exact.log_ratio(x, self._phi(theta), design)

    def score(self, x, theta, design):
        sd = 2.0 + np.cos(np.asarray(design, dtype=float).reshape(-1)[0])
        return ((np.asarray(x) - self._phi(theta)[0]) / sd**2) @ self.a.T


@pytest.mark.parametrize("matrix", [[[0.5]], [[0.6, 0.0], [0.0, 1.4]]], ids=["1d", "2d"])
def test_the_score_map_restores_the_width_of_a_distorted_score(matrix):
    """The score's scale is mapped back by the joint score's regression (gold)."""
    p = len(matrix)
    task = asci.tasks.gaussian(dim=p, events_per_experiment=400)
    exp = task.experiment(truth={f"mu{i}": 0.5 for i in range(p)}, seed=5)
    observations = [exp.run([np.pi]) for _ in range(4)]  # 1600 events: std ~ 0.025
    bounds = [(0.35, 0.65)] * p
    cells = 301 if p == 1 else 81
    distorted = _Distorted(task.simulator, [0.5] * p, matrix)
    exact = _posterior(task, observations, ExactLikelihood(task.simulator), bounds, cells)
    raw = closure(exact, _posterior(task, observations, distorted, bounds, cells))
    assert max(abs(np.asarray(raw["width_ratio"]) - 1.0)) > 0.2  # the distortion is visible
    focus = [(0.4, 0.6)] * p
    for affine in (True, False):
        cal = CalibratedEstimator(
            distorted, task.simulator, bounds, events=20_000, affine=affine, focus=focus
        )
        fixed = closure(exact, _posterior(task, observations, cal, bounds, cells))
        widths = np.asarray(fixed["width_ratio"])
        if not affine:  # the bias correction alone cannot change a width
            assert max(abs(widths - 1.0)) > 0.2
            continue
        assert widths == pytest.approx(np.ones(p), abs=0.03)
        assert np.abs(fixed["mean_shift"]) == pytest.approx(np.zeros(p), abs=0.05)
        record = cal.calibrate([np.pi])
        assert np.diag(record["score_map"]) == pytest.approx(1.0 / np.diag(matrix), abs=0.03)
        assert record["scale"] == pytest.approx(np.ones(p), abs=0.02)
        again = CalibratedEstimator.from_state(distorted, task.simulator, cal.state())
        assert np.array_equal(again.focus, cal.focus) and again.affine
        theta = np.full((3, p), 0.45)
        assert np.array_equal(again.log_ratio(observations[0].x, theta, [np.pi]),
                              cal.log_ratio(observations[0].x, theta, [np.pi]))  # fmt: skip


class _Wavy:
    """The exact likelihood plus ``A sin(w (theta_i - 0.5) + phase)`` for each parameter.

    A bias whose slope swings across the grid (a whole period over ``[0, 1]``) but is smooth
    on the scale of the posterior, as a classifier trained on a wide region can have.
    """

    def __init__(self, sim, amplitude, omega, phase):
        self.exact = ExactLikelihood(sim)
        self.a, self.w, self.phase = amplitude, omega, phase

    def log_ratio(self, x, theta, design):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        bias = self.a * np.sin(self.w * (theta - 0.5) + self.phase)
        return self.exact.log_ratio(x, theta, design) + bias.sum(axis=1)[:, None]

    def score(self, x, theta, design):
        theta = np.asarray(theta, dtype=float).reshape(-1)
        sd = 2.0 + np.cos(np.asarray(design, dtype=float).reshape(-1)[0])
        slope = self.a * self.w * np.cos(self.w * (theta - 0.5) + self.phase)
        return (np.asarray(x) - theta) / sd**2 + slope


def test_with_several_parameters_the_calibration_is_right_where_the_posterior_is():
    """A quadratic fitted across a grid 40 std wide misses the bias's slope and curvature at
    the posterior; fitted on the star around the focus, it does not."""
    task = asci.tasks.gaussian(dim=2, events_per_experiment=400)
    exp = task.experiment(truth={"mu0": 0.5, "mu1": 0.5}, seed=5)
    observations = [exp.run([np.pi]) for _ in range(4)]  # 1600 events: std ~ 0.025
    bounds = [(0.0, 1.0)] * 2
    wavy = _Wavy(task.simulator, 0.008, 2 * np.pi, 1.0)
    exact = _posterior(task, observations, ExactLikelihood(task.simulator), bounds, 121)
    raw = closure(exact, _posterior(task, observations, wavy, bounds, 121))
    assert np.min(np.abs(raw["mean_shift"])) > 0.5
    assert np.min(raw["width_ratio"]) < 0.92  # the bias's curvature fakes information
    focus = np.array([(0.4, 0.6)] * 2)
    cal = CalibratedEstimator(wavy, task.simulator, bounds, events=20_000, focus=focus)
    learned = _posterior(task, observations, cal, bounds, 121)
    fixed = closure(exact, learned)
    assert np.abs(fixed["mean_shift"]) == pytest.approx([0.0, 0.0], abs=0.05)
    assert fixed["width_ratio"] == pytest.approx([1.0, 1.0], abs=0.02)
    star = cal.calibrate([np.pi])["points"][-5:]  # the centre and half-way to each face
    expected = [[0.5, 0.5], [0.55, 0.5], [0.5, 0.55], [0.45, 0.5], [0.5, 0.45]]
    assert star == pytest.approx(np.array(expected))
    check = self_check(learned, cal, observations, np.array(bounds), task.parameters)
    assert max(check["fit_residual"]) < 0.1  # the quadratic fits the bias where it matters


def test_the_self_check_predicts_each_parameters_width_error_from_the_score_scale():
    """A distorted score calibrated without the map: the check's widths match the referee's."""
    task = asci.tasks.gaussian(dim=2, events_per_experiment=400)
    exp = task.experiment(truth={"mu0": 0.5, "mu1": 0.5}, seed=5)
    observations = [exp.run([np.pi]) for _ in range(4)]
    bounds = [(0.3, 0.7)] * 2
    distorted = _Distorted(task.simulator, [0.5, 0.5], [[0.6, 0.0], [0.0, 1.4]])
    cal = CalibratedEstimator(distorted, task.simulator, bounds, events=20_000, affine=False)
    learned = _posterior(task, observations, cal, bounds, 81)
    exact = _posterior(task, observations, ExactLikelihood(task.simulator), bounds, 81)
    truth = np.asarray(closure(exact, learned)["width_ratio"])
    # the bias correction adds a (1 - a) to the a^2 of the score's curvature: 1 / sqrt(a)
    assert truth == pytest.approx([0.6**-0.5, 1.4**-0.5], rel=0.03)  # too wide, too narrow
    check = self_check(learned, cal, observations, np.array(bounds), task.parameters)
    assert check["width_ratios"] == pytest.approx(truth, rel=0.05)
    assert check["width_ratio"] == pytest.approx(truth[0], rel=0.05)  # the farthest from 1
    assert not check["ok"] and any("width" in w for w in check["warnings"])
    assert check["retrain"] == next(w for w in check["warnings"] if "width" in w)  # retrain


@pytest.mark.parametrize(
    "matrix", [[[1.0, 0.0], [0.6, 1.0]], [[0.8, 0.4], [-0.3, 1.1]]], ids=["shear", "mixed"]
)
def test_the_self_check_sees_a_score_whose_errors_mix_the_parameters(matrix):
    """A score ``A t`` with off-diagonal ``A``: the per-parameter scales look right after the
    (diagonal) score map, yet a marginal is 12-20% too wide. The check's matrix comparison
    predicts every marginal's width error as the exact posterior on the same data measures it.
    """
    task = asci.tasks.gaussian(dim=2, events_per_experiment=400)
    exp = task.experiment(truth={"mu0": 0.5, "mu1": 0.5}, seed=5)
    observations = [exp.run([np.pi]) for _ in range(4)]
    bounds = [(0.3, 0.7)] * 2
    distorted = _Distorted(task.simulator, [0.5, 0.5], matrix)
    cal = CalibratedEstimator(
        distorted, task.simulator, bounds, events=20_000, focus=[(0.4, 0.6)] * 2
    )
    learned = _posterior(task, observations, cal, bounds, 81)
    exact = _posterior(task, observations, ExactLikelihood(task.simulator), bounds, 81)
    truth = np.asarray(closure(exact, learned)["width_ratio"])
    assert max(truth) > 1.1  # the mixing is visible in the referee's widths
    assert cal.calibrate([np.pi])["scale"] == pytest.approx([1.0, 1.0], abs=0.02)  # not here
    check = self_check(learned, cal, observations, np.array(bounds), task.parameters)
    assert check["width_ratios"] == pytest.approx(truth, abs=0.02)
    assert not check["ok"] and any("width" in w for w in check["warnings"])


def test_calibration_state_round_trips_without_simulating():
    task = asci.tasks.gaussian()
    cal = CalibratedEstimator(_Biased(task.simulator, 0.2), task.simulator, [[-1, 1]], events=500)
    theta = np.linspace(-1, 1, 5)[:, None]
    before = cal.correction(theta, [1.0])
    again = CalibratedEstimator.from_state(cal.estimator, task.simulator, cal.state())
    again.simulator = None  # anything simulated now would fail
    assert np.array_equal(again.correction(theta, [1.0]), before)
    with pytest.raises(ValidationError, match="bounds must give"):
        CalibratedEstimator(cal.estimator, task.simulator, [[0, 1], [0, 1]])


@pytest.mark.parametrize("p", [1, 2, 3])
def test_quadratic_gradient_matches_its_design_matrix(p):
    rng = np.random.default_rng(p)
    coef = rng.normal(size=p + p * (p + 1) // 2)
    u = rng.uniform(-1, 1, (4, p))
    analytic = (_gradient_design(u) @ coef).reshape(4, p)
    eps = 1e-6
    numeric = np.stack(
        [(_quadratic(coef, u + eps * e) - _quadratic(coef, u - eps * e)) / (2 * eps)
         for e in np.eye(p)], axis=1,
    )  # fmt: skip
    assert analytic == pytest.approx(numeric, abs=1e-7)


def test_truncation_region_holds_the_posterior_and_stays_in_the_prior():
    task = asci.tasks.gaussian(events_per_experiment=50)
    exp = task.experiment(truth={"mu0": 0.5}, seed=1)
    post = _posterior(task, [exp.run([np.pi])], ExactLikelihood(task.simulator), ((-3, 3),), 2001)
    bounds = truncation_region(post, task.parameters)
    mean, std = task.simulator.posterior(post.observations)  # analytic (far from the bounds)
    assert bounds[0, 0] < mean[0] - 4.9 * std[0] and bounds[0, 1] > mean[0] + 4.9 * std[0]
    assert bounds[0, 1] - bounds[0, 0] < 20 * std[0]
    assert (bounds[:, 0] >= task.parameters.bounds[:, 0]).all()
    assert shrink_factor(np.array([[0.0, 4.0]]), np.array([[1.0, 2.0]])) == pytest.approx(4.0)
    assert edge_mass(post, bounds, task.parameters) < 1e-6
    assert edge_mass(post, np.array([[mean[0], 3.0]]), task.parameters) > 0.3


def test_shrink_factor_follows_the_parameter_that_shrank_most():
    """With several parameters one may be pinned down while another stays prior-wide."""
    old = np.array([[0.0, 4.0], [0.0, 1.0], [2.0, 3.0]])
    new = np.array([[1.0, 2.0], [0.0, 1.0], [2.0, 3.0]])
    assert shrink_factor(old, new) == pytest.approx(4.0)


def test_grid_resolution_gives_every_axis_the_same_cells_per_std():
    bounds = np.array([[0.15, 0.35], [90.0, 92.5], [2.0, 3.0]])
    std = np.array([0.0194, 0.066, 0.135])  # the line shape after 3 rounds
    n = np.array(grid_resolution(bounds, std, 31**3))
    per_std = n * std / (bounds[:, 1] - bounds[:, 0])
    assert per_std == pytest.approx(np.full(3, per_std.mean()), rel=0.05)
    assert per_std.mean() > 2.0  # equal axes of 31 would give 0.8 along M_Z
    assert np.prod(n) == pytest.approx(31**3, rel=0.05)
    n = grid_resolution(np.array([[0.0, 1.0]] * 3), np.array([1e-4, 0.3, 0.3]), 31**3)
    assert n[1:] == (MIN_AXIS_CELLS, MIN_AXIS_CELLS)  # wide axes keep the minimum
    assert n[0] == pytest.approx(31**3 / MIN_AXIS_CELLS**2, rel=0.01)


def test_restricted_simulator_draws_the_prior_inside_the_box_only():
    task = asci.tasks.weinberg()
    restricted = RestrictedSimulator(task.simulator, [[0.22, 0.24]])
    draws = restricted.parameters.sample(1000, np.random.default_rng(0))
    assert draws.min() >= 0.22 and draws.max() <= 0.24
    assert restricted.capabilities == task.simulator.capabilities
    assert restricted.designs is task.simulator.designs


@pytest.mark.slow
@pytest.mark.parametrize("samples", [1_000, 50_000])
def test_learned_posterior_closes_every_round_and_the_check_knows_when_it_does_not(samples):
    """The flagship, learned vs exact on the same data at every round, from the first."""
    task = asci.tasks.weinberg(luminosity=0.2)
    learner = asci.ActiveLearner(
        task,
        experiment=task.experiment(truth={"sin2w": 0.2315}, seed=0),
        estimator="alices",
        strategy="fixed",
        seed=0,
        training_samples=samples,
        progress=False,
    )
    flagged = []
    for state in learner.iterate(3):
        result = closure_against_exact(task.simulator, state.posterior)
        flagged.append(not state.check["ok"])
        if samples == 50_000:
            assert abs(result["mean_shift"][0]) <= 0.2, state.round
            assert 0.9 <= result["width_ratio"][0] <= 1.1, state.round
        assert state.summary()["check"] is state.check
    assert learner.region[0, 1] - learner.region[0, 0] < 0.2  # truncated after a few rounds
    assert all(flagged) if samples == 1_000 else not any(flagged)


def test_training_region_keeps_a_floor_of_event_widths_while_the_grid_shrinks():
    from activesci.inference.truncation import FLOOR, training_region

    task = asci.tasks.gaussian(events_per_experiment=400)
    exp = task.experiment(truth={"mu0": 0.5}, seed=2)
    obs = [exp.run([np.pi]) for _ in range(4)]  # 1600 events: std 3/40, an event's 3
    post = _posterior(task, obs, ExactLikelihood(task.simulator), ((-3, 3),), 2001)
    grid = truncation_region(post, task.parameters)
    train = training_region(post, task.parameters, grid)
    event_width = float(post.std()[0]) * np.sqrt(post.n_events)
    assert train[0, 1] - train[0, 0] == pytest.approx(FLOOR * event_width, rel=1e-9)
    assert train[0, 0] < grid[0, 0] and train[0, 1] > grid[0, 1]  # the grid is much narrower
    wide = np.array([[-2.5, 2.5]])
    assert np.array_equal(training_region(post, task.parameters, wide), wide)  # never narrower


def test_cli_prints_the_self_check_verdict_of_every_round(tmp_path, capsys):
    from activesci.cli import main

    args = ["run", "weinberg", "--rounds", "2", "--strategy", "fixed", "--luminosity", "0.2"]
    args += ["--training-samples"]
    assert main([*args, "1000", "--out", str(tmp_path / "starved"), "--seed", "0"]) == 0
    out, err = capsys.readouterr()
    assert out.count(" WARNING") == 2 and err.count("warning: round") >= 2


def test_the_learner_retrains_once_a_round_on_a_finding_a_training_can_fix(tmp_path, monkeypatch):
    """The check's ``retrain`` finding is acted on once per round (even if the next check
    still finds it), recorded with its reason, and a resumed run takes the same path."""
    import activesci.learner.sequential as learner_module

    real = learner_module.self_check

    def flagging(*args):
        return {**real(*args), "ok": False, "retrain": "a planted bias", "warnings": ["planted"]}

    monkeypatch.setattr(learner_module, "self_check", flagging)
    options = {"estimator": "alices", "strategy": "fixed", "seed": 3, "progress": False}
    options |= {"training_samples": 2000}
    learner = asci.ActiveLearner("gaussian", store=tmp_path / "run", **options)
    for state in learner.iterate(2):
        reasons = [t["reason"] for t in state.trainings]
        assert reasons[-1] == "the self-check found that a planted bias"
        assert sum(r.startswith("the self-check") for r in reasons) == 1
        assert state.check["retrain"] == "a planted bias"  # the check after the retraining
    resumed = asci.ActiveLearner.resume(tmp_path / "run", progress=False)
    assert resumed.posterior.mean() == pytest.approx(learner.posterior.mean(), rel=1e-12)
    assert resumed.posterior.std() == pytest.approx(learner.posterior.std(), rel=1e-12)
    monkeypatch.setattr(
        learner_module, "self_check", lambda *args: {**real(*args), "ok": True, "retrain": None}
    )
    state = asci.ActiveLearner("gaussian", **options).run(1)
    assert [t["reason"] for t in state.trainings] == ["first data"]  # nothing to act on


def test_of_two_local_estimators_the_learner_keeps_the_one_its_check_finds_better(
    tmp_path, monkeypatch
):
    """A retraining on the check replaces the estimator only where the fresh one checks at
    least as well on the same data (a fresh training can come out worse); an estimator whose
    retraining came out worse is not retrained on the check again; a resumed run takes the
    same path."""
    import activesci.learner.sequential as learner_module
    from activesci.inference.selfcheck import severity

    real, train = learner_module.self_check, learner_module.SequentialInference._train_local
    # round 1: the retraining is better; round 2: worse; round 3: flagged, not retried
    script = [0.5, 0.3, 0.5, 0.6, 0.5]
    residuals, trained = iter(script), []

    def scripted(*args):
        found = {"fit_residual": [next(residuals)], "width_ratio": 1.0}
        return {**real(*args), **found, "retrain": "a planted residual"}

    def recorded(self, *args):
        train(self, *args)
        trained.append(self._local)

    monkeypatch.setattr(learner_module, "self_check", scripted)
    monkeypatch.setattr(learner_module.SequentialInference, "_train_local", recorded)
    options = {"estimator": "alices", "strategy": "fixed", "seed": 3, "progress": False}
    options |= {"training_samples": 2000}
    learner = asci.ActiveLearner("gaussian", store=tmp_path / "run", **options)
    kept, residual, newest = [], [], []
    for state in learner.iterate(3):
        on_check = [t for t in state.trainings if t["reason"].startswith("the self-check")]
        kept.append([t["kept"] for t in on_check])
        residual.append(state.check["fit_residual"])
        newest.append(len(trained) - 1 - trained.index(learner._local))
    assert kept == [[True], [False], []]
    assert residual == [[0.3], [0.5], [0.5]]  # the kept estimator's check is the round's
    assert newest[:2] == [0, 1]  # round 2's retraining, the newest, was set aside
    residuals = iter(script)
    resumed = asci.ActiveLearner.resume(tmp_path / "run", progress=False)
    assert resumed.posterior.mean() == pytest.approx(learner.posterior.mean(), rel=1e-12)
    assert resumed.posterior.std() == pytest.approx(learner.posterior.std(), rel=1e-12)
    assert severity({"fit_residual": [0.3], "width_ratio": 1.0}) == pytest.approx(1.5)
    assert severity({"fit_residual": [0.1], "width_ratio": 0.8}) == pytest.approx(4.0)


@pytest.mark.parametrize("dim", [1, 2])
def test_the_local_estimator_trains_ahead_of_the_designs_with_several_parameters(dim):
    """With several parameters, while the posterior spans the prior, a training covers
    DESIGN_HORIZON of the design range beyond the designs run, so a next design nearby needs
    none; with one parameter, or a narrowed posterior, it keeps the narrow band."""
    from activesci.learner.designs import _BAND, DESIGN_HORIZON

    task = asci.tasks.gaussian(dim=dim)
    learner = asci.ActiveLearner(
        task, estimator="alices", seed=1, training_samples=2000, progress=False
    )
    exp = task.experiment(seed=4)
    span = 2 * np.pi  # the phase's range
    horizon = DESIGN_HORIZON if dim > 1 else _BAND
    first = learner.tell([2.0], exp.run([2.0]))
    box = [2 - horizon * span, 2 + horizon * span]
    assert first.trainings[0]["designs"][0] == pytest.approx(box)
    near = 2.0 + 0.5 * DESIGN_HORIZON * span
    reasons = [t["reason"] for t in learner.tell([near], exp.run([near])).trainings]
    assert ("a design outside the trained designs" in reasons) == (dim == 1)
    far = 2.0 + 2.5 * DESIGN_HORIZON * span
    (training, *_) = learner.tell([far], exp.run([far])).trainings
    assert training["reason"] == "a design outside the trained designs"
    assert training["designs"][0][1] == pytest.approx(far + horizon * span)
    # once the posterior is narrower than the prior, trainings keep to the designs run
    narrowed = task.parameters.bounds * 0.5
    observations = [obs for _, obs in learner.store.observations()]
    learner._train_local(3, 9, narrowed, observations, "a narrowed posterior")
    assert learner._round_trainings[-1]["designs"][0] == pytest.approx(
        [2.0 - _BAND * span, far + _BAND * span]
    )
