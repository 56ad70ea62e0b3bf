"""The bring-your-own-simulator example in examples/informative_measurement.py."""

import doctest
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import closure_against_exact
from scipy import stats

import activesci as asci
from activesci.errors import ShapeError, ValidationError
from activesci.inference import ExactLikelihood, GridPosterior
from activesci.simulators.base import SimulatorBase

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "informative_measurement.py"


def _load():
    name = "informative_measurement"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so that its objects pickle and doctest finds it
    spec.loader.exec_module(module)
    return module


im = _load()


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_task_spaces_and_capabilities():
    task = im.task()
    assert task.name == "informative_measurement"
    assert isinstance(task.simulator, SimulatorBase)
    assert task.parameters.names == ["theta"] and task.designs.names == ["energy", "error"]
    assert task.parameters.bounds.tolist() == [[0.0, 1.0]]
    assert task.designs.bounds.tolist() == [[0.0, 1.0], [0.004, 0.1]]
    assert task.simulator.capabilities == {"log_likelihood", "joint_log_prob", "joint_score"}
    assert task.simulator.feature_names == ("x",)
    assert task.truth == {"theta": 0.37} and task.options == {"min_error": 0.004, "max_error": 0.1}
    for options in task.strategy_options.values():
        for design in options.get("designs", [options.get("design")]):
            task.designs.validate(design)
    assert im.task(min_error=1e-3).designs.bounds[1].tolist() == [1e-3, 0.1]


def test_shapes_and_one_event_per_experiment():
    sim = im.InformativeMeasurement()
    rng = np.random.default_rng(0)
    theta, design = sim.parameters.sample(7, rng), sim.designs.sample(7, rng)
    events = sim.sample(theta, design, rng)
    assert events.x.shape == events.z.shape == (7, 1)
    np.testing.assert_array_equal(events.x, events.z)
    assert sim.joint_log_prob(events.z, theta, design).shape == (7,)
    assert sim.joint_score(events.z, theta, design).shape == (7, 1)
    assert sim.joint_score(events.z[:, 0], [0.3], [0.5, 0.01]).shape == (7, 1)
    assert sim.log_likelihood(events.x, theta, design[0]).shape == (7, 7)
    assert sim.log_likelihood(events.x, [0.3], design[0]).shape == (7,)
    obs = sim.run_experiment({"theta": 0.37}, {"energy": 1.0, "error": 0.004}, rng)
    assert obs.n == 1 and obs.x.shape == (1, 1) and obs.luminosity is None
    assert "expected_count" not in sim.capabilities


def test_log_likelihood_is_the_normal_density():
    sim = im.InformativeMeasurement()
    x = np.array([[0.1], [0.45], [0.6], [1.2]])
    theta = np.array([[0.0], [0.3], [0.37], [0.99]])
    for energy, error in [(0.0, 0.1), (0.4, 0.02), (1.0, 0.004)]:
        got = sim.log_likelihood(x, theta, [energy, error])
        want = stats.norm.logpdf(x[None, :, 0], theta[:, :1] * (0.5 + energy), error)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
        # without a latent beyond x, the gold is the exact likelihood
        rows = sim.joint_log_prob(x, theta, np.tile([energy, error], (4, 1)))
        np.testing.assert_allclose(rows, np.diag(want), rtol=1e-12, atol=1e-9)


def test_joint_score_is_the_gradient_of_joint_log_prob():
    sim = im.InformativeMeasurement()
    rng = np.random.default_rng(1)
    theta = rng.uniform(0.01, 0.99, (50, 1))
    design = sim.designs.sample(50, rng)
    z = sim.sample(theta, design, rng).z
    score = sim.joint_score(z, theta, design)[:, 0]
    h = 1e-7
    fd = (sim.joint_log_prob(z, theta + h, design) - sim.joint_log_prob(z, theta - h, design)) / (
        2 * h
    )
    np.testing.assert_allclose(score, fd, rtol=1e-5, atol=1e-3)
    assert np.abs(score).max() > 10  # the check is not vacuous


