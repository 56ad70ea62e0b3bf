"""Tests of the activesci.events/1 file: round trip, plain-numpy readability and validation."""

import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from activesci.errors import EventFileError
from activesci.simulators.eventfile import EventFile, read_events, write_events

N = 6

#: Every key of a full file, as documented in the module docstring.
DOCUMENTED_KEYS = {
    "format",
    "task",
    "parameter_names",
    "design_names",
    "feature_names",
    "theta",
    "design",
    "x",
    "z",
    "joint_log_prob",
    "joint_score",
    "luminosity",
    "seed",
    "activesci_version",
}
OPTIONAL_KEYS = {"z", "joint_log_prob", "joint_score", "luminosity", "seed", "activesci_version"}


def make_events(**overrides) -> EventFile:
    rng = np.random.default_rng(0)
    fields = {
        "task": "weinberg_lineshape",
        "parameter_names": ("sin2w", "mz"),
        "design_names": ("sqrt_s",),
        "feature_names": ("cos_theta",),
        "theta": np.array([0.2315, 91.1876]),
        "design": np.array([91.19]),
        "x": rng.uniform(-1.0, 1.0, size=(N, 1)),
        "z": rng.uniform(-1.0, 1.0, size=(N, 2)),
        "joint_log_prob": rng.normal(size=N),
        "joint_score": rng.normal(size=(N, 2)),
        "luminosity": 2.5,
        "seed": 7,
    }
    fields.update(overrides)
    return EventFile(**fields)


def minimal_events() -> EventFile:
    return make_events(z=None, joint_log_prob=None, joint_score=None, luminosity=None, seed=None)


def saved_arrays(tmp_path: Path) -> dict[str, np.ndarray]:
    """The arrays of a valid full file, to be broken by the tests."""
    path = write_events(tmp_path / "valid.npz", make_events())
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def assert_names(excinfo: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(excinfo.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_with_every_key(tmp_path):
    events = make_events()
    path = write_events(tmp_path / "events.npz", events)
    assert path == tmp_path / "events.npz"
    back = read_events(path)
    assert back.task == "weinberg_lineshape"
    assert back.parameter_names == ("sin2w", "mz")
    assert back.design_names == ("sqrt_s",)
    assert back.feature_names == ("cos_theta",)
    for key in ("theta", "design", "x", "z", "joint_log_prob", "joint_score"):
        np.testing.assert_array_equal(getattr(back, key), getattr(events, key), err_msg=key)
    assert back.luminosity == 2.5
    assert back.seed == 7
    assert back.activesci_version == version("activesci")


def test_round_trip_without_optional_keys(tmp_path):
    path = write_events(tmp_path / "events.npz", minimal_events())
    back = read_events(path)
    assert back.z is None
    assert back.joint_log_prob is None
    assert back.joint_score is None
    assert back.luminosity is None
    assert back.seed is None
    np.testing.assert_array_equal(back.x, minimal_events().x)


def test_seed_zero_is_not_none(tmp_path):
    path = write_events(tmp_path / "events.npz", make_events(seed=0))
    assert read_events(path).seed == 0


def test_file_loads_with_plain_numpy(tmp_path):
    path = write_events(tmp_path / "events.npz", make_events())
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert set(arrays) == DOCUMENTED_KEYS
    assert str(arrays["format"]) == "activesci.events/1"
    assert str(arrays["task"]) == "weinberg_lineshape"
    assert arrays["parameter_names"].tolist() == ["sin2w", "mz"]
    assert arrays["x"].dtype == np.float64 and arrays["x"].shape == (N, 1)
    assert arrays["joint_score"].shape == (N, 2)
    assert arrays["seed"].dtype == np.int64 and int(arrays["seed"]) == 7
    assert float(arrays["luminosity"]) == 2.5
    assert all(a.dtype != object for a in arrays.values())


def test_missing_values_are_stored_as_documented(tmp_path):
    path = write_events(tmp_path / "events.npz", minimal_events())
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == DOCUMENTED_KEYS - {"z", "joint_log_prob", "joint_score"}
        assert np.isnan(data["luminosity"])
        assert int(data["seed"]) == -1


# -- atomic write -----------------------------------------------------------------------------


def test_write_leaves_no_part_file(tmp_path):
    write_events(tmp_path / "events.npz", make_events())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.npz"]


def test_write_replaces_an_existing_file_and_creates_folders(tmp_path):
    path = tmp_path / "a" / "b" / "events.npz"
    write_events(path, make_events(seed=1))
    write_events(path, make_events(seed=2))
    assert read_events(path).seed == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["events.npz"]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"x": np.full((N, 1), np.nan)}, "'x'"),
        ({"joint_score": np.zeros(N)}, "'joint_score'"),
        ({"theta": np.array([0.2315])}, "'theta'"),
    ],
)
def test_write_rejects_bad_events_and_writes_nothing(tmp_path, overrides, key):
    path = tmp_path / "events.npz"
    with pytest.raises(EventFileError) as excinfo:
        write_events(path, make_events(**overrides))
    assert_names(excinfo, str(path), key)
    assert list(tmp_path.iterdir()) == []


