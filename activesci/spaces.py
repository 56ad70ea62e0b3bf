"""Named, bounded spaces of theory parameters and experiment designs.

A :class:`Space` is an ordered list of dimensions. Points are rows of a float array whose
columns follow the space's order; every point that enters activesci from outside goes through
:meth:`Space.validate`, which names the offending value and the allowed range on error.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activesci.errors import OutOfSpaceError, ShapeError, ValidationError

__all__ = ["Categorical", "Dimension", "Integer", "Normal", "Real", "Space"]


@dataclass(frozen=True)
class Normal:
    """A normal prior, truncated to the bounds of its dimension.

    Parameters
    ----------
    mean, std : float
        Location and scale before truncation.
    """

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValidationError(
                f"Normal prior needs a finite mean and a positive std, got "
                f"mean={self.mean!r}, std={self.std!r}"
            )


_PRIORS = ("uniform", "log-uniform")


@dataclass(frozen=True)
class Dimension:
    """Base class of one named axis of a :class:`Space`."""

    name: str

    def _check_name(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValidationError(
                f"a dimension name must be a Python identifier, got {self.name!r}"
            )

    @property
    def bounds(self) -> tuple[float, float]:
        """The closed interval ``(low, high)`` of valid values, as floats."""
        raise NotImplementedError

    def describe(self) -> str:
        """Return a one-line human description, e.g. ``sqrt_s in [20, 210] GeV``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Real(Dimension):
    """A continuous parameter ``low <= value <= high``.

    Parameters
    ----------
    name : str
        Identifier used in dictionaries, the CLI and plots.
    low, high : float
        Bounds (inclusive).
    unit : str
        Unit for labels, e.g. ``"GeV"``.
    prior : {"uniform", "log-uniform"} or Normal
        Prior density over ``[low, high]``.
    label : str
        Pretty label for plots; defaults to the name.

    Examples
    --------
    >>> Real("sqrt_s", 20.0, 210.0, unit="GeV").describe()
    'sqrt_s in [20, 210] GeV'
    """

    low: float = 0.0
    high: float = 1.0
    unit: str = ""
    prior: str | Normal = "uniform"
    label: str = ""

    def __post_init__(self) -> None:
        self._check_name()
        low, high = _bound(self.name, self.low), _bound(self.name, self.high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValidationError(
                f"Real {self.name!r} needs finite bounds with low < high, got [{low}, {high}]"
            )
        if not isinstance(self.prior, Normal) and self.prior not in _PRIORS:
            raise ValidationError(
                f"Real {self.name!r}: unknown prior {self.prior!r}; expected one of "
                f"{_PRIORS} or activesci.spaces.Normal(mean, std)"
            )
        if self.prior == "log-uniform" and low <= 0:
            raise ValidationError(
                f"Real {self.name!r}: a log-uniform prior needs low > 0, got low={low}"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def bounds(self) -> tuple[float, float]:
        """The closed interval ``(low, high)``."""
        return (self.low, self.high)

    def describe(self) -> str:
        """Return ``"name in [low, high] unit"``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} in [{self.low:g}, {self.high:g}]{unit}"

    def log_prior(self, values: np.ndarray) -> np.ndarray:
        """Normalised log prior density at ``values`` (``-inf`` outside the bounds)."""
        v = np.asarray(values, dtype=float)
        inside = (v >= self.low) & (v <= self.high)
        if self.prior == "uniform":
            out = np.full(v.shape, -math.log(self.high - self.low))
        elif self.prior == "log-uniform":
            with np.errstate(divide="ignore", invalid="ignore"):
                out = -np.log(v) - math.log(math.log(self.high / self.low))
        else:
            with np.errstate(divide="ignore"):
                out = self._truncated_normal().logpdf(v)
        return np.where(inside, out, -np.inf)

    def _truncated_normal(self) -> Any:
        from scipy import stats  # here: scipy.stats costs 0.4 s to import, a workflow step's half

        mu, sd = self.prior.mean, self.prior.std
        return stats.truncnorm((self.low - mu) / sd, (self.high - mu) / sd, loc=mu, scale=sd)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` values from the prior, shape ``(n,)``."""
        u = rng.random(n)
        if self.prior == "uniform":
            return self.low + (self.high - self.low) * u
        if self.prior == "log-uniform":
            return self.low * (self.high / self.low) ** u
        return np.clip(self._truncated_normal().ppf(u), self.low, self.high)

    def to_skopt(self) -> Any:
        """The equivalent ``skopt.space.Real``."""
        from skopt.space import Real as SkReal

        prior = "log-uniform" if self.prior == "log-uniform" else "uniform"
        return SkReal(self.low, self.high, prior=prior, name=self.name)


@dataclass(frozen=True)
class Integer(Dimension):
    """An integer parameter ``low <= value <= high`` (uniform prior).

    Examples
    --------
    >>> Integer("n_bunches", 1, 8).describe()
    'n_bunches in {1, ..., 8}'
    """

    low: int = 0
    high: int = 1
    unit: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        self._check_name()
        low, high = _bound(self.name, self.low), _bound(self.name, self.high)
        if not (
            math.isfinite(low) and math.isfinite(high) and low == int(low) and high == int(high)
        ) or (low >= high):
            raise ValidationError(
                f"Integer {self.name!r} needs finite integer bounds with low < high, "
                f"got [{self.low}, {self.high}]"
            )
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))

    @property
    def bounds(self) -> tuple[float, float]:
        """The closed interval ``(low, high)`` as floats."""
        return (float(self.low), float(self.high))

    def describe(self) -> str:
        """Return ``"name in {low, ..., high} unit"``."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} in {{{self.low}, ..., {self.high}}}{unit}"

    def log_prior(self, values: np.ndarray) -> np.ndarray:
        """Log probability of each value under the uniform prior (``-inf`` if invalid)."""
        v = np.asarray(values, dtype=float)
        ok = (v >= self.low) & (v <= self.high) & (v == np.round(v))
        return np.where(ok, -math.log(self.high - self.low + 1), -np.inf)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` values uniformly, shape ``(n,)`` (as floats)."""
        return rng.integers(self.low, self.high + 1, size=n).astype(float)

    def to_skopt(self) -> Any:
        """The equivalent ``skopt.space.Integer``."""
        from skopt.space import Integer as SkInteger

        return SkInteger(self.low, self.high, name=self.name)


