"""The headless demo behind ``make demo`` and ``activesci demo``: the flagship loop.

Weinberg task, a hidden ``sin2w = 0.2315``, 0.2 pb^-1 per round: an ALICES estimator is trained
once (amortised over the beam energy) to choose designs; each round the expected information
gain chooses the beam energy and the simulated experiment runs. A local estimator, trained on
the region that holds the posterior at the beam energies actually run and score-calibrated,
infers from the first round on (sequential inference); it is retrained as the posterior
shrinks, and every round is self-checked. The run is stored (resumable with ``activesci
resume``) and reported in ``report.html``, with the exact likelihood refereeing every round.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from activesci import tasks
from activesci.learner import ActiveLearner

__all__ = ["TRUTH", "demo_learner"]

#: The hidden truth of the demo (the world average of the effective weak mixing angle).
TRUTH = {"sin2w": 0.2315}


def demo_learner(
    out: str | os.PathLike[str] = "runs/demo",
    *,
    seed: int = 0,
    luminosity: float = 0.2,
    estimator: str = "alices",
    training_samples: int = 100_000,
    refine_every: int | None = None,
    progress: bool = True,
) -> ActiveLearner:
    """Build the demo's learner, storing into ``out``.

    A previous demo run in ``out`` is moved to ``<out>.previous`` (one level of history), so
    rerunning the demo never silently deletes a run.
    """
    out = Path(out)
    if (out / "run.sqlite").exists():
        previous = out.with_name(out.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        out.rename(previous)
    task = tasks.weinberg(luminosity=luminosity)
    return ActiveLearner(
        task,
        experiment=task.experiment(truth=TRUTH, seed=seed),
        estimator=estimator,
        strategy="eig",
        store=out,
        seed=seed,
        training_samples=training_samples,
        refine_every=refine_every,
        progress=progress,
    )
