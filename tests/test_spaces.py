"""Tests of activesci.spaces: construction, validation, parsing, priors and the skopt export."""

import math

import numpy as np
import pytest
import skopt.space
from scipy import integrate, stats

from activesci.errors import OutOfSpaceError, ShapeError, ValidationError
from activesci.spaces import Categorical, Integer, Normal, Real, Space

N_SAMPLES = 20_000


def sin2w_space() -> Space:
    return Space([Real("sin2w", 0.15, 0.35)])


def mixed_space() -> Space:
    return Space(
        [
            Real("sqrt_s", 20.0, 210.0, unit="GeV"),
            Integer("n_bunches", 1, 8),
            Categorical("beam", ("unpolarised", "polarised")),
        ]
    )


def assert_message(excinfo: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(excinfo.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [ValidationError, OutOfSpaceError, ShapeError])
def test_errors_are_value_errors(error):
    assert issubclass(error, ValueError)
    assert issubclass(error, ValidationError)


# -- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [
        (0.35, 0.15, "[0.35, 0.15]"),
        (0.2, 0.2, "[0.2, 0.2]"),
        (-math.inf, 1.0, "[-inf, 1.0]"),
        (0.0, math.nan, "[0.0, nan]"),
    ],
)
def test_real_rejects_bad_bounds(low, high, shown):
    with pytest.raises(ValidationError) as excinfo:
        Real("x", low, high)
    assert_message(excinfo, "'x'", "low < high", shown)


def test_real_rejects_unknown_prior():
    with pytest.raises(ValidationError) as excinfo:
        Real("x", 0.0, 1.0, prior="gaussian")
    assert_message(excinfo, "'x'", "'gaussian'", "uniform", "log-uniform", "Normal")


@pytest.mark.parametrize("low", [0.0, -1.0])
def test_log_uniform_needs_positive_low(low):
    with pytest.raises(ValidationError) as excinfo:
        Real("x", low, 10.0, prior="log-uniform")
    assert_message(excinfo, "'x'", "log-uniform", "low > 0", f"low={low}")


@pytest.mark.parametrize(
    ("mean", "std", "shown"),
    [(0.0, 0.0, "std=0.0"), (0.0, -1.0, "std=-1.0"), (math.nan, 1.0, "mean=nan")],
)
def test_normal_rejects_bad_parameters(mean, std, shown):
    with pytest.raises(ValidationError) as excinfo:
        Normal(mean, std)
    assert_message(excinfo, "positive std", shown)


@pytest.mark.parametrize(
    ("low", "high", "shown"), [(3, 3, "[3, 3]"), (5, 1, "[5, 1]"), (0.5, 3, "[0.5, 3]")]
)
def test_integer_rejects_bad_bounds(low, high, shown):
    with pytest.raises(ValidationError) as excinfo:
        Integer("n", low, high)
    assert_message(excinfo, "'n'", "integer bounds", shown)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: Real("x", "low", 1.0), id="real-text-bound"),
        pytest.param(lambda: Integer("n", 0, math.inf), id="integer-infinite-bound"),
        pytest.param(lambda: Integer("n", math.nan, 3), id="integer-nan-bound"),
    ],
)
def test_unconvertible_bounds_raise_validation_error(make):
    with pytest.raises(ValidationError):
        make()


@pytest.mark.parametrize(
    ("categories", "shown"), [((), "()"), (("a", "b", "a"), "('a', 'b', 'a')")]
)
def test_categorical_rejects_empty_or_duplicate_categories(categories, shown):
    with pytest.raises(ValidationError) as excinfo:
        Categorical("beam", categories)
    assert_message(excinfo, "'beam'", "no duplicates", shown)


@pytest.mark.parametrize(
    "make",
    [
        lambda name: Real(name, 0.0, 1.0),
        lambda name: Integer(name, 0, 3),
        lambda name: Categorical(name, ("a", "b")),
    ],
    ids=["real", "integer", "categorical"],
)
@pytest.mark.parametrize("name", ["", "1x", "has space", "a-b", 3, None])
def test_dimension_names_must_be_identifiers(make, name):
    with pytest.raises(ValidationError) as excinfo:
        make(name)
    assert_message(excinfo, "identifier", repr(name))


def test_space_needs_a_dimension():
    with pytest.raises(ValidationError, match="at least one dimension"):
        Space([])


