"""Tests of the ``activesci`` command line, in-process and through the installed entry point."""

import json
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from activesci.cli import main
from activesci.errors import ActivesciError
from activesci.simulators.eventfile import read_events

ROOT = Path(__file__).resolve().parents[1]
Z_POLE = "--design sqrt_s=91.19"
REFERENCE_RUN = f"weinberg --theta sin2w=0.2315 {Z_POLE} --n 20000 --seed 0"


def run_cli(capsys, command: str, *more: str) -> tuple[int, str, str]:
    """Run ``activesci COMMAND MORE...`` in-process; return (status, stdout, stderr)."""
    code = main([*command.split(), *more])
    out, err = capsys.readouterr()
    return code, out, err


def simulate(capsys, command: str, out: Path) -> dict:
    """Run ``activesci simulate COMMAND --out OUT``, check it succeeded, return its JSON."""
    code, stdout, stderr = run_cli(capsys, f"simulate {command}", "--out", str(out))
    assert code == 0, stderr
    assert stderr == ""
    return json.loads(stdout)


def born_afb_at_the_z_pole(sin2w: float) -> float:
    """Pure Z exchange: A_FB = 3/4 A_e A_mu with A_l = 2 (v/a) / (1 + (v/a)^2)."""
    r = 1.0 - 4.0 * sin2w
    a_lepton = 2.0 * r / (1.0 + r * r)
    return 0.75 * a_lepton**2


# -- simulate weinberg ------------------------------------------------------------------------


def test_simulate_weinberg_with_fixed_n(capsys, tmp_path):
    out = tmp_path / "events.npz"
    summary = simulate(capsys, REFERENCE_RUN, out)
    assert summary["n"] == 20000
    assert summary["task"] == "weinberg"
    assert summary["out"] == str(out)
    assert summary["theta"] == {"sin2w": 0.2315}
    assert summary["design"] == {"sqrt_s": 91.19}
    assert summary["gold"] == ["joint_log_prob", "joint_score"]

    events = read_events(out)
    assert events.task == "weinberg"
    assert events.parameter_names == ("sin2w",)
    assert events.design_names == ("sqrt_s",)
    assert events.feature_names == ("cos_theta",)
    np.testing.assert_array_equal(events.theta, [0.2315])
    np.testing.assert_array_equal(events.design, [91.19])
    assert events.seed == 0
    assert events.luminosity == 1.0  # the task's default, 1 pb^-1
    assert events.x.shape == (20000, 1)
    assert np.all(np.abs(events.x) <= 1.0)
    assert events.joint_log_prob.shape == (20000,)
    assert events.joint_score.shape == (20000, 1)
    assert np.isfinite(events.joint_log_prob).all()
    assert np.isfinite(events.joint_score).all()


def test_simulate_weinberg_asymmetry(capsys, tmp_path):
    out = tmp_path / "events.npz"
    summary = simulate(capsys, REFERENCE_RUN, out)
    afb, predicted = summary["afb"], summary["afb_prediction"]
    assert abs(afb["value"] - predicted["detector_level"]) < 4 * afb["error"]
    # the printed asymmetry is the counting estimate of the events in the file
    cos_theta = read_events(out).x[:, 0]
    forward, backward = (cos_theta > 0).sum(), (cos_theta < 0).sum()
    assert afb["value"] == pytest.approx((forward - backward) / (forward + backward))
    assert afb["error"] == pytest.approx(math.sqrt((1 - afb["value"] ** 2) / 20000), rel=1e-3)
    # at the Z pole the Born asymmetry is the textbook pure-Z value (photon terms ~ 1%)
    assert predicted["born"] == pytest.approx(born_afb_at_the_z_pole(0.2315), abs=1.5e-3)


def test_same_seed_gives_the_same_events(capsys, tmp_path):
    runs = {"a": 0, "b": 0, "c": 1}
    for name, seed in runs.items():
        simulate(capsys, f"weinberg {Z_POLE} --n 500 --seed {seed}", tmp_path / f"{name}.npz")
    a, b, c = (read_events(tmp_path / f"{name}.npz") for name in runs)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.joint_log_prob, b.joint_log_prob)
    assert not np.array_equal(a.x, c.x)


def test_count_without_n_is_poisson(capsys, tmp_path):
    counts = []
    for seed in range(3):
        out = tmp_path / f"events{seed}.npz"
        summary = simulate(capsys, f"weinberg {Z_POLE} --seed {seed}", out)
        expected = summary["expected_count"]
        # the Born peak sigma(ee -> mumu) is about 2 nb: at most ~2000 events per pb^-1
        assert 1000 < expected < 2100
        assert abs(summary["n"] - expected) < 5 * math.sqrt(expected)
        assert read_events(out).x.shape == (summary["n"], 1)
        counts.append(summary["n"])
    assert len(set(counts)) > 1  # a random count, not the rounded expectation


