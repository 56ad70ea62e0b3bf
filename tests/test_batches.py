"""Batches of experiments per round: ask(q), tell of q observations, fantasised greedy EIG,
parallel workflow steps, and resume in the middle of a batch (issue 12)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _runs import kill_after

import activesci as asci
from activesci.design.optimizer import DesignContext, EIGStrategy
from activesci.errors import StoreError, ValidationError
from activesci.inference.grid import GridPosterior
from activesci.store import SQLiteRunStore

REPO = Path(__file__).resolve().parents[1]


def _rounds(path: Path) -> list[dict]:
    """The stored round summaries without their wall-clock times."""
    with SQLiteRunStore.open(path, readonly=True) as store:
        rounds = store.rounds()
    for r in rounds:
        r.pop("seconds")
        r["strategy"].pop("eig_seconds", None)
    return rounds


def test_baselines_give_their_next_designs_as_one_batch():
    learner = asci.ActiveLearner("weinberg", estimator="exact", strategy="scan", batch=3)
    states = list(learner.iterate(2))
    designs = [s.design[0] for s in states]
    assert designs == [89.19, 91.19, 93.19] * 2  # the scan's cycle, three at a time
    assert [s.summary()["batch_start"] for s in states] == [0, 0, 0, 3, 3, 3]
    assert learner.round == 6


def test_ask_and_tell_take_a_batch_and_refuse_a_mismatch():
    task = asci.tasks.gaussian()
    learner = asci.ActiveLearner(task, estimator="exact", strategy="random", seed=2)
    designs = learner.ask(3)
    assert designs.shape == (3, 1) and len(np.unique(designs)) == 3
    np.testing.assert_array_equal(learner.ask(3), designs)  # the same until told
    with pytest.raises(ValidationError, match="3 design\\(s\\) of a batch are pending"):
        learner.ask(2)
    exp = task.experiment(seed=1)
    states = learner.tell(designs, [exp.run(d) for d in designs])
    assert [s.round for s in states] == [0, 1, 2]
    with pytest.raises(ValidationError, match="one observation per design"):
        learner.tell(learner.ask(2), [exp.run(learner.ask(2)[0])])


def test_a_fantasised_batch_has_the_diminishing_returns_of_the_exact_posterior():
    """Gaussian toy: after n events at sigma, a next experiment of n events gains
    0.5 log(1 + n s^2 / sigma^2) where s^2 is the fantasised posterior's variance."""
    task = asci.tasks.gaussian(events_per_experiment=10)
    sim = task.simulator
    posterior = GridPosterior(task.parameters, 801, simulator=sim)
    strategy = EIGStrategy(n_calls=6, n_initial_points=3, n_samples=400, exact=True)
    context = DesignContext(0, task.designs, posterior, sim, None, seed=0)
    designs = strategy.propose_batch(context, 3)
    assert designs.shape == (3, 1)
    assert np.all(np.abs(designs[:, 0] - math.pi) < 0.35)  # sigma = 2 + cos(phase) is least at pi
    gains = strategy.record["batch_eig"]
    sigma2 = (2 + np.cos(designs[:, 0])) ** 2
    var = 1.0  # the prior's
    for k in range(3):
        expected = 0.5 * math.log(1 + 10 * var / sigma2[k])
        assert gains[k] == pytest.approx(expected, abs=0.06), (k, gains)
        var = 1 / (1 / var + 10 / sigma2[k])
    assert gains[0] > gains[1] > gains[2]


def test_a_run_stopped_mid_batch_resumes_with_the_same_designs_and_data(tmp_path):
    options = {"estimator": "exact", "strategy": "eig", "batch": 3, "seed": 4}
    options["strategy_options"] = {"n_calls": 4, "n_initial_points": 2, "n_first_grid": 8}
    task = asci.tasks.weinberg(luminosity=0.2)
    clean = asci.ActiveLearner(task, store=tmp_path / "clean", **options)
    clean.run(2)
    clean.close()
    first = asci.ActiveLearner(task, store=tmp_path / "run", **options)
    designs = first.ask(3)
    first.tell(designs[:2], [first.experiment.run(d) for d in designs[:2]])
    first.close()  # stopped after 2 of the 3 experiments of its first batch
    resumed = asci.ActiveLearner.resume(tmp_path / "run", progress=False)
    np.testing.assert_array_equal(resumed.ask(), designs[2])  # the stored rest of the batch
    resumed.run(2)  # the partial batch counts as a round
    resumed.close()
    assert _rounds(tmp_path / "run") == _rounds(tmp_path / "clean")


