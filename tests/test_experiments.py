"""Tests of the recorded and manual experiments: file round trips, replay and validation."""

import csv
from pathlib import Path

import numpy as np
import pytest

import activesci as asci
from activesci.errors import OutOfSpaceError, RecordError, ShapeError, ValidationError
from activesci.experiments import ManualExperiment, RecordedExperiment
from activesci.typing import Experiment, Observation

SCAN = [[91.19], [88.0]]


@pytest.fixture(scope="module")
def task() -> asci.tasks.Task:
    return asci.tasks.weinberg()


@pytest.fixture(scope="module")
def recorded(task) -> list[Observation]:
    """What the task's seeded experiment records at the scan designs, in scan order."""
    exp = task.experiment(seed=1)
    return [exp.run({"sqrt_s": d[0]}) for d in SCAN]


def write_csv(path: Path, rows: list[list], header=("sqrt_s", "cos_theta", "luminosity")) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def observations_to_rows(observations: list[Observation]) -> list[list]:
    return [
        [repr(float(o.design[0])), repr(float(v)), repr(o.luminosity)]
        for o in observations
        for v in o.x[:, 0]
    ]


def assert_same(a: Observation, b: Observation) -> None:
    np.testing.assert_array_equal(a.design, b.design)
    np.testing.assert_array_equal(a.x, b.x)
    assert a.luminosity == b.luminosity


# -- protocol and replay ----------------------------------------------------------------------
def test_both_satisfy_the_experiment_protocol(task, recorded):
    assert isinstance(RecordedExperiment(task.designs, recorded), Experiment)
    assert isinstance(ManualExperiment(task.designs, n_features=1), Experiment)


def test_replays_in_order_per_design_and_lists_what_is_left(task, recorded):
    a, b = recorded
    second = Observation([91.19], a.x[:5], luminosity=2.0)
    exp = RecordedExperiment(task.designs, [a, b, second])
    assert_same(exp.run({"sqrt_s": 91.19}), a)
    assert_same(exp.run([91.19 + 1e-12]), second)  # allclose matching
    with pytest.raises(RecordError) as info:
        exp.run([91.19])
    msg = str(info.value)
    assert "no recorded observation left at sqrt_s=91.19" in msg
    assert "sqrt_s=91.19 (0 left)" in msg and "sqrt_s=88 (1 left)" in msg
    with pytest.raises(RecordError, match=r"at sqrt_s=100; available: .*sqrt_s=88 \(1 left\)"):
        exp.run([100.0])
    assert_same(exp.run([88.0]), b)
    assert [left for _, left in exp.remaining()] == [0, 0]


def test_run_validates_the_design(task, recorded):
    exp = RecordedExperiment(task.designs, recorded)
    with pytest.raises(OutOfSpaceError, match=r"sqrt_s=500\.0 is outside"):
        exp.run([500.0])


def test_constructor_validates(task, recorded):
    with pytest.raises(RecordError, match="at least one observation"):
        RecordedExperiment(task.designs, [])
    with pytest.raises(RecordError, match="observation 1 is a list"):
        RecordedExperiment(task.designs, [recorded[0], [1.0]])
    with pytest.raises(RecordError, match=r"observation 0: sqrt_s=5.0 is outside"):
        RecordedExperiment(task.designs, [Observation([5.0], [[0.1]])])
    with pytest.raises(RecordError, match="observation 1 has 2 features, observation 0 has 1"):
        RecordedExperiment(task.designs, [recorded[0], Observation([88.0], [[0.1, 0.2]])])
    with pytest.raises(ValidationError, match="must be an activesci Space"):
        RecordedExperiment(["sqrt_s"], recorded)


