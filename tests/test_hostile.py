"""Careless and hostile input to the public API: typed errors naming the value (issue 13)."""

import math

import numpy as np
import pytest

import activesci as asci
from activesci.errors import ShapeError, ValidationError
from activesci.inference.training import TrainingData
from activesci.io import verify_checksum
from activesci.simulators import GaussianSimulator, SimulatorBase
from activesci.simulators.eventfile import read_events
from activesci.typing import Events, Observation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"luminosity": math.inf}, "luminosity must be a positive finite number, got inf"),
        ({"luminosity": True}, "luminosity must be a positive finite number, got True"),
        ({"luminosity": "1"}, "luminosity must be a positive finite number, got '1'"),
        ({"x": [["a"]]}, "Observation.x must be numbers"),
        ({"design": [math.nan]}, "Observation.design contains NaN"),
        ({"meta": "provenance"}, "Observation.meta must be a dict"),
    ],
)
def test_observations_refuse_careless_values(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Observation(**({"design": [1.0], "x": [[0.1]]} | kwargs))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.sample([0.5], [1.0], None, n=3), "rng must be a numpy.random.Generator"),
        (lambda s: s.sample([0.5], [1.0], 7, n=3), "rng must be a numpy.random.Generator"),
        (lambda s: s.sample([0.5], [1.0], np.random.default_rng(), n=True), "got True"),
        (lambda s: s.sample([0.5], [1.0], np.random.default_rng(), n=2.0), "got 2.0"),
        (lambda s: s.run_experiment([0.5], [1.0], None), "rng must be a numpy.random.Generator"),
    ],
)
def test_simulators_refuse_careless_arguments(call, message):
    with pytest.raises(ValidationError, match=message):
        call(GaussianSimulator())


@pytest.mark.parametrize("seed", [None, "1", -1, 1.5, True])
def test_seeds_must_be_non_negative_integers(seed):
    with pytest.raises(ValidationError, match="seed must be a non-negative integer"):
        asci.ActiveLearner("gaussian", estimator="exact", seed=seed)
    if seed is not None:  # None is a fresh, unseeded experiment
        with pytest.raises(ValidationError, match="seed must be a non-negative integer"):
            asci.SimulatedExperiment(GaussianSimulator(), {"mu0": 0.1}, seed=seed)


class Broken(SimulatorBase):
    """A user simulator whose outputs are wrong in the way ``mode`` says."""

    feature_names = ("x0",)

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.parameters = GaussianSimulator().parameters
        self.designs = GaussianSimulator().designs

    def expected_count(self, theta, design):
        return np.full(len(theta), -3.0 if self.mode == "negative" else 4.0)

    def _sample(self, theta, design, n, rng):
        x = rng.normal(size=(n, 1))
        if self.mode == "short":
            return Events(x=x[1:])
        if self.mode == "text":
            return Events(x=np.array([["a"]] * n))
        return x if self.mode == "array" else Events(x=x)


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("negative", ValidationError, r"expected_count .* is \[-3.0\]; expected one finite"),
        ("short", ShapeError, r"Broken returned (\d+) events, \d+ were asked for"),
        ("text", ValidationError, "Events.x must be numbers"),
        ("array", ShapeError, "Broken returned a ndarray, expected Events"),
    ],
)
def test_bad_simulator_outputs_are_typed_errors(mode, error, message):
    rng = np.random.default_rng(0)
    with pytest.raises(error, match=message):
        asci.SimulatedExperiment(Broken(mode), {"mu0": 0.1}, seed=1).run([1.0])
    if mode != "negative":  # training data refuse them too
        from activesci.inference.training import simulate_training_data

        with pytest.raises(error, match=message):
            Broken(mode).sample([0.5], [1.0], rng, n=4)
        with pytest.raises(error):
            simulate_training_data(Broken(mode), 8, theta_ref=[0.0], gold=())


