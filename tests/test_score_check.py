"""The amortised self-check: a learned score's bias at the posterior, with no exact likelihood.

A biased estimator is built from the exact likelihood plus ``c * theta_j`` per event: the
learned posterior is the exact one times ``exp(N c theta_j)``, which for a Gaussian posterior
moves its mean by exactly ``N c var_j``. The check must predict that shift from simulations alone.
"""

from __future__ import annotations

import numpy as np
import pytest

import activesci as asci
from activesci.errors import ValidationError
from activesci.inference import ExactLikelihood, GridPosterior, SamplePosterior
from activesci.inference.diagnostics import MAX_SCORE_SHIFT, score_check


class Biased:
    """The exact log ratio plus ``c * theta[:, j]`` per event."""

    def __init__(self, simulator, c: float, j: int = 0) -> None:
        self.exact, self.c, self.j = ExactLikelihood(simulator), c, j

    def log_ratio(self, x, theta, design):
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        return self.exact.log_ratio(x, theta, design) + self.c * theta[:, self.j][:, None]


def _data(task, designs, seed=0):
    experiment = task.experiment(seed=seed)
    return [experiment.run(d) for d in designs]


@pytest.mark.parametrize("c", [0.0, 0.02, 0.08, -0.05])
def test_the_check_predicts_the_shift_a_biased_score_causes(c):
    task = asci.tasks.gaussian(events_per_experiment=50)
    sim = task.simulator
    observations = _data(task, [[np.pi], [np.pi], [2.0]])
    exact = GridPosterior(task.parameters, 2001, simulator=sim)
    learned = GridPosterior(task.parameters, 2001, simulator=sim)
    for obs in observations:
        exact.update(obs, ExactLikelihood(sim))
        learned.update(obs, Biased(sim, c))
    actual = (learned.mean()[0] - exact.mean()[0]) / learned.std()[0]
    check = score_check(learned, Biased(sim, c), sim, observations, rng=1)
    # the size of the shift (the check reports sizes: a mode's sign is its own)
    assert check["score_shift"][0] == pytest.approx(
        abs(actual), abs=3 * check["score_error"][0] + 0.05
    )
    assert check["ok"] == (abs(actual) < MAX_SCORE_SHIFT)


def test_particles_in_two_dimensions_flag_the_biased_parameter_only():
    task = asci.tasks.gaussian(dim=2, events_per_experiment=40)
    sim = task.simulator
    observations = _data(task, [[np.pi], [np.pi]], seed=3)
    estimator = Biased(sim, 0.1, j=1)
    learned = SamplePosterior(task.parameters, 3000, simulator=sim, seed=2)
    for obs in observations:
        learned.update(obs, estimator)
    # exp(N c mu1) moves mu1 by N c var = 80 * 0.1 * (1 / 81) = 0.099, 1.0 posterior std
    check = score_check(learned, estimator, sim, observations, rng=0)
    shift, error = check["score_shift"], check["score_error"]
    assert shift[0] < 3 * error[0] + 0.05
    assert shift[1] == pytest.approx(80 * 0.1 / 81 * 9, abs=3 * error[1] + 0.1)
    assert not check["ok"] and "mu1" in check["warnings"][0]


def test_the_check_needs_data():
    task = asci.tasks.gaussian()
    post = GridPosterior(task.parameters, simulator=task.simulator)
    with pytest.raises(ValidationError, match="at least one observation"):
        score_check(post, ExactLikelihood(task.simulator), task.simulator, [])


def test_the_learner_checks_every_round_of_an_estimator_it_did_not_calibrate():
    task = asci.tasks.gaussian(events_per_experiment=50)
    options = {"strategy": "fixed", "seed": 0, "progress": False}
    fine = asci.ActiveLearner(task, estimator=Biased(task.simulator, 0.0), **options)
    biased = asci.ActiveLearner(task, estimator=Biased(task.simulator, 0.2), **options)
    exact = asci.ActiveLearner(task, estimator="exact", **options)
    assert all(s.check["ok"] for s in fine.iterate(3))
    flagged = [s.check for s in biased.iterate(3)]
    assert not any(c["ok"] for c in flagged)  # 50 events x 0.2: a shift of ~1.4 std
    assert all(c["kind"] == "score" for c in flagged)
    assert all(s.check is None for s in exact.iterate(1))  # the exact likelihood needs none


def test_a_resumed_run_stores_the_check_it_would_have_stored(tmp_path):
    """Killed between storing an observation and its summary: the summary written on resume
    carries the same self-check as the uninterrupted run's."""
    task = asci.tasks.gaussian(events_per_experiment=50)
    options = {"strategy": "fixed", "seed": 0, "progress": False}
    clean = asci.ActiveLearner(task, estimator=Biased(task.simulator, 0.2), **options)
    states = list(clean.iterate(2))
    learner = asci.ActiveLearner(
        task, estimator=Biased(task.simulator, 0.2), store=tmp_path / "run", **options
    )
    learner.run(1)
    learner.store.append_observation(1, states[1].observation)  # the kill: no summary
    learner.close()
    resumed = asci.ActiveLearner(
        task, estimator=Biased(task.simulator, 0.2), store=tmp_path / "run", **options
    )
    assert resumed.round == 2
    assert resumed.store.rounds()[1]["check"] == states[1].check
