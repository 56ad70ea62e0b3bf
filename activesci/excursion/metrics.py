"""How well an estimated classification matches the truth on a grid.

Classes are integers: class ``k`` means ``f`` exceeds exactly ``k`` of the increasing
thresholds, so the excursion set above threshold ``k`` (1-based) is ``classes >= k``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from activesci.errors import ShapeError, ValidationError

__all__ = ["accuracy", "excursion_volume", "volume_error"]


def _classes(name: str, classes: Any) -> np.ndarray:
    arr = np.asarray(classes)
    if arr.size == 0:
        raise ShapeError(f"{name} is empty; expected one class per grid point")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValidationError(f"{name} must hold integer classes, got dtype {arr.dtype}")
    return arr.ravel()


def _pair(predicted: Any, true: Any) -> tuple[np.ndarray, np.ndarray]:
    p, t = _classes("predicted", predicted), _classes("true", true)
    if p.shape != t.shape:
        raise ShapeError(
            f"predicted and true classes differ in size: {np.shape(predicted)} vs {np.shape(true)}"
        )
    return p, t


def _level(level: Any) -> int:
    if not (isinstance(level, int | np.integer) and level >= 1):
        raise ValidationError(
            f"level must be an integer >= 1 (a threshold, 1-based), got {level!r}"
        )
    return int(level)


def accuracy(predicted: Any, true: Any) -> float:
    """Fraction of grid points whose class is right.

    Parameters
    ----------
    predicted, true : array_like of int
        Classes on the same grid (any shape, same size).

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
    0.75
    """
    p, t = _pair(predicted, true)
    return float(np.mean(p == t))


def excursion_volume(classes: Any, *, level: int = 1, cell_volume: float = 1.0) -> float:
    """Volume (area in 2-D, length in 1-D) of the excursion set above threshold ``level``.

    Parameters
    ----------
    classes : array_like of int
        Classes on a regular grid.
    level : int
        Which threshold (1-based): the set is ``classes >= level``.
    cell_volume : float
        Volume that one grid point stands for; 1 counts points.

    Examples
    --------
    >>> excursion_volume([0, 1, 2, 2], level=2, cell_volume=0.5)
    1.0
    """
    if not (np.isfinite(cell_volume) and cell_volume > 0):
        raise ValidationError(f"cell_volume must be positive and finite, got {cell_volume!r}")
    return float(np.count_nonzero(_classes("classes", classes) >= _level(level)) * cell_volume)


def volume_error(predicted: Any, true: Any, *, level: int = 1) -> float:
    """Relative error ``|V_est - V_true| / V_true`` of the excursion-set volume above ``level``.

    The cell volume cancels, so counts of grid points suffice. An empty true set gives 0 if the
    estimate is empty too, else ``inf``.

    Parameters
    ----------
    predicted, true : array_like of int
        Classes on the same grid.
    level : int
        Which threshold (1-based).

    Examples
    --------
    >>> volume_error([0, 1, 1, 1], [0, 0, 1, 1])
    0.5
    """
    p, t = _pair(predicted, true)
    k = _level(level)
    estimated = np.count_nonzero(p >= k)
    actual = np.count_nonzero(t >= k)
    if actual == 0:
        return 0.0 if estimated == 0 else float("inf")
    return float(abs(estimated - actual) / actual)
