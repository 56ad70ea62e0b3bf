"""REANA export: the yadage spec's structure, its validation by yadage, and a local yadage run.

yadage pins jsonschema<=4.9.1, so it runs from .venv-yadage (scripts/yadage-venv.sh), never from
the main environment; its steps find the main environment's ``activesci`` through PATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from activesci.cli import main
from activesci.errors import ValidationError
from activesci.workflow.reana import export_reana

ROOT = Path(__file__).resolve().parents[1]
YADAGE_BIN = Path(os.environ.get("YADAGE_VENV", ROOT / ".venv-yadage")) / "bin"
MAIN_BIN = Path(sys.executable).parent
SMALL = {"samples": 4000, "chunks": 2, "epochs": 1}


def _load(folder: Path) -> tuple[dict, dict]:
    workflow = yaml.safe_load((folder / "workflow.yml").read_text())
    reana = yaml.safe_load((folder / "reana.yaml").read_text())
    return workflow, reana


def _stages(workflow: dict) -> dict[str, dict]:
    return {stage["name"]: stage for stage in workflow["stages"]}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reana")
    assert export_reana("weinberg", out, **SMALL) == out / "reana.yaml"
    return out


def test_workflow_structure(exported: Path) -> None:
    workflow, _ = _load(exported)
    stages = _stages(workflow)
    assert list(stages) == ["sample", "merge", "train"]
    sample = stages["sample"]["scheduler"]
    assert stages["sample"]["dependencies"] == ["init"]
    assert sample["scheduler_type"] == "multistep-stage"
    assert sample["scatter"] == {"method": "zip", "parameters": ["chunk_seeds", "chunk_samples"]}
    assert sample["parameters"]["chunk_seeds"] == {"step": "init", "output": "chunk_seeds"}
    assert stages["merge"]["dependencies"] == ["sample"]
    assert stages["merge"]["scheduler"]["parameters"]["chunks"] == {
        "stages": "sample",
        "output": "chunk",
    }
    assert stages["train"]["dependencies"] == ["merge"]
    assert stages["train"]["scheduler"]["parameters"]["merged"] == {
        "step": "merge",
        "output": "merged",
    }
    commands = {name: s["scheduler"]["step"]["process"]["cmd"] for name, s in stages.items()}
    # every step names its subcommand: REANA's `bash -c` replaces the image's ENTRYPOINT
    assert commands["sample"].startswith("activesci sample-training {task} ")
    assert commands["merge"] == "activesci merge {chunks} --out {merged}"
    assert commands["train"].startswith("activesci train {task} {merged} ")
    for stage in stages.values():
        assert stage["scheduler"]["step"]["environment"] == {
            "environment_type": "docker-encapsulated",
            "image": "activesci-sim",
            "imagetag": "latest",
        }


def test_reana_yaml(exported: Path) -> None:
    _, reana = _load(exported)
    assert reana["workflow"] == {"type": "yadage", "file": "workflow.yml"}
    assert reana["outputs"] == {"files": ["train/estimator.pt"]}
    parameters = reana["inputs"]["parameters"]
    assert {k: parameters[k] for k in ("task", "method", "epochs", "seed")} == {
        "task": "weinberg",
        "method": "alices",
        "epochs": 1,
        "seed": 0,
    }
    seeds = parameters["chunk_seeds"]
    assert len(seeds) == len(set(seeds)) == 2
    assert all(isinstance(s, int) and s >= 0 for s in seeds)
    assert parameters["chunk_samples"] == [2000, 2000]
    readme = (exported / "README.md").read_text()
    assert "reana-client run" in readme
    assert "yadage-run work workflow.yml -p task=weinberg" in readme


def test_chunk_seeds_are_deterministic(tmp_path: Path) -> None:
    def parameters(name: str, **options: int) -> dict:
        export_reana("weinberg", tmp_path / name, **options)
        return _load(tmp_path / name)[1]["inputs"]["parameters"]

    first, again = parameters("a", seed=7, chunks=3), parameters("b", seed=7, chunks=3)
    other = parameters("c", seed=8, chunks=3)
    assert first["chunk_seeds"] == again["chunk_seeds"] != other["chunk_seeds"]
    uneven = parameters("d", samples=10, chunks=4)["chunk_samples"]
    assert uneven == [3, 3, 2, 2]


def test_images_and_local_environment(tmp_path: Path) -> None:
    export_reana("weinberg", tmp_path / "r", image="registry.example.org:5000/me/sim:1.2")
    export_reana("weinberg", tmp_path / "u", image="localhost:5000/sim", train_image="torch:2")
    export_reana("weinberg", tmp_path / "l", environment="local", train_image="ignored:1")

    def environments(name: str) -> dict[str, dict]:
        stages = _stages(_load(tmp_path / name)[0])
        return {k: s["scheduler"]["step"]["environment"] for k, s in stages.items()}

    registry = environments("r")
    assert registry["sample"] == registry["train"]
    assert registry["train"]["image"] == "registry.example.org:5000/me/sim"
    assert registry["train"]["imagetag"] == "1.2"
    untagged = environments("u")
    assert (untagged["merge"]["image"], untagged["merge"]["imagetag"]) == (
        "localhost:5000/sim",
        "latest",
    )
    assert (untagged["train"]["image"], untagged["train"]["imagetag"]) == ("torch", "2")
    assert "`torch:2`" in (tmp_path / "u" / "README.md").read_text()
    assert all(e == {"environment_type": "localproc-env"} for e in environments("l").values())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"task": "nosuchtask"}, "'nosuchtask'"),
        ({"method": "nosuchmethod"}, "'nosuchmethod'"),
        ({"chunks": 0}, "chunks"),
        ({"samples": -5}, "-5"),
        ({"samples": 2.5}, "2.5"),
        ({"samples": 3, "chunks": 4}, "samples (3) must be >= chunks (4)"),
        ({"epochs": True}, "epochs"),
        ({"seed": -1}, "-1"),
        ({"environment": "k8s"}, "'k8s'"),
        ({"image": "sim@sha256:abc"}, "'sim@sha256:abc'"),
        ({"image": "my image"}, "'my image'"),
        ({"train_image": ""}, "''"),
    ],
)
def test_validation_errors(tmp_path: Path, options: dict, named: str) -> None:
    task = options.pop("task", "weinberg")
    with pytest.raises(ValidationError) as info:
        export_reana(task, tmp_path, **options)
    assert named in str(info.value)
    assert not (tmp_path / "reana.yaml").exists()


def test_cli_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "export-reana",
        "weinberg",
        "--out",
        str(tmp_path),
        "--chunks",
        "3",
        "--train-image=t:1",
    ]
    assert main(args) == 0
    files = json.loads(capsys.readouterr().out)
    assert Path(files["reana"]) == tmp_path / "reana.yaml"
    assert all(Path(path).is_file() for path in files.values())
    workflow, reana = _load(tmp_path)
    assert len(reana["inputs"]["parameters"]["chunk_seeds"]) == 3
    assert reana["inputs"]["parameters"]["epochs"] == 30
    stages = _stages(workflow)
    assert stages["sample"]["scheduler"]["step"]["environment"]["image"] == "activesci-sim"
    assert stages["train"]["scheduler"]["step"]["environment"]["image"] == "t"


# --- yadage itself, in .venv-yadage ------------------------------------------------------------


@pytest.fixture(scope="session")
def yadage_bin() -> Path:
    """.venv-yadage/bin, created by scripts/yadage-venv.sh if needed (about 10 s from scratch)."""
    script = subprocess.run(
        ["bash", str(ROOT / "scripts" / "yadage-venv.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if script.returncode != 0:
        pytest.skip(f"cannot create .venv-yadage (offline?): {script.stderr[-1500:]}")
    return YADAGE_BIN


@pytest.mark.parametrize("environment", ["docker", "local"])
def test_yadage_validates(yadage_bin: Path, tmp_path: Path, environment: str) -> None:
    export_reana("weinberg", tmp_path, environment=environment, **SMALL)
    result = subprocess.run(
        [str(yadage_bin / "yadage-validate"), "workflow.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workflow validates against schema" in result.stdout


def _yadage_run(
    yadage_bin: Path, spec: Path, work: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the exported workflow in ``spec`` with its reana.yaml inputs as parameters."""
    parameters = _load(spec)[1]["inputs"]["parameters"]
    flags = [f"--parameter={k}={json.dumps(v)}" for k, v in parameters.items()]
    return subprocess.run(
        [str(yadage_bin / "yadage-run"), str(work), "workflow.yml", *flags],
        cwd=spec,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_yadage_docker_dry_run(yadage_bin: Path, tmp_path: Path) -> None:
    """packtivity's dry run writes the docker command lines it would run, without a container."""
    export_reana("weinberg", tmp_path / "spec", image="activesci-sim:0.1", **SMALL)
    env = {"PACKTIVITY_DRYRUN": "1", "PACKTIVITY_DOCKER_CMD_MOD": "--entrypoint="}
    result = _yadage_run(yadage_bin, tmp_path / "spec", tmp_path / "work", env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    logs = {
        log.parent.parent.name: log.read_text()
        for log in (tmp_path / "work").glob("*/_packtivity/*.step.log")
    }
    assert sorted(logs) == ["merge", "sample_0", "sample_1", "train"]
    for name, text in logs.items():
        subcommand = name.split("_")[0].replace("sample", "sample-training")
        assert " --entrypoint= " in text
        assert f"activesci-sim:0.1 sh -c 'activesci {subcommand} " in text


def _campaign_commands_missing() -> bool:
    text = subprocess.run(
        [str(MAIN_BIN / "activesci"), "--help"], capture_output=True, text=True, timeout=120
    ).stdout
    listed = set(re.findall(r"^\s+([a-z][a-z-]*)\s", text, flags=re.MULTILINE))
    return not {"sample-training", "merge", "train"} <= listed


@pytest.mark.slow
def test_yadage_runs_locally(yadage_bin: Path, tmp_path: Path) -> None:
    if _campaign_commands_missing():
        pytest.skip("activesci sample-training not available")
    from activesci.inference import RatioEstimator

    spec = tmp_path / "spec"
    export_reana("weinberg", spec, environment="local", **SMALL)
    env = {"PATH": f"{MAIN_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = _yadage_run(yadage_bin, spec, tmp_path / "work", env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    work = tmp_path / "work"
    assert sorted(p.name for p in work.glob("sample_*/chunk.npz*")) == [
        "chunk.npz",
        "chunk.npz",
        "chunk.npz.sha256",
        "chunk.npz.sha256",
    ]
    estimator = work / _load(spec)[1]["outputs"]["files"][0]
    assert estimator.is_file()
    loaded = RatioEstimator.load(estimator)
    assert isinstance(loaded, RatioEstimator)
    assert loaded.method == "alices"
    # the same samples as the in-process campaign with the same seed, chunk for chunk
    from activesci.workflow import Campaign

    campaign = Campaign(
        "weinberg",
        samples=SMALL["samples"],
        chunks=SMALL["chunks"],
        seed=SMALL.get("seed", 0),
        train=False,
        workdir=tmp_path / "in-process",
        progress=False,
    ).run("inline")
    merged = sorted(work.glob("merge*/merged.npz")) or sorted(work.glob("**/merged.npz"))
    assert len(merged) == 1
    a, b = (np.load(p, allow_pickle=False) for p in (merged[0], campaign.merged))
    for key in ("x", "theta", "design", "y", "log_r", "score", "theta_ref"):
        assert np.array_equal(a[key], b[key]), key
