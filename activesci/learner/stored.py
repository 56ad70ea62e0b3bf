"""What a run stores beside its observations, and how a resumed run reads it back.

Checkpoint names, the run's settings (:func:`_estimator_spec`, :func:`_portable`), the store it
opens (:func:`_open_store`), the experiment and options a resume rebuilds from them, and the
estimators saved as checkpoints.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from activesci import tasks as task_registry
from activesci.errors import StoreError, ValidationError
from activesci.experiments import SimulatedExperiment
from activesci.inference.ratio import METHODS, RatioEstimator
from activesci.inference.sequential import CALIBRATION_EVENTS
from activesci.tasks import Task
from activesci.typing import (
    Experiment,
    RunStore,
    check_run_settings,
)

__all__: list[str] = []

_CHECKPOINT = "estimator"
_REFINED = "inference_estimator"
_REFINED_AT = "inference_estimator_round"
_PENDING = "pending_batch"
_ABANDONED = "abandoned_designs"
_LOCAL = "inference/{n}/{k}"


def _rebuild_experiment(
    task: Task, spec: dict[str, Any], runs: int, store: RunStore, allow_images: Sequence[str]
) -> Experiment:
    """The experiment of a stored run, continuing after ``runs`` runs (``spec`` is data)."""
    kind = spec["kind"]
    if kind == "simulated":
        return SimulatedExperiment(task.simulator, spec["truth"], spec["seed"], runs=runs)
    if kind == "workflow":
        from activesci.workflow.experiment import WorkflowExperiment

        run_dir = getattr(store, "path", None)
        if run_dir is None:
            raise StoreError("a workflow experiment is resumed only from a run folder")
        return WorkflowExperiment.from_config(
            task, spec, run_dir=run_dir, runs=runs, allow_images=allow_images
        )
    raise ValidationError(
        f"this run's experiment ({kind}) cannot be rebuilt automatically; "
        f"resume it with ActiveLearner(..., store=path, experiment=...)"
    )


def _resume_options(
    store: RunStore, *, allow_images: Sequence[str] = (), allow_plugins: bool = False
) -> dict[str, Any]:
    """The learner's keyword arguments from a stored run's settings."""
    where = getattr(store, "path", "the store")
    meta = check_run_settings(store.metadata(), str(where))
    try:
        task = task_registry.load(meta["task"], meta["task_options"], allow_plugins=allow_plugins)
        stored = store.observations()
        est_spec = meta["estimator"]
        if est_spec["kind"] == "object":
            raise ValidationError(
                "this run used a custom estimator object: resume it with "
                "ActiveLearner(..., estimator=..., store=path)"
            )
        return {
            "task": task,
            "experiment": _rebuild_experiment(
                task, meta["experiment"], len(stored), store, allow_images
            ),
            "estimator": "exact" if est_spec["kind"] == "exact" else est_spec["method"],
            "strategy": meta["strategy"]["name"],
            "strategy_options": meta["strategy"]["options"],
            "seed": meta["seed"],
            "training_samples": est_spec.get("training_samples", 100_000),
            "resolution": meta["resolution"],
            "refine_every": meta.get("refine_every"),
            "inference": meta.get("inference", "amortised"),
            "calibration_events": meta.get("calibration_events", CALIBRATION_EVENTS),
            "local_ensemble": meta.get("local_ensemble"),
            "planned_rounds": meta.get("planned_rounds"),
            "posterior": meta.get("posterior", "grid"),
            "particles": meta.get("particles", 4000),
            "batch": meta.get("batch", 1),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise StoreError(f"{where}: the stored run settings are malformed ({exc!r})") from None


def _as_task(task: Any) -> Task:
    """A Task, or one built from its name or ``"package.module:function"`` (the caller's)."""
    if isinstance(task, str):
        return task_registry.load(task, allow_plugins=True)
    if not isinstance(task, Task):
        raise ValidationError(
            f"task must be a Task, a task name or 'package.module:function', got {task!r:.80}"
        )
    return task


def _estimator_spec(estimator: Any, samples: int) -> dict[str, Any]:
    """What the metadata says of ``estimator`` (validated; nothing is trained here)."""
    if isinstance(estimator, str):
        if estimator == "exact":
            return {"kind": "exact"}
        if estimator not in METHODS or estimator == "sally":
            names = sorted(m for m in METHODS if m != "sally")
            raise ValidationError(
                f"unknown estimator {estimator!r}; expected 'exact' or one of {names}"
            )
        return {"kind": "ratio", "method": estimator, "training_samples": samples}
    if isinstance(estimator, RatioEstimator) and estimator.is_trained:
        return {"kind": "ratio", "method": estimator.method, "training_samples": samples}
    if not callable(getattr(estimator, "log_ratio", None)):
        raise ValidationError(
            "estimator must be a name, 'exact', a trained RatioEstimator or have "
            f"log_ratio(x, theta, design), got {estimator!r:.80}"
        )
    return {"kind": "object", "type": type(estimator).__name__}


def _open_store(store: Any, metadata: dict[str, Any]) -> RunStore:
    """The run's store with ``metadata`` written, or the same settings found there.

    A store holding a run with other settings is refused before anything is read from or
    written to it (its estimator would be stale).
    """
    from activesci.store import MemoryRunStore, SQLiteRunStore

    if store is None:
        store = MemoryRunStore()
    elif isinstance(store, str | os.PathLike):
        if not os.fspath(store):
            raise ValidationError("store must name a folder, got ''")
        store = SQLiteRunStore(store)
    if not isinstance(store, RunStore):
        raise ValidationError(f"store must be a folder or a RunStore, got {type(store).__name__}")
    where = getattr(store, "path", "the store")
    metadata = _portable(metadata, store)
    stored = store.metadata()
    if not stored:
        if store.observations() or store.load_checkpoint(_CHECKPOINT) is not None:
            raise StoreError(
                f"{where} holds data but no run settings (left by an older activesci): "
                "use a new folder"
            )
        store.write_metadata(metadata)
        return store
    new = json.loads(json.dumps(metadata, default=_plain))
    stored = _portable(stored, store)  # an older run stored its work folder absolute
    changed = sorted(k for k in stored if k not in _VOLATILE and stored[k] != new.get(k))
    if changed:
        raise StoreError(
            f"{where} holds a run with other settings (they differ in "
            f"{', '.join(map(repr, changed))}): continue it with `activesci resume {where}` "
            "or ActiveLearner.resume(path), or use a new folder"
        )
    return store


def _portable(metadata: dict[str, Any], store: RunStore) -> dict[str, Any]:
    """``metadata`` with its experiment's work folder relative to the run folder, if inside.

    Stored so, a run folder that is moved or copied still resumes in its own work folder.
    """
    experiment, run_dir = metadata.get("experiment"), getattr(store, "path", None)
    if not isinstance(experiment, dict) or "workdir" not in experiment or run_dir is None:
        return metadata
    from activesci.workflow.containers import relative_workdir

    return metadata | {"experiment": relative_workdir(experiment, run_dir)}


#: Settings a resumed run may differ in: they do not change what it computes.
_VOLATILE = ("activesci_version", "planned_rounds")


def _plain(value: Any) -> Any:
    """JSON form of the NumPy values settings may hold."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise ValidationError(f"a setting, {value!r:.80}, is not JSON-serialisable")


def _dump_estimator(est: RatioEstimator) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = est.save(Path(tmp) / "estimator.pt")
        return path.read_bytes()


def _load_estimator(data: bytes) -> RatioEstimator:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "estimator.pt"
        path.write_bytes(data)
        return RatioEstimator.load(path)
