"""Posterior representations by name: how the learner holds its posterior.

A representation is a factory ``factory(space, *, simulator, seed, resolution, particles)``
returning a posterior of the prior ``space`` (:class:`~activesci.inference.grid.GridPosterior`,
:class:`~activesci.inference.particles.SamplePosterior` or your own with their methods).
``ActiveLearner(posterior=name)`` takes any registered name; ``"auto"`` takes the grid up to
three parameters and particles beyond. A representation of your own is one file and a
:func:`register_posterior` call (or an entry point of the group ``activesci.posteriors``).

>>> from activesci import tasks
>>> task = tasks.gaussian()
>>> post = POSTERIORS["grid"](task.parameters, simulator=task.simulator, seed=0, resolution=11)
>>> post.shape
(11,)
"""

from __future__ import annotations

from typing import Any

from activesci.inference.grid import GridPosterior
from activesci.inference.particles import SamplePosterior
from activesci.registry import Registry
from activesci.spaces import Space

__all__ = ["POSTERIORS", "register_posterior"]


def _grid(
    space: Space,
    *,
    simulator: Any,
    seed: int,
    resolution: Any = None,
    particles: int | None = None,
) -> GridPosterior:
    """The log posterior on a grid of cell centres (``resolution`` cells per parameter)."""
    return GridPosterior(space, resolution, simulator=simulator)


def _particles(
    space: Space,
    *,
    simulator: Any,
    seed: int,
    resolution: Any = None,
    particles: int | None = None,
) -> SamplePosterior:
    """Weighted particles (SMC), ``particles`` of them, seeded by ``seed``."""
    return SamplePosterior(space, particles or 4000, simulator=simulator, seed=seed)


#: Posterior representations by name (and the entry points of ``activesci.posteriors``).
POSTERIORS: Registry[Any] = Registry(
    "posterior",
    {"grid": _grid, "particles": _particles},
    group="activesci.posteriors",
)


#: ``register_posterior(name, factory)``: ``factory(space, *, simulator, seed, resolution,
#: particles)`` becomes ``posterior=name`` in this process.
register_posterior = POSTERIORS.register
