"""Problems to learn about: a simulator, its prior and design spaces, and an experiment factory.

>>> import activesci as asci
>>> task = asci.tasks.weinberg()
>>> task.parameters.names, task.designs.names
(['sin2w'], ['sqrt_s'])
>>> exp = task.experiment(truth={"sin2w": 0.2315}, seed=1)

Tasks are data. A task is built by a *factory*, a function returning a :class:`Task`, and
``task.to_config()`` names it with its options, so a stored run, a benchmark spec or a
workflow rebuilds it with :func:`load`. A factory is named by

- a registered name: the built-in tasks (:data:`TASKS`) and those added with
  :func:`register_task` in this process;
- the name of an entry point that an installed package declares in the group
  ``activesci.tasks``;
- ``"package.module:factory"``: any importable function, e.g. one in your own module. A
  factory defined at the top level of a module is recognised when it builds its ``Task``, so
  ``task.to_config()`` works without registering it.

Naming a module imports and runs its code, so :func:`load` refuses the last form when it comes
from a data file (a stored run, a spec) unless the caller allows it (``allow_plugins=True``,
``activesci resume --allow-plugins``); registered names and entry points are code the user
installed, and always allowed.

>>> config = task.to_config()
>>> config
{'task': 'weinberg', 'task_options': {'luminosity': 1.0, 'convention': 'a', 'alpha': 'thomson'}}
>>> load(**config).name
'weinberg'
"""

from __future__ import annotations

import dis
import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from activesci.errors import ValidationError
from activesci.experiments import SimulatedExperiment
from activesci.registry import Registry, qualified_name
from activesci.simulators.detector import AngularDetector
from activesci.simulators.gaussian import GaussianSimulator
from activesci.simulators.location import LocationFindingSimulator
from activesci.simulators.weinberg import WeinbergSimulator, lineshape_parameters
from activesci.spaces import Real, Space
from activesci.typing import Simulator, check_positive

__all__ = [
    "ENTRY_POINTS",
    "TASKS",
    "Task",
    "gaussian",
    "get",
    "load",
    "location_finding",
    "moving_cost",
    "register_task",
    "weinberg",
    "weinberg_lineshape",
]

#: The entry-point group under which installed packages declare task factories.
ENTRY_POINTS = "activesci.tasks"


