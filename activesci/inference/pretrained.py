"""Estimators trained once and shipped with the package, so that the flagship starts at once.

Training the flagship's amortised estimator on 10^5 simulations takes tens of seconds on two
cores: too long for a dashboard's first view or a student's first cell. This module ships that
training as package data (``activesci/data/pretrained/``, a few hundred kB) and finds it again
for a learner that would train the same thing.

A shipped file is used only where it is what the learner would train: its key records a
*fingerprint* of the simulator (a hash of events it simulates at fixed parameters, designs and
seed, so a change of physics, detector or convention changes it), the method, the number of
training samples, the training seed and the network's configuration. Anything else trains as
usual. Files are loaded with ``torch.load(weights_only=True)`` (:meth:`RatioEstimator.load`):
package data never runs code.

Rebuild the shipped files after changing a simulator or the estimators (``make pretrained``)::

    python -m activesci.inference.pretrained
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from activesci.inference.ratio import RatioEstimator

__all__ = ["RECIPES", "build", "find", "fingerprint", "key"]

#: Where the shipped estimators live (inside the package).
FOLDER = Path(__file__).resolve().parent.parent / "data" / "pretrained"
#: What is shipped: a name, the task (name and options) and the training.
RECIPES: dict[str, dict[str, Any]] = {
    "weinberg-alices": {
        "task": "weinberg",
        "task_options": {},
        "method": "alices",
        "training_samples": 100_000,
        "seed": 0,
    },
}
#: Parameters, designs and events per design of the fingerprint.
_FINGERPRINT_ROWS = 8
_FINGERPRINT_EVENTS = 64
#: The network's settings a shipped estimator must share with the one the learner would train.
_NETWORK = ("parameters", "designs", "n_features", "hidden", "ensemble", "alpha", "theta_ref")
#: Rounding of the fingerprint's events: below it, platforms' last bits may differ.
_FINGERPRINT_DECIMALS = 6


def fingerprint(simulator: Any) -> str:
    """A hash of events ``simulator`` simulates at fixed parameters, designs and seed.

    It changes when the simulated physics, detector or conventions change, and not with
    options that leave the events alone (such as the luminosity, which scales only the counts).
    """
    rng = np.random.default_rng(20_241_130)
    theta = simulator.parameters.sample(_FINGERPRINT_ROWS, rng)
    design = simulator.designs.sample(_FINGERPRINT_ROWS, rng)
    rows = np.repeat(np.arange(_FINGERPRINT_ROWS), _FINGERPRINT_EVENTS)
    events = simulator.sample(theta[rows], design[rows], rng)
    digest = hashlib.sha256(type(simulator).__qualname__.encode())
    for part in (events.x, events.z):
        if part is not None:
            rounded = np.round(np.asarray(part, dtype=np.float64), _FINGERPRINT_DECIMALS)
            digest.update(np.ascontiguousarray(rounded + 0.0).tobytes())  # + 0.0: no -0.0
    return digest.hexdigest()


def key(simulator: Any, method: str, training_samples: int, seed: int) -> dict[str, Any]:
    """What a shipped estimator must match to stand in for a training (JSON-able)."""
    network = RatioEstimator(simulator, method=method)._config()
    wanted = {
        "fingerprint": fingerprint(simulator),
        "method": method,
        "training_samples": int(training_samples),
        "seed": int(seed),
        "network": {k: network[k] for k in _NETWORK},
    }
    return json.loads(json.dumps(wanted))  # as it reads back from a file: lists, not tuples


def find(
    simulator: Any, method: str, training_samples: int, seed: int = 0, *, folder: Path = FOLDER
) -> RatioEstimator | None:
    """The shipped estimator that training would give, or None when none matches.

    That is, ``RatioEstimator(simulator, method=method)`` trained on ``training_samples``
    simulations with ``seed``. A file that does not parse, or whose key differs, is passed over.
    """
    wanted = None
    for meta in sorted(folder.glob("*.json")):
        try:
            shipped = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        cheap = {"method": method, "training_samples": int(training_samples), "seed": int(seed)}
        if not isinstance(shipped, dict) or any(shipped.get(k) != v for k, v in cheap.items()):
            continue  # before the fingerprint, which simulates
        if wanted is None:
            wanted = key(simulator, method, training_samples, seed)
        if shipped == wanted and meta.with_suffix(".pt").is_file():
            return RatioEstimator.load(meta.with_suffix(".pt"))
    return None


def build(folder: Path = FOLDER, names: list[str] | None = None) -> list[Path]:
    """Train the :data:`RECIPES` (or those named) and write ``NAME.pt`` and ``NAME.json``."""
    from activesci import tasks
    from activesci.threads import set_threads

    set_threads(1)  # one thread: the same weights on every machine of the same torch
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(RECIPES):
        recipe = RECIPES[name]
        simulator = tasks.get(recipe["task"], **recipe["task_options"]).simulator
        est = RatioEstimator(simulator, method=recipe["method"])
        est.train(n_samples=recipe["training_samples"], seed=recipe["seed"], progress=True)
        path = est.save(folder / f"{name}.pt")
        meta = key(simulator, recipe["method"], recipe["training_samples"], recipe["seed"])
        (folder / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        written += [path, folder / f"{name}.json"]
    return written


def main(argv: list[str] | None = None) -> int:
    """Rebuild the shipped estimators."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"of {sorted(RECIPES)} (default: all)")
    parser.add_argument("--folder", type=Path, default=FOLDER)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown {unknown}; expected some of {sorted(RECIPES)}")
    for path in build(args.folder, args.names or None):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
