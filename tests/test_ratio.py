"""Contract of every neural estimator: shapes, gradients, batching, persistence, seeds, errors."""

import numpy as np
import pytest
import torch

from activesci import tasks
from activesci.errors import MissingCapabilityError, OutOfSpaceError, ShapeError, ValidationError
from activesci.inference import METHODS, RatioEstimator, ScoreEstimator, TrainingData
from activesci.inference.training import simulate_training_data
from activesci.simulators import GaussianSimulator, SimulatorBase
from activesci.spaces import Real, Space
from activesci.typing import Events

RATIO_METHODS = [m for m in METHODS if m != "sally"]
TINY = {"n_samples": 3000, "epochs": 2, "batch_size": 256, "progress": False}


class NoGoldSimulator(SimulatorBase):
    """The Gaussian toy seen through a black box: it samples, nothing else."""

    def __init__(self) -> None:
        self._inner = GaussianSimulator()
        self.parameters, self.designs = self._inner.parameters, self._inner.designs
        self.feature_names = ("x0",)

    def _sample(self, theta, design, n, rng):
        return Events(x=self._inner._sample(theta, design, n, rng).x)


def trained(method: str, seed: int = 0, **options):
    sim = tasks.gaussian(dim=2).simulator
    cls = ScoreEstimator if method == "sally" else RatioEstimator
    est = cls(sim, method=method, hidden=(16, 16), **options)
    est.train(seed=seed, **TINY)
    return est


@pytest.fixture(scope="module", params=list(METHODS))
def estimator(request):
    return trained(request.param)


X = np.random.default_rng(1).normal(size=(7, 2))
THETA = np.array([[0.0, 0.0], [0.5, -0.3], [1.0, 1.0]])


def outputs(est):
    if isinstance(est, ScoreEstimator):
        return est.score(X, [1.0])
    return est.log_ratio(X, THETA, [1.0])


def test_shapes(estimator):
    if isinstance(estimator, ScoreEstimator):
        assert estimator.score(X, [1.0]).shape == (7, 2)
    else:
        assert estimator.log_ratio(X, THETA, [1.0]).shape == (3, 7)
        assert estimator.log_ratio_std(X, THETA, [1.0]).shape == (3, 7)
        assert estimator.score(X, THETA[1], [1.0]).shape == (7, 2)
        assert estimator.log_ratio(X, THETA, [1.0]).dtype == np.float64


def test_gradients_reach_every_parameter(estimator):
    data = simulate_training_data(
        estimator_simulator(), 64, theta_ref=estimator.theta_ref, seed=3
    ).arrays()
    if isinstance(estimator, ScoreEstimator):
        data = {"x": data["x"], "design": data["design"], "score": data["score"]}
    batch = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in data.items()}
    net = estimator.members[0]
    net.zero_grad()
    estimator._batch_loss(net, batch, True).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def estimator_simulator():
    return tasks.gaussian(dim=2).simulator


def test_batched_equals_unbatched(estimator):
    full = outputs(estimator)
    if isinstance(estimator, ScoreEstimator):
        rows = np.concatenate([estimator.score(X[i : i + 1], [1.0]) for i in range(len(X))])
        np.testing.assert_allclose(rows, full, rtol=1e-5, atol=1e-6)
    else:
        one = np.array(
            [
                [estimator.log_ratio(X[j : j + 1], THETA[i : i + 1], [1.0])[0, 0] for j in range(7)]
                for i in range(3)
            ]
        )
        np.testing.assert_allclose(one, full, rtol=1e-5, atol=1e-6)


def test_save_load_round_trip(estimator, tmp_path):
    path = estimator.save(tmp_path / "est.pt")
    again = type(estimator).load(path)
    assert np.array_equal(outputs(again), outputs(estimator))
    assert (
        again.method == estimator.method and again.summary.n_samples == estimator.summary.n_samples
    )
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("method", ["carl", "alices", "sally"])
def test_seeded_training_is_reproducible(method):
    a, b, c = trained(method, seed=4), trained(method, seed=4), trained(method, seed=5)
    assert np.array_equal(outputs(a), outputs(b))
    assert not np.array_equal(outputs(a), outputs(c))