@dataclass
class Task:
    """A problem to learn about: what to simulate, what is unknown, what can be chosen.

    Attributes
    ----------
    name : str
        A short name for titles and reports.
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
    cost : callable, optional
        ``cost(design (D,), previous (D,) or None) -> float``: what running ``design`` after
        ``previous`` costs (e.g. a run plus the hours to move a beam energy). Strategies
        maximise the information per unit cost, and ``iterate(max_cost=...)`` stops on it.
    figures : callable, optional
        ``figures(task, observations, summary) -> list of plotly figures``: the task's own
        panels beside the generic ones (posterior or corner plot, designs, EIG, cost), drawn by
        the dashboard and the run report from the observations and the last round's summary;
        Weinberg's A_FB data against theory is one.
    factory : str, optional
        The registered name or ``"package.module:function"`` that builds this task from
        ``options``. Left out, it is found when a module-level function of an importable
        module returns the task it builds (``return Task(...)``; its JSON-able arguments
        become ``options`` if none are given); ``None`` if there is none.
    """

    name: str
    simulator: Simulator
    truth: dict[str, float]
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost: Callable[[Any, Any], float] | None = None
    figures: Callable[[Task, list[Any], dict[str, Any]], list[Any]] | None = None
    factory: str | None = None

    def __post_init__(self) -> None:
        if self.factory is None:
            self.factory, options = _calling_factory()
            if self.factory is not None and not self.options:
                self.options = options

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

    @property
    def ref(self) -> str:
        """The name :func:`load` finds this task's factory by.

        A registered name, an entry point's name or ``"package.module:function"`` (the
        task's ``name`` if it has no factory).
        """
        return self.factory or self.name

    def to_config(self) -> dict[str, Any]:
        """``{"task": ref, "task_options": options}``: what :func:`load` rebuilds it from.

        Raises
        ------
        ValidationError
            The task has no factory that another process could import (it was built by hand
            or in ``__main__``), or options that are not JSON data.
        """
        if self.factory is None:
            raise ValidationError(
                f"task {self.name!r} has no factory to rebuild it from: build it in a "
                "function at the top level of an importable module, register that function "
                "with activesci.tasks.register_task, or give Task(factory='package.module:"
                "function')"
            )
        try:
            options = json.loads(json.dumps(self.options, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"task {self.name!r}: its options must be JSON data to be stored ({exc})"
            ) from None
        return {"task": self.factory, "task_options": options}


def weinberg(
    *,
    luminosity: float = 1.0,
    detector: AngularDetector | None = None,
    convention: str = "a",
    alpha: float | str = "thomson",
    move_cost: float = 0.0,
) -> Task:
    """Measure ``sin^2(theta_W)`` from mu+mu- angular distributions, choosing ``sqrt_s``.

    Parameters are those of :class:`~activesci.simulators.WeinbergSimulator`; the prior is
    uniform on ``[0.15, 0.35]`` and ``sqrt_s`` ranges over ``[20, 210]`` GeV. With
    ``move_cost > 0`` every run costs 1 plus ``move_cost`` per GeV that ``sqrt_s`` moves from
    the run before (see :func:`moving_cost`): the cost-aware design's example.
    """
    sim = WeinbergSimulator(
        luminosity=luminosity, detector=detector, convention=convention, alpha=alpha
    )
    move_cost = _non_negative(move_cost, "move_cost")
    return Task(
        name="weinberg",
        factory="weinberg",
        simulator=sim,
        truth={"sin2w": 0.2315},
        description=(
            "e+e- -> mu+mu-: infer the weak mixing angle sin2w from the muon angular "
            f"distribution and the event count, {luminosity:g} pb^-1 per experiment at a "
            "beam energy sqrt_s chosen in [20, 210] GeV."
        ),
        options={"luminosity": luminosity, "convention": convention, "alpha": alpha}
        | ({"move_cost": move_cost} if move_cost else {}),
        strategy_options=_Z_POLE_BASELINES,
        cost=moving_cost(move_cost) if move_cost else None,
        figures=_afb_figures,
    )


def _afb_figures(task: Task, observations: list[Any], summary: dict[str, Any]) -> list[Any]:
    """Weinberg's own panel: the measured A_FB per energy against theory at the posterior."""
    from activesci import plots

    if not observations:
        return []
    mean, std = summary["mean"][0], summary["std"][0]
    return [plots.afb_data_figure(task.simulator, observations, mean, std)]


def moving_cost(per_unit: float, per_run: float = 1.0) -> Callable[[Any, Any], float]:
    """A cost model: ``per_run`` for every run plus ``per_unit`` per unit the design moves.

    The distance is the sum over design dimensions of ``|design - previous|``; the first run
    moves nothing.

    >>> cost = moving_cost(0.5)
    >>> cost([91.19], None), cost([93.19], [91.19])
    (1.0, 2.0)
    """
    per_unit = _non_negative(per_unit, "per_unit")
    per_run = check_positive(per_run, "per_run")

    def cost(design: Any, previous: Any) -> float:
        if previous is None:
            return per_run
        step = np.abs(np.asarray(design, dtype=float) - np.asarray(previous, dtype=float))
        return per_run + per_unit * float(step.sum())

    return cost


def _non_negative(value: Any, name: str) -> float:
    """``value`` as a float if it is 0 or a positive finite number, else a ValidationError."""
    if not isinstance(value, bool) and isinstance(value, int | float) and value == 0:
        return 0.0
    try:
        return check_positive(value, name)
    except ValidationError:
        raise ValidationError(f"{name} must be >= 0 and finite, got {value!r}") from None


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
        factory="weinberg_lineshape",
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
        factory="gaussian",
        simulator=sim,
        truth={f"mu{i}": 0.5 for i in range(dim)},
        description=(
            f"Gaussian toy in {dim} dimension(s): x ~ N(theta, (2 + cos(phase))^2), "
            f"{events_per_experiment} events per experiment; the posterior is known exactly."
        ),
        options={"dim": dim, "events_per_experiment": events_per_experiment},
        strategy_options={"fixed": {"design": [math.pi]}, "scan": {"designs": [[0.0], [math.pi]]}},
    )


def location_finding(*, n_sources: int = 2, dim: int = 2, sigma: float = 0.5) -> Task:
    """Find hidden sources from noisy log intensities: the BOED benchmark of Deep Adaptive Design.

    Foster et al., ICML 2021: ``n_sources`` point sources with N(0, 1) priors per coordinate
    (cut at +-4), each experiment measures ``log(0.1 + sum_k 1 / (1e-4 + |theta_k - xi|^2))``
    with Gaussian noise ``sigma`` at a point ``xi`` in ``[-4, 4]^dim`` (see
    :class:`~activesci.simulators.LocationFindingSimulator`). Two sources in 2-D are
    4 parameters with a 2-D design; the exact likelihood is known, so learned loops have
    their referee. The sources are interchangeable, so the posterior has ``n_sources!``
    mirror-image modes.
    """
    sim = LocationFindingSimulator(n_sources=n_sources, dim=dim, sigma=sigma)
    if (n_sources, dim) == (2, 2):
        truth = {"s1_x": 1.0, "s1_y": 0.5, "s2_x": -0.8, "s2_y": -1.0}
    else:  # a fixed draw from the prior, rounded to read well in reports
        draw = np.round(sim.parameters.sample(1, np.random.default_rng(2021)), 2)
        truth = sim.parameters.to_dict(draw[0])
    centre = [0.0] * dim
    steps = [[2.0 * s if i == j else 0.0 for j in range(dim)] for i in range(dim) for s in (-1, 1)]
    return Task(
        name="location_finding",
        factory="location_finding",
        simulator=sim,
        truth=truth,
        description=(
            f"Location finding (Deep Adaptive Design): {n_sources} source(s) in {dim} "
            "dimension(s) with N(0, 1) priors; each experiment measures the log total intensity "
            "log(0.1 + sum_k 1 / (1e-4 + |theta_k - xi|^2)) with noise "
            f"sigma = {sigma:g} at a point xi in [-4, 4]^{dim}."
        ),
        options={"n_sources": n_sources, "dim": dim, "sigma": sigma},
        strategy_options={"fixed": {"design": centre}, "scan": {"designs": [centre, *steps]}},
    )


