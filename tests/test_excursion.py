import tracemalloc
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor

from activesci.errors import OutOfSpaceError, ShapeError, ValidationError
from activesci.excursion import (
    ACQUISITIONS,
    TEST_FUNCTIONS,
    ExcursionSearch,
    accuracy,
    class_entropy,
    class_probabilities,
    excursion_volume,
    expected_entropy,
    lookahead,
    register_acquisition,
    volume_error,
)
from activesci.excursion import plots as xplots
from activesci.spaces import Integer, Real, Space


def ripple(x):
    return np.sin(3.0 * x[:, 0]) + 0.5 * np.cos(2.0 * x[:, 1])


def fitted(noise, seed=0):
    search = ExcursionSearch(ripple, [(0.0, 2.0), (-1.0, 1.0)], 0.3, noise=noise, seed=seed)
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(0, 2, 9), rng.uniform(-1, 1, 9)])
    search.tell(x, ripple(x) + (0.0 if noise is None else 0.05 * rng.standard_normal(9)))
    return search


@pytest.mark.parametrize("noise", [None, 0.05, "fit"])
def test_lookahead_matches_refit_with_the_point_added(noise):
    post = fitted(noise).posterior
    rng = np.random.default_rng(1)
    points, x = rng.random((15, 2)), rng.random((1, 2))
    step = lookahead(post, points, x)
    mean, std = post.predict(points)
    y_new = step.y_mean[0] + 0.8 * step.y_std[0]

    # sklearn's own posterior after actually adding (x, y_new), same kernel and noise
    ref = GaussianProcessRegressor(post.kernel, alpha=post.alpha, optimizer=None)
    ref.fit(np.vstack([post.X, x]), (np.append(post.y, y_new) - post.y_mean) / post.y_scale)
    ref_mean, ref_cov = ref.predict(points, return_cov=True)
    white = post.noise_variance / post.y_scale**2 - post.alpha  # WhiteKernel level (0 unless fit)
    ref_var = (np.diag(ref_cov) - white) * post.y_scale**2
    np.testing.assert_allclose(step.std[:, 0] ** 2, ref_var, rtol=1e-5, atol=1e-9)
    new_mean = mean + step.slope[:, 0] * (y_new - step.y_mean[0])
    np.testing.assert_allclose(new_mean, post.y_mean + post.y_scale * ref_mean, atol=1e-6)
    # the variance did drop where the point is informative
    assert np.all(step.std[:, 0] <= std + 1e-12) and np.any(step.std[:, 0] < 0.9 * std)


@pytest.mark.parametrize("noise", [None, "fit"])
def test_cross_covariance_matches_sklearn_joint_covariance(noise):
    post = fitted(noise).posterior
    rng = np.random.default_rng(2)
    a, b = rng.random((6, 2)), rng.random((4, 2))
    ref = GaussianProcessRegressor(post.kernel, alpha=post.alpha, optimizer=None)
    ref.fit(post.X, (post.y - post.y_mean) / post.y_scale)
    _, joint = ref.predict(np.vstack([a, b]), return_cov=True)
    np.testing.assert_allclose(
        post.covariance(a, b), joint[:6, 6:] * post.y_scale**2, rtol=1e-6, atol=1e-10
    )
    if noise == "fit":
        assert post.noise_variance > post.alpha * post.y_scale**2  # the WhiteKernel is noise


def test_entropy_picks_the_gap_with_the_crossing():
    def f(x):
        return np.tanh(6.0 * (x[:, 0] - 0.3))

    # two equal gaps, [0.1, 0.5] holds the crossing at 0.3, [0.6, 1.0] is far above 0
    x = np.array([[0.0], [0.1], [0.5], [0.55], [0.6], [1.0]])
    search = ExcursionSearch(f, [(0.0, 1.0)], 0.0, seed=0)
    search.tell(x, f(x))
    assert abs(search.ask()[0, 0] - 0.3) < 0.1