# -- validation on read -----------------------------------------------------------------------

REQUIRED_KEYS = sorted(DOCUMENTED_KEYS - OPTIONAL_KEYS)


@pytest.mark.parametrize("key", ["luminosity", "seed", "activesci_version"])
def test_read_accepts_files_without_provenance_keys(tmp_path, key):
    arrays = saved_arrays(tmp_path)
    del arrays[key]
    path = tmp_path / "minimal.npz"
    np.savez(path, **arrays)
    events = read_events(path)
    assert {"luminosity": events.luminosity, "seed": events.seed}.get(key, None) is None
    assert key != "activesci_version" or events.activesci_version == ""


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_read_rejects_missing_key(tmp_path, key):
    arrays = saved_arrays(tmp_path)
    del arrays[key]
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(EventFileError) as excinfo:
        read_events(path)
    assert_names(excinfo, str(path), "missing", f"[{key!r}]")


@pytest.mark.parametrize(
    ("key", "value", "parts"),
    [
        ("format", np.array("activesci.events/2"), ["format", "'activesci.events/2'"]),
        ("format", np.array("something else"), ["format", "activesci.events/1"]),
        ("x", np.zeros(N), ["'x'", f"({N},)", "(n, 1)"]),
        ("x", np.zeros((N, 2)), ["'x'", f"({N}, 2)", "(n, 1)"]),
        ("theta", np.zeros(3), ["'theta'", "(3,)", "(2,)"]),
        ("theta", np.zeros((1, 2)), ["'theta'", "(1, 2)", "(2,)"]),
        ("design", np.zeros((1, 1)), ["'design'", "(1, 1)", "(1,)"]),
        ("design", np.zeros(0), ["'design'", "(0,)", "(1,)"]),
        ("joint_score", np.zeros(N), ["'joint_score'", f"({N},)", f"({N}, 2)"]),
        ("joint_score", np.zeros((N, 1)), ["'joint_score'", f"({N}, 1)", f"({N}, 2)"]),
        ("joint_score", np.zeros((N - 1, 2)), ["'joint_score'", f"({N - 1}, 2)"]),
        ("joint_log_prob", np.zeros((N, 1)), ["'joint_log_prob'", f"({N}, 1)", f"({N},)"]),
        ("z", np.zeros(N), ["'z'", f"({N},)", f"({N}, '*')"]),
        ("x", np.where(np.arange(N)[:, None] == 3, np.nan, 0.0), ["'x'", "NaN"]),
        ("x", np.full((N, 1), np.inf), ["'x'", "infinite"]),
    ],
    ids=[
        "format-version",
        "format-other",
        "x-1d",
        "x-columns",
        "theta-length",
        "theta-2d",
        "design-2d",
        "design-empty",
        "joint_score-1d",
        "joint_score-columns",
        "joint_score-rows",
        "joint_log_prob-2d",
        "z-1d",
        "x-nan",
        "x-inf",
    ],
)
def test_read_rejects_inconsistent_file(tmp_path, key, value, parts):
    arrays = saved_arrays(tmp_path)
    arrays[key] = value
    path = tmp_path / "broken.npz"
    np.savez(path, **arrays)
    with pytest.raises(EventFileError) as excinfo:
        read_events(path)
    assert_names(excinfo, str(path), *parts)


def test_read_rejects_missing_file(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(EventFileError) as excinfo:
        read_events(path)
    assert_names(excinfo, str(path), "no such events file")


def write_text(path: Path) -> None:
    path.write_text("cos_theta\n0.5\n")


def write_npy(path: Path) -> None:
    with open(path, "wb") as f:
        np.save(f, np.zeros((3, 1)))


def write_empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "write",
    [
        write_text,
        write_npy,
        write_empty,
    ],
    ids=["text", "npy", "empty"],
)
def test_read_rejects_files_that_are_not_npz(tmp_path, write):
    path = tmp_path / "events.npz"
    write(path)
    with pytest.raises(EventFileError) as excinfo:
        read_events(path)
    assert_names(excinfo, str(path), "not a readable .npz")


