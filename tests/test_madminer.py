"""The MadMiner bridge: export without MadMiner; training and orientation with it (extra).

``make test`` installs the ``madminer`` extra (Python < 3.12), so every test here runs there.
"""

import sys

import numpy as np
import pytest

from activesci import tasks
from activesci.errors import (
    ActivesciError,
    MissingCapabilityError,
    MissingExtraError,
    ValidationError,
)
from activesci.inference import GridPosterior
from activesci.inference.madminer import MadMinerRatioEstimator, export_madminer
from activesci.inference.training import simulate_training_data


@pytest.fixture(scope="module")
def data():
    sim = tasks.gaussian(dim=2).simulator
    return simulate_training_data(sim, 200, theta_ref=[0.1, -0.2], seed=4)


def test_export_files_and_shapes(data, tmp_path):
    files = export_madminer(data, tmp_path / "mm")
    names = {"x", "theta0", "theta1", "y", "r_xz", "t_xz"}
    assert set(files) == names
    for key, path in files.items():
        assert path == tmp_path / "mm" / f"{key}_train.npy" and path.is_file()
    loaded = {k: np.load(p) for k, p in files.items()}
    assert loaded["x"].shape == (200, 2 + 1)  # two features, then the design column
    assert loaded["theta0"].shape == loaded["theta1"].shape == (200, 2)
    assert loaded["y"].shape == loaded["r_xz"].shape == (200, 1)
    assert loaded["t_xz"].shape == (200, 2)


def test_export_translates_the_conventions(data, tmp_path):
    mm = {k: np.load(p) for k, p in export_madminer(data, tmp_path, filename="run7").items()}
    np.testing.assert_array_equal(mm["x"][:, :2], data.x)
    np.testing.assert_array_equal(mm["x"][:, 2:], data.design)  # x_mm = [x, design]
    np.testing.assert_array_equal(mm["theta0"], data.theta)
    np.testing.assert_array_equal(mm["theta1"], np.tile([0.1, -0.2], (200, 1)))
    np.testing.assert_array_equal(mm["y"][:, 0], 1.0 - data.y)  # y=0 at theta0 in MadMiner
    assert set(np.unique(mm["y"])) == {0.0, 1.0}
    np.testing.assert_allclose(mm["r_xz"][:, 0], np.exp(data.log_r), rtol=1e-15)
    np.testing.assert_array_equal(mm["t_xz"], data.score)
    # the joint score is known at theta0 (the numerator), where MadMiner's score loss looks
    assert np.all(mm["t_xz"][mm["y"][:, 0] == 1.0] == 0.0)
    assert (tmp_path / "x_run7.npy").is_file()


def test_export_without_gold(tmp_path):
    sim = tasks.gaussian().simulator
    data = simulate_training_data(sim, 50, theta_ref=[0.0], gold=(), seed=0)
    assert set(export_madminer(data, tmp_path)) == {"x", "theta0", "theta1", "y"}


def test_export_rejects_other_input(tmp_path):
    with pytest.raises(ValidationError, match="TrainingData"):
        export_madminer({"x": np.zeros((3, 1))}, tmp_path)


def test_export_and_save_replace_a_planted_symlink_instead_of_following_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    sim = tasks.gaussian().simulator
    data = simulate_training_data(sim, 20, theta_ref=[0.0], gold=(), seed=0)
    out = tmp_path / "mm"
    out.mkdir()
    (out / "x_train.npy").symlink_to(victim)
    export_madminer(data, out)
    assert victim.read_text() == "keep me"
    assert not (out / "x_train.npy").is_symlink()
    assert np.load(out / "x_train.npy").shape == (20, 2)

    class Saved:  # MadMiner's estimator as save() uses it: it writes its own files
        model = object()

        def save(self, path):
            pass

    est = object.__new__(MadMinerRatioEstimator)  # no MadMiner needed to save the metadata
    est.estimator, est.method, est.theta_ref = Saved(), "alices", np.zeros(1)
    est.n_features, est.n_design, est.parameters, est.designs = 1, 1, None, None
    (tmp_path / "model_activesci.json").symlink_to(victim)
    est.save(tmp_path / "model")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "model_activesci.json").is_symlink()
    assert '"method": "alices"' in (tmp_path / "model_activesci.json").read_text()


