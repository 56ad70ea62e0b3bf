"""The active learner: ask/tell, stopping rules, storing before use, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import activesci as asci
from activesci.cli import main
from activesci.errors import StoreError, ValidationError
from activesci.store import MemoryRunStore, SQLiteRunStore
from activesci.typing import Observation

CLI = [sys.executable, "-m", "activesci.cli"]


def test_ask_tell_by_hand_equals_iterate():
    a = asci.ActiveLearner("gaussian", estimator="exact", strategy="random", seed=2)
    design = a.ask()
    assert np.array_equal(design, a.ask())  # the same proposal until tell
    state = a.tell(design, a.experiment.run(design))
    b = asci.ActiveLearner("gaussian", estimator="exact", strategy="random", seed=2)
    [other] = list(b.iterate(1))
    assert np.array_equal(state.design, other.design)
    assert state.posterior.mean() == pytest.approx(other.posterior.mean())
    assert a.store.rounds()[0]["n"] == 10


def test_posterior_matches_the_analytic_one_and_stopping_rules_work():
    learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=4)
    states = list(learner.iterate(20, target_std=0.15))
    mean, _ = learner.task.simulator.posterior(learner.posterior.observations)
    assert learner.posterior.mean() == pytest.approx(mean, abs=1e-3)
    assert states[-1].posterior.std()[0] <= 0.15 < states[-2].posterior.std()[0]
    lumi = asci.ActiveLearner("weinberg", estimator="exact", strategy="fixed", seed=0)
    assert len(list(lumi.iterate(10, max_luminosity=2.5))) == 3


def test_observations_are_stored_before_the_posterior_uses_them():
    class FailingStore(MemoryRunStore):
        def append_observation(self, round, observation):
            raise StoreError("disk full")

    learner = asci.ActiveLearner(
        "gaussian", estimator="exact", strategy="fixed", store=FailingStore()
    )
    design = learner.ask()
    with pytest.raises(StoreError, match="disk full"):
        learner.tell(design, learner.experiment.run(design))
    assert learner.posterior.observations == [] and learner.round == 0


def test_bad_input_to_the_learner():
    learner = asci.ActiveLearner("weinberg", estimator="exact", strategy="fixed")
    obs = learner.experiment.run([91.19])
    with pytest.raises(
        ValueError, match=r"sqrt_s=300.0 is outside the allowed range \[20, 210\] GeV"
    ):
        learner.tell([300.0], obs)
    with pytest.raises(
        ValidationError, match=r"made at \[91.19\], not at the design told \[88.0\]"
    ):
        learner.tell([88.0], obs)
    nan = Observation(design=[91.19], x=np.zeros((0, 1)), luminosity=1.0)
    assert learner.tell([91.19], nan).observation.n == 0  # no events is information too (rate)
    with pytest.raises(ValidationError, match="NaN"):
        Observation(design=[91.19], x=[[np.nan]])
    with pytest.raises(ValidationError, match="unknown estimator 'alicse'"):
        asci.ActiveLearner("gaussian", estimator="alicse")
    with pytest.raises(ValidationError, match="unknown strategy"):
        asci.ActiveLearner("gaussian", estimator="exact", strategy="bayes")


def test_store_from_a_newer_version_is_refused(tmp_path):
    import sqlite3

    asci.ActiveLearner("gaussian", estimator="exact", store=tmp_path / "run")
    with sqlite3.connect(tmp_path / "run" / "run.sqlite") as db:
        db.execute("UPDATE info SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(StoreError, match="store format 99 is newer"):
        asci.ActiveLearner.resume(tmp_path / "run")


def final_summary(folder: Path) -> dict:
    with SQLiteRunStore.open(folder, readonly=True) as store:
        rounds = store.rounds()
    return rounds[-1]


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path):
    args = ["run", "gaussian", "--rounds", "6", "--estimator", "exact", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*CLI, *args, "--out", str(killed)], env=env, stdout=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with SQLiteRunStore.open(killed, readonly=True) as store:  # the run holds the lock
                if len(store.observations()) >= 2:
                    break
        except StoreError:  # not created yet, or its schema not yet committed
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with SQLiteRunStore.open(killed) as store:
        done = len(store.observations())
    assert 2 <= done < 6, "the run must be killed mid-way"
    assert main(["resume", str(killed)]) == 0
    whole, resumed = final_summary(tmp_path / "whole"), final_summary(killed)
    assert resumed["round"] == whole["round"] == 5
    assert resumed["design"] == whole["design"]
    assert resumed["mean"] == whole["mean"] and resumed["std"] == whole["std"]
    assert (killed / "report.html").exists()


def test_report_of_a_weinberg_run(tmp_path):
    assert (
        main(
            [
                "run",
                "weinberg",
                "--rounds",
                "2",
                "--estimator",
                "exact",
                "--strategy",
                "scan",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    text = (tmp_path / "report.html").read_text()
    for expected in (
        "Posterior of sin2w, round by round",
        "Chosen designs",
        "Forward-backward asymmetry",
    ):
        assert expected in text
    assert json.loads(json.dumps(final_summary(tmp_path)))["n"] > 0


@pytest.mark.slow
def test_refinement_is_reproduced_by_resume(tmp_path):
    options = {"estimator": "alices", "strategy": "random", "seed": 5, "refine_every": 2}
    options |= {"training_samples": 4000, "progress": False}
    whole = asci.ActiveLearner("gaussian", store=tmp_path / "whole", **options)
    whole.run(5)
    part = asci.ActiveLearner("gaussian", store=tmp_path / "part", **options)
    part.run(3)  # a refinement happened after round 1; the next is due after round 3
    resumed = asci.ActiveLearner.resume(tmp_path / "part", progress=False)
    assert resumed.round == 3
    resumed.run(2)
    assert resumed.posterior.mean() == pytest.approx(whole.posterior.mean(), rel=1e-12)
    assert resumed.posterior.std() == pytest.approx(whole.posterior.std(), rel=1e-12)
    assert whole.inference_estimator is not whole.estimator
    with pytest.raises(ValidationError, match="refine_every needs a trained estimator"):
        asci.ActiveLearner("gaussian", estimator="exact", refine_every=2)


def test_metrics_reach_the_tracker():
    learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", tracker="memory")
    learner.run(3)
    learner.close()
    tracker = learner.tracker
    assert tracker.params[0]["task"] == "gaussian" and tracker.closed
    assert [step for step, _ in tracker.metrics] == [0, 1, 2]
    assert tracker.metrics[-1][1]["std"] == pytest.approx(learner.posterior.std()[0])


def test_refinement_trains_on_bands_and_skips_covered_designs():
    from activesci.learner.designs import _bands, _covered

    space = asci.tasks.weinberg().designs  # 20-210 GeV: bands of +-0.95 GeV
    learner = asci.ActiveLearner("weinberg", estimator="exact", progress=False)
    learner.refine_every = 2
    near = np.array([[91.0], [91.3], [91.2], [90.8], [91.1], [91.4]])
    assert learner._last_refinement(near) == 2  # every later design is within 0.475 GeV
    moved = np.array([[91.0], [91.3], [91.2], [89.0], [89.1], [89.2]])
    assert learner._last_refinement(moved) == 4  # 89 GeV left the bands
    assert learner._last_refinement(moved[:1]) == 0
    assert _covered(np.array([[91.4]]), np.array([[91.0]]), space)
    assert not _covered(np.array([[91.5]]), np.array([[91.0]]), space)
    points = _bands(np.array([[91.0], [91.0], [209.9]]), space, seed=0)
    assert len(points) == 2 + 2 * 32
    assert np.abs(points[points[:, 0] < 150] - 91.0).max() <= 0.95
    assert points.max() <= 210.0


# -- hostile and careless input (issue 13) -----------------------------------------------------


def test_a_run_killed_during_its_first_training_resumes_by_training_again(tmp_path, monkeypatch):
    from activesci.inference.ratio import RatioEstimator
    from activesci.report import write_run_report

    train = RatioEstimator.train

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as SIGINT (or SIGKILL) would, mid-training

    monkeypatch.setattr(RatioEstimator, "train", killed)
    options = {"estimator": "alices", "strategy": "fixed", "training_samples": 400}
    with pytest.raises(KeyboardInterrupt):
        asci.ActiveLearner("gaussian", store=tmp_path, planned_rounds=2, **options).train()
    assert write_run_report(tmp_path).exists()  # the settings are stored: no KeyError 'task'
    monkeypatch.setattr(RatioEstimator, "train", train)
    learner = asci.ActiveLearner.resume(tmp_path, progress=False)
    assert learner.planned_rounds == 2 and learner.estimator.is_trained
    assert learner.run(1).round == 0


def test_a_store_without_settings_is_a_typed_error(tmp_path):
    SQLiteRunStore(tmp_path).close()  # e.g. a run that failed before it started
    with pytest.raises(StoreError, match="no run settings are stored"):
        asci.ActiveLearner.resume(tmp_path)


def test_a_store_with_other_settings_is_refused_before_its_estimator_is_read(tmp_path):
    store = SQLiteRunStore(tmp_path)
    asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", store=store)
    store.save_checkpoint("estimator", b"a stale estimator of other settings")
    with pytest.raises(StoreError, match=r"differ in 'estimator'.*activesci resume"):
        asci.ActiveLearner("gaussian", estimator="carl", strategy="fixed", store=store)
    assert store.load_checkpoint("estimator") == b"a stale estimator of other settings"


def recorded(task) -> "asci.RecordedExperiment":
    rng = np.random.default_rng(0)
    obs = [Observation([np.pi], rng.normal(0.5, 1.0, (5 + k, 1))) for k in range(4)]
    return asci.RecordedExperiment(task.designs, obs)


@pytest.mark.parametrize("kind", ["recorded", "manual", "custom"])
def test_recorded_manual_and_custom_runs_resume(tmp_path, kind):
    task = asci.tasks.gaussian()

    class Custom:
        designs = task.designs

        def __init__(self):
            self.inner = recorded(task)

        def run(self, design):
            return self.inner.run(design)

    def experiment():
        if kind == "manual":
            manual = asci.ManualExperiment(task.designs, n_features=1)
            for obs in recorded(task).observations:
                manual.submit(obs.design, obs.x)
            return manual
        return recorded(task) if kind == "recorded" else Custom()

    options = {"estimator": "exact", "strategy": "fixed", "store": tmp_path}
    whole = asci.ActiveLearner(task, experiment=experiment(), **options | {"store": None})
    whole.run(3)
    first = asci.ActiveLearner(task, experiment=experiment(), **options)
    first.run(2)
    first.close()
    again = asci.ActiveLearner(task, experiment=experiment(), **options)
    assert again.round == 2
    if kind == "recorded":  # the stored recordings are not replayed twice
        assert again.run(1).observation.n == 7
        assert again.posterior.mean() == pytest.approx(whole.posterior.mean(), rel=1e-12)
    else:
        assert again.run(1).round == 2
    with pytest.raises(ValidationError, match="cannot be rebuilt automatically"):
        asci.ActiveLearner.resume(tmp_path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": None}, "seed must be a non-negative integer, got None"),
        ({"seed": "1"}, "seed must be a non-negative integer, got '1'"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"seed": 1.5}, "seed must be a non-negative integer, got 1.5"),
        ({"strategy": None}, "strategy must be a name or have propose"),
        ({"refine_every": 0}, "refine_every must be a positive integer, got 0"),
        ({"training_samples": 1e5}, "training_samples must be an integer >= 4, got 100000.0"),
        ({"experiment": "nature"}, "experiment must have designs and run"),
        ({"task": 3}, "task must be a Task, a task name or 'package.module:function', got 3"),
        ({"store": ""}, "store must name a folder, got ''"),
    ],
)
def test_bad_learner_arguments_are_named_before_anything_is_stored(tmp_path, options, message):
    arguments = {"task": "gaussian", "estimator": "exact", "store": tmp_path / "run"} | options
    with pytest.raises(ValidationError) as excinfo:
        asci.ActiveLearner(arguments.pop("task"), **arguments)
    assert message in str(excinfo.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", [float("nan"), -0.1, 0.0, "small", True])
def test_bad_stopping_rules_are_named(value):
    learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed")
    with pytest.raises(ValidationError, match=r"target_std must be a positive finite number"):
        next(learner.iterate(3, target_std=value))
    with pytest.raises(ValidationError, match=r"max_luminosity must be a positive finite"):
        next(learner.iterate(3, max_luminosity=value))


def test_a_report_of_a_run_without_or_with_crafted_settings_is_a_store_error(tmp_path):
    import sqlite3

    from activesci.report import write_run_report

    SQLiteRunStore(tmp_path / "empty").close()  # e.g. an old run killed in its first training
    with pytest.raises(StoreError, match="no run settings are stored"):
        write_run_report(tmp_path / "empty")
    run = tmp_path / "run"
    learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", store=run)
    learner.run(2)
    learner.close()
    with SQLiteRunStore.open(run, readonly=True) as store:
        meta, summary = store.metadata(), store.rounds()[-1]

    def crafted(**change):
        with sqlite3.connect(run / "run.sqlite") as db:
            document = json.dumps(meta | change.get("meta", {}))
            db.execute("UPDATE metadata SET document = ? WHERE id = 0", (document,))
            db.execute(
                "UPDATE rounds SET summary = ? WHERE round = 1",
                (json.dumps(summary | change.get("summary", {})),),
            )
        return run

    for change, message in (
        ({"meta": {"task": 3}}, "the stored run setting 'task' is 3; expected a str"),
        ({"meta": {"strategy": "eig"}}, "the stored run setting 'strategy' is 'eig'"),
        ({"meta": {"estimator": {}}}, "'estimator' has no 'kind' string"),
        ({"summary": {"mean": []}}, r"a stored round summary is malformed \(IndexError"),
        ({"summary": {"check": {"ok": 1}}}, r"summary is malformed \(KeyError: 'calibration"),
    ):
        with pytest.raises(StoreError, match=message):
            write_run_report(crafted(**change))
        if "meta" in change:  # resume checks the settings the same way
            with pytest.raises(StoreError, match=message):
                asci.ActiveLearner.resume(run)
    assert write_run_report(crafted()).is_file()
    assert not (tmp_path / "empty" / "report.html").exists()


def test_the_learner_constructs_without_training_and_trains_in_an_explicit_step(
    tmp_path, monkeypatch
):
    """Construction checks and stores the settings, nothing more; ``train()`` is the costly
    step, reported to ``progress`` (what a view shows) and done once."""
    from activesci.inference.ratio import RatioEstimator

    trainings = []
    real = RatioEstimator.train

    def counted(self, *args, **kwargs):
        trainings.append(kwargs.get("n_samples"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RatioEstimator, "train", counted)
    shown = []
    learner = asci.ActiveLearner(
        "gaussian",
        estimator="alices",
        strategy="fixed",
        training_samples=400,
        pretrained=False,
        store=tmp_path,
        progress=lambda what, done, total: shown.append((what, done, total)),
    )
    assert not learner.trained and trainings == [] and shown == []
    assert learner.store.metadata()["estimator"]["method"] == "alices"  # persisted before use
    assert learner.train() is learner and learner.trained and trainings == [400]
    assert shown[0][1] == 0 and shown[-1][1] == shown[-1][2] > 0  # the bar, start to end
    learner.train()
    assert trainings == [400]  # once
    assert learner.run(1).round == 0
    with pytest.raises(ValidationError, match="unknown estimator"):
        asci.ActiveLearner("gaussian", estimator="nope")  # bad settings still fail at once


def test_stopping_conditions_combine_and_loop_events_report_in_order():
    """``stop=`` takes conditions joined by & and |; events fire after what they announce."""
    from activesci.learner.stopping import MaxLuminosity, TargetStd, as_condition

    def run(stop):
        learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=1)
        return len(list(learner.iterate(10, stop=stop)))

    # the exact posterior std after k experiments of 10 events is 1 / sqrt(1 + 10 k)
    assert run(TargetStd(0.2)) == 3  # 0.302, 0.218, 0.180
    assert run(TargetStd(0.2) | (lambda learner: learner.round >= 1)) == 1
    assert run(TargetStd(0.2) & (lambda learner: learner.round >= 5)) == 5
    assert run(TargetStd(0.2) & MaxLuminosity(1e9)) == 10  # no luminosity: never both
    with pytest.raises(ValidationError, match="target_std"):
        TargetStd(-1.0)
    with pytest.raises(ValidationError, match="stopping condition"):
        as_condition(3)

    learner = asci.ActiveLearner("gaussian", estimator="exact", strategy="fixed", seed=1)
    seen = []
    learner.events.trained.subscribe(lambda lrn: seen.append(("trained", lrn.trained)))
    learner.events.asked.subscribe(lambda lrn, designs: seen.append(("asked", designs.shape)))
    learner.events.told.subscribe(
        lambda lrn, state: seen.append(("told", state.round, len(lrn.store.rounds())))
    )
    learner.run(2)
    assert seen == [
        ("trained", True),
        ("asked", (1, 1)),
        ("told", 0, 1),  # the round is stored before anyone hears of it
        ("asked", (1, 1)),
        ("told", 1, 2),
    ]
    with pytest.raises(ValidationError, match="callable"):
        learner.events.told.subscribe("not a function")