@pytest.mark.parametrize(
    ("task", "design", "truth"),
    [
        ("weinberg", "sqrt_s=91.19", {"sin2w": 0.2315}),
        ("weinberg_lineshape", "sqrt_s=91", {"sin2w": 0.2315, "mz": 91.1876, "gamma_z": 2.4952}),
        ("gaussian", "phase=3.14", {"mu0": 0.5}),
    ],
)
def test_simulate_defaults_to_the_task_truth(capsys, tmp_path, task, design, truth):
    out = tmp_path / "events.npz"
    summary = simulate(capsys, f"{task} --design {design} --n 50", out)
    assert summary["theta"] == truth
    events = read_events(out)
    assert events.task == task
    assert events.parameter_names == tuple(truth)
    np.testing.assert_array_equal(events.theta, list(truth.values()))
    assert events.seed is None
    assert events.x.shape[0] == 50


def test_no_gold(capsys, tmp_path):
    out = tmp_path / "events.npz"
    summary = simulate(capsys, f"weinberg {Z_POLE} --n 10 --no-gold", out)
    assert summary["gold"] == []
    events = read_events(out)
    assert events.joint_log_prob is None
    assert events.joint_score is None


# -- simulate gaussian ------------------------------------------------------------------------


def test_simulate_gaussian(capsys, tmp_path):
    out = tmp_path / "events.npz"
    summary = simulate(capsys, "gaussian --design phase=3.14 --seed 0", out)
    assert summary["n"] == 10  # a fixed number of events per experiment, no Poisson count
    events = read_events(out)
    assert events.luminosity is None
    assert events.feature_names == ("x0",)
    assert summary["x_mean"] == pytest.approx([events.x[:, 0].mean()])
    # the gold is the exact normal density: x ~ N(0.5, (2 + cos(phase))^2)
    sigma = 2.0 + math.cos(3.14)
    x = events.x[:, 0]
    np.testing.assert_allclose(events.joint_log_prob, stats.norm.logpdf(x, 0.5, sigma))
    np.testing.assert_allclose(events.joint_score[:, 0], (x - 0.5) / sigma**2)


@pytest.mark.parametrize("phase", [0.0, 3.14])
def test_simulate_gaussian_distribution(capsys, tmp_path, phase):
    out = tmp_path / "events.npz"
    simulate(capsys, f"gaussian --theta mu0=-1.5 --design phase={phase} --n 20000 --seed 3", out)
    x = read_events(out).x[:, 0]
    sigma = 2.0 + math.cos(phase)
    assert stats.kstest(x, stats.norm(-1.5, sigma).cdf).pvalue > 1e-3


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "parts"),
    [
        (f"weinberg --theta sin2w=0.9 {Z_POLE}", ["sin2w", "0.9", "[0.15, 0.35]"]),
        (f"weinberg --theta mz=91 {Z_POLE}", ["'mz'", "sin2w"]),
        (f"weinberg --theta sin2w {Z_POLE}", ["NAME=VALUE", "'sin2w'"]),
        (f"weinberg --theta sin2w=abc {Z_POLE}", ["'abc'", "not a number"]),
        ("weinberg --design sqrt_s=5", ["sqrt_s", "5", "[20, 210] GeV"]),
        ("weinberg --design energy=91", ["'energy'", "sqrt_s"]),
        ("gaussian --design phase=3.14 --luminosity 2", ["gaussian", "luminosity"]),
        (f"nosuchtask {Z_POLE}", ["'nosuchtask'", "weinberg", "package.module:function"]),
        (f"nosuchmodule:factory {Z_POLE}", ["nosuchmodule:factory", "PYTHONPATH"]),
        ("gaussian --design phase=3.14 --task-option dim", ["NAME=VALUE", "'dim'"]),
        ("gaussian --design phase=3.14 --task-option frob=1", ["frob", "dim"]),
    ],
    ids=[
        "theta-out-of-range",
        "theta-unknown-name",
        "theta-malformed",
        "theta-not-a-number",
        "design-out-of-range",
        "design-unknown-name",
        "luminosity-for-gaussian",
        "unknown-task",
        "unimportable-factory",
        "task-option-malformed",
        "task-option-unknown",
    ],
)
def test_bad_input_exits_with_2_and_a_message(capsys, tmp_path, command, parts):
    out = tmp_path / "events.npz"
    code, stdout, stderr = run_cli(capsys, f"simulate {command}", "--out", str(out))
    assert code == 2
    assert stdout == ""
    assert stderr.startswith("activesci: error: ")
    for part in parts:
        assert part in stderr, f"{part!r} not in {stderr!r}"
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "part"),
    [
        ("simulate weinberg --out f.npz", "--design"),
        (f"simulate weinberg {Z_POLE} --n many --out f.npz", "many"),
        (f"simulate gaussian {Z_POLE} --n -5 --out f.npz", "'-5'"),
        (f"simulate weinberg {Z_POLE} --luminosity -1 --out f.npz", "'-1'"),
        ("frobnicate", "frobnicate"),
    ],
)
def test_usage_errors_exit_with_2(capsys, command, part):
    with pytest.raises(SystemExit) as excinfo:
        main(command.split())
    assert excinfo.value.code == 2
    assert part in capsys.readouterr().err


