"""The ``activesci.events/1`` file: simulated events as a NumPy ``.npz`` archive.

This is the contract between ``activesci simulate`` and anything that reads its output (the
container steps of a workflow, MadMiner exports, your own scripts). All arrays are plain
numeric or unicode arrays, so ``numpy.load(path, allow_pickle=False)`` reads it.

========================  ============  =====================================================
key                       shape, dtype  meaning
========================  ============  =====================================================
``format``                (), str       ``"activesci.events/1"``
``task``                  (), str       task name, e.g. ``"weinberg"``
``parameter_names``       (P,), str     names of the columns of ``theta``
``design_names``          (D,), str     names of the columns of ``design``
``feature_names``         (X,), str     names of the columns of ``x``
``theta``                 (P,), f8      parameters the events were simulated with
``design``                (D,), f8      the design (e.g. ``sqrt_s`` in GeV)
``x``                     (n, X), f8    recorded features, one event per row
``z``                     (n, Z), f8    latent truth (optional)
``joint_log_prob``        (n,), f8      gold: ``log p(z | theta, design)`` (optional)
``joint_score``           (n, P), f8    gold: its gradient in ``theta`` (optional)
``luminosity``            (), f8        pb^-1, NaN if not applicable (optional)
``seed``                  (), i8        seed of the run, -1 if none (optional); (k,) for a
                                        seed sequence ``default_rng([s0, s1, ...])``
``activesci_version``     (), str       version that wrote the file (optional)
========================  ============  =====================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activesci.errors import EventFileError
from activesci.io import atomic_write, read_npz_arrays

__all__ = ["FORMAT", "EventFile", "read_events", "write_events"]

FORMAT = "activesci.events/1"


@dataclass(frozen=True)
class EventFile:
    """The contents of an ``activesci.events/1`` file (see the module docstring)."""

    task: str
    parameter_names: tuple[str, ...]
    design_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    theta: np.ndarray
    design: np.ndarray
    x: np.ndarray
    z: np.ndarray | None = None
    joint_log_prob: np.ndarray | None = None
    joint_score: np.ndarray | None = None
    luminosity: float | None = None
    seed: int | tuple[int, ...] | None = None
    activesci_version: str = ""


def write_events(path: str | os.PathLike[str], events: EventFile) -> Path:
    """Write ``events`` to ``path`` (``.npz``) atomically; return the path written."""
    from activesci import __version__

    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT),
        "task": np.array(events.task),
        "parameter_names": np.array(events.parameter_names, dtype=str),
        "design_names": np.array(events.design_names, dtype=str),
        "feature_names": np.array(events.feature_names, dtype=str),
        "theta": np.asarray(events.theta, dtype=float).reshape(-1),
        "design": np.asarray(events.design, dtype=float).reshape(-1),
        "x": np.asarray(events.x, dtype=float),
        "luminosity": np.array(np.nan if events.luminosity is None else events.luminosity),
        "seed": np.array(-1 if events.seed is None else events.seed, dtype=np.int64),
        "activesci_version": np.array(__version__),
    }
    for key in ("z", "joint_log_prob", "joint_score"):
        value = getattr(events, key)
        if value is not None:
            arrays[key] = np.asarray(value, dtype=float)
    _check(arrays, path)
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


def read_events(
    path: str | os.PathLike[str],
    *,
    task: str | None = None,
    theta: np.ndarray | None = None,
    design: np.ndarray | None = None,
    n: int | None = None,
) -> EventFile:
    """Read and validate an ``activesci.events/1`` file, and check it is the one asked for.

    Parameters
    ----------
    path : str or path
        The ``.npz`` file.
    task, theta, design, n : optional
        What the file must hold: the task's name, the parameters ``(P,)`` and the design
        ``(D,)`` it was simulated at (compared to 1e-9 relative), and the number of events.
        A program that wrote events of another point, or fewer than asked, is refused.

    Raises
    ------
    EventFileError
        The file is missing, not an ``.npz``, of another format, inconsistent, or not what
        was asked for; the message names the file and the offending key.
    """
    path = Path(path)
    arrays = read_npz_arrays(path, EventFileError, "events file")
    _check(arrays, path)
    expected = {"task": task, "theta": theta, "design": design}
    for key, want in expected.items():
        if want is None:
            continue
        got = arrays[key]
        same = (
            str(got) == want
            if key == "task"
            else got.shape == np.shape(want) and np.allclose(got, want, rtol=1e-9, atol=0.0)
        )
        if not same:
            shown = str(got) if key == "task" else got.tolist()
            wanted = want if key == "task" else np.asarray(want).tolist()
            raise EventFileError(f"{path}: {key!r} is {shown!r}, but {wanted!r} was asked for")
    if n is not None and len(arrays["x"]) != n:
        raise EventFileError(f"{path}: holds {len(arrays['x'])} events, {n} were asked for")
    lum = float(arrays.get("luminosity", np.nan))
    raw = np.asarray(arrays.get("seed", -1), dtype=np.int64)
    seed: int | tuple[int, ...] | None = (
        tuple(int(v) for v in raw) if raw.ndim else (None if raw < 0 else int(raw))
    )
    return EventFile(
        task=str(arrays["task"]),
        parameter_names=tuple(str(s) for s in arrays["parameter_names"]),
        design_names=tuple(str(s) for s in arrays["design_names"]),
        feature_names=tuple(str(s) for s in arrays["feature_names"]),
        theta=arrays["theta"],
        design=arrays["design"],
        x=arrays["x"],
        z=arrays.get("z"),
        joint_log_prob=arrays.get("joint_log_prob"),
        joint_score=arrays.get("joint_score"),
        luminosity=None if np.isnan(lum) else lum,
        seed=seed,
        activesci_version=str(arrays.get("activesci_version", "")),
    )


#: Keys that hold text or integers (dtype kinds); every other key holds numbers.
_TEXT = {
    **dict.fromkeys(
        ("format", "task", "parameter_names", "design_names", "feature_names", "activesci_version"),
        "U",
    ),
    "seed": "iu",
}
_KINDS = {"U": "text", "iu": "integers", "fiu": "numbers"}


def _check(a: dict[str, np.ndarray], path: Path) -> None:
    def fail(why: str) -> None:
        raise EventFileError(f"{path}: {why}")

    required = ("format", "task", "parameter_names", "design_names", "feature_names", "theta")
    missing = [k for k in (*required, "design", "x") if k not in a]
    if missing:
        fail(f"missing key(s) {missing}; an {FORMAT} file has {list(required)}, 'design', 'x'")
    if str(a["format"]) != FORMAT:
        fail(f"format is {str(a['format'])!r}, expected {FORMAT!r}")
    for key, value in a.items():
        kinds = _TEXT.get(key, "fiu")
        if value.dtype.kind not in kinds:
            fail(f"{key!r} has dtype {value.dtype}, expected {_KINDS[kinds]}")
        if kinds == "fiu" and key != "luminosity" and not np.isfinite(value).all():
            fail(f"{key!r} contains NaN or infinite values")
    if a["task"].ndim or a["format"].ndim:
        fail("'format' and 'task' must be single strings")
    for key in ("parameter_names", "design_names", "feature_names"):
        if a[key].ndim != 1:
            fail(f"{key!r} has shape {a[key].shape}, expected a list of names")
    n_p, n_d, n_x = (a[k].size for k in ("parameter_names", "design_names", "feature_names"))
    x = a["x"]
    if x.ndim != 2 or x.shape[1] != n_x:
        fail(
            f"'x' has shape {x.shape}, expected (n, {n_x}) for features {list(a['feature_names'])}"
        )
    if a["theta"].shape != (n_p,):
        fail(f"'theta' has shape {a['theta'].shape}, expected ({n_p},)")
    if a["design"].shape != (n_d,):
        fail(f"'design' has shape {a['design'].shape}, expected ({n_d},)")
    n = x.shape[0]
    expected = {"z": (n, None), "joint_log_prob": (n,), "joint_score": (n, n_p)}
    for key, shape in expected.items():
        if key in a:
            got = a[key].shape
            if len(got) != len(shape) or any(
                s is not None and s != g for s, g in zip(shape, got, strict=True)
            ):
                want = tuple("*" if s is None else s for s in shape)
                fail(f"{key!r} has shape {got}, expected {want}")
    lum = a.get("luminosity", np.array(np.nan))
    if lum.shape != () or not (np.isnan(lum) or (np.isfinite(lum) and lum > 0)):
        fail(f"'luminosity' is {lum.tolist()!r}, expected a positive number or NaN")
    seed = a.get("seed", np.array(-1))
    if seed.ndim > 1 or (seed.ndim == 1 and (seed < 0).any()) or (seed.ndim == 0 and seed < -1):
        fail(f"'seed' is {seed.tolist()!r}, expected an integer (-1: none) or a sequence of them")
