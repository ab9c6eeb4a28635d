"""Reading the markdown tables the experiments write."""

import math


def table_rows(path):
    """Markdown table rows of a results.md as lists of cells (header and separator lines dropped)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in path.read_text().splitlines() if line.startswith("|") and "---" not in line]
    return [r for r in rows if r[0] not in ("Model", "Minimiser")]


def assert_percentages(cells):
    """Every cell a percentage, or "n/a" where the metric is undefined (`oosis_jax.evaluation.tables`)."""
    for cell in cells:
        if cell == "n/a":
            continue
        value = float(cell)
        assert math.isfinite(value) and 0.0 <= value <= 100.0, cells
