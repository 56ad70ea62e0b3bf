"""The design benchmark harness and ``activesci bench``."""

import json

import pytest

from activesci.bench import DesignBenchmark, format_design_table, run_design_benchmark
from activesci.cli import main
from activesci.errors import ValidationError


def test_bench_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "gaussian", "--strategies", "fixed", "oracle", "--repeats", "2"]
    assert main([*args, "--rounds", "3", "--target", "0.5", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "fixed" in table and "oracle" in table and "n(<=0.5)" in table
    result = json.loads(out.read_text())
    fixed, oracle = result["summaries"]
    assert fixed["seeds"] == 2 and len(fixed["median_std_per_round"]["mu0"]) == 3
    # 10 events of x ~ N(mu, (2 + cos phase)^2) per round: the oracle finds the phase pi, where
    # sigma = 1, and the posterior std after k rounds of an N(0, 1) prior is 1 / sqrt(1 + 10 k)
    assert oracle["final_std"]["mu0"] == pytest.approx((1 + 30) ** -0.5, rel=0.02)
    assert all(d == pytest.approx([3.14], abs=0.05) for d in oracle["median_design_per_round"])


def test_multi_parameter_tables_compare_volumes():
    bench = DesignBenchmark(
        "gaussian", task_options={"dim": 2}, strategies=("fixed", "random"), seeds=2, rounds=2
    )
    result = run_design_benchmark(bench, progress=False)
    table = format_design_table(result)
    assert "posterior volume sqrt(det cov) of mu0, mu1" in table
    fixed = result["summaries"][0]
    # the fixed design (phase pi, sigma 1): independent N(0, 1) priors, 2 x 10 events
    assert fixed["final_volume"] == pytest.approx(1 / 21, rel=0.02)


def test_bad_benchmarks_name_the_problem():
    with pytest.raises(ValidationError, match="unknown task 'weinberg2'"):
        DesignBenchmark("weinberg2")
    with pytest.raises(ValidationError, match="unknown strategy 'eigg'"):
        DesignBenchmark("gaussian", strategies=("eigg",))
    with pytest.raises(ValidationError, match="seeds must be a positive integer, got 0"):
        DesignBenchmark("gaussian", seeds=0)
    assert main(["bench", "gaussian", "--strategies", "nope"]) == 2
