"""The design benchmark harness and ``activesci bench``."""

import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from activesci.bench import DesignBenchmark, format_design_table, run_design_benchmark
from activesci.cli import main
from activesci.errors import ValidationError


def test_bench_cli_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "gaussian", "--strategies", "fixed", "oracle", "--repeats", "2"]
    assert main([*args, "--rounds", "3", "--target-std", "0.5", "--out", str(out)]) == 0
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
    for change, message in (
        ({"target_std": float("nan")}, "target_std must be a positive finite number, got nan"),
        ({"target_std": -0.1}, "target_std must be a positive finite number, got -0.1"),
        ({"target_std": 0}, "target_std must be a positive finite number, got 0"),
        ({"target_std": "0.1"}, "target_std must be a positive finite number, got '0.1'"),
        ({"seeds": True}, "seeds must be a positive integer, got True"),
        ({"rounds": 2.0}, "rounds must be a positive integer, got 2.0"),
        ({"task_options": {"nope": 1}}, r"takes no option\(s\) \['nope'\]"),
        ({"task_options": [1]}, r"task_options must be a dict, got \[1\]"),
        ({"truth": {"mu0": 99.0}}, "mu0=99.0 is outside"),
    ):
        with pytest.raises(ValidationError, match=message):
            DesignBenchmark("gaussian", **change)
    assert main(["bench", "gaussian", "--strategies", "nope"]) == 2


# -- specs and leaderboards -------------------------------------------------------------------

from activesci.bench import load_spec, run_spec, write_results  # noqa: E402
from activesci.bench.spec import SCHEMA, resolve_strategies  # noqa: E402
from activesci.errors import SpecError  # noqa: E402


def _strip_timings(result):
    return {k: v for k, v in result.items() if k not in ("timings", "versions")}


@pytest.mark.slow
def test_a_spec_reproduces_its_numbers_exactly_and_keeps_timings_apart():
    spec = {
        "name": "weinberg-small",
        "kind": "design",
        "task": "weinberg",
        "task_options": {"luminosity": 0.2},
        "strategies": ["oracle", "eig", "grid"],
        "strategy_options": {
            "oracle": {"designs": [[88.0], [91.0], [94.0]], "refine": 5},
            "eig": {"n_first_grid": 6, "n_calls": 4, "n_initial_points": 2, "n_samples": 8},
        },
        "seeds": 2,
        "budget": {"rounds": 2},
        "estimator": {"training_samples": 4000, "refine_every": 8},
    }
    first, second = run_spec(spec, progress=False), run_spec(spec, progress=False)
    assert _strip_timings(first) == _strip_timings(second)  # learned eig included
    assert first["leaderboard"][0]["strategy"] == "oracle"
    assert first["leaderboard"][-1]["strategy"] == "grid"  # grid starts at 20 GeV
    assert first["seeds"] == [0, 1] and first["versions"]["numpy"]
    assert "round_seconds" not in first["runs"]["oracle"][0]
    assert len(first["timings"]["oracle"]) == 3  # two seeds and the summary
    # the refinement searched between the neighbours of the best coarse design
    designs = [d[0] for run in first["runs"]["oracle"] for d in run["designs"]]
    assert all(88.0 < d < 94.0 for d in designs)


def test_results_are_written_as_json_csv_and_html(tmp_path):
    spec = {
        "name": "toy",
        "kind": "design",
        "task": "gaussian",
        "strategies": ["random", "fixed"],
        "seeds": 2,
        "budget": {"rounds": 2},
        "metrics": {"primary": "auc_log_volume"},
    }
    result = run_spec(spec, progress=False)
    # the fixed design is the optimum (phase pi): its posterior is narrower every round
    assert [r["strategy"] for r in result["leaderboard"]] == ["fixed", "random"]
    assert list(result["leaderboard"][0])[:4] == ["rank", "strategy", "seeds", "auc_log_volume"]
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.json").symlink_to(victim)  # replaced, not written through
    paths = write_results(result, tmp_path / "out")
    assert victim.read_text() == "keep" and not paths["json"].is_symlink()
    assert json.loads(paths["json"].read_text())["spec"]["name"] == "toy"
    lines = paths["csv"].read_text().splitlines()
    assert lines[0].startswith("rank,strategy,seeds,auc_log_volume") and len(lines) == 3
    assert "<td>fixed</td>" in paths["html"].read_text()