def test_expected_entropy_is_lowest_at_the_crossing_and_never_above_current():
    post = fitted(None).posterior
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 25), np.linspace(0, 1, 25)), -1).reshape(-1, 2)
    mean, std = post.predict(grid)
    before = class_entropy(mean, std, [0.3]).sum()
    after = expected_entropy(post, grid, grid[::7], [0.3])
    assert np.all(after <= before + 1e-9)
    assert after.min() < before


@pytest.mark.parametrize("acquisition", sorted(ACQUISITIONS))
def test_batch_ask_gives_distinct_new_points(acquisition):
    search = ExcursionSearch(
        ripple, [(0.0, 2.0), (-1.0, 1.0)], 0.3, acquisition=acquisition, resolution=31
    )
    search.run(6)
    batch = search.ask(5)
    assert batch.shape == (5, 2)
    assert np.array_equal(search.ask(5), batch)  # same proposal until tell
    gaps = np.abs(batch[:, None, :] - np.vstack([batch, search.X])[None, :, :]).max(-1)
    gaps[np.arange(5), np.arange(5)] = np.inf
    assert gaps.min() > 1e-9
    search.tell(batch, ripple(batch))
    assert len(search.y) == 11 and not np.array_equal(search.ask(5), batch)


def test_initial_design_then_acquisition_in_one_batch():
    search = ExcursionSearch(ripple, [(0.0, 2.0), (-1.0, 1.0)], 0.3, n_initial=3)
    first = search.ask(5)  # nothing told: the 3 initial points and 2 random ones
    assert len(np.unique(first, axis=0)) == 5
    search.tell(first[:2], ripple(first[:2]))
    np.testing.assert_array_equal(search.ask(1), first[2:3])


def test_1d_search_reaches_99_percent_quickly():
    search = ExcursionSearch.from_test_function(TEST_FUNCTIONS["tanh_sine_1d"], seed=3)
    search.run(14, batch_size=2)
    assert search.history[-1]["accuracy"] >= 0.99
    assert search.history[-1]["n_evaluations"] == 14
    assert search.history[-1]["volume_error"] < 0.05
    np.testing.assert_array_equal(search.classify([[0.0], [0.8], [1.5], [2.5]]), [0, 1, 0, 1])


def test_noisy_search_learns_the_noise():
    rng = np.random.default_rng(0)

    def f(x):
        return np.sin(3 * x[:, 0]) + 0.1 * rng.standard_normal(len(x))

    search = ExcursionSearch(f, [(0.0, 2.0)], 0.5, noise="fit", seed=0).run(20)
    assert 0.05**2 < search.posterior.noise_variance < 0.2**2
    probs = search.probabilities()
    assert probs.shape == (101, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_multiple_thresholds_classes():
    search = ExcursionSearch(lambda x: x[:, 0], [(0.0, 1.0)], [0.25, 0.5, 0.75], seed=0)
    search.run(6)
    np.testing.assert_array_equal(search.classify([[0.1], [0.4], [0.6], [0.9]]), [0, 1, 2, 3])
    p = class_probabilities(np.array([0.5]), np.array([1e-3]), [0.0, 1.0])
    np.testing.assert_allclose(p, [[0.0, 1.0, 0.0]], atol=1e-12)
    assert class_entropy(0.0, 1e-3, [0.0, 1.0]) == pytest.approx(np.log(2))
    assert class_entropy(0.5, 1e-3, [0.0, 1.0]) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"space": [(1.0, 0.0)]}, ValidationError, r"bounds\[0\] = \(1.0, 0.0\)"),
        ({"space": [(0.0, np.inf)]}, ValidationError, r"bounds\[0\] = \(0.0, inf\)"),
        ({"space": [(0.0, 1.0)] * 5}, ValidationError, "d=5"),
        ({"space": [(0.0, 1.0, 2.0)]}, ValidationError, r"bounds\[0\]"),
        ({"space": Space([Integer("n", 0, 3)])}, ValidationError, r"\['n'\] are not Real"),
        ({"thresholds": [1.0, 0.0]}, ValidationError, r"increasing, got array\(\[1\., 0\.\]\)"),
        ({"thresholds": []}, ValidationError, "thresholds"),
        ({"thresholds": np.nan}, ValidationError, "nan"),
        ({"acquisition": "ucb"}, ValidationError, r"'ucb'; available: \['entropy', "),
        ({"noise": -1.0}, ValidationError, "-1.0"),
        ({"noise": "learn"}, ValidationError, "'learn'"),
        ({"resolution": 1}, ValidationError, "resolution must be an integer >= 2, got 1"),
        ({"resolution": (5, 5)}, ValidationError, r"one value per dimension \(1\)"),
        ({"n_initial": 0}, ValidationError, "n_initial"),
        ({"truth": np.zeros(3, dtype=int)}, ValidationError, "101 integer classes"),
    ],
)
def test_bad_construction_raises_typed_errors(kwargs, error, match):
    args = {"space": [(0.0, 1.0)], "thresholds": 0.5, **kwargs}
    space, thresholds = args.pop("space"), args.pop("thresholds")
    with pytest.raises(error, match=match):
        ExcursionSearch(None, space, thresholds, **args)