@dataclass(frozen=True)
class Categorical(Dimension):
    """A choice among named categories; points store the category's index as a float.

    Examples
    --------
    >>> Categorical("beam", ("unpolarised", "polarised")).index("polarised")
    1
    """

    categories: tuple[Any, ...] = field(default_factory=tuple)
    label: str = ""

    def __post_init__(self) -> None:
        self._check_name()
        cats = tuple(self.categories)
        if len(cats) < 1 or len(set(cats)) != len(cats):
            raise ValidationError(
                f"Categorical {self.name!r} needs at least one category and no duplicates, "
                f"got {cats!r}"
            )
        object.__setattr__(self, "categories", cats)

    @property
    def unit(self) -> str:
        """Categories carry no unit."""
        return ""

    @property
    def bounds(self) -> tuple[float, float]:
        """The range of category indices."""
        return (0.0, float(len(self.categories) - 1))

    def index(self, value: Any) -> int:
        """The index of a category, with a clear error for an unknown one."""
        try:
            return self.categories.index(value)
        except ValueError:
            raise OutOfSpaceError(
                f"{self.name}={value!r} is not one of the categories {list(self.categories)}"
            ) from None

    def describe(self) -> str:
        """Return ``"name in {a, b, ...}"``."""
        return f"{self.name} in {{{', '.join(map(str, self.categories))}}}"

    def log_prior(self, values: np.ndarray) -> np.ndarray:
        """Log probability of each index under the uniform prior."""
        v = np.asarray(values, dtype=float)
        ok = (v >= 0) & (v < len(self.categories)) & (v == np.round(v))
        return np.where(ok, -math.log(len(self.categories)), -np.inf)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` category indices uniformly, shape ``(n,)`` (as floats)."""
        return rng.integers(0, len(self.categories), size=n).astype(float)

    def to_skopt(self) -> Any:
        """The equivalent ``skopt.space.Categorical``."""
        from skopt.space import Categorical as SkCategorical

        return SkCategorical(list(self.categories), name=self.name)


class Space(Sequence[Dimension]):
    """An ordered collection of named dimensions.

    Parameters
    ----------
    dimensions : sequence of Dimension
        The axes, in column order.

    Examples
    --------
    >>> space = Space([Real("sin2w", 0.15, 0.35)])
    >>> space.validate({"sin2w": 0.2315})
    array([[0.2315]])
    >>> space.validate([0.5])
    Traceback (most recent call last):
    ...
    activesci.errors.OutOfSpaceError: sin2w=0.5 is outside the allowed range [0.15, 0.35] (row 0)
    """

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        dims = tuple(dimensions)
        if not dims:
            raise ValidationError("a Space needs at least one dimension")
        for d in dims:
            if not isinstance(d, Dimension):
                raise ValidationError(f"expected Real, Integer or Categorical, got {d!r}")
        names = tuple(d.name for d in dims)
        index = {name: i for i, name in enumerate(names)}
        if len(index) != len(names):
            raise ValidationError(f"dimension names must be unique, got {list(names)}")
        self._dims = dims
        # looked up once per name: every lookup by name is O(1), so a mapping of D values
        # validates in O(D) (scanning `names` for each key was O(D^2): minutes at D = 10^5)
        self._names = names
        self._index = index

    # -- sequence behaviour -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._dims)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._dims[self._index[self._known(key)]]
        return self._dims[key]

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self._dims)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self._dims == other._dims

    def __hash__(self) -> int:
        return hash(self._dims)

    def __repr__(self) -> str:
        return f"Space({list(self._dims)!r})"

    # -- properties ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Dimension names in column order."""
        return list(self._names)

    @property
    def bounds(self) -> np.ndarray:
        """Array of shape ``(D, 2)`` with the lower and upper bound of each dimension."""
        return np.array([d.bounds for d in self._dims], dtype=float)

    def _known(self, name: str) -> str:
        if not isinstance(name, str) or name not in self._index:
            raise ValidationError(f"unknown name {name!r}; this space has {self.names}")
        return name

    # -- conversion and validation ------------------------------------------------------------
    def validate(self, points: Any) -> np.ndarray:
        """Check points and return them as a float array of shape ``(n, D)``.

        Parameters
        ----------
        points : mapping, array_like
            A mapping ``{name: value or array}``, one point of shape ``(D,)`` or points of
            shape ``(n, D)``. Categorical values may be given by category in a mapping.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, D)``, dtype float64.

        Raises
        ------
        ShapeError
            Wrong number of columns or dimensions.
        OutOfSpaceError
            A value is NaN, outside its bounds, not an integer or not a category.
        ValidationError
            An unknown or missing name in a mapping.
        """
        if isinstance(points, Mapping):
            arr = self._from_mapping(points)
        else:
            try:
                arr = np.asarray(points, dtype=float)
            except (TypeError, ValueError) as exc:
                raise ValidationError(
                    f"points for {self.names} must be numeric, got {points!r}"
                ) from exc
            if arr.ndim == 1 and arr.shape[0] == len(self):
                arr = arr[None, :]
            elif arr.ndim == 0 and len(self) == 1:
                arr = arr.reshape(1, 1)
        if arr.ndim != 2 or arr.shape[1] != len(self):
            raise ShapeError(
                f"expected points of shape (n, {len(self)}) for {self.names}, got shape {arr.shape}"
            )
        self._check_values(arr)
        return arr

    def _from_mapping(self, mapping: Mapping[str, Any]) -> np.ndarray:
        unknown = [k for k in mapping if not isinstance(k, str) or k not in self._index]
        if unknown:
            raise ValidationError(f"unknown name(s) {unknown}; this space has {self.names}")
        missing = [n for n in self._names if n not in mapping]
        if missing:
            raise ValidationError(f"missing value(s) for {missing}; this space has {self.names}")
        columns = []
        for d in self._dims:
            value = mapping[d.name]
            if isinstance(d, Categorical):
                value = [d.index(v) for v in np.atleast_1d(np.asarray(value, dtype=object))]
            try:
                columns.append(np.atleast_1d(np.asarray(value, dtype=float)))
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"{d.name}={value!r} is not a number") from exc
        try:
            cols = np.broadcast_arrays(*columns)
        except ValueError as exc:
            shapes = {d.name: c.shape for d, c in zip(self._dims, columns, strict=True)}
            raise ShapeError(f"values of different lengths: {shapes}") from exc
        if cols[0].ndim != 1:
            raise ShapeError(f"each value must be a scalar or 1-D, got shape {cols[0].shape}")
        return np.stack(cols, axis=1)

    def _check_values(self, arr: np.ndarray) -> None:
        for j, d in enumerate(self._dims):
            col = arr[:, j]
            bad = ~np.isfinite(col)
            if not isinstance(d, Categorical):
                lo, hi = d.bounds
                bad |= (col < lo) | (col > hi)
            if not isinstance(d, Real):
                bad |= (col != np.round(col)) | (col < d.bounds[0]) | (col > d.bounds[1])
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise OutOfSpaceError(self._why(d, col[i], i))

    @staticmethod
    def _why(d: Dimension, value: float, row: int) -> str:
        shown = repr(float(value))
        if isinstance(d, Categorical):
            return (
                f"{d.name}={shown} is not a category index; expected 0..{len(d.categories) - 1} "
                f"for {list(d.categories)} (row {row})"
            )
        if isinstance(d, Integer):
            return f"{d.name}={shown} is not an integer in [{d.low}, {d.high}] (row {row})"
        unit = f" {d.unit}" if getattr(d, "unit", "") else ""
        lo, hi = d.bounds
        what = (
            "is not a finite number; expected a value in"
            if not math.isfinite(value)
            else ("is outside the allowed range")
        )
        return f"{d.name}={shown} {what} [{lo:g}, {hi:g}]{unit} (row {row})"

    def to_dict(self, point: Any) -> dict[str, Any]:
        """Turn one point (shape ``(D,)`` or ``(1, D)``) into ``{name: value}``."""
        arr = self.validate(point)
        if arr.shape[0] != 1:
            raise ShapeError(f"to_dict takes one point, got {arr.shape[0]}")
        out: dict[str, Any] = {}
        for d, v in zip(self._dims, arr[0], strict=True):
            if isinstance(d, Categorical):
                out[d.name] = d.categories[int(v)]
            elif isinstance(d, Integer):
                out[d.name] = int(v)
            else:
                out[d.name] = float(v)
        return out

    def parse_assignments(self, text: Sequence[str]) -> np.ndarray:
        """Parse ``["name=value", ...]`` (as typed on a command line) into one point ``(1, D)``."""
        mapping: dict[str, Any] = {}
        for item in text:
            name, sep, value = item.partition("=")
            if not sep:
                raise ValidationError(f"expected NAME=VALUE, got {item!r}")
            name = name.strip()
            dim = self[self._known(name)]
            mapping[name] = value.strip() if isinstance(dim, Categorical) else _number(item, value)
        return self.validate(mapping)

    # -- priors -------------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` points from the (independent) priors, shape ``(n, D)``."""
        return np.stack([d.sample(n, rng) for d in self._dims], axis=1)

    def log_prior(self, points: np.ndarray) -> np.ndarray:
        """Normalised log prior density of points ``(n, D)``, shape ``(n,)``."""
        arr = np.asarray(points, dtype=float).reshape(-1, len(self))
        return sum(d.log_prior(arr[:, j]) for j, d in enumerate(self._dims))

    def to_skopt(self) -> list[Any]:
        """The equivalent list of ``skopt.space`` dimensions."""
        return [d.to_skopt() for d in self._dims]

    # -- serialisation ------------------------------------------------------------------------
    def to_config(self) -> list[dict[str, Any]]:
        """A JSON-serialisable description; :meth:`from_config` rebuilds an equal space.

        Examples
        --------
        >>> space = Space([Real("sin2w", 0.15, 0.35), Categorical("beam", ("e", "mu"))])
        >>> Space.from_config(space.to_config()) == space
        True
        """
        out = []
        for d in self._dims:
            if isinstance(d, Real):
                prior = (
                    d.prior if isinstance(d.prior, str) else {"normal": [d.prior.mean, d.prior.std]}
                )
                out.append(
                    {"kind": "real", "name": d.name, "low": d.low, "high": d.high, "unit": d.unit,
                     "prior": prior, "label": d.label}
                )  # fmt: skip
            elif isinstance(d, Integer):
                out.append(
                    {"kind": "integer", "name": d.name, "low": d.low, "high": d.high,
                     "unit": d.unit, "label": d.label}
                )  # fmt: skip
            else:
                out.append(
                    {"kind": "categorical", "name": d.name, "categories": list(d.categories),
                     "label": d.label}
                )  # fmt: skip
        return out

    @classmethod
    def from_config(cls, config: Sequence[Mapping[str, Any]]) -> Space:
        """Rebuild a space from :meth:`to_config` output (validated like any construction)."""
        dims: list[Dimension] = []
        for item in config:
            spec = dict(item)
            kind = spec.pop("kind", None)
            try:
                if kind == "real":
                    prior = spec.pop("prior", "uniform")
                    if isinstance(prior, Mapping):
                        prior = Normal(*prior["normal"])
                    dims.append(Real(**spec, prior=prior))
                elif kind == "integer":
                    dims.append(Integer(**spec))
                elif kind == "categorical":
                    dims.append(
                        Categorical(spec["name"], tuple(spec["categories"]), spec.get("label", ""))
                    )
                else:
                    raise ValidationError(f"unknown dimension kind {kind!r} in {item!r}")
            except (TypeError, KeyError) as exc:
                raise ValidationError(f"bad dimension description {item!r}: {exc}") from None
        return cls(dims)


def _bound(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name!r}: bound {value!r} is not a number") from None


def _number(item: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValidationError(f"{item!r}: {value!r} is not a number") from None