# -- other commands ---------------------------------------------------------------------------


def test_tasks_lists_every_task(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    lines = out.splitlines()
    names = ["gaussian", "location_finding", "weinberg", "weinberg_lineshape"]
    assert [line.split()[0] for line in lines] == names
    assert all(len(line.split()) > 3 for line in lines)  # each with its description


def test_version(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["--version"])
    assert excinfo.value.code == 0
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert capsys.readouterr().out == f"activesci {expected}\n"


# -- the installed entry point ----------------------------------------------------------------

SCRIPT = Path(sys.executable).parent / "activesci"


def run_script(command: str, *more: str) -> subprocess.CompletedProcess:
    args = [str(SCRIPT), *command.split(), *more]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_console_script_simulates(tmp_path):
    out = tmp_path / "events.npz"
    result = run_script(f"simulate weinberg {Z_POLE} --n 100 --seed 2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n"] == 100
    assert read_events(out).x.shape == (100, 1)


def test_console_script_exit_status_on_bad_input(tmp_path):
    out = tmp_path / "events.npz"
    result = run_script(f"simulate weinberg --theta sin2w=0.9 {Z_POLE}", "--out", str(out))
    assert result.returncode == 2
    assert "[0.15, 0.35]" in result.stderr
    assert not out.exists()


def test_simulate_needs_only_numpy_and_scipy(tmp_path):
    """Container steps must run in an image without torch, plotly, scikit-learn or PyYAML."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'plotly', 'skopt', 'sklearn', 'yaml'}:\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from activesci.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    simulate = ["simulate", "weinberg", "--theta", "sin2w=0.23", "--design", "sqrt_s=91.19"]
    chunk = ["sample-training", "weinberg", "--samples", "200"]
    for k, args in enumerate((simulate, chunk)):
        out = tmp_path / f"out{k}.npz"
        result = subprocess.run(
            [sys.executable, "-c", blocker, *args, "--seed", "1", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert out.exists()


# -- hostile and careless input: every subcommand (issue 13) -----------------------------------


def bad_cli(capsys, args: list[str]) -> tuple[int, str, bool]:
    """Run the CLI on bad arguments; return (status, stderr, whether it was a usage error)."""
    try:
        code, usage = main(args), False
    except SystemExit as exc:  # found while parsing the arguments
        code, usage = exc.code, True
    return code, capsys.readouterr().err, usage


def started_run(folder: Path) -> Path:
    """A one-round run with the exact likelihood (no training) in ``folder``."""
    args = ["run", "gaussian", "--estimator", "exact", "--strategy", "fixed", "--rounds", "1"]
    assert main([*args, "--out", str(folder)]) == 0
    return folder


BAD_ARGUMENTS = {
    "demo-seed": "demo --seed -1 --out {tmp}/d",
    "demo-out-empty": "demo --out=",
    "demo-refine-every": "demo --refine-every 0 --out {tmp}/d",
    "tasks": "tasks --bogus",
    "run-seed": "run gaussian --seed -1 --out {tmp}/r",
    "run-seed-float": "run gaussian --seed 1.5 --out {tmp}/r",
    "run-out-empty": "run gaussian --out=",
    "run-refine-every": "run gaussian --refine-every 0 --out {tmp}/r",
    "run-luminosity": "run weinberg --luminosity nan --out {tmp}/r",
    "run-luminosity-gaussian": "run gaussian --luminosity 2 --out {tmp}/r",
    "run-rounds": "run gaussian --rounds -1 --out {tmp}/r",
    "run-unknown-estimator": "run gaussian --estimator alicse --out {tmp}/r",
    "run-into-a-run": "run gaussian --estimator carl --out {run}",
    "resume-rounds": "resume {run} --rounds -5",
    "resume-nothing": "resume {tmp}/none",
    "report-nothing": "report {tmp}/none",
    "notebook": "notebook nosuchnotebook",
    "bench-binary-spec": "bench {tmp}/binary.yaml",
    "bench-spec-task-options": "bench {tmp}/options.yaml",
    "bench-target-std": "bench gaussian --target-std nan",
    "bench-repeats": "bench gaussian --repeats 0",
    "bench-out-folder": "bench gaussian --strategies fixed --repeats 1 --out {tmp}",
    "sample-training-seed": "sample-training gaussian --samples 10 --seed -1 --out {tmp}/c.npz",
    "sample-training-out-folder": "sample-training gaussian --samples 10 --seed 1 --out {tmp}",
    "merge-not-npz": "merge {tmp}/binary.yaml --out {tmp}/m.npz",
    "train-not-npz": "train gaussian {tmp}/binary.yaml --out {tmp}/e.pt",
    "train-out-folder": "train gaussian {tmp}/binary.yaml --out {tmp}",
    "train-epochs": "train gaussian {tmp}/binary.yaml --epochs 0 --out {tmp}/e.pt",
    "export-reana": "export-reana nosuchtask --out {tmp}/w",
    "simulate-seed": "simulate gaussian --design phase=3 --seed -1 --out {tmp}/e.npz",
    "simulate-n-float": "simulate gaussian --design phase=3 --n 1e13 --out {tmp}/e.npz",
    "simulate-n-huge": "simulate gaussian --design phase=3 --n 10000000000000 --out {tmp}/e.npz",
    "simulate-luminosity": f"simulate weinberg {Z_POLE} --luminosity 1e300 --out {{tmp}}/e.npz",
    "simulate-out-unwritable": "simulate gaussian --design phase=3 --out /proc/activesci/e.npz",
    "simulate-out-folder": "simulate gaussian --design phase=3 --out {tmp}",
    "simulate-out-empty": "simulate gaussian --design phase=3 --out=",
    # a FIFO or device is not a file: the write renamed a file over it (as root, over /dev/null)
    "simulate-out-fifo": "simulate gaussian --design phase=3 --n 2 --out {tmp}/fifo",
    "train-out-fifo": "train gaussian {tmp}/binary.yaml --out {tmp}/fifo",
    "notebook-out-fifo": "notebook 00 --out {tmp}/fifo",
    "notebook-glob": "notebook *",
    "bench-out-fifo": "bench gaussian --strategies fixed --repeats 1 --rounds 1 --out {tmp}/fifo",
    "notebook-glob-recursive": "notebook **",
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_every_subcommand_refuses_bad_arguments_in_one_line(capsys, tmp_path, case):
    run = started_run(tmp_path / "run") if "{run}" in BAD_ARGUMENTS[case] else None
    capsys.readouterr()
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "options.yaml").write_text(
        "name: t\nkind: design\ntask: weinberg\ntask_options: {luminosity: -1}\n"
        "strategies: [fixed]\nseeds: 1\nbudget: {rounds: 1}\n"
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    args = BAD_ARGUMENTS[case].format(tmp=tmp_path, run=run).split()
    code, err, usage = bad_cli(capsys, args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "error: " in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no <dir>.part, no new run
    if not usage:
        with pytest.raises((ActivesciError, OSError, UnicodeDecodeError)):  # the traceback
            main(["--debug", *args])


def test_a_second_run_into_a_run_folder_is_refused_and_leaves_it_untouched(capsys, tmp_path):
    folder = started_run(tmp_path / "run")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    code, err, _ = bad_cli(
        capsys, ["run", "gaussian", "--estimator", "carl", "--rounds", "5", "--out", str(folder)]
    )
    assert code == 2
    assert f"use `activesci resume {folder}`, or a new folder" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == files
    code, err, _ = bad_cli(capsys, ["resume", str(folder)])  # the plan is the first run's: 1
    assert code == 0 and "at round 1 of 1" in err


def test_refine_every_zero_is_refused_before_training(capsys, tmp_path, monkeypatch):
    from activesci.inference.ratio import RatioEstimator

    monkeypatch.setattr(RatioEstimator, "train", lambda *a, **k: pytest.fail("trained"))
    code, err, _ = bad_cli(
        capsys, ["run", "gaussian", "--refine-every", "0", "--out", str(tmp_path / "r")]
    )
    assert code == 2 and "--refine-every" in err and not (tmp_path / "r").exists()
