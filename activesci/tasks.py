"""Ready-made problems: a simulator, its prior and design spaces, and an experiment factory.

>>> import activesci as asci
>>> task = asci.tasks.weinberg()
>>> task.parameters.names, task.designs.names
(['sin2w'], ['sqrt_s'])
>>> exp = task.experiment(truth={"sin2w": 0.2315}, seed=1)
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from activesci.errors import ValidationError
from activesci.experiments import SimulatedExperiment
from activesci.simulators.detector import AngularDetector
from activesci.simulators.gaussian import GaussianSimulator
from activesci.simulators.weinberg import WeinbergSimulator, lineshape_parameters
from activesci.spaces import Real, Space
from activesci.typing import Simulator

__all__ = ["TASKS", "Task", "gaussian", "get", "weinberg", "weinberg_lineshape"]


@dataclass
class Task:
    """A problem to learn about: what to simulate, what is unknown, what can be chosen.

    Attributes
    ----------
    name : str
        Registry name (``activesci.tasks.get(name)`` builds it again).
    simulator : Simulator
        Carries the prior (``parameters``) and the design space (``designs``).
    truth : dict
        A default truth for simulated experiments (e.g. the world average).
    description : str
        One paragraph for reports and ``activesci --help``.
    options : dict
        The keyword arguments the task was built with, to rebuild it (e.g. on resume).
    strategy_options : dict
        Default options of the baseline strategies, e.g. ``{"fixed": {"design": [91.19]}}``.
    """

    name: str
    simulator: Simulator
    truth: dict[str, float]
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def parameters(self) -> Space:
        """The theory parameters and their prior."""
        return self.simulator.parameters

    @property
    def designs(self) -> Space:
        """The experiment settings the learner may choose."""
        return self.simulator.designs

    def experiment(self, truth: Any = None, seed: int | None = None) -> SimulatedExperiment:
        """A simulated experiment with a hidden ``truth`` (default: the task's) and ``seed``."""
        return SimulatedExperiment(self.simulator, self.truth if truth is None else truth, seed)


def weinberg(
    *,
    luminosity: float = 1.0,
    detector: AngularDetector | None = None,
    convention: str = "a",
    alpha: float | str = "thomson",
) -> Task:
    """Measure ``sin^2(theta_W)`` from mu+mu- angular distributions, choosing ``sqrt_s``.

    Parameters are those of :class:`~activesci.simulators.WeinbergSimulator`; the prior is
    uniform on ``[0.15, 0.35]`` and ``sqrt_s`` ranges over ``[20, 210]`` GeV.
    """
    sim = WeinbergSimulator(
        luminosity=luminosity, detector=detector, convention=convention, alpha=alpha
    )
    return Task(
        name="weinberg",
        simulator=sim,
        truth={"sin2w": 0.2315},
        description=(
            "e+e- -> mu+mu-: infer the weak mixing angle sin2w from the muon angular "
            f"distribution and the event count, {luminosity:g} pb^-1 per experiment at a "
            "beam energy sqrt_s chosen in [20, 210] GeV."
        ),
        options={"luminosity": luminosity, "convention": convention, "alpha": alpha},
        strategy_options=_Z_POLE_BASELINES,
    )


#: The physicist's defaults around the Z: sit on the pole, or scan it LEP-style.
_Z_POLE_BASELINES = {
    "fixed": {"design": [91.19]},
    "scan": {"designs": [[89.19], [91.19], [93.19]]},
}


def weinberg_lineshape(
    *,
    luminosity: float = 1.0,
    detector: AngularDetector | None = None,
    convention: str = "a",
    alpha: float | str = "thomson",
) -> Task:
    """Measure ``sin2w``, ``M_Z`` and ``Gamma_Z`` together, choosing ``sqrt_s`` in [80, 100] GeV."""
    sim = WeinbergSimulator(
        parameters=lineshape_parameters(),
        designs=Space([Real("sqrt_s", 80.0, 100.0, unit="GeV", label="√s")]),
        luminosity=luminosity,
        detector=detector,
        convention=convention,
        alpha=alpha,
    )
    return Task(
        name="weinberg_lineshape",
        simulator=sim,
        truth={"sin2w": 0.2315, "mz": 91.1876, "gamma_z": 2.4952},
        description=(
            "e+e- -> mu+mu- around the Z pole: infer sin2w, M_Z and Gamma_Z from angular "
            f"distributions and rates, {luminosity:g} pb^-1 per experiment at sqrt_s in "
            "[80, 100] GeV."
        ),
        options={"luminosity": luminosity, "convention": convention, "alpha": alpha},
        strategy_options=_Z_POLE_BASELINES,
    )


def gaussian(*, dim: int = 1, events_per_experiment: int = 10) -> Task:
    """The Gaussian toy with an analytic posterior (``x ~ N(theta, (2 + cos(phase))^2)``)."""
    sim = GaussianSimulator(dim=dim, events_per_experiment=events_per_experiment)
    return Task(
        name="gaussian",
        simulator=sim,
        truth={f"mu{i}": 0.5 for i in range(dim)},
        description=(
            f"Gaussian toy in {dim} dimension(s): x ~ N(theta, (2 + cos(phase))^2), "
            f"{events_per_experiment} events per experiment; the posterior is known exactly."
        ),
        options={"dim": dim, "events_per_experiment": events_per_experiment},
        strategy_options={"fixed": {"design": [math.pi]}, "scan": {"designs": [[0.0], [math.pi]]}},
    )


#: Task factories by name.
TASKS: dict[str, Callable[..., Task]] = {
    "weinberg": weinberg,
    "weinberg_lineshape": weinberg_lineshape,
    "gaussian": gaussian,
}


def get(name: str, **options: Any) -> Task:
    """Build the task registered as ``name`` (see :data:`TASKS`).

    Raises
    ------
    ValidationError
        An unknown task, or an option the task does not take (the message lists those it
        takes); bad option values are refused by the task's simulator.
    """
    try:
        factory = TASKS[name]
    except (KeyError, TypeError):
        raise ValidationError(f"unknown task {name!r}; available: {sorted(TASKS)}") from None
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValidationError(
            f"task {name!r} takes no option(s) {unknown}; its options are {sorted(accepted)}"
        )
    return factory(**options)
