"""Benchmarks: design strategies and excursion acquisitions, specs, leaderboards.

``activesci bench SPEC`` runs a spec (:mod:`activesci.bench.spec`) and writes its leaderboard
(:mod:`activesci.bench.leaderboard`); ``activesci bench TASK --strategies ...`` is the quick
form for design strategies (:mod:`activesci.bench.design`).
"""

from activesci.bench.design import (
    DesignBenchmark,
    OracleStrategy,
    format_design_table,
    run_design_benchmark,
)
from activesci.bench.leaderboard import (
    format_leaderboard,
    leaderboard,
    run_spec,
    software_versions,
    write_results,
)
from activesci.bench.spec import available_specs, load_spec, validate_spec

__all__ = [
    "DesignBenchmark",
    "OracleStrategy",
    "available_specs",
    "format_design_table",
    "format_leaderboard",
    "leaderboard",
    "load_spec",
    "run_design_benchmark",
    "run_spec",
    "software_versions",
    "validate_spec",
    "write_results",
]