# -- hostile and careless files (issue 13) -----------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"theta": np.array([np.nan, 91.0])}, "'theta' contains NaN or infinite values"),
        ({"design": np.array([np.inf])}, "'design' contains NaN or infinite values"),
        ({"z": np.full((N, 2), np.nan)}, "'z' contains NaN or infinite values"),
        ({"x": np.array([["a"]] * N)}, "'x' has dtype <U1, expected numbers"),
        ({"task": np.array(5)}, "'task' has dtype int64, expected text"),
        ({"seed": np.array("seven")}, "'seed' has dtype <U5, expected integers"),
        ({"luminosity": np.array(-1.0)}, "'luminosity' is -1.0, expected a positive number"),
        ({"task": np.array(["a", "b"])}, "'format' and 'task' must be single strings"),
    ],
)
def test_hostile_fields_are_typed_errors(tmp_path, change, message):
    arrays = saved_arrays(tmp_path) | change
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(EventFileError) as excinfo:
        read_events(tmp_path / "bad.npz")
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"task": "weinberg"}, "'task' is 'weinberg_lineshape', but 'weinberg' was asked for"),
        ({"theta": [0.2, 91.1876]}, "'theta' is [0.2315, 91.1876], but [0.2, 91.1876] was asked"),
        ({"design": [88.0]}, "'design' is [91.19], but [88.0] was asked for"),
        ({"n": N + 1}, f"holds {N} events, {N + 1} were asked for"),
    ],
)
def test_a_file_of_another_point_or_size_is_refused(tmp_path, asked, message):
    path = write_events(tmp_path / "e.npz", make_events())
    with pytest.raises(EventFileError) as excinfo:
        read_events(path, **asked)
    assert message in str(excinfo.value)
    exact = {"task": "weinberg_lineshape", "theta": [0.2315, 91.1876], "design": [91.19], "n": N}
    assert len(read_events(path, **exact).x) == N


def test_truncated_and_crafted_archives_are_typed_errors(tmp_path):
    import io
    import zipfile

    data = write_events(tmp_path / "e.npz", make_events()).read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(EventFileError, match=r"not a readable \.npz archive"):
        read_events(tmp_path / "cut.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**13, 1)}
    )
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(64))
    with pytest.raises(EventFileError, match=r"'x.npy' declares shape \(10000000000000, 1\)"):
        read_events(tmp_path / "huge.npz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("args[args.index('--n') + 1] = '4'", "holds 4 events, 5 were asked for"),
        ("args[args.index('--theta') + 1] = 'mu0=0.25'", "'theta' is [0.25], but [0.5] was asked"),
        ("args[args.index('--design') + 1] = 'phase=2.0'", "'design' is [2.0], but [1.0] was"),
    ],
    ids=["fewer-events", "another-theta", "another-design"],
)
def test_a_command_simulator_refuses_events_it_did_not_ask_for(tmp_path, change, message):
    """A program that writes fewer events, or events of another point, is refused."""
    import sys

    from activesci import tasks
    from activesci.workflow.steps import CommandSimulator

    script = tmp_path / "liar.py"
    script.write_text(
        f"import sys\nfrom activesci.cli import main\nargs = sys.argv[1:]\n{change}\n"
        "sys.exit(main(['simulate', *args]))\n"
    )
    sim = CommandSimulator(tasks.gaussian(), command=[sys.executable, str(script)])
    with pytest.raises(EventFileError, match=re.escape(message)):
        sim.sample([0.5], [1.0], np.random.default_rng(0), n=5)


def test_no_writer_follows_a_symlink_planted_at_its_temporary_or_target(tmp_path, capsys):
    """``ln -s victim out.part`` (and the other names writers once used) redirects nothing."""
    from activesci import tasks
    from activesci.cli import main
    from activesci.experiments import RecordedExperiment
    from activesci.inference.ratio import RatioEstimator
    from activesci.inference.training import simulate_training_data

    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    out = tmp_path / "out"
    out.mkdir()
    task = tasks.gaussian()
    obs = task.experiment(seed=1).run([1.0])
    estimator = RatioEstimator(task.simulator, method="carl", hidden=(4,))
    estimator.train(n_samples=64, epochs=1, batch_size=16, progress=False)
    writers = {
        "cli.npz": lambda p: main(
            ["simulate", "gaussian", "--design", "phase=3", "--n", "5", "--out", str(p)]
        ),
        "events.npz": lambda p: write_events(p, make_events()),
        "recorded.npz": lambda p: RecordedExperiment(task.designs, [obs]).to_npz(p),
        "training.npz": lambda p: simulate_training_data(task.simulator, 16, theta_ref=[0.5]).save(
            p
        ),
        "estimator.pt": estimator.save,
    }
    for name, write in writers.items():
        for planted in (f"{name}.part", f".{name}.partial", name):
            (out / planted).symlink_to(victim)
        write(out / name)
        assert (out / name).is_file() and not (out / name).is_symlink(), name
        assert victim.read_bytes() == b"keep", name
    assert read_events(out / "cli.npz").x.shape == (5, 1)
    leftovers = {p.name for p in out.iterdir()} - set(writers)
    assert all(p.endswith((".part", ".partial")) for p in leftovers), leftovers  # ours only
    assert all((out / p).is_symlink() for p in leftovers), leftovers
    capsys.readouterr()
