"""Campaign DAGs on every executor, checksummed chunks, the campaign commands."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from activesci.cli import main
from activesci.errors import ChecksumError, ValidationError, WorkflowError
from activesci.inference import RatioEstimator
from activesci.inference.training import TrainingData
from activesci.io import atomic_write, checksum_path, verify_checksum, write_checksum
from activesci.workflow import dag
from activesci.workflow.dag import Campaign, chunk_plan
from activesci.workflow.executors import make_executor


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inline_campaign(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("inline")
    states = []
    campaign = Campaign(
        "weinberg",
        samples=6000,
        chunks=3,
        seed=7,
        epochs=1,
        workdir=workdir,
        progress=False,
        callback=states.append,
    )
    return campaign.run("inline"), states


def test_campaign_grows_by_rules_and_trains(inline_campaign):
    result, states = inline_campaign
    assert result.samples == 6000 and len(result.chunks) == 3
    assert set(result.states) == {"plan", "chunk-0", "chunk-1", "chunk-2", "merge", "train"}
    assert set(result.states.values()) == {"success"}
    # the graph grew as results arrived: first only the plan, at the end all six nodes
    assert list(states[0]) == ["plan"] and len(states[-1]) == 6
    merged = TrainingData.load(verify_checksum(result.merged))
    parts = [TrainingData.load(p) for p in result.chunks]
    assert np.array_equal(merged.x, np.concatenate([p.x for p in parts]))
    assert merged.log_r is not None and merged.score is not None  # alices' gold
    est = RatioEstimator.load(result.estimator)
    assert est.method == "alices" and est.summary.n_samples == 6000


def test_64_chunks_merge_the_same_bytes_on_every_executor(tmp_path):
    pytest.importorskip("distributed")
    digests = {}
    for executor, options in (
        ("inline", {}),
        ("processes", {"workers": 2}),
        ("dask", {"workers": 2}),
    ):
        result = Campaign(
            "weinberg", samples=64 * 50, chunks=64, seed=11, train=False,
            workdir=tmp_path / executor, progress=False,
        ).run(executor, **options)  # fmt: skip
        assert len(result.chunks) == 64
        digests[executor] = digest(result.merged)
    assert len(set(digests.values())) == 1, digests


def test_chunk_seeds_do_not_depend_on_the_chunk_count_split():
    plan = chunk_plan(10, 3, seed=1)
    assert [c["samples"] for c in plan] == [4, 3, 3]
    assert len({c["seed"] for c in plan}) == 3
    assert plan == chunk_plan(10, 3, seed=1)
    with pytest.raises(ValidationError, match="chunks must be a positive integer, got 0"):
        chunk_plan(10, 0, seed=1)
    with pytest.raises(ValidationError, match=r"samples must be an integer >= 2 per chunk \(6\)"):
        chunk_plan(5, 3, seed=1)


def test_a_chunk_that_fails_once_is_retried(monkeypatch, tmp_path):
    real, failed = dag.sample_chunk, set()

    def flaky(task, samples, seed, method, out):
        if out not in failed:  # first attempt: leave a partial file and crash
            failed.add(out)
            open(out, "wb").write(b"half")
            raise OSError("node lost")
        return real(task, samples, seed, method, out)

    monkeypatch.setattr(dag, "sample_chunk", flaky)
    result = Campaign(
        "gaussian", samples=400, chunks=4, seed=3, train=False, workdir=tmp_path, progress=False
    ).run("inline")
    assert len(failed) == 4 and set(result.states.values()) == {"success"}
    clean = Campaign(
        "gaussian", samples=400, chunks=4, seed=3, train=False, workdir=tmp_path / "clean",
        progress=False,
    ).run("inline")  # fmt: skip
    assert digest(result.merged) == digest(clean.merged)


def test_a_chunk_that_always_fails_stops_the_campaign(monkeypatch, tmp_path):
    real = dag.sample_chunk

    def broken(task, samples, seed, method, out):
        if out.endswith("chunk-2.npz"):
            raise RuntimeError("simulator crashed")
        return real(task, samples, seed, method, out)

    monkeypatch.setattr(dag, "sample_chunk", broken)
    campaign = Campaign("gaussian", samples=400, chunks=4, workdir=tmp_path, progress=False)
    with pytest.raises(WorkflowError, match=r"node 'chunk-2' failed: chunk 2 failed 2 time"):
        campaign.run("inline")
    assert not (tmp_path / "merged.npz").exists()  # nothing partial was merged
    assert not (tmp_path / "chunk-2.npz").exists()


def test_merge_refuses_altered_or_unfinished_chunks(inline_campaign, tmp_path):
    result, _ = inline_campaign
    bad = tmp_path / "chunk.npz"
    bad.write_bytes(result.chunks[0].read_bytes()[:-10])  # truncated copy
    checksum_path(bad).write_text(checksum_path(result.chunks[0]).read_text())
    with pytest.raises(ChecksumError, match=r"does not match chunk\.npz\.sha256"):
        dag.merge_chunks([result.chunks[1], bad], tmp_path / "merged.npz")
    checksum_path(bad).unlink()
    with pytest.raises(ChecksumError, match=r"no checksum file chunk\.npz\.sha256"):
        dag.merge_chunks([bad], tmp_path / "merged.npz")
    assert not (tmp_path / "merged.npz").exists()


def test_campaign_commands_chain(tmp_path, capsys):
    chunks = []
    for k in range(2):
        out = tmp_path / f"c{k}.npz"
        args = ["sample-training", "gaussian", "--samples", "500", "--seed", str(k)]
        assert main([*args, "--out", str(out)]) == 0
        chunks.append(str(out))
    merged = tmp_path / "merged.npz"
    capsys.readouterr()
    assert main(["merge", *chunks, "--out", str(merged)]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 1000
    est = tmp_path / "est.pt"
    assert main(["train", "gaussian", str(merged), "--epochs", "1", "--out", str(est)]) == 0
    assert RatioEstimator.load(est).summary.n_samples == 1000
    (tmp_path / "c1.npz").write_bytes(b"garbage")
    assert main(["merge", *chunks, "--out", str(merged)]) == 2
    assert "c1.npz: sha256" in capsys.readouterr().err


def test_bad_executors_and_campaigns():
    with pytest.raises(ValidationError, match="unknown executor 'slurm'"):
        make_executor("slurm")
    with pytest.raises(ValidationError, match="lacks"):
        make_executor(object())
    with pytest.raises(ValidationError, match="unknown method 'sally'"):
        Campaign("gaussian", method="sally")
    with pytest.raises(ValidationError, match="workers must be a positive integer"):
        make_executor("processes", workers=0)


def test_atomic_writes_never_follow_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    out = tmp_path / "run"
    out.mkdir()
    target = out / "events.npz"
    (out / "events.npz.part").symlink_to(victim)
    with atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    (out / "report.html").symlink_to(victim)  # a symlink at the target is replaced
    with atomic_write(out / "report.html", "w") as fh:
        fh.write("page")
    assert not (out / "report.html").is_symlink()
    (out / "events.npz.sha256").symlink_to(victim)
    write_checksum(target)
    verify_checksum(target)
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"new"  # the old file is kept, the temporary removed
    names = ["events.npz", "events.npz.part", "events.npz.sha256", "report.html"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert victim.read_text() == "keep"
    with pytest.raises(ValidationError, match=r"'.*run' is a folder; expected the path of a file"):
        atomic_write(out).__enter__()


def test_the_file_helpers_need_no_workflow_engine():
    code = "import sys, activesci.io; assert 'adage' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