def test_learner_runs_on_recorded_data_as_on_the_live_experiment(task, recorded):
    options = {"designs": SCAN}
    replay = RecordedExperiment(task.designs, recorded)
    learner = asci.ActiveLearner(
        task, experiment=replay, estimator="exact", strategy="scan", strategy_options=options
    )
    state = learner.run(rounds=2)
    assert state.round == 1
    for s, obs in zip(learner.states, recorded, strict=True):
        assert_same(s.observation, obs)
    live = asci.ActiveLearner(
        task, estimator="exact", strategy="scan", strategy_options=options, seed=1
    )
    live_state = live.run(rounds=2)
    np.testing.assert_allclose(state.posterior.mean(), live_state.posterior.mean())
    np.testing.assert_allclose(state.posterior.std(), live_state.posterior.std())
    with pytest.raises(RecordError, match=r"sqrt_s=91.19 \(0 left\)"):
        learner.run(rounds=1)  # the recordings are used up


# -- CSV --------------------------------------------------------------------------------------
def test_csv_round_trip(task, recorded, tmp_path):
    path = write_csv(tmp_path / "data.csv", observations_to_rows(recorded))
    exp = RecordedExperiment.from_csv(path, task.designs, ["cos_theta"])
    assert exp.feature_names == ("cos_theta",)
    assert len(exp.observations) == 2
    for got, want in zip(exp.observations, recorded, strict=True):
        assert_same(got, want)


def test_csv_columns_in_any_order_without_luminosity_and_blank_lines(task, tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("cos_theta, sqrt_s\n0.5, 88\n\n-0.25, 91.19\n0.75, 88\n")
    exp = RecordedExperiment.from_csv(path, task.designs, "cos_theta")
    first, second = exp.observations
    np.testing.assert_array_equal(first.design, [88.0])
    np.testing.assert_array_equal(first.x, [[0.5], [0.75]])
    np.testing.assert_array_equal(second.x, [[-0.25]])
    assert first.luminosity is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", r"empty file; expected a header line with columns \['sqrt_s', 'cos_theta'\]"),
        ("sqrt_s,cos_theta\n", r"no events after the header \(line 1\)"),
        ("sqrt_s\n88\n", r"line 1: missing column\(s\) \['cos_theta'\]"),
        ("sqrt_s,cos_theta,energy\n", r"line 1: unknown column\(s\) \['energy'\]"),
        ("sqrt_s,cos_theta,sqrt_s\n", r"line 1: duplicate column\(s\) \['sqrt_s'\]"),
        ("sqrt_s,cos_theta\n88,0.1\n88,abc\n", r"line 3, column 'cos_theta': 'abc' is not a"),
        ("sqrt_s,cos_theta\n88,0.1\n\n88,nan\n", r"line 4, column 'cos_theta': 'nan' is not a fi"),
        ("sqrt_s,cos_theta\n88,0.1\n,0.2\n", r"line 3, column 'sqrt_s': '' is not a number"),
        ("sqrt_s,cos_theta\n88,0.1\n88\n", r"line 3: 1 fields, expected 2"),
        (
            "sqrt_s,cos_theta\n88,0.1\n250,0.2\n",
            r"line 3, column 'sqrt_s': sqrt_s=250.0 is outside the allowed range \[20, 210\] GeV$",
        ),
        (
            "sqrt_s,cos_theta,luminosity\n88,0.1,1\n91,0.2,2\n88,0.3,1.5\n",
            r"line 4, column 'luminosity': 1.5 differs from 1.0 on line 2 for the same design "
            r"sqrt_s=88",
        ),
        (
            "sqrt_s,cos_theta,luminosity\n88,0.1,1\n88,0.3,\n",
            r"line 3, column 'luminosity': None differs from 1.0 on line 2",
        ),
        ("sqrt_s,cos_theta,luminosity\n88,0.1,-1\n", r"line 2, column 'luminosity': must be pos"),
    ],
)
def test_csv_errors_name_file_line_and_column(task, tmp_path, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RecordError, match=expected) as info:
        RecordedExperiment.from_csv(path, task.designs, ["cos_theta"])
    assert str(info.value).startswith(str(path))


