"""Benchmark specs: named, versioned YAML files validated against a JSON schema.

A spec says what to compare and how to rank it::

    name: weinberg-lineshape
    kind: design                  # design (active learner) or excursion (level sets)
    task: weinberg_lineshape      # a task (design) or a test function (excursion)
    task_options: {luminosity: 0.2}
    strategies: [oracle, eig-exact, scan, fixed, grid]
    seeds: 5                      # seeds 0..4, shared by every strategy
    budget: {rounds: 8}           # excursion: {evaluations: 40, batch_size: 1}
    metrics: {primary: final_volume}

Strategies are plug-ins: a registered name (:func:`activesci.design.register_strategy`, or
:func:`activesci.excursion.register_acquisition`), a name that an installed package declares
under the entry-point group ``activesci.strategies`` (``activesci.acquisitions``), or
``"package.module:factory"``; so is the task (:func:`activesci.tasks.load`). A spec is data,
shared between people: the last form imports and runs code that the spec names, so it is
refused unless the caller passes ``allow_plugins=True``
(``activesci bench --allow-plugins``). Registered names and installed entry points are code the
user installed, and always allowed. The specs shipped with activesci live in
``activesci/bench/specs/`` and are found by name (:func:`available_specs`).

>>> spec = load_spec("weinberg-sin2w")
>>> spec["kind"], spec["budget"]["rounds"]
('design', 8)
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from activesci.errors import SpecError, ValidationError

__all__ = [
    "DESIGN_METRICS",
    "EXCURSION_METRICS",
    "SCHEMA",
    "available_specs",
    "load_spec",
    "resolve_strategies",
    "validate_spec",
]

#: Leaderboard metrics of design benchmarks, and whether lower is better.
DESIGN_METRICS = {
    "final_volume": True,
    "auc_log_volume": True,
    "rounds_to_target": True,
    "reached_target": False,
}
#: Leaderboard metrics of excursion benchmarks, and whether lower is better.
EXCURSION_METRICS = {
    "evaluations_to_target": True,
    "final_accuracy": False,
    "final_volume_error": True,
    "reached_target": False,
}

_NAME = r"^[a-z0-9][a-z0-9_-]*$"
_MAX_SPEC_BYTES = 1_000_000
_STRATEGY = r"^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.]*)?$"


def _closed_object(**properties: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of an object with these ``properties`` (each optional) and no others.

    >>> _closed_object(rounds=_integer(1))["additionalProperties"]
    False
    """
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _integer(minimum: int) -> dict[str, Any]:
    """The JSON schema of an integer of at least ``minimum``."""
    return {"type": "integer", "minimum": minimum}


#: The JSON schema every spec must satisfy (``activesci.bench-spec/1``).
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "activesci benchmark spec",
    "type": "object",
    "required": ["name", "kind", "task", "strategies", "seeds", "budget"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "description": {"type": "string"},
        "kind": {"enum": ["design", "excursion"]},
        "task": {"type": "string", "minLength": 1},
        "task_options": {"type": "object"},
        "truth": {"type": "object", "additionalProperties": {"type": "number"}},
        "strategies": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": _STRATEGY},
        },
        "strategy_options": {"type": "object", "additionalProperties": {"type": "object"}},
        "seeds": {"type": "integer", "minimum": 1, "maximum": 10_000},
        "budget": _closed_object(
            rounds=_integer(1), evaluations=_integer(1), batch_size=_integer(1)
        ),
        "metrics": _closed_object(
            primary={"type": "string"},
            target_std={"type": "number", "exclusiveMinimum": 0},
            target_accuracy={"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        ),
        "estimator": _closed_object(
            training_samples=_integer(1),
            refine_every=_integer(1),
            local_ensemble=_integer(1),
            calibration_events=_integer(100),
        ),
        "resolution": _integer(3),
    },
    "allOf": [
        {
            "if": {"properties": {"kind": {"const": "design"}}},
            "then": {
                "properties": {
                    "budget": {"required": ["rounds"]},
                    "metrics": {"properties": {"primary": {"enum": list(DESIGN_METRICS)}}},
                }
            },
        },
        {
            "if": {"properties": {"kind": {"const": "excursion"}}},
            "then": {
                "properties": {
                    "budget": {"required": ["evaluations"]},
                    "metrics": {"properties": {"primary": {"enum": list(EXCURSION_METRICS)}}},
                }
            },
        },
    ],
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    "design": {"primary": "final_volume", "target_std": 0.004},
    "excursion": {"primary": "evaluations_to_target", "target_accuracy": 0.99},
}


