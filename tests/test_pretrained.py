"""The estimators shipped trained: found only where they are exactly the training asked for."""

import json
import shutil

import numpy as np
import pytest

import activesci as asci
from activesci.inference import ExactLikelihood, pretrained
from activesci.inference.ratio import RatioEstimator

FLAGSHIP = {"method": "alices", "training_samples": 100_000, "seed": 0}


def test_the_flagship_estimator_is_shipped_small_and_current():
    """Fails when the simulator changed and the shipped file was not rebuilt."""
    sim = asci.tasks.weinberg().simulator
    files = sorted(pretrained.FOLDER.glob("*.pt"))
    assert files and all(f.stat().st_size <= 1_000_000 for f in files)
    est = pretrained.find(sim, FLAGSHIP["method"], FLAGSHIP["training_samples"], 0)
    assert est is not None, "rebuild it: python -m activesci.inference.pretrained"
    assert est.summary is not None and est.summary.n_samples == 100_000 and est.summary.seed == 0


def test_only_the_same_training_is_stood_in_for():
    find = pretrained.find
    sim = asci.tasks.weinberg(luminosity=0.2).simulator  # the luminosity leaves events alone
    assert find(sim, "alices", 100_000, 0) is not None
    assert find(sim, "alices", 100_000, 1) is None  # another seed
    assert find(sim, "alices", 50_000, 0) is None
    assert find(sim, "rascal", 100_000, 0) is None
    other_physics = asci.tasks.weinberg(convention="b").simulator
    assert pretrained.fingerprint(other_physics) != pretrained.fingerprint(sim)
    assert find(other_physics, "alices", 100_000, 0) is None
    assert find(asci.tasks.gaussian().simulator, "alices", 100_000, 0) is None


def test_a_tampered_or_broken_file_is_passed_over(tmp_path):
    sim = asci.tasks.weinberg().simulator
    for name in ("weinberg-alices.pt", "weinberg-alices.json"):
        shutil.copy(pretrained.FOLDER / name, tmp_path / name)
    assert pretrained.find(sim, "alices", 100_000, 0, folder=tmp_path) is not None
    meta = json.loads((tmp_path / "weinberg-alices.json").read_text())
    meta["fingerprint"] = "0" * 64
    (tmp_path / "weinberg-alices.json").write_text(json.dumps(meta))
    assert pretrained.find(sim, "alices", 100_000, 0, folder=tmp_path) is None
    (tmp_path / "weinberg-alices.json").write_text("{not json")
    assert pretrained.find(sim, "alices", 100_000, 0, folder=tmp_path) is None


def test_the_flagship_learner_starts_without_training(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("the flagship at seed 0 must not train its amortised estimator")

    monkeypatch.setattr(RatioEstimator, "train", refuse)
    task = asci.tasks.weinberg(luminosity=0.2)
    learner = asci.ActiveLearner(task, seed=0, store=tmp_path / "run", progress=False)
    assert learner.estimator.summary.seed == 0
    with pytest.raises(AssertionError, match="must not train"):
        asci.ActiveLearner(task, seed=0, pretrained=False, progress=False).train()


def test_the_shipped_estimator_knows_the_physics():
    """Its log ratio against the exact one, on events at the Z pole and off it.

    A check that the file holds the flagship's estimator, not of its accuracy (the sequential
    inference's local estimators infer; this one chooses designs): per-event log-ratio
    differences between parameters correlate 0.99 with the exact ones at 60 GeV and 0.90 at
    the pole, where an event says least about sin2w; a wrong or untrained network gives ~0.
    """
    sim = asci.tasks.weinberg().simulator
    est = pretrained.find(sim, "alices", 100_000, 0)
    exact = ExactLikelihood(sim)
    rng = np.random.default_rng(3)
    theta = np.array([[0.20], [0.2315], [0.28]])
    for energy in (60.0, 91.19):
        design = np.array([energy])
        x = sim.sample(np.array([[0.2315]] * 4000), np.repeat(design[None], 4000, 0), rng).x
        learned = est.log_ratio(x, theta, design)
        truth = exact.log_ratio(x, theta, design)
        # per event, between parameters: each estimator's reference density cancels
        learned, truth = learned[[0, 2]] - learned[1], truth[[0, 2]] - truth[1]
        for a, b in zip(learned, truth, strict=True):
            assert np.corrcoef(a, b)[0, 1] > 0.8, energy
            assert a.std() == pytest.approx(b.std(), rel=0.3), energy
