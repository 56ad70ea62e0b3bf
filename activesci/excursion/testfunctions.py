"""Test functions with known level sets, for tests and benchmarks of the excursion search.

Each :class:`TestFunction` bundles ``func`` (vectorised: ``(n, d)`` in, ``(n,)`` out), its
``space``, its ``thresholds`` and ``true_classes(points)``, the exact classification at any
points (a grid, typically). They are registered in :data:`TEST_FUNCTIONS` by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from activesci.spaces import Real, Space

__all__ = [
    "TEST_FUNCTIONS",
    "TestFunction",
    "sphere",
    "tanh_sine",
    "xsec_efficiency",
]


@dataclass(frozen=True)
class TestFunction:
    """A function with thresholds whose excursion sets are known exactly.

    Parameters
    ----------
    name : str
        Registry name.
    func : callable
        ``func(x)`` for ``x`` of shape ``(n, d)`` returns ``(n,)`` values.
    space : Space
        The domain (``Real`` dimensions).
    thresholds : tuple of float
        Increasing thresholds.
    description : str
        One line for tables and plot titles.

    Examples
    --------
    >>> problem = TEST_FUNCTIONS["sphere_3d"]
    >>> problem.true_classes([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]).tolist()
    [0, 1]
    """

    __test__: ClassVar[bool] = False  # not a pytest test class despite the name

    name: str
    func: Callable[[np.ndarray], np.ndarray]
    space: Space
    thresholds: tuple[float, ...]
    description: str = ""

    def __call__(self, x: Any) -> np.ndarray:
        """``f`` at points ``(n, d)`` (validated against the space), shape ``(n,)``."""
        return np.asarray(self.func(self.space.validate(x)), dtype=float)

    def true_classes(self, x: Any) -> np.ndarray:
        """The exact class (number of thresholds exceeded) at points ``(n, d)``, shape ``(n,)``."""
        return np.searchsorted(np.asarray(self.thresholds), self(x), side="left")


def tanh_sine(x: np.ndarray) -> np.ndarray:
    """``tanh(x) + 0.3 sin(3x)``: crosses 0.7 three times in [-3, 3] (at 0.44, 1.20, 1.78)."""
    return np.tanh(x[:, 0]) + 0.3 * np.sin(3.0 * x[:, 0])


def xsec_efficiency(x: np.ndarray) -> np.ndarray:
    """Cross-section [pb] falling with the mass times an efficiency rising with the splitting.

    ``sigma(m) = 10 exp(-(m - 200) / 300)`` and ``eps(dm) = 1 / (1 + exp(-(dm - 60) / 20))``
    for the mass ``m`` in [200, 1200] GeV and the mass splitting ``dm`` in [0, 200] GeV: the
    ``sigma * eps = 1 pb`` contour bends from (200, 16) to (891, 200) GeV.
    """
    mass, splitting = x[:, 0], x[:, 1]
    return 10.0 * np.exp(-(mass - 200.0) / 300.0) / (1.0 + np.exp(-(splitting - 60.0) / 20.0))


def sphere(x: np.ndarray) -> np.ndarray:
    """The squared distance from the origin with a mild ripple: dented spheres as level sets.

    ``x² + y² + z² + 0.15 (sin 3x cos 3y + sin 3z)``; at the threshold 0.5 the ripple moves the
    sphere of radius 0.71 by up to about 0.1. Without it the function is a quadratic that any
    space-filling design pins down as soon as the GP finds its long length-scales.
    """
    ripple = np.sin(3.0 * x[:, 0]) * np.cos(3.0 * x[:, 1]) + np.sin(3.0 * x[:, 2])
    return np.sum(x**2, axis=1) + 0.15 * ripple


#: The registered test functions by name.
TEST_FUNCTIONS: dict[str, TestFunction] = {
    "tanh_sine_1d": TestFunction(
        "tanh_sine_1d",
        tanh_sine,
        Space([Real("x", -3.0, 3.0)]),
        (0.7,),
        "tanh(x) + 0.3 sin(3x) > 0.7: three crossings",
    ),
    "xsec_eff_2d": TestFunction(
        "xsec_eff_2d",
        xsec_efficiency,
        Space([Real("mass", 200.0, 1200.0, unit="GeV"), Real("delta_m", 0.0, 200.0, unit="GeV")]),
        (1.0,),
        "cross-section x efficiency > 1 pb: a curved contour",
    ),
    "sphere_3d": TestFunction(
        "sphere_3d",
        sphere,
        Space([Real("x", -1.0, 1.0), Real("y", -1.0, 1.0), Real("z", -1.0, 1.0)]),
        (0.5,),
        "x² + y² + z² + ripple > 0.5: outside a dented sphere of radius 0.71",
    ),
}