@pytest.mark.parametrize(("theta", "energy", "error"), [(0.37, 1.0, 0.004), (0.8, 0.2, 0.1)])
def test_samples_have_the_response_mean_and_the_design_error(theta, energy, error):
    sim = im.InformativeMeasurement()
    n = 20_000
    x = sim.sample([theta], [energy, error], np.random.default_rng(2), n=n).x[:, 0]
    mean = theta * (0.5 + energy)
    assert abs(x.mean() - mean) < 4 * error / np.sqrt(n)
    assert abs(x.std(ddof=1) - error) < 4 * error / np.sqrt(2 * n)
    assert stats.kstest(x, "norm", args=(mean, error)).pvalue > 1e-3


def test_exact_grid_posterior_matches_the_analytic_one():
    sim = im.InformativeMeasurement()
    rng = np.random.default_rng(3)
    obs = [sim.run_experiment([0.37], [energy, 0.004], rng) for energy in (0.2, 0.6, 1.0)]
    mean, std = im.analytic_posterior(obs)
    assert std == pytest.approx(0.004 / np.sqrt(0.7**2 + 1.1**2 + 1.5**2))
    assert abs(mean - 0.37) < 4 * std
    narrow = asci.Space([asci.Real("theta", 0.37 - 0.05, 0.37 + 0.05)])  # +- 25 std
    post = GridPosterior(narrow, 4001, simulator=sim)
    exact = ExactLikelihood(sim)
    for o in obs:
        post.update(o, exact)
    assert post.mean()[0] == pytest.approx(mean, abs=1e-3 * std)
    assert post.std()[0] == pytest.approx(std, abs=1e-3 * std)


def test_learner_with_the_exact_likelihood_reaches_the_analytic_std(one_torch_thread):
    task = im.task()
    learner = asci.ActiveLearner(
        task, estimator="exact", strategy="fixed", resolution=20_001, seed=4, progress=False
    )
    states = list(learner.iterate(2))
    assert [s.design.tolist() for s in states] == [[1.0, 0.004]] * 2
    mean, std = im.analytic_posterior(learner.posterior.observations)
    assert std == pytest.approx(0.004 / 1.5 / np.sqrt(2))
    assert learner.posterior.std()[0] == pytest.approx(std, rel=1e-3)
    assert learner.posterior.mean()[0] == pytest.approx(mean, abs=1e-2 * std)
    assert abs(mean - 0.37) < 4 * std


def test_bad_input():
    sim = im.InformativeMeasurement()
    with pytest.raises(ValidationError, match="min_error < max_error"):
        im.InformativeMeasurement(min_error=0.2)
    with pytest.raises(ShapeError, match=r"x must have shape \(n, 1\)"):
        sim.log_likelihood(np.zeros((3, 2)), [0.5], [0.5, 0.01])
    with pytest.raises(ShapeError, match="one design"):
        sim.log_likelihood([0.1], [0.5], [[0.5, 0.01], [0.6, 0.01]])
    with pytest.raises(ValidationError, match="NaN"):
        sim.joint_score([[np.nan]], [0.5], [0.5, 0.01])
    with pytest.raises(ShapeError, match="z has 3 rows"):
        sim.joint_log_prob(np.zeros((3, 1)), np.full((2, 1), 0.5), [0.5, 0.01])
    with pytest.raises(ValueError, match="error"):
        sim.sample([0.5], [0.5, 0.001], np.random.default_rng(0), n=2)
    with pytest.raises(ValidationError, match="at least one measurement"):
        im.analytic_posterior([])


def test_module_doctests(one_torch_thread):
    result = doctest.testmod(im, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow
def test_learned_posterior_resolves_a_measurement_of_1_250_of_the_prior():
    """Issue 11: one measurement with an error of 1/250 of the prior range per round."""
    task = im.task()
    learner = asci.ActiveLearner(
        task,
        experiment=task.experiment(seed=4),
        estimator="alices",
        strategy="fixed",
        seed=4,
        training_samples=50_000,
        progress=False,
    )
    for state in learner.iterate(3):
        result = closure_against_exact(task.simulator, state.posterior)
        assert abs(result["mean_shift"][0]) <= 0.2, state.round
        assert result["width_ratio"][0] == pytest.approx(1.0, abs=0.1), state.round
        assert state.posterior.std()[0] < 0.004  # resolved: the prior is 1 wide
