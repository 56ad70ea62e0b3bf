"""README tables against the committed records of the benchmarks they quote.

A table in README.md preceded by ``<!-- quoted: benchmarks/quoted/NAME.json -->`` quotes that
record (written by the benchmark script, see ``benchmarks/_common.write_quoted``). Every cell the
record gives must match: a string exactly, a list of numbers by the figures the README shows
(each number rounded to the decimals printed). The paragraph after the table starts with "How
we measured" and names the record's CPU and date.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = re.compile(r"^<!-- quoted: (?P<path>\S+\.json) -->\s*$")
#: A figure: digits with optional thousands commas and decimals; a leading minus (- or U+2212).
NUMBER = re.compile(r"[-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def split_row(line: str) -> list[str]:
    """The cells of a markdown table row, ``\\|`` unescaped, stripped."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.replace("\\|", "|").strip() for cell in re.split(r"(?<!\\)\|", inner)]


def quoted_tables(text: str) -> list[tuple[str, list[str], list[list[str]], str]]:
    """Each marked table: (record path, header cells, rows of cells, the paragraph after it)."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        match = MARKER.match(line)
        if not match:
            continue
        j = i + 1
        table = []
        while j < len(lines) and lines[j].startswith("|"):
            table.append(lines[j])
            j += 1
        assert len(table) >= 3, f"README line {i + 1}: the marker must be followed by a table"
        while j < len(lines) and not lines[j].strip():
            j += 1
        footer = []  # the paragraph after the table
        while j < len(lines) and lines[j].strip():
            footer.append(lines[j])
            j += 1
        after = " ".join(footer)
        rows = [split_row(row) for row in table[2:]]
        found.append((match["path"], split_row(table[0]), rows, after))
    return found


def figures(cell: str) -> list[str]:
    """The numbers printed in a cell, as written."""
    return NUMBER.findall(cell)


def agrees(shown: str, value: float) -> bool:
    """Whether ``value`` rounds to the printed figure ``shown`` (to the decimals shown)."""
    text = shown.replace(",", "").replace("\u2212", "-")
    decimals = len(text.partition(".")[2])
    return abs(float(text) - value) <= 0.5 * 10.0**-decimals + 1e-9 * max(1.0, abs(value))


def mismatches(path: str, header: list[str], rows: list[list[str]], record: dict) -> list[str]:
    """What differs between one README table and its record; empty when they agree."""
    out = []
    if header != record["columns"]:
        out.append(f"{path}: header {header} != record columns {record['columns']}")
    if len(rows) != len(record["rows"]):
        out.append(f"{path}: {len(rows)} rows in the README, {len(record['rows'])} recorded")
    for r, (cells, expected) in enumerate(zip(rows, record["rows"], strict=False)):
        if len(cells) != len(expected):
            out.append(f"{path} row {r + 1}: {len(cells)} cells, {len(expected)} recorded")
            continue
        for column, cell, want in zip(record["columns"], cells, expected, strict=True):
            where = f"{path} row {r + 1} ({cells[0]!r}), column {column!r}"
            if want is None:
                continue
            if isinstance(want, str):
                if cell.replace("**", "") != want:
                    out.append(f"{where}: README {cell!r}, recorded {want!r}")
                continue
            shown = figures(cell)
            if len(shown) != len(want) or not all(map(agrees, shown, want)):
                out.append(f"{where}: README {cell!r} shows {shown}, recorded {want}")
    return out


def footer_problems(path: str, after: str, record: dict) -> list[str]:
    """The paragraph after a quoted table must say how it was measured: CPU and date."""
    date = (record["machine"].get("date") or "")[:10]
    cpu = record["machine"].get("cpu_model") or ""
    if not after.startswith("How we measured"):
        return [f"{path}: the line after the table should start with 'How we measured'"]
    missing = [want for want in (cpu, date) if want not in after]
    return [f"{path}: the footer does not name {want!r}" for want in missing]


def test_every_quoted_readme_table_matches_its_record():
    tables = quoted_tables(README.read_text())
    assert tables, "README.md quotes no benchmark record"
    problems = []
    for path, header, rows, after in tables:
        record = json.loads((ROOT / path).read_text())
        assert (ROOT / record["script"]).is_file(), f"{path}: no script {record['script']}"
        assert record["commit"] and record["commit"] != "unknown", f"{path}: no commit"
        problems += mismatches(path, header, rows, record)
        problems += footer_problems(path, after, record)
    assert not problems, "\n".join(problems)


def test_every_record_is_quoted():
    quoted = {path for path, *_ in quoted_tables(README.read_text())}
    records = {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks" / "quoted").glob("*.json")}
    assert records <= quoted, f"records no README table quotes: {sorted(records - quoted)}"


def test_the_quick_start_summary_is_what_the_simulator_says():
    import ast

    import activesci as asci

    text = README.read_text()
    call = 'sim.summary({"sin2w": 0.2315}, {"sqrt_s": 91.19})\n# '
    assert call in text, "the quick start no longer shows sim.summary's output"
    shown = ast.literal_eval(text.split(call, 1)[1].split("\n", 1)[0])
    got = asci.tasks.weinberg().simulator.summary({"sin2w": 0.2315}, {"sqrt_s": 91.19})
    assert shown.keys() == got.keys()
    assert all(agrees(repr(shown[k]), got[k]) for k in shown), (shown, got)


TOY = """\
<!-- quoted: toy.json -->
| case | \\|shift\\| (round) | rate | met |
|---|---|---|---|
| (a) 0.2 pb⁻¹ × 8 | 0.091 (2) | 1,234 M/s [0.17–0.63] | **no** |

How we measured: AMD EPYC, 2 cores, 2026-11-30.
"""
RECORD = {
    "columns": ["case", "|shift| (round)", "rate", "met"],
    "rows": [[None, [0.0912254, 2], [1234.4, 0.171, 0.6349], "no"]],
    "machine": {"cpu_model": "AMD EPYC", "date": "2026-11-30T09:07:59+00:00"},
}


def _check(text: str, record: dict = RECORD) -> list[str]:
    ((path, header, rows, after),) = quoted_tables(text)
    return mismatches(path, header, rows, record) + footer_problems(path, after, record)


def test_the_toy_table_agrees_with_its_record():
    assert _check(TOY) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("0.091 (2)", "0.092 (2)"),  # a changed figure
        ("0.091 (2)", "0.09 (2)"),  # fewer decimals still rounds right: 0.0912 -> 0.09 ...
        ("1,234 M/s", "1,235 M/s"),
        ("[0.17–0.63]", "[0.17–0.64]"),
        ("**no**", "yes"),
        ("(2) |", "|"),  # a figure dropped
        ("AMD EPYC", "Intel Xeon"),  # the footer names another machine
        ("How we measured", "Measured"),
    ],
)
def test_a_changed_table_is_caught(old, new):
    changed = TOY.replace(old, new)
    assert changed != TOY
    if new == "0.09 (2)":  # ... so it is not a mismatch: the figure is as precise as printed
        assert _check(changed) == []
    else:
        assert _check(changed), f"{old!r} -> {new!r} went unnoticed"


def test_a_changed_record_is_caught():
    extra_row = RECORD | {"rows": RECORD["rows"] * 2}
    renamed = RECORD | {"columns": ["case", "shift", "rate", "met"]}
    assert _check(TOY, extra_row)
    assert _check(TOY, renamed)
