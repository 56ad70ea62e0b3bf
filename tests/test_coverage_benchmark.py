"""The verdict of ``benchmarks/coverage.py`` on synthetic runs whose coverage is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture()
def coverage(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The script as a module (not ``import coverage``: that name is coverage.py's)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # for its own imports: _common, closure
    spec = importlib.util.spec_from_file_location("coverage_benchmark", BENCHMARKS / "coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runs(levels: np.ndarray, exact: np.ndarray) -> list[dict[str, Any]]:
    """Runs ``(n_runs, n_rounds)`` of credibility levels of the truth, learned and exact."""
    return [
        {
            "run": i,
            "seconds": 1.0,
            "rounds": [
                {"round": k + 1, "learned": float(a), "exact": float(b)}
                for k, (a, b) in enumerate(zip(row_a, row_b, strict=True))
            ],
        }
        for i, (row_a, row_b) in enumerate(zip(levels, exact, strict=True))
    ]


def test_calibrated_regions_meet_the_target(coverage: Any) -> None:
    # the level at which the truth lies is uniform for a calibrated posterior
    levels = np.random.default_rng(0).uniform(size=(100, 8))
    table = coverage.summarise(runs(levels, levels))
    assert table["meets_target"]
    assert table["worst_round_vs_exact"] == 0.0
    assert table["pooled_deviation"] < 0.05


def test_overconfident_regions_miss_the_target(coverage: Any) -> None:
    # a posterior too narrow by 1.5: the truth lies at the exact level of a 1.5x wider interval
    from scipy import stats

    exact = np.random.default_rng(1).uniform(size=(100, 8))
    z = stats.norm.ppf(0.5 + exact / 2)
    learned = 2 * stats.norm.cdf(1.5 * z) - 1
    table = coverage.summarise(runs(learned, exact))
    assert not table["meets_target"]
    assert table["pooled"]["learned_0.68"] < 0.68 - 0.05


def test_one_round_off_from_the_exact_misses(coverage: Any) -> None:
    # pooled coverage fine, but round 3 covers 0.2 less than the exact posterior
    exact = np.random.default_rng(2).uniform(size=(100, 8))
    learned = exact.copy()
    learned[:20, 2] = 0.99  # 20 runs whose truth falls outside the learned 95% region
    table = coverage.summarise(runs(learned, exact))
    assert table["pooled_deviation"] < 0.05
    assert table["worst_round_vs_exact"] >= 0.1
    assert not table["meets_target"]


def test_the_commit_measured(coverage: Any) -> None:
    assert coverage.measured_commit([{"commit": "abc"}, {"commit": "abc"}], None) == "abc"
    assert coverage.measured_commit([{"commit": "abc"}, {}], None) == "mixed"
    assert coverage.measured_commit([{}], "def") == "def"