def test_workflow_batches_run_their_steps_together_and_match_one_by_one(tmp_path):
    from activesci.workflow.experiment import WorkflowExperiment

    task = asci.tasks.weinberg(luminosity=0.2)
    designs = np.array([[88.0], [91.19], [94.0]])
    together = WorkflowExperiment(task, seed=3, workdir=tmp_path / "a", executor="processes")
    in_turn = asci.tasks.weinberg(luminosity=0.2).experiment(seed=3)
    batch = together.run_batch(designs)
    for observation, design in zip(batch, designs, strict=True):
        alone = in_turn.run(design)
        np.testing.assert_array_equal(observation.x, alone.x)
    assert together.runs == 3


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_a_particle_batch_run_killed_with_sigkill_resumes_bit_identically(tmp_path):
    run, clean = tmp_path / "run", tmp_path / "clean"
    argv = ["location_finding", "--estimator", "exact", "--strategy", "eig", "--batch", "2"]
    argv += ["--rounds", "3", "--seed", "1"]
    cli = [sys.executable, "-m", "activesci.cli"]
    proc = subprocess.Popen(
        [*cli, "run", *argv, "--out", str(run)], env=_env(), stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    assert 1 <= kill_after(proc, run, 1) < 6
    run_env = {"env": _env(), "capture_output": True, "text": True, "timeout": 300}
    resumed = subprocess.run([*cli, "resume", str(run)], **run_env)
    assert resumed.returncode == 0, resumed.stderr
    uninterrupted = subprocess.run([*cli, "run", *argv, "--out", str(clean)], **run_env)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    stored, reference = _rounds(run), _rounds(clean)
    assert len(stored) == 6
    assert [r["design"] for r in stored] == [r["design"] for r in reference]
    assert stored == reference


@pytest.mark.parametrize(
    "data",
    [b"not json", b'{"start": -1, "designs": [], "record": {}}', b'{"start": 0}',
     b'{"start": 0, "designs": [[5000.0]], "record": {}}',
     b'{"start": 0, "designs": [[91.0]], "record": []}'],
    ids=["not-json", "negative-start", "no-designs", "design-outside", "record-not-a-dict"],
)  # fmt: skip
def test_a_malformed_stored_batch_is_a_store_error(tmp_path, data):
    learner = asci.ActiveLearner("weinberg", estimator="exact", strategy="fixed", store=tmp_path)
    learner.store.save_checkpoint("pending_batch", data)
    learner.close()
    with pytest.raises(StoreError, match="stored pending designs are malformed"):
        asci.ActiveLearner.resume(tmp_path, progress=False)


def _gaussian_posterior(experiments: int, cells: int = 801) -> tuple[object, GridPosterior]:
    task = asci.tasks.gaussian(events_per_experiment=10)
    posterior = GridPosterior(task.parameters, cells, simulator=task.simulator)
    exact = asci.inference.ExactLikelihood(task.simulator)
    run = task.experiment(seed=5)
    for _ in range(experiments):
        posterior.update(run.run([math.pi]), exact)
    return task, posterior


@pytest.mark.parametrize("fantasy_at", [-1.0, 0.5])
def test_reweighted_experiments_match_fresh_ones_on_a_fantasised_posterior(fantasy_at):
    """A source on a line (location finding, 1 parameter): what a measurement tells depends
    strongly on where the source is, so a fantasy that moves the posterior changes the EIG
    of the next design. Experiments simulated on the unfantasised posterior and reweighted
    agree with ones simulated on the fantasy; unweighted they would miss by more than 10
    standard errors."""
    task = asci.tasks.location_finding(n_sources=1, dim=1, sigma=1.0)
    sim = task.simulator
    exact = asci.inference.ExactLikelihood(sim)
    posterior = GridPosterior(task.parameters, 801, simulator=sim)
    rng = np.random.default_rng(1)
    for _ in range(2):
        posterior.update(sim.run_experiment(np.array([0.7]), [1.5], rng), exact)
    experiments = asci.design.simulate_experiments(
        posterior, sim, [0.0], estimator=exact, n_samples=4000, rng=3
    )
    fantasy = posterior.copy().update(
        sim.run_experiment(posterior.mean(), [fantasy_at], np.random.default_rng(4)), exact
    )
    reweighted = experiments.eig_on(fantasy)
    fresh = asci.design.expected_information_gain(
        fantasy, sim, [0.0], exact=True, n_samples=4000, rng=5
    )
    assert reweighted is not None
    error = math.hypot(reweighted.stderr, fresh.stderr)
    assert reweighted.value == pytest.approx(fresh.value, abs=3 * error)
    unweighted = experiments._gains(fantasy.log_posterior, fantasy.entropy()).mean()
    assert abs(unweighted - fresh.value) > 5 * error  # the weights matter


def test_reweighting_refuses_a_fantasy_far_narrower_or_on_another_grid():
    task, prior = _gaussian_posterior(0)
    sim = task.simulator
    exact = asci.inference.ExactLikelihood(sim)
    experiments = asci.design.simulate_experiments(
        prior, sim, [math.pi], estimator=exact, n_samples=200, rng=3
    )
    narrow = prior.copy().update(
        sim.run_experiment(prior.mean(), [math.pi], np.random.default_rng(4)), exact
    )
    assert experiments.eig_on(narrow) is None  # an effective sample far below half the draws
    other = GridPosterior(task.parameters, 401, simulator=sim)
    with pytest.raises(ValidationError, match="on the grid the experiments were scored on"):
        experiments.eig_on(other)


def test_a_batch_after_data_is_re_scored_by_reweighting_with_diminishing_returns():
    task, posterior = _gaussian_posterior(4)
    sim = task.simulator
    strategy = EIGStrategy(n_calls=6, n_initial_points=3, n_samples=400, exact=True)
    designs = strategy.propose_batch(
        DesignContext(1, task.designs, posterior, sim, None, seed=0), 3
    )
    record = strategy.record
    assert record["batch_reweighted"] == 2 * len(record["batch_candidates"])  # no simulation
    var = float(posterior.cov()[0, 0])
    sigma2 = (2 + np.cos(designs[:, 0])) ** 2
    for k in range(3):
        assert record["batch_eig"][k] == pytest.approx(
            0.5 * math.log(1 + 10 * var / sigma2[k]), abs=0.03
        )
        var = 1 / (1 / var + 10 / sigma2[k])