def test_luminosity_too_large_to_simulate_is_named():
    sim = asci.tasks.weinberg(luminosity=1e300).simulator
    with pytest.raises(ValidationError, match="luminosity or cross-section that large"):
        sim.run_experiment([0.23], [91.19], np.random.default_rng(0))


def test_task_options_are_checked_by_name():
    with pytest.raises(ValidationError, match=r"'gaussian' takes no option\(s\) \['luminosity'\]"):
        asci.tasks.get("gaussian", luminosity=2.0)
    with pytest.raises(ValidationError, match="unknown task"):
        asci.tasks.get(["weinberg"])


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("gaussian", {"dim": 100_000}, r"dim must be a positive integer \(at most 64\)"),
        ("gaussian", {"dim": True}, "dim must be a positive integer .*got True"),
        ("gaussian", {"dim": 2.0}, "dim must be a positive integer .*got 2.0"),
        ("gaussian", {"events_per_experiment": True}, "events_per_experiment must .*got True"),
        ("gaussian", {"events_per_experiment": math.nan}, "events_per_experiment must .*got nan"),
        ("gaussian", {"events_per_experiment": 10**12}, "events_per_experiment must .*at most"),
        ("weinberg", {"luminosity": True}, "luminosity must be a positive finite number"),
        ("weinberg", {"luminosity": math.inf}, "luminosity must be a positive finite number"),
        ("weinberg_lineshape", {"luminosity": False}, "luminosity must be a positive finite"),
        ("weinberg_lineshape", {"luminosity": math.nan}, "luminosity must be a positive finite"),
    ],
)
def test_task_option_values_are_checked(name, options, message):
    with pytest.raises(ValidationError, match=message):
        asci.tasks.get(name, **options)


@pytest.mark.parametrize("kwargs", [{"bound": math.nan}, {"prior_std": True}, {"prior_mean": "0"}])
def test_gaussian_prior_settings_are_checked(kwargs):
    with pytest.raises(ValidationError):
        GaussianSimulator(**kwargs)


def test_writes_refuse_devices_fifos_and_nul_bytes(tmp_path):
    # a write renames a new file over its target: over /dev/null, as root, it replaced the device
    import os

    from activesci.io import atomic_path, atomic_write, check_output_path

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in ("/dev/null", fifo):
        with pytest.raises(ValidationError, match="is a device, FIFO or socket"):
            check_output_path(target)
    with pytest.raises(ValidationError, match="is a device, FIFO or socket"):
        with atomic_write(fifo) as fh:
            fh.write(b"x")
    with pytest.raises(ValidationError, match="is a device, FIFO or socket"):
        with atomic_path(fifo):
            pass
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]
    for bad in ("", "a\0b"):
        with pytest.raises(ValidationError, match="is not a file path"):
            check_output_path(bad)
    (tmp_path / "link").symlink_to(tmp_path / "victim")  # a symlink is replaced, not followed
    assert check_output_path(tmp_path / "link") == tmp_path / "link"


@pytest.mark.parametrize(
    "load",
    [
        lambda p: asci.RecordedExperiment.from_csv(p, asci.tasks.gaussian().designs, ["x0"]),
        lambda p: asci.RecordedExperiment.from_npz(p, asci.tasks.gaussian().designs),
        read_events,
        TrainingData.load,
        verify_checksum,
    ],
    ids=["csv", "npz", "events", "training", "checksum"],
)
def test_loaders_refuse_fifos_and_devices_instead_of_hanging(tmp_path, load):
    import os
    import signal

    from activesci.errors import ActivesciError

    def hung(*_):
        raise AssertionError("the loader hangs reading a FIFO or device")

    fifo = tmp_path / "data"
    os.mkfifo(fifo)
    (tmp_path / "data.sha256").write_text("0" * 64 + "  data\n")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        for path in (fifo, "/dev/zero", tmp_path):
            with pytest.raises(ActivesciError, match=r"is (a device, FIFO or socket|a folder)"):
                load(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
