"""The dashboard, driven from Python without a browser."""

import html
import time

import numpy as np
import pytest

import activesci as asci
from activesci.experiments import ManualExperiment
from activesci.workflow.experiment import WorkflowExperiment


def board_for(task="gaussian", **options):
    options = {"estimator": "exact", "strategy": "fixed", "seed": 1, "progress": False} | options
    return asci.Dashboard(asci.ActiveLearner(task, **options))


def test_step_adds_a_posterior_trace_and_advances_the_round():
    board = board_for()
    assert "round 0" in board.round_label.value
    prior = board.posterior_plot  # the prior, drawn at once; the other panels wait for data
    assert prior.layout.title.text.startswith("Prior") and len(prior.data) == 1
    grid, density = board.learner.posterior.marginal("mu0")
    assert np.array_equal(prior.data[0].x, grid) and np.array_equal(prior.data[0].y, density)
    board.step()
    assert board.round_label.value.startswith("<b>round 1</b>")
    assert len(board.posterior_plot.data) == 1 and len(board.design_plot.data) == 1
    board.step()
    assert len(board.posterior_plot.data) == 2 and board.learner.round == 2
    # the label shows the learner's own numbers: the dashboard computes nothing itself
    mean = board.learner.posterior.mean()[0]
    assert f"{mean:.5g}" in board.round_label.value


def test_teaching_mode_reveals_the_truth():
    board = board_for()
    board.step()
    assert not board.posterior_plot.layout.shapes
    board.teaching.value = True  # the toggle redraws
    assert len(board.posterior_plot.layout.shapes) == 1
    assert board.posterior_plot.layout.shapes[0].x0 == pytest.approx(0.5)  # gaussian truth


def test_weinberg_panels_show_eig_and_data_against_theory():
    task = asci.tasks.weinberg(luminosity=0.2)
    board = board_for(task, strategy="eig", strategy_options={"exact": True, "n_calls": 4})
    board.step()
    assert len(board.eig_plot.data) >= 2  # surrogate band and the evaluated points
    data = [t for t in board.afb_plot.data if t.name == "simulated data"]
    assert len(data) == 1 and len(data[0].x) == 1


def test_run_and_stop_in_the_background():
    board = board_for()
    assert board.run(3) == 3 and board.learner.round == 3
    thread = board.run_in_background(500)
    deadline = time.time() + 60
    while board.learner.round < 4 and time.time() < deadline:
        time.sleep(0.01)
    board.stop()
    thread.join(timeout=60)
    assert not thread.is_alive() and 4 <= board.learner.round < 503
    assert "stopped after" in board.message.value


def test_reset_starts_over_with_the_picked_strategy():
    board = board_for()
    board.run(2)
    board.strategy_picker.value = "random"
    learner = board.reset()
    assert learner is board.learner and learner.round == 0
    assert learner.strategy.name == "random"
    assert "round 0" in board.round_label.value
    assert board.posterior_plot.layout.title.text.startswith("Prior of mu0")  # the prior again
    assert not hasattr(board.design_plot, "data")  # an empty panel is a light placeholder
    board.step()
    assert board.learner.round == 1


def test_manual_entry_validates_and_changes_nothing_when_malformed():
    task = asci.tasks.gaussian()
    experiment = ManualExperiment(task.designs, n_features=1)
    board = board_for(task, experiment=experiment)
    assert board.manual_form.layout.display is None  # the form is shown
    assert "Enter the result measured at phase = 3.142" in board.manual_form.children[0].value
    for bad, message in (
        ("0.1\nabc", "could not read the events"),
        ("0.1, 0.2", "x must have shape (n, 1)"),
        ("nan", "NaN or infinite"),
        ("", "type at least one event"),
    ):
        board.manual_x.value = bad
        board.manual_button.click()  # as a person would: errors go to the message line
        assert board.wait(timeout=60)
        assert message in board.message.value, (bad, board.message.value)
        assert board.learner.round == 0 and not board.learner.store.observations()
    board.manual_x.value = "0.3\n0.7\n0.1"
    board.manual_button.click()
    assert board.wait(timeout=60)
    assert board.learner.round == 1
    assert board.learner.store.observations()[0][1].n == 3
    assert board.message.value == "" and board.manual_x.value == ""


def test_workflow_steps_are_shown(tmp_path):
    task = asci.tasks.gaussian()
    experiment = WorkflowExperiment(task, seed=1, workdir=tmp_path)
    board = board_for(task, experiment=experiment)
    board.step()
    assert "experiment-0: success" in board.dag_view.value


def test_a_trained_estimator_is_reused_on_reset():
    task = asci.tasks.gaussian()
    learner = asci.ActiveLearner(
        task, estimator="alices", strategy="fixed", training_samples=2000, progress=False
    )
    board = asci.Dashboard(learner)
    board.step()
    new = board.reset()
    assert new.estimator is learner.estimator and new._estimator_spec["method"] == "alices"
    assert np.isfinite(board.step().posterior.mean()).all()


def test_the_self_check_shows_a_banner_when_it_warns():
    """A starved estimator (1000 training samples) is flagged in red; the exact one shows none."""
    exact = board_for()
    exact.step()
    assert exact.check_banner.value == ""  # exact inference has nothing to check
    task = asci.tasks.weinberg(luminosity=0.2)
    starved = board_for(
        task, estimator="alices", training_samples=1000, experiment=task.experiment(seed=2)
    )
    state = starved.step()
    assert state.check is not None and not state.check["ok"]
    assert "may be wrong" in starved.check_banner.value
    assert all(html.escape(text) in starved.check_banner.value for text in state.check["warnings"])
    assert "retrained (first data)" in starved.check_banner.value


def test_step_runs_in_the_background_and_shows_the_training():
    """A round that trains (the first data needs a local estimator) leaves the notebook free:
    the buttons that must wait are disabled and the training's own bar moves."""
    task = asci.tasks.gaussian()
    board = board_for(task, estimator="alices", training_samples=2000)
    seen = []
    show = board._show_training

    def spy(what, done, total):
        show(what, done, total)
        seen.append((done, total, board.training.layout.visibility, board.training_label.value))

    board.learner.progress = spy
    board.step_button.click()
    assert board.step_button.disabled and board.run_button.disabled and board.running
    assert not board.stop_button.disabled
    assert board.wait(timeout=120)
    assert board.learner.round == 1 and not board.step_button.disabled
    during = [row for row in seen if 0 < row[0] < row[1]]
    assert during and all(shown == "visible" for _, _, shown, _ in during)
    assert f"epoch {during[0][0]}/{during[0][1]}" in during[0][3]
    assert seen[-1][0] == seen[-1][1] and board.training.layout.visibility == "hidden"
