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
``"package.module:factory"``, imported on load. The specs shipped with activesci live in
``activesci/bench/specs/`` and are found by name (:func:`available_specs`).

>>> spec = load_spec("weinberg-sin2w")
>>> spec["kind"], spec["budget"]["rounds"]
('design', 8)
"""

from __future__ import annotations

import copy
import importlib
import os
import re
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from activesci.errors import SpecError

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
_STRATEGY = r"^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.]*)?$"

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
        "budget": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "rounds": {"type": "integer", "minimum": 1},
                "evaluations": {"type": "integer", "minimum": 1},
                "batch_size": {"type": "integer", "minimum": 1},
            },
        },
        "metrics": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "primary": {"type": "string"},
                "target_std": {"type": "number", "exclusiveMinimum": 0},
                "target_accuracy": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            },
        },
        "estimator": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "training_samples": {"type": "integer", "minimum": 1},
                "refine_every": {"type": "integer", "minimum": 1},
            },
        },
        "resolution": {"type": "integer", "minimum": 3},
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


def validate_spec(spec: Any, *, source: str = "spec") -> dict[str, Any]:
    """Check a spec against :data:`SCHEMA` and fill in the defaults.

    Parameters
    ----------
    spec : dict
        The parsed YAML.
    source : str
        Where it came from, for error messages.

    Returns
    -------
    dict
        A deep copy with ``metrics``, ``task_options``, ``strategy_options`` and
        ``budget.batch_size`` filled in.

    Raises
    ------
    SpecError
        Naming the path of the first bad field (the most specific schema error).
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
    return spec


def _specs_folder() -> Any:
    return resources.files("activesci.bench") / "specs"


def available_specs() -> list[str]:
    """Names of the specs shipped with activesci."""
    names = (p.name for p in _specs_folder().iterdir())
    return sorted(n.removesuffix(".yaml") for n in names if n.endswith(".yaml"))


def load_spec(spec: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """Load and validate a spec: a shipped name, a YAML path, or an already parsed dict.

    Raises
    ------
    SpecError
        If the file is missing, is not YAML, or fails the schema.
    """
    import yaml

    if isinstance(spec, dict):
        return validate_spec(spec)
    text, source = None, str(spec)
    if isinstance(spec, str) and re.match(_NAME, spec) and not spec.endswith((".yaml", ".yml")):
        shipped = _specs_folder() / f"{spec}.yaml"
        if not shipped.is_file():
            raise SpecError(f"no shipped spec named {spec!r}; available: {available_specs()}")
        text, source = shipped.read_text(), f"{spec}.yaml"
    else:
        path = Path(spec)
        if not path.is_file():
            raise SpecError(f"spec file {str(path)!r} does not exist")
        text = path.read_text()
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    return validate_spec(parsed, source=source)


def _plugin(target: str) -> Any:
    """Import ``"package.module:attr"``."""
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"strategy {target!r} could not be imported: {exc}") from None


def resolve_strategies(spec: dict[str, Any]) -> None:
    """Register every strategy a spec names that is not registered yet.

    Registered names come first, then the entry points of the group
    ``activesci.strategies`` (design) or ``activesci.acquisitions`` (excursion), then
    ``"package.module:factory"`` strings, which are registered under that string.

    Raises
    ------
    SpecError
        If a strategy is none of these.
    """
    if spec["kind"] == "design":
        from activesci.bench.design import LEARNER_STRATEGIES
        from activesci.design.optimizer import STRATEGIES as registry

        builtin, group = set(LEARNER_STRATEGIES), "activesci.strategies"
    else:
        from activesci.excursion.acquisition import ACQUISITIONS as registry

        builtin, group = set(), "activesci.acquisitions"
    entry_points = {ep.name: ep for ep in metadata.entry_points(group=group)}
    for name in spec["strategies"]:
        if name in registry or name in builtin:
            continue
        if name in entry_points:
            registry[name] = entry_points[name].load()
        elif ":" in name:
            registry[name] = _plugin(name)
        else:
            known = sorted(set(registry) | builtin | set(entry_points))
            raise SpecError(
                f"unknown strategy {name!r}; available: {known}, an entry point of the group "
                f"{group!r}, or 'package.module:factory'"
            )