def test_csv_missing_file_and_bad_feature_names(task, tmp_path):
    with pytest.raises(RecordError, match=r"nope\.csv: no such file"):
        RecordedExperiment.from_csv(tmp_path / "nope.csv", task.designs, ["cos_theta"])
    with pytest.raises(ValidationError, match="clash"):
        RecordedExperiment.from_csv(tmp_path / "nope.csv", task.designs, ["sqrt_s"])


# -- NPZ --------------------------------------------------------------------------------------
def test_npz_round_trip_with_repeats_empty_and_unknown_luminosity(task, recorded, tmp_path):
    observations = [
        *recorded,
        Observation([91.19], recorded[0].x[:7]),
        Observation([200.0], np.empty((0, 1)), luminosity=0.5),
    ]
    exp = RecordedExperiment(task.designs, observations, feature_names=["cos_theta"])
    exp.run([88.0])  # used observations are written too
    path = exp.to_npz(tmp_path / "sub" / "data.npz")
    assert not (tmp_path / "sub" / "data.npz.part").exists()
    with np.load(path, allow_pickle=False) as data:
        assert data["counts"].tolist() == [o.n for o in observations]
    back = RecordedExperiment.from_npz(path, task.designs)
    assert back.feature_names == ("cos_theta",)
    for got, want in zip(back.observations, observations, strict=True):
        assert_same(got, want)
    assert back.run([91.19]).n == recorded[0].n
    assert back.run([91.19]).n == 7
    assert back.run([200.0]).n == 0


def good_arrays() -> dict[str, np.ndarray]:
    return {
        "design": np.array([[88.0], [91.19]]),
        "counts": np.array([2, 1]),
        "x": np.array([[0.1], [0.2], [0.3]]),
        "luminosity": np.array([1.0, np.nan]),
    }


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"design": None}, r"missing key\(s\) \['design'\]"),
        ({"lumi": np.ones(2)}, r"unknown key\(s\) \['lumi'\]"),
        ({"design": np.array([88.0, 91.19])}, r"'design' has shape \(2,\), expected \(k, 1\)"),
        ({"design": np.array([[88.0], [np.nan]])}, r"'design' row 1: sqrt_s=nan is not a finite"),
        ({"design": np.array([[88.0], [300.0]])}, r"'design' row 1: sqrt_s=300.0 is outside"),
        ({"design": np.array([["a"], ["b"]])}, r"'design' has dtype <U1, expected numbers"),
        ({"counts": np.array([3])}, r"'counts' has shape \(1,\), expected \(2,\)"),
        ({"counts": np.array([2.5, 0.5])}, r"'counts' must be non-negative integers"),
        ({"counts": np.array([4, -1])}, r"'counts' must be non-negative integers"),
        ({"counts": np.array([2.0**63, 1.0])}, r"each at most the 3 rows of 'x', got \[9\.2"),
        ({"counts": np.array([1, 1])}, r"'x' has shape \(3, 1\), expected \(2, X\): sum of 'co"),
        ({"x": np.array([[0.1], [np.nan], [0.3]])}, r"'x' contains NaN"),
        ({"luminosity": np.array([1.0])}, r"'luminosity' has shape \(1,\), expected \(2,\)"),
        (
            {"luminosity": np.array([1.0, -2.0])},
            r"'luminosity' entry 1: luminosity must be a positive finite number, got -2.0$",
        ),
        ({"design_names": np.array(["energy"])}, r"'design_names' are \['energy'\], expected"),
        ({"feature_names": np.array(["a", "b"])}, r"'feature_names' has 2 names for 1 columns"),
    ],
)
def test_npz_errors_name_file_and_key(task, tmp_path, change, expected):
    arrays = good_arrays()
    for key, value in change.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(RecordError, match=expected) as info:
        RecordedExperiment.from_npz(path, task.designs)
    assert str(info.value).startswith(str(path))