def test_space_rejects_non_dimensions():
    with pytest.raises(ValidationError) as excinfo:
        Space([Real("a", 0.0, 1.0), "b"])
    assert_message(excinfo, "'b'", "Real, Integer or Categorical")


def test_space_rejects_duplicate_names():
    with pytest.raises(ValidationError) as excinfo:
        Space([Real("a", 0.0, 1.0), Integer("b", 0, 2), Real("a", 2.0, 3.0)])
    assert_message(excinfo, "unique", "['a', 'b', 'a']")


def test_space_basic_properties():
    space = mixed_space()
    assert len(space) == 3
    assert space.names == ["sqrt_s", "n_bunches", "beam"]
    np.testing.assert_array_equal(space.bounds, [[20.0, 210.0], [1.0, 8.0], [0.0, 1.0]])
    assert space["n_bunches"] == Integer("n_bunches", 1, 8)
    assert space == mixed_space()
    assert hash(space) == hash(mixed_space())
    with pytest.raises(ValidationError, match="unknown name 'energy'"):
        space["energy"]


def test_describe():
    assert Real("sqrt_s", 20.0, 210.0, unit="GeV").describe() == "sqrt_s in [20, 210] GeV"
    assert Integer("n", 1, 8).describe() == "n in {1, ..., 8}"
    assert Categorical("beam", ("u", "p")).describe() == "beam in {u, p}"


# -- validate: accepted inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ({"sin2w": 0.2315}, [[0.2315]]),
        ({"sin2w": [0.2, 0.3]}, [[0.2], [0.3]]),
        ([0.2315], [[0.2315]]),
        (np.array([[0.2], [0.25], [0.3]]), [[0.2], [0.25], [0.3]]),
        (0.2315, [[0.2315]]),
        (np.float64(0.2315), [[0.2315]]),
        ([0.15], [[0.15]]),
        ([0.35], [[0.35]]),
    ],
    ids=["mapping", "mapping-array", "1d", "2d", "scalar", "numpy-scalar", "low", "high"],
)
def test_validate_one_dimensional(points, expected):
    out = sin2w_space().validate(points)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ({"sqrt_s": 91.19, "n_bunches": 3, "beam": "polarised"}, [[91.19, 3, 1]]),
        (
            {"sqrt_s": [20.0, 210.0], "n_bunches": 8, "beam": ["polarised", "unpolarised"]},
            [[20.0, 8, 1], [210.0, 8, 0]],
        ),
        ([91.19, 3, 1], [[91.19, 3, 1]]),
        ([[91.19, 3, 1], [50.0, 1, 0]], [[91.19, 3, 1], [50.0, 1, 0]]),
    ],
    ids=["mapping-by-category", "mapping-broadcast", "1d", "2d"],
)
def test_validate_mixed(points, expected):
    out = mixed_space().validate(points)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)


# -- validate: rejected inputs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "shape"),
    [
        ([91.19, 3.0], "(2,)"),
        ([[91.19, 3.0]], "(1, 2)"),
        (np.zeros((2, 2, 3)), "(2, 2, 3)"),
        (91.19, "()"),
    ],
)
def test_validate_rejects_wrong_shapes(points, shape):
    with pytest.raises(ShapeError) as excinfo:
        mixed_space().validate(points)
    assert_message(excinfo, "(n, 3)", "['sqrt_s', 'n_bunches', 'beam']", f"got shape {shape}")


def test_validate_rejects_several_values_as_one_point_of_a_1d_space():
    # (n,) is neither one point (D,) = (1,) nor points (n, D)
    with pytest.raises(ShapeError) as excinfo:
        sin2w_space().validate([0.2, 0.3])
    assert_message(excinfo, "(n, 1)", "(2,)")


def test_validate_rejects_mapping_values_of_different_lengths():
    points = {"sqrt_s": [20.0, 30.0, 40.0], "n_bunches": [1, 2], "beam": "polarised"}
    with pytest.raises(ShapeError) as excinfo:
        mixed_space().validate(points)
    assert_message(excinfo, "different lengths", "'sqrt_s': (3,)", "'n_bunches': (2,)")


def test_validate_rejects_2d_mapping_values():
    with pytest.raises(ShapeError, match="scalar or 1-D"):
        sin2w_space().validate({"sin2w": [[0.2, 0.3]]})


