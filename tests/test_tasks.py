"""Tasks, experiments and the public API surface."""

import numpy as np
import pytest

import activesci as asci
from activesci import tasks
from activesci.errors import ShapeError, ValidationError
from activesci.typing import Experiment, Simulator, capabilities_of


@pytest.mark.parametrize("name", sorted(tasks.TASKS))
def test_every_task_satisfies_the_simulator_protocol(name):
    task = tasks.get(name)
    assert isinstance(task.simulator, Simulator)
    assert task.simulator.capabilities == capabilities_of(task.simulator)
    assert {"joint_log_prob", "joint_score", "log_likelihood"} <= task.simulator.capabilities
    exp = task.experiment(seed=3)
    assert isinstance(exp, Experiment)
    design = task.designs.sample(1, np.random.default_rng(0))
    obs = exp.run(design)
    assert obs.x.shape[1] == len(task.simulator.feature_names)
    assert obs.design.shape == (len(task.designs),)
    task.parameters.validate(task.truth)


def test_simulated_experiment_is_reproducible_and_hides_its_truth():
    task = tasks.weinberg()
    runs = [task.experiment(truth={"sin2w": 0.24}, seed=5) for _ in range(2)]
    a, b = (r.run({"sqrt_s": 91.0}) for r in runs)
    assert np.array_equal(a.x, b.x)
    assert a.meta == {"seed": 5, "run": 1}
    assert "0.24" not in repr(runs[0]) and runs[0].truth == {"sin2w": 0.24}
    c = runs[0].run({"sqrt_s": 91.0})
    assert not np.array_equal(a.x, c.x)


def test_bad_task_input():
    with pytest.raises(ValidationError, match=r"unknown task 'weinbreg'; available: \['gaussian'"):
        tasks.get("weinbreg")
    with pytest.raises(ShapeError, match="truth must be one point"):
        tasks.weinberg().experiment(truth=[[0.2], [0.3]])
    with pytest.raises(ValueError, match=r"sin2w=0.5 is outside"):
        tasks.weinberg().experiment(truth={"sin2w": 0.5})


def test_lineshape_task_has_three_parameters():
    task = tasks.weinberg_lineshape()
    assert task.parameters.names == ["sin2w", "mz", "gamma_z"]
    assert task.designs["sqrt_s"].bounds == (80.0, 100.0)


def test_public_api_snapshot():
    assert sorted(asci.__all__) == sorted(
        [
            "ActiveLearner", "ActivesciError", "Categorical", "Dashboard", "Events", "Integer",
            "ManualExperiment", "Normal", "Observation", "Real", "RecordedExperiment",
            "SimulatedExperiment", "Space", "ValidationError", "__version__", "errors",
            "experiments", "simulators", "spaces", "tasks",
        ]
    )  # fmt: skip
    assert sorted(asci.simulators.__all__) == [
        "AngularDetector",
        "GaussianSimulator",
        "LocationFindingSimulator",
        "SimulatorBase",
        "WeinbergSimulator",
    ]
    # issue 15: the EIG estimators by name; every protocol in typing (CHANGELOG.md lists the moves)
    assert asci.design.__all__ == [
        "DesignContext", "DesignOptimizer", "EIGEstimate", "EIG_ESTIMATORS", "STRATEGIES",
        "SimulatedExperiments", "contrastive_information_gain", "expected_information_gain",
        "make_strategy", "register_eig_estimator", "register_strategy", "simulate_experiments",
    ]  # fmt: skip
    protocols = ["Acquisition", "EIGEstimator", "Executor", "Experiment", "LogRatioEstimator"]
    protocols += ["Posterior", "RunStore", "Simulator", "Strategy", "Tracker"]
    assert set(protocols) <= set(asci.typing.__all__)
    for name in protocols:
        assert getattr(asci.typing, name).__module__ == "activesci.typing", name
    assert asci.learner.__all__ == ["ActiveLearner", "RoundState"]


def test_posterior_figure_zooms_to_the_mass_and_keeps_the_truth():
    grid = np.linspace(0.15, 0.35, 801)
    density = np.exp(-0.5 * ((grid - 0.23) / 0.001) ** 2)
    fig = asci.plots.posterior_figure(grid, density, name="sin2w", truth=0.24)
    lo, hi = fig.layout.xaxis.range
    assert 0.22 < lo < 0.227 and 0.24 < hi < 0.25


@pytest.mark.slow
def test_demo_runs_the_loop_and_keeps_the_previous_run(tmp_path, capsys):
    from activesci.cli import main

    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--rounds", "2", "--training-samples", "20000"]
    assert main(args) == 0
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js inline: offline
    assert main(args) == 0
    assert (tmp_path / "demo.previous" / "run.sqlite").exists()
    assert "report.html" in capsys.readouterr().out
