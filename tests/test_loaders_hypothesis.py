"""Property tests of every loader activesci owns for data files (issue 13).

Whatever bytes or arrays a file holds, a loader returns a valid object or raises its typed error
(a subclass of ``ActivesciError``), never anything else. The number of examples per property
comes from the hypothesis profile (``HYPOTHESIS_PROFILE``: ``ci`` 200, ``long`` 5000; see
``tests/_hypothesis_profiles.py``).
"""

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from activesci import tasks
from activesci.errors import EventFileError, RecordError, ValidationError
from activesci.experiments import RecordedExperiment
from activesci.inference import RatioEstimator, TrainingData
from activesci.inference.training import simulate_training_data
from activesci.simulators.eventfile import EventFile, read_events, write_events

MAX_EXAMPLES = settings.default.max_examples
BOUNDED = settings(max_examples=MAX_EXAMPLES, deadline=None)
TASK = tasks.weinberg()

#: Arrays of the kinds a file may hold: numbers of any sign and size, NaN, text, booleans.
ARRAYS = st.one_of(
    hnp.arrays(
        st.sampled_from([np.float64, np.int64, np.bool_, np.dtype("<U3")]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    ),
    st.sampled_from([np.zeros((0, 1)), np.array(np.nan), np.array([[np.inf]]), np.array("x")]),
)


def mutated(valid: dict[str, np.ndarray], data: st.DataObject) -> dict[str, np.ndarray]:
    """``valid`` with some keys replaced by arbitrary arrays, some dropped, one added."""
    arrays = dict(valid)
    for key in data.draw(st.lists(st.sampled_from(sorted(valid)), max_size=3, unique=True)):
        if data.draw(st.booleans()):
            arrays[key] = data.draw(ARRAYS)
        else:
            del arrays[key]
    if data.draw(st.booleans()):
        arrays[data.draw(st.sampled_from(["extra", "format", "x"]))] = data.draw(ARRAYS)
    return arrays


def npz(arrays: dict[str, np.ndarray]) -> Path:
    folder = Path(tempfile.mkdtemp())
    np.savez(folder / "file.npz", **arrays)
    return folder / "file.npz"


def corrupted(content: bytes, data: st.DataObject) -> Path:
    """``content`` truncated, or with a few bytes overwritten."""
    cut = data.draw(st.integers(0, len(content)))
    if data.draw(st.booleans()):
        content = content[:cut]
    else:
        patch = data.draw(st.binary(min_size=1, max_size=8))
        content = content[:cut] + patch + content[cut + len(patch) :]
    path = Path(tempfile.mkdtemp()) / "file"
    path.write_bytes(content)
    return path


# -- recorded data ----------------------------------------------------------------------------

RECORDED = {
    "design": np.array([[91.19], [88.0]]),
    "counts": np.array([2, 1]),
    "x": np.array([[0.1], [-0.5], [0.9]]),
    "luminosity": np.array([1.0, np.nan]),
    "design_names": np.array(["sqrt_s"]),
    "feature_names": np.array(["cos_theta"]),
}


@BOUNDED
@given(st.data())
def test_recorded_npz_is_loaded_or_refused(data):
    path = npz(mutated(RECORDED, data))
    try:
        exp = RecordedExperiment.from_npz(path, TASK.designs)
    except RecordError:
        return
    assert all(np.isfinite(o.x).all() for o in exp.observations)


@BOUNDED
@given(st.text(alphabet=st.sampled_from("sqrt_s,cos_theta,luminosity\n91.19-0.5e3nanif \x00é"),
               max_size=120))  # fmt: skip
def test_recorded_csv_is_loaded_or_refused(text):
    path = Path(tempfile.mkdtemp()) / "data.csv"
    path.write_text(text, encoding="utf-8")
    try:
        exp = RecordedExperiment.from_csv(path, TASK.designs, ["cos_theta"])
    except (RecordError, ValidationError):
        return
    assert all(o.x.shape[1] == 1 and np.isfinite(o.x).all() for o in exp.observations)


@BOUNDED
@given(st.data())
def test_recorded_npz_bytes_are_loaded_or_refused(data):
    path = corrupted(npz(RECORDED).read_bytes(), data)
    try:
        RecordedExperiment.from_npz(path, TASK.designs)
    except RecordError:
        pass


# -- event files ------------------------------------------------------------------------------


def valid_events() -> dict[str, np.ndarray]:
    events = EventFile(
        task="weinberg", parameter_names=("sin2w",), design_names=("sqrt_s",),
        feature_names=("cos_theta",), theta=np.array([0.23]), design=np.array([91.19]),
        x=np.array([[0.1], [0.2]]), z=np.array([[0.1], [0.2]]),
        joint_log_prob=np.zeros(2), joint_score=np.zeros((2, 1)), luminosity=1.0, seed=3,
    )  # fmt: skip
    return dict(np.load(write_events(Path(tempfile.mkdtemp()) / "e.npz", events)))


@BOUNDED
@given(st.data())
def test_event_files_are_read_or_refused(data):
    path = npz(mutated(valid_events(), data))
    try:
        events = read_events(path, task="weinberg", theta=[0.23], design=[91.19])
    except EventFileError:
        return
    assert np.isfinite(events.x).all() and events.x.shape[1] == len(events.feature_names)


@BOUNDED
@given(st.data())
def test_event_file_bytes_are_read_or_refused(data):
    path = corrupted(npz(valid_events()).read_bytes(), data)
    try:
        read_events(path)
    except EventFileError:
        pass


# -- training data ----------------------------------------------------------------------------

SIMULATED = simulate_training_data(TASK.simulator, 8, theta_ref=[0.25])


@BOUNDED
@given(st.data())
def test_training_data_are_loaded_or_refused(data):
    path = npz(mutated(dict(np.load(SIMULATED.save(Path(tempfile.mkdtemp()) / "t.npz"))), data))
    try:
        loaded = TrainingData.load(path)
        loaded.check(TASK.parameters, TASK.designs, 1)
    except ValidationError:
        return
    assert len(loaded.x) == len(loaded.y) == len(loaded.theta)


# -- estimator files --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def estimator_bytes() -> bytes:
    est = RatioEstimator(TASK.simulator, method="carl", hidden=(4,))
    est.train(n_samples=64, epochs=1, batch_size=16, progress=False)
    buffer = io.BytesIO()
    path = est.save(Path(tempfile.mkdtemp()) / "e.pt")
    buffer.write(path.read_bytes())
    return buffer.getvalue()


SCALARS = st.none() | st.booleans() | st.integers(-(10**15), 10**15) | st.floats()
JSON = st.recursive(
    SCALARS | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


@BOUNDED
@given(data=st.data())
def test_estimator_configs_are_loaded_or_refused(estimator_bytes, data):
    payload = torch.load(io.BytesIO(estimator_bytes), weights_only=True)
    config = json.loads(payload["config"])
    for key in data.draw(st.lists(st.sampled_from(sorted(config)), min_size=1, max_size=3)):
        config[key] = data.draw(JSON)
    payload["config"] = json.dumps(config)
    path = Path(tempfile.mkdtemp()) / "e.pt"
    torch.save(payload, path)
    try:
        RatioEstimator.load(path)
    except ValidationError:
        pass


@settings(max_examples=max(1, MAX_EXAMPLES // 4), deadline=None)
@given(data=st.data())
def test_estimator_bytes_are_loaded_or_refused(estimator_bytes, data):
    try:
        RatioEstimator.load(corrupted(estimator_bytes, data))
    except ValidationError:
        pass


def test_a_pickle_stream_that_pops_an_empty_stack_is_refused(estimator_bytes):
    """Found by the property above: torch's safe unpickler raised IndexError on it."""
    start = estimator_bytes.index(b"\x80\x02")  # the pickle protocol marker of data.pkl
    path = Path(tempfile.mkdtemp()) / "e.pt"
    path.write_bytes(estimator_bytes[:start] + b"\x81" + estimator_bytes[start + 1 :])
    with pytest.raises(ValidationError, match="not an activesci estimator file"):
        RatioEstimator.load(path)


def test_an_estimator_path_that_is_a_fifo_or_folder_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "e.pt"
    os.mkfifo(fifo)  # torch.load would wait forever for a writer
    for path in (fifo, tmp_path, tmp_path / "missing.pt"):
        with pytest.raises(ValidationError, match="estimator file"):
            RatioEstimator.load(path)