@pytest.mark.parametrize(
    ("points", "parts"),
    [
        ([[0.2], [0.5]], ["sin2w", "0.5", "[0.15, 0.35]", "row 1"]),
        ([0.1], ["sin2w", "0.1", "[0.15, 0.35]", "row 0"]),
        ({"sin2w": [0.2, 0.3, math.nan]}, ["sin2w", "nan", "[0.15, 0.35]", "row 2"]),
        ([math.inf], ["sin2w", "inf", "[0.15, 0.35]"]),
    ],
    ids=["above", "below", "nan", "inf"],
)
def test_validate_rejects_out_of_range_real(points, parts):
    with pytest.raises(OutOfSpaceError) as excinfo:
        sin2w_space().validate(points)
    assert_message(excinfo, *parts)


@pytest.mark.parametrize(
    ("points", "parts"),
    [
        ([5.0, 3, 1], ["sqrt_s", "5", "[20, 210] GeV"]),
        ([91.19, 2.5, 1], ["n_bunches", "2.5", "[1, 8]"]),
        ([91.19, 9, 1], ["n_bunches", "9", "[1, 8]"]),
        ([91.19, math.nan, 1], ["n_bunches", "nan", "[1, 8]"]),
        ([91.19, 3, 2], ["beam", "2", "['unpolarised', 'polarised']"]),
        ([91.19, 3, 0.5], ["beam", "0.5", "['unpolarised', 'polarised']"]),
        ([91.19, 3, math.nan], ["beam", "nan", "['unpolarised', 'polarised']"]),
        (
            {"sqrt_s": 91.19, "n_bunches": 3, "beam": "circular"},
            ["beam", "'circular'", "['unpolarised', 'polarised']"],
        ),
    ],
    ids=[
        "real-unit",
        "integer-fraction",
        "integer-above",
        "integer-nan",
        "category-index",
        "category-fraction",
        "category-nan",
        "category-value",
    ],
)
def test_validate_rejects_out_of_space_mixed(points, parts):
    with pytest.raises(OutOfSpaceError) as excinfo:
        mixed_space().validate(points)
    assert_message(excinfo, *parts)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([0.5, 3, 1], "sqrt_s=0.5 is outside the allowed range [20, 210] GeV (row 0)"),
        ([91.0, 2.5, 1], "n_bunches=2.5 is not an integer in [1, 8] (row 0)"),
        ([91.0, 3, 2], "beam=2.0 is not a category index"),
    ],
)
def test_out_of_space_message_shows_the_plain_value(points, message):
    # the value is shown as typed, not as a numpy repr such as "np.float64(0.5)"
    with pytest.raises(OutOfSpaceError) as excinfo:
        mixed_space().validate(points)
    assert str(excinfo.value).startswith(message)
    assert "np." not in str(excinfo.value)


def test_validate_rejects_unknown_names():
    with pytest.raises(ValidationError) as excinfo:
        sin2w_space().validate({"sin2w": 0.2, "mz": 91.0})
    assert_message(excinfo, "unknown", "['mz']", "['sin2w']")


def test_validate_rejects_missing_names():
    with pytest.raises(ValidationError) as excinfo:
        mixed_space().validate({"sqrt_s": 91.19, "n_bunches": 3})
    assert_message(excinfo, "missing", "['beam']")


def test_validate_rejects_non_numeric_mapping_value():
    with pytest.raises(ValidationError) as excinfo:
        sin2w_space().validate({"sin2w": "abc"})
    assert_message(excinfo, "sin2w", "'abc'", "not a number")


def test_validate_rejects_non_numeric_points():
    with pytest.raises(ValidationError) as excinfo:
        sin2w_space().validate(["abc"])
    assert_message(excinfo, "['sin2w']", "numeric", "'abc'")


# -- to_dict and parse_assignments ------------------------------------------------------------


def test_to_dict_round_trip():
    space = mixed_space()
    point = {"sqrt_s": 91.19, "n_bunches": 3, "beam": "polarised"}
    out = space.to_dict(space.validate(point))
    assert out == point
    assert type(out["n_bunches"]) is int
    assert type(out["sqrt_s"]) is float
    assert space.to_dict([50.0, 1, 0]) == {"sqrt_s": 50.0, "n_bunches": 1, "beam": "unpolarised"}


def test_to_dict_takes_one_point():
    with pytest.raises(ShapeError, match="one point, got 2"):
        sin2w_space().to_dict([[0.2], [0.3]])


