"""Abandoned designs (Ax's abandoned and failed trials): a state of the run, stored, resumable."""

import json

import numpy as np
import pytest

import activesci as asci
from activesci.errors import StoreError, ValidationError
from activesci.store import SQLiteRunStore


def learner_for(store=None, strategy="random", task="gaussian", **options):
    options = {"estimator": "exact", "seed": 3, "progress": False} | options
    return asci.ActiveLearner(task, strategy=strategy, store=store, **options)


def test_an_abandoned_design_is_stored_and_the_next_ask_moves_on_and_so_does_a_resume(tmp_path):
    learner = learner_for(tmp_path)
    heard = []
    learner.events.abandoned.subscribe(lambda lrn, designs, why: heard.append((designs, why)))
    first = learner.ask()
    gone = learner.abandon("the magnet quenched")
    np.testing.assert_array_equal(gone, first[None, :])
    assert heard and heard[0][1] == "the magnet quenched"
    second = learner.ask()
    assert not np.allclose(first, second)  # the random stream moved on
    assert learner.abandoned == [
        {"round": 0, "designs": [first.tolist()], "reason": "the magnet quenched"}
    ]
    learner.close()

    resumed = asci.ActiveLearner.resume(tmp_path, progress=False)
    assert resumed.abandoned == learner.abandoned
    np.testing.assert_array_equal(resumed.ask(), second)  # the pending one, not the abandoned
    state = resumed.run(1)
    np.testing.assert_array_equal(state.design, second)
    assert len(resumed.store.observations()) == 1  # nothing was stored for the abandoned design


def test_the_eig_strategy_does_not_propose_an_abandoned_design_again():
    task = asci.tasks.weinberg(luminosity=0.2)
    learner = learner_for(task=task, strategy="eig", strategy_options={"exact": True, "n_calls": 4})
    first = learner.ask()
    learner.abandon("unreachable energy")
    second = learner.ask()
    span = np.ptp(task.designs.bounds)
    assert abs(float(second[0] - first[0])) > 1e-9 * span


def test_a_strategy_that_cannot_move_is_a_typed_error_and_nothing_is_pending():
    learner = learner_for(strategy="fixed", strategy_options={"design": [1.0]})
    learner.ask()
    learner.abandon("broken")
    with pytest.raises(ValidationError, match=r"proposed \[1\.0\] again, which was abandoned"):
        learner.ask()
    with pytest.raises(ValidationError, match="nothing to abandon"):
        learner.abandon()


class _FailsBelow:
    """An experiment whose apparatus fails below a threshold design (a real experiment's limit)."""

    def __init__(self, task, threshold):
        self.inner, self.threshold = task.experiment(seed=5), threshold
        self.designs = task.designs

    def run(self, design):
        if float(np.ravel(design)[0]) < self.threshold:
            raise RuntimeError(f"cannot run at {float(np.ravel(design)[0]):.3f}")
        return self.inner.run(design)


def test_iterate_abandons_failed_experiments_and_goes_on():
    task = asci.tasks.gaussian()
    learner = learner_for(task=task, experiment=_FailsBelow(task, 3.0))
    states = list(learner.iterate(12, on_failure="abandon"))
    failed = learner.abandoned
    assert failed and len(states) + len(failed) == 12  # a failed round counts
    assert all(e["reason"].startswith("RuntimeError: cannot run at") for e in failed)
    assert all(e["designs"][0][0] < 3.0 for e in failed)
    assert all(s.design[0] >= 3.0 for s in states)
    with pytest.raises(RuntimeError, match="cannot run"):  # the default: the error propagates
        learner_for(task=task, experiment=_FailsBelow(task, 7.0)).run(1)
    with pytest.raises(ValidationError, match="on_failure"):
        learner.run(1, on_failure="ignore")


def test_a_malformed_abandonment_log_is_a_store_error(tmp_path):
    learner_for(tmp_path).close()
    store = SQLiteRunStore(tmp_path)
    store.save_checkpoint("abandoned_designs", json.dumps([{"round": -1}]).encode())
    store.close()
    with pytest.raises(StoreError, match="abandoned designs are malformed"):
        asci.ActiveLearner.resume(tmp_path, progress=False)


