"""Benchmarks of design strategies: run, summarise, tabulate (``activesci bench``)."""

from activesci.bench.design import (
    DesignBenchmark,
    OracleStrategy,
    format_design_table,
    run_design_benchmark,
)

__all__ = ["DesignBenchmark", "OracleStrategy", "format_design_table", "run_design_benchmark"]