def test_ensemble_spread_is_reported():
    est = trained("carl", ensemble=3)
    assert len(est.members) == 3
    assert (est.log_ratio_std(X, THETA, [1.0]) > 0).all()
    members = est._evaluate(X, THETA, [1.0])
    np.testing.assert_allclose(est.log_ratio(X, THETA, [1.0]), members.mean(axis=0))


@pytest.mark.parametrize("method", ["carl", "alices"])
def test_members_trained_at_once_equal_members_trained_in_turn(method, monkeypatch):
    """Threads share torch's RNG and the progress; each member must still own its draws."""
    from activesci.threads import WORKERS_ENV

    weights, calls = {}, {}
    for workers in ("1", "3"):
        monkeypatch.setenv(WORKERS_ENV, workers)
        seen = []
        est = RatioEstimator(
            tasks.gaussian(dim=2).simulator, method=method, hidden=(8,), ensemble=3
        )
        est.train(seed=4, n_samples=600, epochs=3, progress=lambda *a, seen=seen: seen.append(a))
        weights[workers] = [torch.cat([p.flatten() for p in m.parameters()]) for m in est.members]
        calls[workers] = seen
    for a, b in zip(weights["1"], weights["3"], strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(weights["3"][0], weights["3"][1])  # members differ from each other
    for workers in ("1", "3"):  # one bar for the three members, ended at its total
        assert calls[workers][-1][1:] == (9, 9) and len({c[0] for c in calls[workers]}) == 1
    # a grid large enough to be evaluated on threads: the same numbers as in turn
    theta = np.random.default_rng(2).uniform(-1.0, 1.0, (40_000, 2))
    x = np.random.default_rng(3).normal(size=(2, 2))
    serial = est._evaluate(x, theta, [1.0])
    monkeypatch.setenv(WORKERS_ENV, "1")
    assert np.array_equal(est._evaluate(x, theta, [1.0]), serial)


@pytest.mark.parametrize("method", ["carl", "alices", "rolr", "sally"])
def test_members_trained_in_a_stack_equal_members_trained_alone(method, monkeypatch):
    """A stack shares each operation among its members, never their numbers: each member's
    weights and losses are those of training it alone, up to float rounding."""
    from activesci.inference import neural

    kind = ScoreEstimator if method == "sally" else RatioEstimator
    trained_as = {}
    for size in (1, 2):
        monkeypatch.setattr(neural, "_STACK", size)
        est = kind(tasks.gaussian(dim=2).simulator, method=method, hidden=(8, 8), ensemble=3)
        summary = est.train(seed=4, n_samples=2000, epochs=4, batch_size=128, progress=False)
        weights = [torch.cat([p.flatten() for p in m.parameters()]) for m in est.members]
        trained_as[size] = (weights, summary.history)
    (alone, alone_history), (stacked, stacked_history) = trained_as[1], trained_as[2]
    for a, b in zip(alone, stacked, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(alone_history, stacked_history, strict=True):
        np.testing.assert_allclose(a["val"], b["val"], rtol=1e-5)
    assert not torch.allclose(stacked[0], stacked[1])  # and the members differ


def test_a_stacked_member_stops_on_its_own_patience(monkeypatch):
    """Patience is per member: a stack keeps training while one of them still improves, and
    each member keeps the weights of its own best epoch."""
    from activesci.inference import neural

    monkeypatch.setattr(neural, "_STACK", 2)
    est = RatioEstimator(tasks.gaussian(dim=2).simulator, method="alice", hidden=(8,), ensemble=2)
    summary = est.train(
        seed=3,
        n_samples=1000,
        epochs=40,
        batch_size=32,
        learning_rate=0.05,
        patience=2,
        progress=False,
    )
    assert len(set(summary.epochs)) == 2 and max(summary.epochs) < 40  # stopped, each its own
    for used, record, best in zip(
        summary.epochs, summary.history, summary.best_val_loss, strict=True
    ):
        assert used == len(record["val"]) == len(record["train"]) <= 40
        assert best == min(record["val"])
        last_best = int(np.argmin(record["val"]))
        assert used == last_best + 3  # stopped two epochs after its best


def test_carl_trains_on_a_simulator_without_gold():
    sim = NoGoldSimulator()
    est = RatioEstimator(sim, method="carl", hidden=(8,))
    est.train(**TINY)
    assert est.log_ratio([[0.1]], [[0.2]], [1.0]).shape == (1, 1)


@pytest.mark.parametrize("method", ["rolr", "alice", "alices", "rascal", "cascal"])
def test_gold_methods_name_the_missing_capability(method):
    with pytest.raises(MissingCapabilityError, match="joint_") as info:
        RatioEstimator(NoGoldSimulator(), method=method)
    assert method in str(info.value) and "'carl' needs none" in str(info.value)
    with pytest.raises(MissingCapabilityError, match="joint_score"):
        ScoreEstimator(NoGoldSimulator())


def test_bad_input_gives_typed_errors(tmp_path):
    est = trained("alices")
    with pytest.raises(ShapeError, match=r"x must have shape \(n, 2\)"):
        est.log_ratio(np.zeros((4, 3)), THETA, [1.0])
    with pytest.raises(OutOfSpaceError, match=r"mu0=9.0 is outside the allowed range \[-5, 5\]"):
        est.log_ratio(X, [[9.0, 0.0]], [1.0])
    with pytest.raises(ValidationError, match="no events"):
        est.log_ratio(np.zeros((0, 2)), THETA, [1.0])
    with pytest.raises(ValidationError, match="NaN or infinite values \\(first at row 2\\)"):
        est.log_ratio(np.where(np.arange(14).reshape(7, 2) == 5, np.nan, X), THETA, [1.0])
    with pytest.raises(OutOfSpaceError, match=r"phase=9.0"):
        est.log_ratio(X, THETA, [9.0])
    with pytest.raises(ValidationError, match="unknown method 'alicse'"):
        RatioEstimator(estimator_simulator(), method="alicse")
    with pytest.raises(ValidationError, match="use ScoreEstimator"):
        RatioEstimator(estimator_simulator(), method="sally")
    with pytest.raises(ValidationError, match="not trained"):
        RatioEstimator(estimator_simulator()).log_ratio(X, THETA, [1.0])
    with pytest.raises(ValidationError, match="epochs must be a positive integer"):
        RatioEstimator(estimator_simulator()).train(n_samples=100, epochs=0)
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a torch file")
    with pytest.raises(ValidationError, match="not an activesci estimator file"):
        RatioEstimator.load(bogus)
    with pytest.raises(ValidationError, match="kind 'ratio', expected"):
        ScoreEstimator.load(est.save(tmp_path / "ratio.pt"))
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="no CUDA GPU"):
            RatioEstimator(estimator_simulator(), device="cuda")
    with pytest.raises(ValidationError, match="TrainingData"):
        RatioEstimator(estimator_simulator()).train(data={"x": X})


def test_training_data_holds_exact_gold():
    sim = tasks.gaussian().simulator
    data = simulate_training_data(sim, 1000, theta_ref=[0.0], seed=0)
    assert isinstance(data, TrainingData) and len(data) == 1000
    assert data.y.sum() == 500
    sigma = sim.noise(data.design)
    z = data.x[:, 0]  # for the toy the latent is x itself
    expected = ((z - 0.0) ** 2 - (z - data.theta[:, 0]) ** 2) / (2 * sigma**2)
    np.testing.assert_allclose(data.log_r, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        data.score[:500, 0], (z[:500] - data.theta[:500, 0]) / sigma[:500] ** 2
    )
    assert (data.score[500:] == 0).all()
    fixed = simulate_training_data(sim, 100, theta_ref=[0.0], designs=[[1.0], [2.0]], seed=0)
    assert set(np.unique(fixed.design)) == {1.0, 2.0}


def test_warm_start_fine_tunes_the_trained_weights():
    sim = tasks.gaussian(dim=2).simulator
    with pytest.raises(ValidationError, match="not trained"):
        RatioEstimator(sim, method="alices", hidden=(16, 16)).train(warm_start=True, **TINY)
    est = trained("alices")
    before = [p.detach().clone() for p in est.members[0].parameters()]
    shift = est.members[0].shift.clone()
    fresh = trained("alices", seed=1)
    est.train(seed=1, warm_start=True, **TINY)
    after = list(est.members[0].parameters())
    assert torch.equal(est.members[0].shift, shift)  # the standardisation is kept
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    # it continued from the old weights, so it differs from a fresh run on the same data
    x, theta, d = np.zeros((3, 2)), [[0.5, 0.5]], [1.0]
    assert not np.allclose(est.log_ratio(x, theta, d), fresh.log_ratio(x, theta, d))


def test_carl_is_normalised_at_its_training_design(tmp_path):
    # sum_i log r over 1000 events multiplies a normalisation error E[r | theta_ref] != 1 by
    # 1000: the plain classifier was off by 0.01-0.07 nats across theta here, which shifts an
    # 88 GeV posterior by standard deviations
    sim = tasks.weinberg().simulator
    est = RatioEstimator(sim, method="carl")
    est.train(n_samples=50_000, seed=0, designs=[[88.0]], progress=False)
    x = sim.sample(est.theta_ref, [88.0], np.random.default_rng(100), n=50_000).x
    theta = np.linspace(0.2, 0.3, 21)[:, None]
    log_norm = np.log(np.exp(est.log_ratio(x, theta, [88.0])).mean(axis=1))
    assert np.abs(log_norm).max() < 0.007
    again = RatioEstimator.load(est.save(tmp_path / "carl.pt"))
    assert np.array_equal(
        again.log_ratio(x[:50], theta, [88.0]), est.log_ratio(x[:50], theta, [88.0])
    )


# -- hostile and careless estimator files (issue 13) -------------------------------------------


def rewritten(path, tmp_path, **config):
    """A copy of the estimator file ``path`` with ``config`` fields replaced."""
    import json

    payload = torch.load(path, weights_only=True)
    payload["config"] = json.dumps(json.loads(payload["config"]) | config)
    torch.save(payload, tmp_path / "crafted.pt")
    return tmp_path / "crafted.pt"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hidden": [10**7, 10**7]}, r"'net.0.bias' has shape \(16,\), but its config \(hidden"),
        ({"n_features": 10**12}, r"'net.0.weight' has shape \(16, 5\)"),
        ({"ensemble": 3}, "no list of 3 member networks"),
        ({"hidden": "wide"}, "bad config"),
        ({"n_features": -1}, "'n_features' must be a positive integer"),
        ({"parameters": "mu0"}, "bad config"),
        ({"inv_score_var": [1.0] * 9}, "'inv_score_var' or 'normalisers' of the wrong size"),
        ({"summary": {"epochs": "many"}}, "malformed normalisers or summary"),
    ],
)
def test_crafted_estimator_files_are_refused_before_allocating(tmp_path, config, message):
    path = trained("alices").save(tmp_path / "e.pt")
    with pytest.raises(ValidationError, match=message):
        RatioEstimator.load(rewritten(path, tmp_path, **config))


