"""Every notebook runs headless with papermill in smoke mode, and its numbers make sense."""

import re
from pathlib import Path

import nbformat
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
