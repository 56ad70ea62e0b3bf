"""Every notebook runs headless with papermill in smoke mode, and its numbers make sense."""

import re
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)


@pytest.mark.slow
def test_simulator_notebook_runs(tmp_path):
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        Path(__file__).parent.parent / "notebooks" / "00-weinberg-simulator.ipynb",
        out,
        parameters={"smoke": True, "sqrt_s": 91.19, "seed": 3},
        kernel_name="python3",
        progress_bar=False,
    )
    text = "".join(
        o.get("text", "")
        for c in nbformat.read(out, as_version=4).cells
        for o in c.get("outputs", [])
    )
    afb, err, predicted = map(
        float, re.search(r"A_FB = (\S+) ± (\S+), predicted at detector level (\S+)", text).groups()
    )
    assert abs(afb - predicted) < 4 * err
    mean = float(re.search(r"posterior mean of sin²θ_W: (\S+)", text).group(1))
    assert abs(mean - 0.2315) < 0.01


@pytest.mark.slow
def test_flagship_notebook_finds_the_pole_and_covers_the_truth(tmp_path):
    from activesci.notebook import run_notebook

    _, rec = run_notebook(
        "01", {"smoke": True, "seed": 2}, out=tmp_path / "01.ipynb", progress=False
    )
    learned, exact, truth = rec["learned"], rec["exact"], rec["truth"]
    assert rec["rounds"] == 3
    assert sum(85 < d < 97 for d in rec["designs"]) >= 2  # the EIG finds the Z pole on its own
    assert abs(learned["mean"] - truth) < 3 * learned["std"]
    # the neural posterior agrees with the exact one on the same data
    assert abs(learned["mean"] - exact["mean"]) < exact["std"]
    assert learned["std"] == pytest.approx(exact["std"], rel=0.2)
    # and in every round, not only the last: the smoke run's 50k-sample estimators meet a
    # looser shift bound than benchmarks/closure.py's 0.2 at full size (the amortised
    # estimator's -1.6 sigma in round 3 was what this replaced)
    assert rec["worst_round_shift"] <= 0.3
    assert rec["worst_round_width"] <= 0.1


def test_notebook_command_passes_parameters(tmp_path, capsys):
    import json

    from activesci.cli import main

    out = tmp_path / "00.ipynb"
    args = ["notebook", "00", "-p", "smoke", "true", "-p", "sqrt_s", "91.19", "--out", str(out)]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["notebook"] == str(out)
    assert "sqrt_s = 91.19" in out.read_text()  # papermill's injected parameters cell
    assert main(["notebook", "99"]) == 2


def test_notebook_out_replaces_a_planted_symlink_instead_of_following_it(tmp_path, monkeypatch):
    from activesci.cli import main

    def execute(source, output, **kwargs):  # papermill writes its output path as it goes
        nb = nbformat.read(source, as_version=4)
        with open(output, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    victim, out = tmp_path / "victim", tmp_path / "out.ipynb"
    victim.write_text("keep me")
    out.symlink_to(victim)
    assert main(["notebook", "00", "--out", str(out)]) == 0
    assert victim.read_text() == "keep me"
    assert not out.is_symlink() and nbformat.read(out, as_version=4).cells
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.ipynb", "victim"]


@pytest.mark.slow
def test_bring_your_own_simulator_notebook(tmp_path):
    from activesci.notebook import run_notebook

    _, rec = run_notebook("02", {"smoke": True}, out=tmp_path / "02.ipynb", progress=False)
    # x = slope * d + noise: the information grows with d^2, so the EIG picks the largest d
    assert all(d > 2.7 for d in rec["python_designs"])
    post = rec["python_posterior"]
    assert abs(post["mean"] - 0.7) < 3 * post["std"]
    # 4 rounds x 20 measurements at d = 3, unit noise: std = 1 / (3 sqrt(80)) = 0.037
    assert post["std"] == pytest.approx(1 / (3 * 80**0.5), rel=0.15)
    assert rec["external_identical"] is True


@pytest.mark.slow
def test_compare_strategies_notebook(tmp_path):
    from activesci.notebook import run_notebook

    _, rec = run_notebook("03", {"smoke": True}, out=tmp_path / "03.ipynb", progress=False)
    final = rec["final_std"]
    assert final["eig-exact"] < 0.3 * final["random"] and final["eig-exact"] < 0.3 * final["grid"]
    assert all(85 < d[0] < 97 for d in rec["designs"]["eig-exact"])


@pytest.mark.slow
def test_workflows_notebook(tmp_path):
    pytest.importorskip("distributed")
    from activesci.notebook import run_notebook

    _, rec = run_notebook("04", {"smoke": True}, out=tmp_path / "04.ipynb", progress=False)
    assert rec["identical"] is True
    assert rec["reana_files"] == ["README.md", "reana.yaml", "workflow.yml"]


@pytest.mark.slow
def test_madminer_comparison_notebook(tmp_path):
    from activesci.notebook import run_notebook

    _, rec = run_notebook("05", {"smoke": True}, out=tmp_path / "05.ipynb", progress=False)
    ours = rec["closure"]["activesci"]
    assert abs(ours["mean_shift"]) < 1.0 and 0.7 < ours["width_ratio"] < 1.3
    if "madminer" in rec["closure"]:  # 5 epochs at smoke size: loose, but a broken bridge fails
        theirs = rec["closure"]["madminer"]
        assert abs(theirs["mean_shift"]) < 3.0 and 0.5 < theirs["width_ratio"] < 2.0


@pytest.mark.slow
def test_excursion_notebook(tmp_path):
    from activesci.notebook import run_notebook

    _, rec = run_notebook("06", {"smoke": True}, out=tmp_path / "06.ipynb", progress=False)
    assert rec["accuracy_1d"] >= 0.99 and rec["accuracy_2d"] >= 0.99
    needed = rec["evaluations_to_99"]
    assert needed["entropy"] is not None and needed["entropy"] <= 30
    assert all(v is None or needed["entropy"] <= v for v in needed.values())
    # the 95% CL contour found from the learned statistic matches the exact one
    assert rec["contour_area_error"] <= 0.05
    assert 0.1 < rec["contour_inside"]["exact"] < 0.4


@pytest.mark.slow
def test_location_finding_notebook(tmp_path):
    from activesci.notebook import run_notebook

    # 4 measurements (exact likelihood): one seed's sPCE is too noisy to rank two strategies
    # (seed 0 alone beat random by the 0.5-nat margin on an AMD EPYC, and misses it on an
    # Intel Xeon, 2.07 against 1.70 nats: the floats differ), so the claim is over six seeds
    # (on the Xeon: gains -1.1 to 5.4, mean 1.45). On average the EIG's designs
    # teach more than random ones, and they land nearer a source than the prior's typical
    # distance to one (about 1.4)
    gain, distance = [], []
    for seed in range(6):
        out = tmp_path / f"07-{seed}.ipynb"
        _, rec = run_notebook("07", {"smoke": True, "seed": seed}, out=out, progress=False)
        assert np.isfinite(rec["spce"]["random"]) and rec["spce"]["eig"] <= np.log(10_001)
        gain.append(rec["spce"]["eig"] - rec["spce"]["random"])
        distance.append(rec["eig_distance"])
    assert np.mean(gain) > 0.5
    assert np.median(distance) < 1.4