def test_bad_specs_are_rejected_with_the_path_of_the_bad_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nkind: design\ntask: gaussian\nstrategies: [fixed]\nseeds: 2\n"
        "budget: {rounds: two}\n"
    )
    with pytest.raises(SpecError, match=r"bad.yaml: at budget.rounds: 'two' is not of type"):
        load_spec(bad)
    base = load_spec("weinberg-sin2w")
    for change, message in (
        ({"strategies": ["oracle", 3]}, r"at strategies\[1\]: 3 is not of type 'string'"),
        ({"kind": "excursions"}, r"at kind: 'excursions' is not one of"),
        ({"metrics": {"primary": "accuracy"}}, r"at metrics.primary: 'accuracy' is not one of"),
        ({"budget": {"evaluations": 3}}, r"at budget: 'rounds' is a required property"),
        ({"seedz": 3}, r"'seedz' was unexpected"),
        ({"strategy_options": {"eigg": {}}}, r"options for \['eigg'\], which are not in"),
        ({"estimator": {"local_ensemble": 0}}, r"at estimator.local_ensemble: 0 is less than"),
        ({"estimator": {"calibration_events": 10}}, r"at estimator.calibration_events: 10 is"),
    ):
        with pytest.raises(SpecError, match=message):
            load_spec(base | change)
    with pytest.raises(SpecError, match="no shipped spec named 'weinberg-sin2'"):
        load_spec("weinberg-sin2")
    with pytest.raises(SpecError, match="unknown strategy 'nope'"):
        run_spec(base | {"strategies": ["nope"], "strategy_options": {}})


def test_the_learned_eig_takes_its_sequential_inference_settings_from_the_benchmark():
    bench = DesignBenchmark(task="gaussian", local_ensemble=2, calibration_events=5000)
    options = bench.learner_options("eig")
    assert (options["local_ensemble"], options["calibration_events"]) == (2, 5000)
    assert DesignBenchmark(task="gaussian").learner_options("eig")["local_ensemble"] is None
    with pytest.raises(ValidationError, match="local_ensemble must be"):
        DesignBenchmark(task="gaussian", local_ensemble=0)


def test_participants_plug_in_strategies_by_module_path_or_entry_point(tmp_path, monkeypatch):
    (tmp_path / "my_strategies.py").write_text(
        "from activesci.design.optimizer import FixedStrategy\n\n"
        "def pole(**options):\n"
        "    return FixedStrategy(design=[3.14159], name='pole')\n"
    )
    dist = tmp_path / "my_strategies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-strategies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[activesci.strategies]\nat_the_pole = my_strategies:pole\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = {
        "name": "plugins",
        "kind": "design",
        "task": "gaussian",
        "strategies": ["my_strategies:pole", "at_the_pole", "random"],
        "seeds": 1,
        "budget": {"rounds": 1},
    }
    result = run_spec(spec, progress=False, allow_plugins=True)
    designs = {name: runs[0]["designs"][0] for name, runs in result["runs"].items()}
    assert designs["my_strategies:pole"] == designs["at_the_pole"] == [3.14159]
    # registered by the run above, but still code named by a data file: refused without consent
    with pytest.raises(SpecError, match=r"'my_strategies:pole' is a 'package.module:factory'"):
        run_spec(spec, progress=False)
    # an installed entry point needs no consent
    assert run_spec(spec | {"strategies": ["at_the_pole"]}, progress=False)["leaderboard"]


def test_a_spec_cannot_run_the_code_it_names(tmp_path):
    marker = tmp_path / "pwned"
    spec_file = tmp_path / "evil.yaml"
    spec_file.write_text(
        "name: evil\nkind: design\ntask: gaussian\nstrategies: ['os:system']\n"
        f"strategy_options: {{'os:system': {{command: 'touch {marker}'}}}}\n"
        "seeds: 1\nbudget: {rounds: 1}\n"
    )
    expected = r"evil.yaml: at strategies: 'os:system' is a 'package.module:factory' plug-in"
    with pytest.raises(SpecError, match=expected):
        load_spec(spec_file)
    with pytest.raises(SpecError, match=r"pass allow_plugins=True \(activesci bench"):
        run_spec(spec_file, progress=False)
    spec = load_spec(spec_file, allow_plugins=True)  # loading with consent imports nothing
    with pytest.raises(SpecError, match=r"'os:system' is a 'package.module:factory'"):
        run_spec(spec, progress=False)
    with pytest.raises(SpecError, match=r"'os:system' is a 'package.module:factory'"):
        resolve_strategies(spec)
    assert not marker.exists()