def test_the_optimiser_chooses_among_allowed_designs_only():
    """``DesignContext.allowed`` marks abandoned designs; ``best(allowed=...)`` skips them."""
    from activesci.design.optimizer import DesignContext, DesignOptimizer

    task = asci.tasks.gaussian()
    opt = DesignOptimizer(task.designs, n_initial_points=3, seed=0)
    for d, value in ((1.0, 0.2), (2.0, 0.9), (3.0, 0.5)):
        opt.tell(np.array([d]), value)
    context = DesignContext(
        round=0, space=task.designs, posterior=None, simulator=task.simulator,
        estimator=None, seed=0, abandoned=np.array([[2.0]]),
    )  # fmt: skip
    allowed = context.allowed(opt.designs)
    assert allowed.tolist() == [True, False, True]
    assert opt.best()[0][0] == 2.0 and opt.best(allowed=allowed)[0][0] == 3.0
    with pytest.raises(ValidationError, match="every evaluated design was abandoned"):
        opt.best(allowed=np.zeros(3, dtype=bool))
    assert DesignContext(0, task.designs, None, None, None, 0).allowed([[2.0]]).tolist() == [True]


def test_the_cli_abandons_failed_rounds_says_so_and_stores_them(tmp_path, monkeypatch, capsys):
    """``activesci run --on-failure abandon`` with a theory of the user's whose apparatus
    cannot run below a design: the run goes on, stderr says what was abandoned, the store
    keeps it, and the report is written."""
    import textwrap

    from activesci.cli import main

    (tmp_path / "fragile.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from activesci.simulators import GaussianSimulator
            from activesci.tasks import Task

            class Fragile(GaussianSimulator):
                def run_experiment(self, theta, design, rng):
                    if float(np.ravel(design)[0]) < 3.0:
                        raise RuntimeError("the apparatus cannot run there")
                    return super().run_experiment(theta, design, rng)

            def fragile() -> Task:
                return Task(name="fragile", simulator=Fragile(), truth={"mu0": 0.5})
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    args = ["run", "fragile:fragile", "--estimator", "exact", "--strategy", "random"]
    code = main(
        [*args, "--rounds", "6", "--seed", "3", "--on-failure", "abandon", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "abandoned design" in err and "RuntimeError: the apparatus cannot run there" in err
    with SQLiteRunStore.open(out, readonly=True) as store:
        told = len(store.rounds())
        log = json.loads(store.load_checkpoint("abandoned_designs"))
    assert log and told + len(log) == 6 and all(e["designs"][0][0] < 3.0 for e in log)
    page = (out / "report.html").read_text()
    assert "Abandoned designs" in page and "the apparatus cannot run there" in page


def test_in_a_batch_run_in_turn_what_ran_before_a_failure_is_kept():
    """Batch of 3 run one by one, the second fails: the first is told and stored either way;
    with on_failure="abandon" the two left are abandoned, with "raise" they stay pending."""
    task = asci.tasks.gaussian()

    class SecondFails:
        designs = task.designs

        def __init__(self):
            self.inner, self.calls = task.experiment(seed=5), 0

        def run(self, design):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("the second run failed")
            return self.inner.run(design)

    for on_failure in ("abandon", "raise"):
        learner = learner_for(task=task, experiment=SecondFails(), batch=3)
        if on_failure == "raise":
            with pytest.raises(RuntimeError, match="second run failed"):
                learner.run(1, on_failure=on_failure)
            assert len(learner.ask(2)) == 2  # still pending, for a resume
        else:
            learner.run(1, on_failure=on_failure)
            assert len(learner.abandoned[0]["designs"]) == 2
        assert learner.round == 1 and len(learner.store.observations()) == 1


def test_a_scan_skips_an_abandoned_point_for_the_next_one_of_its_cycle():
    learner = learner_for(strategy="scan", strategy_options={"designs": [[1.0], [2.0], [3.0]]})
    np.testing.assert_array_equal(learner.ask(), [1.0])
    learner.abandon("the cryostat leaks at 1.0")
    np.testing.assert_array_equal(learner.ask(), [2.0])  # round 0's next point
    learner.run(4)
    # rounds 0-3 take points 0-3 of the cycle, 1.0 skipped for the next each time
    assert [float(s.design[0]) for s in learner.states] == [2.0, 2.0, 3.0, 2.0]