@pytest.mark.parametrize("text", [["sin2w=0.23"], [" sin2w = 0.23 "], ["sin2w=2.3e-1"]])
def test_parse_assignments(text):
    np.testing.assert_array_equal(sin2w_space().parse_assignments(text), [[0.23]])


def test_parse_assignments_mixed():
    out = mixed_space().parse_assignments(["beam=polarised", "sqrt_s=91.19", "n_bunches=3"])
    np.testing.assert_array_equal(out, [[91.19, 3, 1]])


@pytest.mark.parametrize(
    ("text", "error", "parts"),
    [
        (["sin2w"], ValidationError, ["NAME=VALUE", "'sin2w'"]),
        (["sin2w=abc"], ValidationError, ["'sin2w=abc'", "'abc'", "not a number"]),
        (["sin2w="], ValidationError, ["'sin2w='", "not a number"]),
        (["mz=91"], ValidationError, ["unknown name 'mz'", "['sin2w']"]),
        (["=0.2"], ValidationError, ["unknown name ''", "['sin2w']"]),
        (["sin2w=0.9"], OutOfSpaceError, ["sin2w", "0.9", "[0.15, 0.35]"]),
        (["sin2w=nan"], OutOfSpaceError, ["sin2w", "nan", "[0.15, 0.35]"]),
    ],
)
def test_parse_assignments_rejects_bad_input(text, error, parts):
    with pytest.raises(error) as excinfo:
        sin2w_space().parse_assignments(text)
    assert_message(excinfo, *parts)


def test_parse_assignments_needs_every_name():
    with pytest.raises(ValidationError) as excinfo:
        mixed_space().parse_assignments(["sqrt_s=91.19"])
    assert_message(excinfo, "missing", "['n_bunches', 'beam']")


def test_parse_assignments_rejects_unknown_category():
    with pytest.raises(OutOfSpaceError) as excinfo:
        mixed_space().parse_assignments(["sqrt_s=91.19", "n_bunches=3", "beam=circular"])
    assert_message(excinfo, "'circular'", "['unpolarised', 'polarised']")


# -- priors -----------------------------------------------------------------------------------

UNIFORM = Real("x", 2.0, 5.0)
LOG_UNIFORM = Real("x", 1e-3, 10.0, prior="log-uniform")
TRUNCATED_NORMAL = Real("x", 0.0, 3.0, prior=Normal(0.5, 1.0))

# the same distributions, from scipy
REFERENCE = {
    "uniform": (UNIFORM, stats.uniform(2.0, 3.0)),
    "log-uniform": (LOG_UNIFORM, stats.loguniform(1e-3, 10.0)),
    "normal": (TRUNCATED_NORMAL, stats.truncnorm(-0.5, 2.5, loc=0.5, scale=1.0)),
}


def analytic_moments(kind: str) -> tuple[float, float]:
    """Mean and variance from the textbook formulas."""
    if kind == "uniform":
        a, b = 2.0, 5.0
        return (a + b) / 2, (b - a) ** 2 / 12
    if kind == "log-uniform":
        a, b = 1e-3, 10.0
        log_ratio = math.log(b / a)
        mean = (b - a) / log_ratio
        return mean, (b * b - a * a) / (2 * log_ratio) - mean**2
    # normal N(mu, s) truncated to [a, b]: alpha, beta in standard units
    mu, s, alpha, beta = 0.5, 1.0, -0.5, 2.5
    phi, cdf = stats.norm.pdf, stats.norm.cdf
    z = cdf(beta) - cdf(alpha)
    d = (phi(alpha) - phi(beta)) / z
    var = s**2 * (1 + (alpha * phi(alpha) - beta * phi(beta)) / z - d**2)
    return mu + s * d, var


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_sample_stays_in_bounds_with_the_right_moments(kind):
    dim, _ = REFERENCE[kind]
    x = dim.sample(N_SAMPLES, np.random.default_rng(0))
    assert x.shape == (N_SAMPLES,)
    assert x.min() >= dim.low and x.max() <= dim.high
    mean, var = analytic_moments(kind)
    assert x.mean() == pytest.approx(mean, abs=5 * math.sqrt(var / N_SAMPLES))
    assert x.var() == pytest.approx(var, rel=0.05)


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_sample_passes_ks_test(kind):
    dim, reference = REFERENCE[kind]
    x = dim.sample(N_SAMPLES, np.random.default_rng(1))
    assert stats.kstest(x, reference.cdf).pvalue > 1e-3


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_log_prior_integrates_to_one(kind):
    dim, _ = REFERENCE[kind]
    total, _ = integrate.quad(
        lambda v: math.exp(float(dim.log_prior(v))), dim.low, dim.high, limit=200
    )
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_log_prior_matches_scipy_inside(kind):
    dim, reference = REFERENCE[kind]
    v = np.linspace(dim.low, dim.high, 7)
    np.testing.assert_allclose(dim.log_prior(v), reference.logpdf(v), rtol=1e-9)