def test_bench_cli_runs_a_spec_file_and_lists_the_shipped_ones(tmp_path, capsys):
    spec = tmp_path / "toy.yaml"
    spec.write_text(
        "name: toy\nkind: design\ntask: gaussian\nstrategies: [fixed, grid]\nseeds: 1\n"
        "budget: {rounds: 1}\n"
    )
    assert main(["bench", str(spec), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "toy: design benchmark on gaussian" in out
    assert (tmp_path / "out" / "leaderboard.csv").is_file()
    assert main(["bench", "--list"]) == 0
    assert "weinberg-lineshape" in capsys.readouterr().out


def test_bench_cli_imports_a_spec_plugin_only_with_allow_plugins(tmp_path, capsys, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "cli_plugin_strategies.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "from activesci.design.optimizer import FixedStrategy\n\n"
        "def pole(**options):\n"
        "    return FixedStrategy(design=[3.14159], name='pole')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = tmp_path / "plugin.yaml"
    spec.write_text(
        "name: plugin\nkind: design\ntask: gaussian\nstrategies: ['cli_plugin_strategies:pole']"
        "\nseeds: 1\nbudget: {rounds: 1}\n"
    )
    out = tmp_path / "out"
    assert main(["bench", str(spec), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-plugins" in err and "Traceback" not in err
    assert not marker.exists() and not out.exists()
    assert main(["bench", str(spec), "--out", str(out), "--allow-plugins"]) == 0
    assert marker.exists() and (out / "leaderboard.csv").is_file()


def test_an_excursion_spec_ranks_acquisitions_by_evaluations_to_99_percent():
    from activesci.bench.excursion import evaluations_to_target

    spec = load_spec("excursion-tanh-sine-1d") | {"seeds": 2, "budget": {"evaluations": 12}}
    first, second = run_spec(spec, progress=False), run_spec(spec, progress=False)
    assert _strip_timings(first) == _strip_timings(second)
    board = first["leaderboard"]
    assert board[0]["strategy"] == "entropy"
    assert list(board[0])[:4] == ["rank", "strategy", "seeds", "evaluations_to_target"]
    history = first["runs"]["entropy"][0]["history"]
    assert [h["n_evaluations"] for h in history] == list(range(1, 13))
    assert evaluations_to_target(history, 0.99) <= 12
    assert evaluations_to_target([{"n_evaluations": 3, "accuracy": 0.5}], 0.99) == float("inf")
    with pytest.raises(SpecError, match="unknown test function 'nope'"):
        run_spec(spec | {"task": "nope"}, progress=False)


_BASE = {"name": "t", "kind": "design", "task": "gaussian", "strategies": ["fixed"]}
_BASE |= {"seeds": 1, "budget": {"rounds": 1}}


def test_spec_files_that_are_not_specs_are_spec_errors(tmp_path):
    for name, content, message in (
        ("binary.yaml", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", r"binary.yaml' is not UTF-8 text"),
        (
            "bomb.yaml",
            b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            b"strategies: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
            r"bomb.yaml: line 2: YAML aliases \(\*name\)",
        ),
        ("deep.yaml", b"[" * 100_000, r"deep.yaml: not"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SpecError, match=message):
            load_spec(tmp_path / name)
    with pytest.raises(SpecError, match="does not exist or is not a file"):
        load_spec(tmp_path)
    with pytest.raises(SpecError, match="spec must be a shipped spec's name, a YAML file or a"):
        load_spec(None)
    for change, message in (
        ({"task_options": {"nope": 1}}, r"at task_options: task 'gaussian': .*'nope'"),
        (
            {"task": "weinberg", "task_options": {"luminosity": "x"}},
            "at task_options: task 'weinberg': luminosity must be",
        ),
        ({"task": "weinberg2"}, "at task_options: task 'weinberg2': unknown task"),
        # a careless dim once built 10^5 dimensions for minutes before anything was checked
        ({"task_options": {"dim": 100_000}}, r"dim must be a positive integer \(at most 64\)"),
        ({"task_options": {"dim": True}}, "dim must be a positive integer .*got True"),
    ):
        with pytest.raises(SpecError, match=message):
            load_spec(_BASE | change)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = [*SCHEMA["properties"], "other"]


@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=3))
def test_any_parsed_spec_is_valid_or_a_spec_error(changes):
    try:
        spec = load_spec(_BASE | changes)
    except SpecError:
        return
    assert spec["kind"] in ("design", "excursion") and spec["strategies"]


@given(text=st.text(max_size=300) | st.builds(yaml.safe_dump, _JSON))
def test_any_spec_file_is_valid_or_a_spec_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except SpecError:
        pass