def _path_of(error: Any) -> str:
    """``budget.rounds`` or ``strategies[2]``: where in the spec a schema error sits."""
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def validate_spec(
    spec: Any, *, source: str = "spec", allow_plugins: bool = False
) -> dict[str, Any]:
    """Check a spec against :data:`SCHEMA` and fill in the defaults.

    Parameters
    ----------
    spec : dict
        The parsed YAML.
    source : str
        Where it came from, for error messages.
    allow_plugins : bool
        Accept ``"package.module:factory"`` strategies, which import and run the code they
        name (see the module docstring); refused by default.

    Returns
    -------
    dict
        A deep copy with ``metrics``, ``task_options``, ``strategy_options`` and
        ``budget.batch_size`` filled in.

    Raises
    ------
    SpecError
        Naming the path of the first bad field (the most specific schema error), a plug-in
        strategy without ``allow_plugins``, or ``task_options`` the task does not accept.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(spec), key=lambda e: (-len(e.absolute_path), e.path))
    if errors:
        error = errors[0]
        raise SpecError(f"{source}: at {_path_of(error)}: {error.message}")
    spec = copy.deepcopy(spec)
    kind = spec["kind"]
    spec["metrics"] = {**_DEFAULTS[kind], **spec.get("metrics", {})}
    spec.setdefault("task_options", {})
    spec.setdefault("strategy_options", {})
    spec.setdefault("description", "")
    if kind == "excursion":
        spec["budget"].setdefault("batch_size", 1)
    unknown = set(spec["strategy_options"]) - set(spec["strategies"])
    if unknown:
        raise SpecError(
            f"{source}: at strategy_options: options for {sorted(unknown)}, which are not in "
            f"strategies {spec['strategies']}"
        )
    _check_plugins(spec, allow_plugins, source)
    if kind == "design":
        _check_task(spec, source)
    return spec


def _check_plugins(spec: dict[str, Any], allow_plugins: bool, source: str) -> None:
    """Refuse ``"package.module:factory"`` strategies and tasks unless plug-ins are allowed."""
    if spec["kind"] == "design" and ":" in spec["task"] and not allow_plugins:
        raise SpecError(
            f"{source}: at task: {spec['task']!r} is a 'package.module:function' task "
            "factory, which imports and runs the code a spec names; expected a registered "
            "task or an installed entry point, or pass allow_plugins=True (activesci bench "
            "--allow-plugins) if you trust this spec"
        )
    plugins = [name for name in spec["strategies"] if ":" in name]
    if plugins and not allow_plugins:
        raise SpecError(
            f"{source}: at strategies: {plugins[0]!r} is a 'package.module:factory' plug-in, "
            "which imports and runs the code a spec names; expected a registered strategy or "
            "an installed entry point, or pass allow_plugins=True (activesci bench "
            "--allow-plugins) if you trust this spec"
        )


def _check_task(spec: dict[str, Any], source: str) -> None:
    """Build a design spec's task once, so a bad name or option is a spec error."""
    from activesci import tasks

    try:
        tasks.load(spec["task"], spec["task_options"], allow_plugins=True)  # checked above
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{source}: at task_options: task {spec['task']!r}: {exc}") from None


def _specs_folder() -> Any:
    return resources.files("activesci.bench") / "specs"