#: Task factories by name: the built-in ones, those given to :func:`register_task` and the
#: entry points of the group :data:`ENTRY_POINTS` (:class:`~activesci.registry.Registry`).
TASKS: Registry[Task] = Registry(
    "task",
    {
        "weinberg": weinberg,
        "weinberg_lineshape": weinberg_lineshape,
        "gaussian": gaussian,
        "location_finding": location_finding,
    },
    group=ENTRY_POINTS,
    ref="package.module:function",
)


def register_task(name: str, factory: Callable[..., Task]) -> None:
    """Make ``factory(**options)`` available as the task ``name`` in this process.

    A run stored with such a task names the factory's module and function where it has one,
    so another process (``activesci resume``) can rebuild it.
    """
    TASKS.register(name, factory)


def get(name: str, **options: Any) -> Task:
    """Build the task registered as ``name`` (see :data:`TASKS`) or declared as an entry point.

    Raises
    ------
    ValidationError
        An unknown task, or an option the task does not take (the message lists those it
        takes); bad option values are refused by the task's simulator.
    """
    return load(name, options)


def load(
    task: str, task_options: dict[str, Any] | None = None, *, allow_plugins: bool = False
) -> Task:
    """Build a task from its config: ``load(**task.to_config())`` rebuilds ``task``.

    Parameters
    ----------
    task : str
        A registered name, an entry point of the group :data:`ENTRY_POINTS`, or
        ``"package.module:function"``.
    task_options : dict, optional
        The factory's keyword arguments.
    allow_plugins : bool
        Import a ``"package.module:function"`` that is not registered: this runs code that
        ``ref`` names, so pass it only for a ref you (not a data file) chose.

    Raises
    ------
    ValidationError
        An unknown task, a module named without ``allow_plugins``, a factory that cannot be
        imported or does not return a Task, or an option the factory does not take.
    """
    ref, options = task, {} if task_options is None else task_options
    if not isinstance(options, dict):
        raise ValidationError(f"task options must be a dict, got {options!r:.80}")
    factory = TASKS.resolve(ref, allow_plugins=allow_plugins)
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValidationError(
                f"task {ref!r} takes no option(s) {unknown}; its options are {sorted(accepted)}"
            )
    built = factory(**options)
    if not isinstance(built, Task):
        raise ValidationError(f"task factory {ref!r} returned {type(built).__name__}, not a Task")
    return built


def _returns_the_call(frame: Any) -> bool:
    """Whether the instruction after ``frame``'s current call returns its result."""
    instructions = list(dis.get_instructions(frame.f_code))
    for i, instruction in enumerate(instructions):
        if instruction.offset == frame.f_lasti:
            rest = [x for x in instructions[i + 1 :] if x.opname not in ("NOP", "PRECALL")]
            return bool(rest) and rest[0].opname == "RETURN_VALUE"
    return False


def _calling_factory() -> tuple[str | None, dict[str, Any]]:
    """The module-level function that is building a Task, and its JSON-able arguments.

    Looks up the stack past the dataclass's ``__init__`` for the first frame outside this
    module; it counts as a factory only if its module is importable (not ``__main__``) and
    the module's attribute of that name runs exactly that code, and returns the new Task
    directly (``return Task(...)``): a script's function that builds a task to run it is not
    a factory, and must not be called again to rebuild it. The options are the arguments'
    values as the task is built (``**kwargs`` spread out); positional-only or ``*args``
    arguments cannot be passed by name, so such a function is not taken as a factory.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_globals.get("__name__") == __name__:
            frame = frame.f_back
        while frame is not None and frame.f_code.co_name == "__init__":
            frame = frame.f_back  # the dataclass's generated __init__
        if frame is None:
            return None, {}
        module = frame.f_globals.get("__name__", "__main__")
        function = frame.f_globals.get(frame.f_code.co_name)
        if module == "__main__" or getattr(function, "__code__", None) is not frame.f_code:
            return None, {}
        if not _returns_the_call(frame):
            return None, {}  # it builds a task to use, not to return: not a factory
        names = inspect.signature(function).parameters
        options = {}
        for name, parameter in names.items():
            value = frame.f_locals.get(name)
            if parameter.kind is parameter.VAR_POSITIONAL and not value:
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.POSITIONAL_ONLY):
                return None, {}  # load passes options by name only
            given = dict(value or {}) if parameter.kind is parameter.VAR_KEYWORD else {name: value}
            for key, item in given.items():
                try:
                    json.dumps(item, allow_nan=False)
                except (TypeError, ValueError):
                    if item is not parameter.default:
                        return None, {}  # an option that cannot be stored: not rebuildable
                    continue
                options[key] = item
        return qualified_name(function), options
    finally:
        del frame
