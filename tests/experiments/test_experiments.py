"""Smoke runs of the experiments that need no training: each writes its table with the expected rows."""

import json

import numpy as np
import pytest

from data.registry import info
from experiments import common, crf_on_gt, flags, jump_vs_expansion, lambda_sweep, oair_baselines
from oosis_jax.inference import heads as heads_lib
from helpers.tables import assert_percentages, table_rows


def smoke_args(tmp_path):
    return ["--smoke", "--out", str(tmp_path)]


def test_crf_on_gt(tmp_path):
    results = crf_on_gt.main(smoke_args(tmp_path))
    rows = table_rows(tmp_path / "results.md")
    assert [r[0] for r in rows] == [crf_on_gt.GT_ROW]
    assert_percentages(rows[0][1:])
    gt = results[crf_on_gt.GT_ROW]
    assert gt["weighted_coverage"] > 0.6 and gt["cycle_percent"] == 0.0
    assert (tmp_path / "oair_iou.png").stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())[crf_on_gt.GT_ROW]["num_images"] == 4


def test_jump_vs_expansion(tmp_path):
    per_method, results = jump_vs_expansion.main(smoke_args(tmp_path) + ["--split", "validation", "--limit", "3"])
    rows = table_rows(tmp_path / "results.md")
    # the header names the split and the images evaluated (it used to call any split's images held-out ones)
    assert "dataset: synthetic (smoke), split `validation`, 3 images" in (tmp_path / "results.md").read_text()
    assert [r[0] for r in rows] == list(jump_vs_expansion.methods())
    jump, expansion = per_method["jump moves (paper)"], per_method["expansion moves"]
    assert np.all(np.isfinite(jump["energy"])) and np.all(jump["seconds"] > 0)
    # The supplement's point: jump moves reach lower energies than one increasing sweep of expansions.
    assert jump["energy"].mean() <= expansion["energy"].mean() + 1e-6
    assert (tmp_path / "energy.png").stat().st_size > 0


def test_jump_vs_expansion_times_warm_minimisers(tmp_path, monkeypatch):
    # the first call of a process paid numba's loading (about 250 ms) inside the first image's time, so the
    # jump moves' ms / image read 4x the expansion moves' where both take about 4 ms
    import crf

    calls = []

    def counted(sigma, occ):
        calls.append(len(calls))
        return crf.expansion_moves(sigma, occ)

    monkeypatch.setattr(jump_vs_expansion, "methods", lambda: {"counted": counted})
    per_method, _ = jump_vs_expansion.run(jump_vs_expansion.flags.setup(
        jump_vs_expansion.flags.parser("", "x").parse_args(smoke_args(tmp_path))))
    images = len(per_method["counted"]["seconds"])
    assert images >= 2 and len(calls) == images + 1  # one untimed call first


def test_lambda_sweep(tmp_path):
    results = lambda_sweep.main(smoke_args(tmp_path))
    rows = table_rows(tmp_path / "results.md")
    assert [r[0] for r in rows] == [f"Joint-Labeling (lambda = {lam:g})" for lam in lambda_sweep.LAMBDAS]
    for row in rows:
        assert_percentages(row[1:5])
        assert float(row[5]) == 0.0  # the CRF's order is acyclic
    assert set(results) == set(lambda_sweep.LAMBDAS)
    assert (tmp_path / "lambda_scenes.png").stat().st_size > 0


def test_experiments_take_the_shipped_model_by_name(tmp_path):
    s = flags.Setup("synthetic", True, tmp_path, "", 2, 1, "test")
    examples = common.held_out_examples(s)
    heads = common.heads("synthetic", examples, s)
    assert [h["b"].shape for h in heads] == [x["instance_map"].shape for x in examples]
    results = lambda_sweep.main(smoke_args(tmp_path) + ["--checkpoint", "synthetic"])
    assert set(results) == set(lambda_sweep.LAMBDAS)
    from oosis_jax.inference.predictor import WEIGHTS_DIR, exported_options

    card = exported_options(WEIGHTS_DIR / "synthetic")
    predictor = common.predictor("synthetic", s)
    assert (predictor.lam, predictor.robustness) == (card["lam"], card["robustness"])  # the card's CRF options


def test_oair_baselines(tmp_path):
    results = oair_baselines.main(smoke_args(tmp_path))
    by_method = results["GT masks"]
    expected = {oair_baselines.OURS, "bottom-y nearer", "larger nearer", "pairwise boundary vote",
                "pairwise boundary vote + random decycling", "noisy depth (log-normal, sigma 0.3)"}
    assert expected <= set(by_method)
    for name, r in by_method.items():
        if name != oair_baselines.OURS:  # baselines order the GT masks themselves: every pair is recovered
            assert r["oair_iou"]["recall"][0] == 1.0 and r["weighted_coverage"] == 1.0
        if "vote" not in name or "decycling" in name:
            assert r["cycle_percent"] == 0.0, name
    assert_percentages([c for r in table_rows(tmp_path / "results.md") for c in r[1:5]])
    stale = tmp_path / "predicted_masks" / "oair_iou.png"  # as a run with --checkpoint leaves it
    stale.parent.mkdir()
    stale.write_bytes(b"an earlier run's picture")
    oair_baselines.main(smoke_args(tmp_path))
    assert not stale.exists() and (tmp_path / "GT_masks" / "oair_iou.png").exists()


def test_noisy_heads_are_distributions_and_validate():
    example = common.held_out_examples(flags.Setup("synthetic", True, None, "", 1, 1, "test"))[0]
    heads = heads_lib.noisy_heads(example, info("synthetic").num_classes, 1.0)
    np.testing.assert_allclose(heads["s"].sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(heads["e"].sum(-1), 1, atol=1e-5)
    assert 0 <= heads["b"].min() and heads["b"].max() <= 1
    with pytest.raises(ValueError, match="noise"):
        heads_lib.noisy_heads(example, 5, -1.0)


def test_bad_limit_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        crf_on_gt.main(["--smoke", "--limit", "0", "--out", str(tmp_path)])
    assert "argument --limit: must be >= 1, got 0" in capsys.readouterr().err
