"""Stage 3 (paper Sec. 4 and 5): metrics of ordered instances and oriented boundaries; pure numpy (no JAX)."""

from oosis_jax.evaluation.metrics import cycle_fraction, oair_counts, weighted_coverage
from oosis_jax.evaluation.results import Evaluator, WorkerFailure, evaluate, markdown_table, plot_curves

__all__ = ["Evaluator", "WorkerFailure", "cycle_fraction", "evaluate", "markdown_table", "oair_counts", "plot_curves",
           "weighted_coverage"]
