"""Cost-aware design: information per unit cost, the cost of every run, a total-cost stop."""

from __future__ import annotations

import math

import numpy as np
import pytest

import activesci as asci
from activesci.design.optimizer import DesignContext, EIGStrategy
from activesci.errors import ValidationError
from activesci.inference.grid import GridPosterior
from activesci.inference.likelihood import ExactLikelihood


def test_a_moving_cost_charges_the_distance_moved():
    cost = asci.tasks.moving_cost(0.25, per_run=2.0)
    assert cost(np.array([91.19]), None) == 2.0
    assert cost(np.array([95.19]), np.array([91.19])) == pytest.approx(3.0)
    assert cost(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(2.75)
    with pytest.raises(ValidationError, match="move_cost must be >= 0"):
        asci.tasks.weinberg(move_cost=-1.0)
    assert asci.tasks.weinberg().cost is None
    assert asci.tasks.weinberg(move_cost=0.1).to_config()["task_options"]["move_cost"] == 0.1


def _propose(task, observation, cost):
    sim = task.simulator
    posterior = GridPosterior(task.parameters, 401, simulator=sim)
    posterior.update(observation, ExactLikelihood(sim))
    strategy = EIGStrategy(n_calls=10, n_initial_points=4, n_samples=64, exact=True)
    context = DesignContext(
        1, task.designs, posterior, sim, None, seed=0, cost=cost, previous=observation.design
    )
    return strategy.propose(context)[0], strategy.record


def test_the_eig_per_unit_cost_stays_where_moving_costs_more_than_it_teaches():
    """Gaussian toy: sigma = 2 + cos(phase) is least at pi, the EIG's maximum; after a run at
    phase 0, a steep price per radian of moving keeps the next run near 0."""
    task = asci.tasks.gaussian()
    observation = task.experiment(seed=0).run([0.0])
    blind, _ = _propose(task, observation, None)
    assert abs(blind - math.pi) < 0.3
    priced, record = _propose(task, observation, asci.tasks.moving_cost(100.0))
    assert priced < 0.3
    assert len(record["cost"]) == len(record["eig"]) == len(record["evaluated"])
    assert all(c >= 1.0 for c in record["cost"])


def test_the_learner_counts_the_cost_of_every_run_and_stops_on_the_total(tmp_path):
    task = asci.tasks.weinberg(luminosity=0.2, move_cost=0.5)
    learner = asci.ActiveLearner(
        task, estimator="exact", strategy="scan", store=tmp_path / "run", seed=0
    )
    states = list(learner.iterate(10, max_cost=6.0))
    # the scan 89.19, 91.19, 93.19, 89.19, ...: 1, then 1 + 0.5 * 2, 1 + 0.5 * 2, 1 + 0.5 * 4
    assert [s.cost for s in states] == [1.0, 2.0, 2.0, 3.0]
    assert states[-1].total_cost == learner.total_cost == 8.0  # stopped once over 6
    learner.close()
    resumed = asci.ActiveLearner.resume(tmp_path / "run", progress=False)
    assert resumed.total_cost == 8.0
    assert resumed.run(1).summary()["cost"] == 2.0  # 89.19 -> 91.19
    with pytest.raises(ValidationError, match="max_cost needs a cost model"):
        next(asci.ActiveLearner("gaussian", estimator="exact").iterate(1, max_cost=1.0))
    with pytest.raises(ValidationError, match="cost must be a function"):
        asci.ActiveLearner("gaussian", estimator="exact", cost=3.0)
    bad = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", cost=lambda d, p: -1)
    with pytest.raises(ValidationError, match="expected a positive finite number"):
        bad.run(1)
