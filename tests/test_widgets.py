"""The dashboard, driven from Python without a browser."""

import html
import itertools
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
    # the learner acted on the finding once: a fresh training, which 1000 samples do not fix
    assert "retrained (first data; the self-check found that" in starved.check_banner.value


def test_the_banner_says_when_a_retraining_was_set_aside():
    from activesci.widgets import _check_banner

    check = {"ok": False, "warnings": ["a finding"], "calibration_shift": [0.1]}
    trainings = [{"reason": "first data"}, {"reason": "the self-check found it", "kept": False}]
    banner = _check_banner({"check": check, "trainings": trainings})
    assert "first data; the self-check found it: the new networks checked worse" in banner
    trainings[-1]["kept"] = True
    assert "checked worse" not in _check_banner({"check": check, "trainings": trainings})


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


def _corner_traces(figure):
    """The diagonal (1-D marginal) and lower-triangle (contour) traces of a corner figure."""
    lines = [t for t in figure.data if t.type == "scatter" and t.name != "truth"]
    contours = [t for t in figure.data if t.type == "contour"]
    return lines, contours


def test_four_parameters_show_the_corner_plot_round_by_round():
    """Location finding (4 parameters, a 2-D design): the posterior panel is the corner plot
    of the prior, then of each round's posterior; the A_FB panel is Weinberg's only."""
    task = asci.tasks.location_finding()
    board = board_for(task, strategy="random", seed=0)
    names = ["s1_x", "s1_y", "s2_x", "s2_y"]
    labels = ["source 1 x", "source 1 y", "source 2 x", "source 2 y"]  # the task's labels
    assert board.parameter_picker.layout.display == "none"  # the corner shows them all
    assert board.afb_plot not in board._panels.children  # no A_FB for location finding
    seen = []
    for n in range(3):
        figure = board.posterior_plot
        assert figure in board._top.children  # full width, above the other panels
        lines, contours = _corner_traces(figure)
        assert [t.name for t in lines] == names
        assert [t.name for t in contours] == [f"{a}|{b}" for i, a in enumerate(names)
                                              for b in names[i + 1:]]  # fmt: skip
        title = figure.layout.title.text
        assert title.startswith("Prior") if n == 0 else f"after round {n}" in title
        # the learner's numbers: the stored round (or, before one, the prior) as drawn
        pairs = (board.learner.store.rounds()[-1]["pairs"] if n else
                 board.learner.posterior.pair_marginals())  # fmt: skip
        assert np.allclose(np.asarray(contours[0].z, dtype=float), pairs["s1_x|s1_y"]["density"])
        axes = figure.layout.to_plotly_json()
        across = [
            a["title"]["text"] for k, a in axes.items() if k.startswith("xaxis") and "title" in a
        ]
        up = [a["title"]["text"] for k, a in axes.items() if k.startswith("yaxis") and "title" in a]
        assert across == labels and up == labels[1:]  # the bottom row, the left column
        seen.append(
            [np.asarray(t.y, dtype=float) for t in lines]
            + [np.asarray(t.z, dtype=float) for t in contours]
        )
        if n < 2:
            board.step()
    assert board.learner.round == 2 and "round 2" in board.round_label.value
    for before, after in itertools.pairwise(seen):
        assert all(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    assert len(board.design_plot.data) == 2  # xi_x and xi_y by round
    assert not hasattr(board.eig_plot, "data")  # the random strategy evaluates no EIG
    board.teaching.value = True  # the truth: a line per diagonal panel, a cross per pair
    assert len(board.posterior_plot.layout.shapes) == 4
    assert sum(t.name == "truth" for t in board.posterior_plot.data) == 6


def test_a_two_dimensional_design_shows_the_evaluated_eig_as_a_scatter():
    task = asci.tasks.location_finding()
    options = {"exact": True, "n_calls": 3, "n_initial_points": 2, "n_samples": 8}
    board = board_for(task, strategy="eig", strategy_options=options, seed=0)
    state = board.step()
    points, chosen = board.eig_plot.data
    record = state.strategy_record
    assert np.allclose(np.c_[points.x, points.y], record["evaluated"])
    assert np.allclose(points.marker.color, record["eig"])
    assert np.allclose([chosen.x[0], chosen.y[0]], state.design)
    assert board.eig_plot.layout.xaxis.title.text == "xi_x"
    assert board.eig_plot.layout.yaxis.title.text == "xi_y"


def test_one_parameter_keeps_its_panels():
    """Weinberg (one parameter): the round-by-round posterior, the EIG curve and A_FB, in
    the 2 x 2 grid; no corner plot."""
    task = asci.tasks.weinberg(luminosity=0.2)
    board = board_for(task, strategy="eig", strategy_options={"exact": True, "n_calls": 4})
    assert board.parameter_picker.layout.display is None and not board._top.children
    assert (
        board.posterior_plot.layout.title.text == "Prior of sin2w: press Step for the first round"
    )
    board.step()
    board.step()
    panels = board._panels.children
    assert panels == (board.posterior_plot, board.eig_plot, board.design_plot, board.afb_plot)
    assert board.posterior_plot.layout.title.text == "Posterior of sin2w, round by round"
    assert [t.name for t in board.posterior_plot.data] == ["round 1", "round 2"]
    assert not [t for t in board.posterior_plot.data if t.type == "contour"]
    assert board.eig_plot.layout.title.text == "EIG before round 2"
    assert any(t.name == "surrogate mean" for t in board.eig_plot.data)
    assert any(t.name == "simulated data" for t in board.afb_plot.data)


def test_reset_keeps_a_task_built_by_hand():
    sim = asci.tasks.gaussian().simulator
    task = asci.tasks.Task(name="by-hand", simulator=sim, truth={"mu0": 0.2})
    assert task.factory is None  # nothing could rebuild it from a name
    board = board_for(task, strategy="random")
    board.step()
    learner = board.reset()
    assert learner.task is task and learner.round == 0
    assert board.step().round == 0


def test_the_panels_follow_rounds_run_from_code_and_leave_a_replaced_learner():
    """The dashboard subscribes to the learner's told event: rounds run outside its buttons
    redraw it too, and after a reset the old learner no longer does."""
    board = board_for()
    old = board.learner
    old.run(2)  # from code, e.g. another cell
    assert board.round_label.value.startswith("<b>round 2</b>")
    board.reset()
    old.run(1)
    assert "round 0" in board.round_label.value and len(old.events.told) == 0
    board.learner.run(1)
    assert board.round_label.value.startswith("<b>round 1</b>")