def test_missing_madminer_is_a_typed_error(monkeypatch):
    # hidden from the import system, so this runs whether or not MadMiner is installed
    for name in [k for k in sys.modules if k == "madminer" or k.startswith("madminer.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "madminer", None)
    with pytest.raises(MissingExtraError, match=r"pip install activesci\[madminer\]") as info:
        MadMinerRatioEstimator()
    assert isinstance(info.value, ActivesciError) and isinstance(info.value, ImportError)


# -- with MadMiner (the `madminer` extra) ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("madminer")
    import torch

    task = tasks.gaussian()
    sim = task.simulator
    data = simulate_training_data(sim, 20_000, theta_ref=[0.0], seed=0)
    est = MadMinerRatioEstimator(parameters=sim.parameters, designs=sim.designs)
    folder = tmp_path_factory.mktemp("mm_train")
    threads = torch.get_num_threads()
    # tiny batches and event-by-event evaluation: one thread is ~15x faster on a busy machine
    torch.set_num_threads(1)
    try:
        est.train(
            data,
            "alices",
            folder=folder,
            n_hidden=(64, 64),
            n_epochs=10,
            batch_size=256,
            initial_lr=3e-3,
            final_lr=3e-4,
            seed=0,
        )
        assert (folder / "x_train.npy").is_file()
        yield task, est
    finally:
        torch.set_num_threads(threads)


def test_orientation_follows_the_generating_theta(trained):
    task, est = trained
    sim = task.simulator
    rng = np.random.default_rng(11)
    grid = np.array([[-1.0], [0.0], [1.0]])
    for truth in (-1.0, 1.0):
        x = sim.sample([truth], [np.pi], rng, n=400).x
        summed = est.log_ratio(x, grid, [np.pi]).sum(axis=1)
        assert summed.shape == (3,)
        assert np.argmax(summed) == list(grid[:, 0]).index(truth)
    # single events: the ratio against theta_ref = 0 has the sign of (theta - 0) * x, as exactly
    out = est.log_ratio(np.array([[2.0]]), np.array([[-1.0], [1.0]]), [np.pi])
    assert out.shape == (2, 1) and out.dtype == np.float64
    assert out[1, 0] > 0 > out[0, 0]


def test_log_ratio_is_close_to_the_exact_ratio(trained):
    task, est = trained
    sim = task.simulator
    x = np.linspace(-1.5, 2.0, 8)[:, None]  # the bulk of the training data
    theta = np.linspace(-1.0, 1.5, 6)[:, None]
    exact = sim.log_likelihood(x, theta, [np.pi]) - sim.log_likelihood(x, [[0.0]], [np.pi])
    got = est.log_ratio(x, theta, [np.pi])
    assert np.median(np.abs(got - exact)) < 0.2
    assert np.max(np.abs(got - exact)) < 1.0
    assert np.corrcoef(got.ravel(), exact.ravel())[0, 1] > 0.99


def test_grid_posterior_matches_the_analytic_one(trained):
    task, est = trained
    sim = task.simulator
    exp = task.experiment(seed=3)
    observations = [exp.run([np.pi]) for _ in range(3)]
    post = GridPosterior(sim.parameters, simulator=sim)
    for obs in observations:
        post.update(obs, est)
    mean, std = sim.posterior(observations)
    assert abs(post.mean()[0] - mean[0]) < 0.3 * std[0]
    assert abs(post.std()[0] - std[0]) < 0.3 * std[0]


def test_save_and_load_round_trip(trained, tmp_path):
    _, est = trained
    path = est.save(tmp_path / "model" / "alices")
    assert (tmp_path / "model" / "alices_settings.json").is_file()
    assert (tmp_path / "model" / "alices_activesci.json").is_file()
    again = MadMinerRatioEstimator.load(path)
    x, theta = np.array([[0.3], [-1.2]]), np.array([[0.5], [1.0]])
    np.testing.assert_allclose(
        again.log_ratio(x, theta, [1.0]), est.log_ratio(x, theta, [1.0]), rtol=1e-6
    )
    assert again.method == "alices" and again.parameters.names == ["mu0"]


def test_training_checks(trained):
    pytest.importorskip("madminer")
    sim = tasks.gaussian().simulator
    no_gold = simulate_training_data(sim, 100, theta_ref=[0.0], gold=(), seed=0)
    est = MadMinerRatioEstimator()
    with pytest.raises(MissingCapabilityError, match="log_r"):
        est.train(no_gold, "alices")
    with pytest.raises(ValidationError, match="unknown MadMiner method"):
        est.train(no_gold, "sally")
    with pytest.raises(ValidationError, match="not trained"):
        est.log_ratio(np.zeros((2, 1)), [[0.0]], [1.0])