def test_bad_tell_and_ask_raise_typed_errors():
    search = ExcursionSearch(None, [(0.0, 1.0), (0.0, 2.0)], 0.5)
    with pytest.raises(ShapeError, match=r"shape \(n, 2\).*got shape \(2, 3\)"):
        search.tell(np.zeros((2, 3)), [0.0, 1.0])
    with pytest.raises(ShapeError, match=r"2 point\(s\), y has shape \(3,\)"):
        search.tell(np.zeros((2, 2)), [0.0, 1.0, 2.0])
    with pytest.raises(ValidationError, match=r"y\[1\] = nan at x = \[0.5, 0.5\]"):
        search.tell([[0.1, 0.1], [0.5, 0.5]], [0.0, np.nan])
    with pytest.raises(OutOfSpaceError, match=r"x1=3\.0"):
        search.tell([[0.5, 3.0]], [0.0])
    with pytest.raises(ValidationError, match="nothing told yet"):
        search.predict([[0.5, 0.5]])
    with pytest.raises(ValidationError, match="needs func"):
        search.run(3)
    with pytest.raises(ValidationError, match="n must be an integer >= 1, got 0"):
        search.ask(0)
    assert len(search.y) == 0  # nothing half-told


def test_bad_function_output_and_plugin_acquisitions():
    search = ExcursionSearch(lambda x: np.zeros(len(x) + 1), [(0.0, 1.0)], 0.5)
    with pytest.raises(ShapeError, match=r"returned shape \(2,\) for 1 points"):
        search.run(1)

    @dataclass
    class Leftmost:
        name: str = "leftmost"

        def select(self, context):
            return np.zeros(len(context.grid.shape))

    register_acquisition("leftmost", Leftmost)
    try:
        search = ExcursionSearch(ripple, [(0.0, 2.0), (0.0, 1.0)], 0.0, acquisition="leftmost")
        search.run(5)
        np.testing.assert_array_equal(search.ask(), [[0.0, 0.0]])
        search.tell([[0.0, 0.0]], [0.0])
        with pytest.raises(ValidationError, match="'leftmost' proposed"):
            search.ask()
    finally:
        del ACQUISITIONS["leftmost"]
    with pytest.raises(ValidationError, match="identifier"):
        register_acquisition("not a name", Leftmost)


def test_4d_ask_never_builds_grid_by_grid_arrays():
    search = ExcursionSearch(lambda x: np.sum(x**2, axis=1), [(-1.0, 1.0)] * 4, 1.0, seed=0)
    assert search.grid_size == 21**4
    search.run(9)
    tracemalloc.start()
    try:
        x = search.ask()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.shape == (1, 4)
    # an n_grid x n_grid float matrix would take 300 GB; the search stays under 100 MB
    assert peak < 100e6