def test_npz_good_arrays_load_and_unreadable_files_fail(task, tmp_path):
    path = tmp_path / "good.npz"
    np.savez(path, **good_arrays())
    exp = RecordedExperiment.from_npz(path, task.designs)
    assert [o.luminosity for o in exp.observations] == [1.0, None]
    with pytest.raises(RecordError, match=r"missing\.npz: no such file"):
        RecordedExperiment.from_npz(tmp_path / "missing.npz", task.designs)
    junk = tmp_path / "junk.npz"
    junk.write_text("not an archive")
    with pytest.raises(RecordError, match=r"junk\.npz: not a readable .npz archive"):
        RecordedExperiment.from_npz(junk, task.designs)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(RecordError, match=r"single\.npy: not a readable .npz archive"):
        RecordedExperiment.from_npz(single, task.designs)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **good_arrays(), feature_names=np.array([object()], dtype=object))
    with pytest.raises(RecordError, match=r"pickled\.npz: unreadable array"):
        RecordedExperiment.from_npz(pickled, task.designs)


# -- manual -----------------------------------------------------------------------------------
def test_manual_submit_request_pending_run(task):
    exp = ManualExperiment(task.designs, n_features=1)
    with pytest.raises(
        RecordError,
        match=r"no result entered for design sqrt_s=91.19; call submit\(design, x\) first",
    ):
        exp.run({"sqrt_s": 91.19})
    exp.request([88.0])
    exp.request([88.0])  # asked twice, listed once
    assert [p.tolist() for p in exp.pending()] == [[91.19], [88.0]]
    obs = exp.submit([88.0], [0.1, -0.3], luminosity=2)
    assert obs.luminosity == 2.0 and obs.x.shape == (2, 1)
    exp.submit([88.0], np.zeros((0, 1)))
    assert [p.tolist() for p in exp.pending()] == [[91.19]]
    assert_same(exp.run([88.0]), obs)  # oldest first
    assert exp.run([88.0]).n == 0
    with pytest.raises(RecordError, match="sqrt_s=88"):
        exp.run([88.0])
    assert [p.tolist() for p in exp.pending()] == [[91.19], [88.0]]


def test_manual_feeds_a_learner(task, recorded):
    exp = ManualExperiment(task.designs, n_features=1)
    learner = asci.ActiveLearner(
        task, experiment=exp, estimator="exact", strategy="fixed", progress=False
    )
    design = learner.ask()
    with pytest.raises(RecordError, match="no result entered"):
        learner.run(rounds=1)
    np.testing.assert_array_equal(exp.pending(), [design])
    exp.submit(design, recorded[0].x, luminosity=1.0)
    assert learner.run(rounds=1).observation.n == recorded[0].n
    assert exp.pending() == []


@pytest.mark.parametrize(
    ("args", "error", "expected"),
    [
        (([500.0], [[0.1]]), OutOfSpaceError, "sqrt_s=500.0 is outside"),
        (([88.0], [[0.1, 0.2]]), ShapeError, r"x must have shape \(n, 1\), got \(1, 2\)"),
        (([88.0], [[[0.1]]]), ShapeError, r"x must have shape \(n, 1\), got \(1, 1, 1\)"),
        (([88.0], [[np.nan]]), RecordError, "x contains NaN or infinite values"),
        (([88.0], [["a"]]), RecordError, "x must be numbers"),
        (([88.0], [[0.1]], 0.0), RecordError, "sqrt_s=88: luminosity must be a positive"),
        (([88.0], [[0.1]], float("inf")), RecordError, "luminosity must be a positive"),
        (([88.0], [[0.1]], "much"), RecordError, "positive finite number, got 'much'"),
    ],
)
def test_manual_submit_validates(task, args, error, expected):
    exp = ManualExperiment(task.designs, n_features=1)
    with pytest.raises(error, match=expected):
        exp.submit(*args)
    with pytest.raises(RecordError):
        exp.run([88.0])  # nothing was queued


def test_manual_rejects_bad_n_features(task):
    for bad in (0, 1.5, True):
        with pytest.raises(ValidationError, match="n_features must be a positive integer"):
            ManualExperiment(task.designs, n_features=bad)