@pytest.mark.parametrize("kind", sorted(REFERENCE))
def test_log_prior_is_minus_inf_outside(kind):
    dim, _ = REFERENCE[kind]
    outside = np.array([dim.low - 1e-9, dim.high + 1e-9, -100.0, 100.0, math.nan])
    assert np.all(dim.log_prior(outside) == -np.inf)


def test_far_tail_truncated_normal():
    dim = Real("x", 8.5, 9.0, prior=Normal(0.0, 1.0))
    reference = stats.truncnorm(8.5, 9.0)
    np.testing.assert_allclose(dim.log_prior(8.7), reference.logpdf(8.7), rtol=1e-6)
    x = dim.sample(1000, np.random.default_rng(0))
    assert stats.kstest(x, reference.cdf).pvalue > 1e-3


@pytest.mark.parametrize(
    ("dim", "support"),
    [(Integer("n", 1, 8), np.arange(1, 9)), (Categorical("c", ("a", "b", "c")), np.arange(3))],
    ids=["integer", "categorical"],
)
def test_discrete_priors(dim, support):
    # probabilities sum to one over the support, -inf off it
    assert np.exp(dim.log_prior(support)).sum() == pytest.approx(1.0)
    off = np.array([support[0] - 1, support[-1] + 1, support[0] + 0.5, math.nan])
    assert np.all(dim.log_prior(off) == -np.inf)
    # samples are uniform over the support (chi-square test)
    x = dim.sample(N_SAMPLES, np.random.default_rng(2))
    assert set(np.unique(x)) == set(support.astype(float))
    counts = np.array([(x == s).sum() for s in support])
    assert stats.chisquare(counts).pvalue > 1e-3


def test_space_sample_and_log_prior():
    space = mixed_space()
    points = space.sample(500, np.random.default_rng(3))
    assert points.shape == (500, 3)
    np.testing.assert_array_equal(space.validate(points), points)
    expected = -math.log(190.0) - math.log(8) - math.log(2)
    np.testing.assert_allclose(space.log_prior(points), np.full(500, expected))
    assert space.log_prior([[91.19, 3, 1], [300.0, 3, 1]])[1] == -np.inf


# -- skopt ------------------------------------------------------------------------------------


def test_to_skopt():
    space = Space(
        [
            Real("sqrt_s", 20.0, 210.0, unit="GeV"),
            Real("lumi", 0.1, 100.0, prior="log-uniform"),
            Real("mu", -5.0, 5.0, prior=Normal(0.0, 1.0)),
            Integer("n_bunches", 1, 8),
            Categorical("beam", ("unpolarised", "polarised")),
        ]
    )
    real, log_real, normal, integer, categorical = space.to_skopt()
    assert isinstance(real, skopt.space.Real)
    assert (real.low, real.high, real.prior, real.name) == (20.0, 210.0, "uniform", "sqrt_s")
    assert (log_real.low, log_real.high, log_real.prior) == (0.1, 100.0, "log-uniform")
    assert (normal.low, normal.high, normal.prior) == (-5.0, 5.0, "uniform")
    assert isinstance(integer, skopt.space.Integer)
    assert (integer.low, integer.high, integer.name) == (1, 8, "n_bunches")
    assert isinstance(categorical, skopt.space.Categorical)
    assert tuple(categorical.categories) == ("unpolarised", "polarised")
    assert categorical.name == "beam"


def test_lookups_by_name_are_linear_in_the_dimensions():
    # each lookup once scanned the list of names: validating a mapping of 10^5 values, or
    # indexing each dimension by name, took minutes
    import time

    space = Space([Real(f"mu{i}", -1.0, 1.0) for i in range(30_000)])
    start = time.perf_counter()
    point = space.validate({name: 0.5 for name in space.names})
    assert [space[name].name for name in space.names] == space.names
    assert point.shape == (1, 30_000)
    assert time.perf_counter() - start < 3.0
