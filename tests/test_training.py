"""Training-data files: what they record, and samples of another task refused (issue 13)."""

import numpy as np
import pytest

from activesci import tasks
from activesci.cli import main
from activesci.errors import ValidationError
from activesci.inference import RatioEstimator, TrainingData
from activesci.inference.training import simulate_training_data


def chunk(task: tasks.Task, samples: int = 40, seed: int = 0) -> TrainingData:
    return simulate_training_data(task.simulator, samples, theta_ref=task.parameters.bounds.mean(1))


def test_a_saved_file_records_its_names_and_loads_back(tmp_path):
    data = chunk(tasks.weinberg())
    loaded = TrainingData.load(data.save(tmp_path / "d.npz"))
    assert loaded.parameter_names == ("sin2w",) and loaded.design_names == ("sqrt_s",)
    for key, value in data.arrays().items():
        assert np.array_equal(loaded.arrays()[key], value)


def test_training_data_of_another_task_are_refused_by_the_cli(capsys, tmp_path):
    out = [str(tmp_path / f"c{k}.npz") for k in range(2)]
    for k in range(2):
        assert main(["sample-training", "gaussian", "--samples", "40", "--seed", str(k),
                     "--out", out[k]]) == 0  # fmt: skip
    assert main(["merge", *out, "--out", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    code = main(["train", "weinberg", str(tmp_path / "m.npz"), "--out", str(tmp_path / "e.pt")])
    err = capsys.readouterr().err
    assert code == 2
    assert "parameters ['mu0'], expected ['sin2w']: they were simulated for another task" in err
    assert not (tmp_path / "e.pt").exists()


def test_an_estimator_refuses_samples_outside_its_spaces():
    data = chunk(tasks.gaussian())
    narrow = tasks.gaussian().parameters  # the same names, another prior range
    est = RatioEstimator(tasks.gaussian().simulator, method="carl")
    est.parameters = type(narrow)([type(narrow[0])("mu0", 0.0, 0.01)])
    with pytest.raises(ValidationError, match=r"mu0=.* is outside the allowed range \[0, 0.01\]"):
        est.train(data=data, epochs=1, progress=False)


def test_files_without_names_are_refused_clearly(tmp_path):
    data = chunk(tasks.gaussian())
    np.savez(tmp_path / "old.npz", format=np.array("activesci.training/1"),
             theta_ref=data.theta_ref, **data.arrays())  # fmt: skip
    with pytest.raises(ValidationError, match=r"activesci.training/1'.*names no parameters"):
        TrainingData.load(tmp_path / "old.npz")


def test_chunks_of_different_tasks_do_not_merge():
    a, b = chunk(tasks.gaussian()), chunk(tasks.weinberg())
    with pytest.raises(ValidationError, match="part 1 has theta_ref"):
        TrainingData.concatenate([a, b])
    renamed = TrainingData(**b.arrays(), theta_ref=a.theta_ref, parameter_names=("mu0",),
                           design_names=("sqrt_s",))  # fmt: skip
    with pytest.raises(ValidationError, match="part 1 has design names"):
        TrainingData.concatenate([a, renamed])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y": np.zeros((40, 2))}, "'y' has shape (40, 2)"),
        ({"theta": np.zeros((40, 3))}, "'theta' has shape (40, 3), expected 1 columns"),
        ({"x": np.full((40, 1), np.nan)}, "['x'] hold NaN or infinite values"),
        ({"x": np.array(["a"] * 40)}, "'x' has dtype <U1"),
        ({"format": np.array(3)}, "format is 'none'"),
        ({"extra": np.zeros(3)}, "unknown ['extra']"),
    ],
)
def test_malformed_training_files_are_typed_errors(tmp_path, change, message):
    data = chunk(tasks.gaussian())
    arrays = dict(np.load(data.save(tmp_path / "d.npz"))) | change
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValidationError) as excinfo:
        TrainingData.load(tmp_path / "bad.npz")
    assert message in str(excinfo.value)