def test_metrics_by_hand():
    true = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    pred = np.array([0, 1, 1, 1, 2, 1, 2, 0])
    assert accuracy(pred, true) == 6 / 8
    assert accuracy(pred.reshape(2, 4), true.reshape(2, 4)) == 6 / 8
    # level 1 (>= 1): estimated 6 points, true 5; level 2: estimated 2, true 3
    assert volume_error(pred, true) == pytest.approx(1 / 5)
    assert volume_error(pred, true, level=2) == pytest.approx(1 / 3)
    assert excursion_volume(true, level=2, cell_volume=0.25) == 0.75
    assert volume_error([0, 0], [0, 0]) == 0.0
    assert volume_error([1, 0], [0, 0]) == np.inf
    with pytest.raises(ShapeError, match=r"\(3,\) vs \(2,\)"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValidationError, match="integer classes"):
        accuracy([0.5], [0])
    with pytest.raises(ValidationError, match="level must be"):
        volume_error([1], [1], level=0)


def test_test_functions_have_the_documented_level_sets():
    one = TEST_FUNCTIONS["tanh_sine_1d"]
    x = np.linspace(-3, 3, 6001)[:, None]
    crossings = np.flatnonzero(np.diff(one.true_classes(x)) != 0)
    np.testing.assert_allclose(x[crossings, 0], [0.436, 1.202, 1.777], atol=2e-3)
    two = TEST_FUNCTIONS["xsec_eff_2d"]
    assert two([[200.0 + 300.0 * np.log(10.0), 200.0]])[0] < 1.0 < two([[850.0, 200.0]])[0]
    np.testing.assert_array_equal(two.true_classes([[250.0, 190.0], [1100.0, 10.0]]), [1, 0])
    three = TEST_FUNCTIONS["sphere_3d"]
    np.testing.assert_array_equal(three.true_classes([[0, 0, 0], [0.9, 0.9, 0.0]]), [0, 1])
    assert {f.name for f in TEST_FUNCTIONS.values()} == set(TEST_FUNCTIONS)


def test_figures_build():
    one = ExcursionSearch.from_test_function(TEST_FUNCTIONS["tanh_sine_1d"], resolution=31)
    one.run(5)
    fig = xplots.band_figure(one, truth=TEST_FUNCTIONS["tanh_sine_1d"])
    assert [t.name for t in fig.data] == ["GP mean ± 2σ", "GP mean", "true f", "evaluations"]
    problem = TEST_FUNCTIONS["xsec_eff_2d"]
    two = ExcursionSearch.from_test_function(problem, resolution=15, n_initial=4).run(4)
    fig = xplots.contour_figure(two, truth=problem)
    assert {t.name for t in fig.data} >= {"estimated f = 1", "true f = 1", "evaluations"}
    problem = TEST_FUNCTIONS["sphere_3d"]
    three = ExcursionSearch.from_test_function(problem, resolution=9, n_initial=4).run(4)
    fig = xplots.slices_figure(three, truth=problem, n_slices=2)
    assert len(fig.data) == 6
    fig = xplots.accuracy_figure({"entropy": [one.history, one.history], "random": [one.history]})
    assert [t.name for t in fig.data] == ["entropy (min-max)", "entropy", "random"]
    with pytest.raises(ValidationError, match="2-D searches; this search has d=1"):
        xplots.contour_figure(one)


def test_space_object_and_true_class_array():
    space = Space([Real("mass", 0.0, 10.0, unit="GeV")])
    truth = (np.linspace(0, 10, 11) > 4.0).astype(int)
    search = ExcursionSearch(lambda x: x[:, 0], space, 4.0, resolution=11, truth=truth)
    search.run(4)
    assert search.space.names == ["mass"]
    assert search.grid.shape == (11, 1) and search.grid[-1, 0] == 10.0
    assert set(search.history[-1]) == {"n_evaluations", "accuracy", "volume_error"}
    np.testing.assert_array_equal(search.true_classes(), truth)
