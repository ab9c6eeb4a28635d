"""Report tables of `oosis_jax.evaluation.evaluate` results: markdown rows in %, as the paper reports them."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

SUMMARY_HEADERS = ("Model", "mAP .5:.95", "WC", "OAIR recall@0.5", "OAIR accuracy@0.5", "% inst. in cycles")
BOUNDARY_HEADERS = ("Model", "oriented ODS", "oriented OIS", "oriented AP", "boundary AP")
HELD_OUT_HEADERS = ("WC", "OAIR recall@0.5", "OAIR accuracy@0.5", "mask mAP", "boundary AP", "oriented AP",
                    "predicted (GT) instances / scene")


def markdown(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table; floats printed with one decimal ("n/a" for an undefined one, NaN), everything else with
    ``str``, a "|" in a header or cell escaped as "\\|". ``ValueError`` naming the row for a row of another width
    than ``headers``."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "n/a" if np.isnan(v) else f"{v:.1f}"
        return str(v).replace("|", "\\|")

    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"markdown: row {i} {list(row)!r} has {len(row)} cells, the header {len(headers)}")
    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def percent(x: float) -> float:
    return 100.0 * float(x)


def cycle_cell(cycle_percent: float) -> str:
    """The "% inst. in cycles" cell: two decimals, "<0.01" for a share that rounding would print as 0 (as the
    paper's Tab. 1), so one 2-cycle among thousands of instances never reads like a cycle-free method."""
    value = float(cycle_percent)
    if np.isnan(value):
        return "n/a"  # nothing predicted: no share
    return "<0.01" if 0.0 < value < 0.005 else f"{value:.2f}"


def summary_row(name: str, results: dict) -> list:
    """One row under ``SUMMARY_HEADERS`` from `oosis_jax.evaluation.evaluate` results (in %)."""
    at_05 = results["oair_iou"]
    return [name, percent(results["mask"]["mAP"]), percent(results["weighted_coverage"]),
            percent(at_05["recall"][0]), percent(at_05["accuracy"][0]), cycle_cell(results["cycle_percent"])]


def boundary_row(name: str, results: dict) -> list:
    """One row under ``BOUNDARY_HEADERS`` (NMS-applied oriented occlusion boundaries, Tab. 3/5), in %."""
    o, p = results["boundaries"]["oriented"], results["boundaries"]["plain"]
    return [name, percent(o["ODS"]), percent(o["OIS"]), percent(o["AP"]), percent(p["AP"])]


def held_out_row(results: dict) -> list:
    """One row under ``HELD_OUT_HEADERS`` (the shipped model's card and the lever table), in %; the boundary
    columns NaN when the predictions had no b and e heads."""
    b = results["boundaries"] or {kind: {"AP": float("nan")} for kind in ("plain", "oriented")}
    per_scene = f"{results['num_pred_instances'] / results['num_images']:.1f} " \
                f"({results['num_gt_instances'] / results['num_images']:.1f})"
    return [percent(results["weighted_coverage"]), percent(results["oair_iou"]["recall"][0]),
            percent(results["oair_iou"]["accuracy"][0]), percent(results["mask"]["mAP"]),
            percent(b["plain"]["AP"]), percent(b["oriented"]["AP"]), per_scene]


def strict_json(value, **dumps_kwargs) -> str:
    """``value`` as strict JSON text (``json.dumps(..., allow_nan=False)``): numpy arrays and scalars as lists and
    Python numbers (`jsonable`), and every NaN or infinity (an undefined metric, e.g. OAIR accuracy of a set without
    pairs) as null, which any JSON reader accepts; Python's bare ``NaN`` token is not JSON."""
    def finite(v):
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        if isinstance(v, (np.ndarray, np.generic)):
            return finite(jsonable(v))
        return None if isinstance(v, float) and not np.isfinite(v) else v

    return json.dumps(finite(value), allow_nan=False, default=jsonable, **dumps_kwargs)


def jsonable(value):
    """``json.dumps(..., default=jsonable)``: numpy arrays and scalars as lists and Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")
