"""The mybinder environment, built from binder/ only, runs the flagship notebook."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "binder" / "requirements.txt"


def _torch_pin(text: str) -> str:
    """The version of ``torch==VERSION`` in a requirements file."""
    found = re.search(r"^torch==(\S+)", text, re.MULTILINE)
    assert found, "binder/requirements.txt pins no torch version"
    return found.group(1)


def _index_urls(text: str) -> list[str]:
    """The ``--index-url`` / ``--extra-index-url`` of a requirements file."""
    return re.findall(r"^--(?:extra-)?index-url[ =](\S+)", text, re.MULTILINE)


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the host of ``url`` opens (name lookup included)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _wheelhouses(version: str) -> list[str]:
    """Folders named by ``PIP_FIND_LINKS`` or pip's config that hold a ``torch==version`` wheel."""
    named = os.environ.get("PIP_FIND_LINKS", "").split()
    config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    for line in config.splitlines():  # e.g. global.find-links='/opt/wheels'
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            named += value.strip("'\"").split()
    found: list[str] = []
    for entry in named:
        folder = Path(entry.removeprefix("file://"))
        if folder.is_dir() and any(folder.glob(f"torch-{version}*.whl")):
            if str(folder) not in found:
                found.append(str(folder))
    return found


@pytest.mark.slow
def test_a_fresh_binder_environment_runs_notebook_01(tmp_path):
    """Like repo2docker: a venv, ``pip install -r binder/requirements.txt``, ``binder/postBuild``.

    The checkout is copied without .venv, runs and caches, and the requirements file is installed
    as written, its ``--extra-index-url`` of CPU torch builds included. A local wheel of the
    pinned torch, if there is one, is offered through ``PIP_FIND_LINKS`` as a cache: pip takes
    the highest matching version from every index and link, and a ``+cpu`` build beats PyPI's
    plain one, so the CPU index and the local wheel give the same torch. Where the CPU index is
    unreachable (this machine reaches PyPI only), pip warns and goes on with the other sources;
    ``PIP_RETRIES=0`` then stops it from retrying that host five times for each of the ~100
    projects (12.6 min instead of 7 s, measured). Without either source it skips: PyPI's torch
    would bring gigabytes of CUDA.
    """
    text = REQUIREMENTS.read_text()
    version, indexes = _torch_pin(text), _index_urls(text)
    wheelhouses = _wheelhouses(version)
    unreachable = [url for url in indexes if not _reachable(url)]
    if unreachable and not wheelhouses:
        pytest.skip(
            f"{', '.join(unreachable)} is unreachable and no local torch-{version} wheel is "
            "named by PIP_FIND_LINKS or pip's find-links: PyPI's torch would pull CUDA"
        )
    repo = tmp_path / "repo"
    shutil.copytree(
        ROOT,
        repo,
        ignore=shutil.ignore_patterns(
            ".venv*", "runs", ".git", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    if wheelhouses:
        env["PIP_FIND_LINKS"] = " ".join(wheelhouses)
    if unreachable:
        env["PIP_RETRIES"] = "0"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile"]
    requirements = repo / "binder" / "requirements.txt"
    assert requirements.read_text() == text  # installed exactly as written
    subprocess.run(
        [*pip, "-r", "binder/requirements.txt"], cwd=repo, check=True, env=env, timeout=900
    )
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    versions = {p["name"].lower(): p["version"] for p in json.loads(installed)}
    assert versions["torch"] == f"{version}+cpu"  # the CPU build, as mybinder gets
    assert not [name for name in versions if name.startswith("nvidia-")]
    subprocess.run(["bash", "binder/postBuild"], cwd=repo, check=True, env=env, timeout=900)
    # no papermill in binder: run the notebook the way a user's kernel would, with nbclient
    script = (
        "import nbformat, sys\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "cell = next(c for c in nb.cells if 'parameters' in c.metadata.get('tags', []))\n"
        "cell.source += '\\nsmoke = True'\n"
        "NotebookClient(nb, timeout=600, kernel_name='python3').execute()\n"
        "nbformat.write(nb, sys.argv[2])\n"
    )
    out = tmp_path / "01.ipynb"
    notebook = repo / "notebooks" / "01-weinberg-active-sciencing.ipynb"
    subprocess.run(
        [str(python), "-c", script, str(notebook), str(out)], check=True, env=env, timeout=900
    )
    from activesci.notebook import read_records

    records = read_records(out)
    learned, truth = records["learned"], records["truth"]
    assert records["rounds"] == 3 and abs(learned["mean"] - truth) < 3 * learned["std"]