def available_specs() -> list[str]:
    """Names of the specs shipped with activesci."""
    names = (p.name for p in _specs_folder().iterdir())
    return sorted(n.removesuffix(".yaml") for n in names if n.endswith(".yaml"))


def load_spec(
    spec: str | os.PathLike[str] | dict[str, Any], *, allow_plugins: bool = False
) -> dict[str, Any]:
    """Load and validate a spec: a shipped name, a YAML path, or an already parsed dict.

    Parameters
    ----------
    spec : str, path or dict
        A shipped spec's name, a YAML file (at most 1 MB, without YAML aliases), or a dict.
    allow_plugins : bool
        Accept ``"package.module:factory"`` strategies (see :func:`validate_spec`).

    Raises
    ------
    SpecError
        If the file is missing, is not UTF-8 YAML, or fails the schema.
    """
    if isinstance(spec, dict):
        return validate_spec(spec, allow_plugins=allow_plugins)
    if not isinstance(spec, str | os.PathLike):
        raise SpecError(
            f"spec must be a shipped spec's name, a YAML file or a dict, got {spec!r:.80}"
        )
    source = str(spec)
    if isinstance(spec, str) and re.match(_NAME, spec) and not spec.endswith((".yaml", ".yml")):
        shipped = _specs_folder() / f"{spec}.yaml"
        if not shipped.is_file():
            raise SpecError(f"no shipped spec named {spec!r}; available: {available_specs()}")
        text, source = shipped.read_text(), f"{spec}.yaml"
    else:
        text = _read_spec_file(Path(spec))
    return validate_spec(_parse_yaml(text, source), source=source, allow_plugins=allow_plugins)


def _read_spec_file(path: Path) -> str:
    """The text of a spec file, or a SpecError saying why it is not one."""
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist or is not a file")
    if path.stat().st_size > _MAX_SPEC_BYTES:
        raise SpecError(
            f"spec file {str(path)!r} has {path.stat().st_size} bytes; "
            f"expected a YAML spec of at most {_MAX_SPEC_BYTES} bytes"
        )
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec file {str(path)!r} is not UTF-8 text ({exc})") from None


def _parse_yaml(text: str, source: str) -> Any:
    """Parse a spec's YAML safely; aliases (``*name``) are refused, as specs never need them."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise SpecError(
                    f"{source}: line {mark.line + 1}: YAML aliases (*name) are not allowed "
                    "in a spec; write the value out"
                )
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader: builds only plain data
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: not a spec: YAML nested too deeply") from None


def resolve_strategies(
    spec: dict[str, Any], *, allow_plugins: bool = False
) -> dict[str, Callable[..., Any]]:
    """The factory of every strategy a spec names that no registry holds; no registry changes.

    A name resolves as :meth:`activesci.registry.Registry.resolve` says: registered names
    first, then the entry points of the group ``activesci.strategies`` (design) or
    ``activesci.acquisitions`` (excursion), then ``"package.module:factory"`` strings, which
    are imported only if ``allow_plugins`` is true. Registered names and the design
    benchmark's own configurations (``eig``, ``eig-exact``, ``oracle``) are checked and left
    out: they are built by name where they run.

    Raises
    ------
    SpecError
        If a strategy is none of these, or is a plug-in and ``allow_plugins`` is false.
    """
    _check_plugins(spec, allow_plugins, "spec")
    if spec["kind"] == "design":
        from activesci.bench.design import LEARNER_STRATEGIES
        from activesci.design.optimizer import STRATEGIES as registry

        own = set(LEARNER_STRATEGIES)
    else:
        from activesci.excursion.acquisition import ACQUISITIONS as registry

        own = set()
    factories = {}
    for name in spec["strategies"]:
        if name in own or name in registry:
            continue  # built by name where it runs, with the task's options for it
        try:
            factories[name] = registry.resolve(name, allow_plugins=allow_plugins)
        except ValidationError as exc:
            raise SpecError(str(exc)) from None
    return factories