def test_truncated_estimator_files_are_typed_errors(tmp_path):
    data = trained("carl").save(tmp_path / "e.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValidationError, match="not an activesci estimator file"):
        RatioEstimator.load(tmp_path / "cut.pt")


def test_a_simulator_without_feature_names_is_asked_for_n_features():
    class Unnamed(SimulatorBase):
        parameters = tasks.gaussian().parameters
        designs = tasks.gaussian().designs

    with pytest.raises(ValidationError, match="Unnamed has no feature_names: give n_features"):
        RatioEstimator(Unnamed(), method="carl")
    assert RatioEstimator(Unnamed(), method="carl", n_features=1).n_features == 1


def test_score_term_weighs_each_parameter_by_the_log_ratio_change_it_causes():
    """A parameter the events barely inform must not dominate the score loss (line shape)."""
    task = tasks.gaussian(dim=2)
    est = RatioEstimator(task.simulator, method="alices", hidden=(8,))
    gen = torch.Generator().manual_seed(0)
    score = torch.randn(4000, 2, generator=gen) * torch.tensor([1.0, 1e-3])
    theta = torch.rand(4000, 2, generator=gen) * torch.tensor([1.0, 2.0])
    est._prepare({"score": score, "theta": theta, "y": torch.ones(4000)})
    # var(theta) = (1/12, 4/12); var(t) = (1, 1e-6): weights 2 var(theta) / sum(var t var theta)
    expected = 2 * torch.tensor([1 / 12, 4 / 12]) / (1 / 12 + 1e-6 * 4 / 12)
    assert est.inv_score_var.tolist() == pytest.approx(expected.tolist(), rel=0.05)
    one = RatioEstimator(tasks.gaussian().simulator, method="alices", hidden=(8,))
    one._prepare({"score": score[:, :1], "theta": theta[:, :1], "y": torch.ones(4000)})
    assert one.inv_score_var.tolist() == pytest.approx([1 / score[:, 0].var().item()], rel=1e-6)


def test_chebyshev_table_reproduces_polynomials_and_converges_on_smooth_functions():
    from activesci.inference.chebyshev import _TABLE_MIN_EVENTS, _TABLE_NODES, _chebyshev_table

    x = np.random.default_rng(0).uniform(-0.9, 0.95, size=(1000, 1))
    x[:3, 0] = [-0.9, 0.95, 0.2]  # the two end nodes exactly, and an interior point
    nodes, matrix = _chebyshev_table(x)
    assert nodes.shape == (_TABLE_NODES, 1) and matrix.shape == (1000, _TABLE_NODES)
    assert nodes.min() == -0.9 and nodes.max() == 0.95
    cubic = lambda v: 3 * v**3 - v + 0.5  # noqa: E731
    np.testing.assert_allclose(matrix @ cubic(nodes[:, 0]), cubic(x[:, 0]), atol=1e-12)
    smooth = lambda v: np.sin(2 * v) * np.exp(v) + np.log1p(v**2 / 4)  # noqa: E731
    assert np.abs(matrix @ smooth(nodes[:, 0]) - smooth(x[:, 0])).max() < 1e-9
    assert _chebyshev_table(x[:_TABLE_MIN_EVENTS]) is None  # too few events to pay
    assert _chebyshev_table(np.zeros((1000, 1))) is None  # all equal
    assert _chebyshev_table(np.zeros((1000, 2))) is None  # two features


def test_a_table_is_used_only_where_its_chebyshev_coefficients_have_died_out(monkeypatch):
    """An unresolved table (a function too wiggly for its points) is never interpolated:
    the evaluation takes twice the points, then every event."""
    from activesci.inference import chebyshev

    x = np.linspace(-1.0, 1.0, 1000)[:, None]
    coarse, _ = chebyshev._chebyshev_table(x, chebyshev._TABLE_NODES)
    fine, _ = chebyshev._chebyshev_table(x, 2 * chebyshev._TABLE_NODES)
    assert chebyshev.resolved_at(3 * coarse**3 - coarse, axis=0).all()  # a cubic needs 4 points
    wiggly = lambda v: np.sin(12 * v)  # noqa: E731 - Chebyshev coefficients ~ J_k(12)
    assert not chebyshev.resolved_at(wiggly(coarse), axis=0).all()
    assert chebyshev.resolved_at(wiggly(fine), axis=0).all()
    sim = tasks.gaussian().simulator
    est = RatioEstimator(sim, method="alices", hidden=(16, 16))
    est.train(seed=0, **TINY)
    theta = np.linspace(-0.8, 0.8, 5)[:, None]
    events = np.random.default_rng(2).normal(0.5, 2.0, size=(700, 1))
    monkeypatch.setattr(chebyshev, "_TABLE_TOLERANCE", 0.0)  # no table is ever resolved
    assert np.array_equal(
        est._evaluate(events, theta, [1.0]), est._members_log_ratio(events, theta, [1.0])
    )


def test_each_parameter_point_takes_the_coarsest_table_resolved_there(monkeypatch):
    """Points where 16 nodes resolve the function are read off that table, the others off
    32 nodes or, where neither resolves, off every event; each to the table's tolerance."""
    from activesci.inference import chebyshev, neural

    est = RatioEstimator(tasks.gaussian().simulator, method="alices", hidden=(4,))
    est.summary = neural.TrainingSummary(1, 0, [1], [0.0], 0.0, [])  # marks it trained
    asked = []

    def members(x, theta, design):  # log r = sin(theta x): wigglier for larger theta
        asked.append((len(x), theta[:, 0].tolist()))
        return np.sin(theta[:, :1] * x[:, 0][None, :])[None]

    monkeypatch.setattr(est, "_members_log_ratio", members)
    events = np.linspace(-1.0, 1.0, 500)[:, None]
    theta = np.array([[0.5], [2.0], [12.0], [40.0]])  # 16 nodes resolve the first two
    est.parameters = Space([Real("mu", 0.0, 50.0)])
    got = est._evaluate(events, theta, [1.0])[0]
    np.testing.assert_allclose(got, np.sin(theta * events[:, 0][None, :]), atol=2e-5)
    n = chebyshev._TABLE_NODES
    assert asked == [(n, [0.5, 2.0, 12.0, 40.0]), (2 * n, [12.0, 40.0]), (500, [40.0])]


@pytest.mark.parametrize("method", ["alices", "carl"])
def test_tabulated_evaluation_of_many_events_matches_the_direct_one(method):
    """Above the table's threshold, one-feature events are read off a Chebyshev table of the
    network; below it the network is evaluated at each event. The two agree to float32's
    precision, for every member, the ensemble mean and the score."""
    sim = tasks.gaussian().simulator
    est = RatioEstimator(sim, method=method, hidden=(16, 16), ensemble=2)
    est.train(seed=0, **TINY)
    x = np.random.default_rng(2).normal(0.5, 2.0, size=(700, 1))
    theta = np.linspace(-0.8, 0.8, 5)[:, None]
    chunks = range(0, len(x), 100)  # 100 events a call: below the threshold, evaluated directly
    direct = np.concatenate([est._evaluate(x[i : i + 100], theta, [1.0]) for i in chunks], axis=2)
    np.testing.assert_allclose(est._evaluate(x, theta, [1.0]), direct, atol=2e-5)
    np.testing.assert_allclose(est.log_ratio(x, theta, [1.0]), direct.mean(axis=0), atol=2e-5)
    score = np.concatenate([est.score(x[i : i + 100], theta[2], [1.0]) for i in chunks])
    np.testing.assert_allclose(est.score(x, theta[2], [1.0]), score, atol=2e-5)


@pytest.mark.parametrize("method", ["alices", "rascal", "cascal"])
def test_the_score_term_is_the_masked_regression_on_rows_drawn_at_theta(method):
    """The loss takes d/dtheta only at rows with y = 1; it must equal the textbook loss (the
    ratio loss on every row plus the score regression masked by y), value and gradient."""
    from activesci.inference.networks import ratio_loss, score_loss

    est = RatioEstimator(estimator_simulator(), method=method, hidden=(8,), alpha=0.7)
    data = simulate_training_data(
        estimator_simulator(), 96, theta_ref=est.theta_ref, seed=5
    ).arrays()
    batch = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in data.items()}
    assert 0 < batch["y"].sum() < len(batch["y"])  # both kinds of rows, interleaved
    est._prepare(batch)
    net = est._new_member()
    loss = est._batch_loss(net, batch, True)
    got = torch.autograd.grad(loss, list(net.parameters()))
    theta = batch["theta"].clone().requires_grad_(True)
    log_r = est._forward(net, batch["x"], theta, batch["design"])
    (t_hat,) = torch.autograd.grad(log_r.sum(), theta, create_graph=True)
    ratio = METHODS[method].ratio
    want = ratio_loss(ratio, log_r, batch["y"], batch.get("log_r")) + 0.7 * score_loss(
        t_hat, batch["score"], batch["y"], est.inv_score_var
    )
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    for g, w in zip(got, torch.autograd.grad(want, list(net.parameters())), strict=True):
        assert torch.allclose(g, w, rtol=1e-4, atol=1e-7)
