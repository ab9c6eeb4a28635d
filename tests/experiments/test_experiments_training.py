"""Experiments that train models: the variant configs, and one smoke training run through train_variants."""

import dataclasses

import pytest

from helpers.tables import assert_percentages, table_rows

from experiments import boundary_losses, boundary_models, upsampling, variants
from oosis_jax.training.configs import get_config


def changed_fields(a, b) -> set[str]:
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    return {f"{k}.{kk}" for k in da if isinstance(da[k], dict) for kk in da[k] if da[k][kk] != db[k][kk]} | \
           {k for k in da if not isinstance(da[k], dict) and da[k] != db[k]}


@pytest.mark.parametrize("module, field, values", [
    (boundary_models, "model.head", {"entangled", "disentangled"}),
    (upsampling, "model.upsample", {"separate", "joint"}),
    (boundary_losses, "loss.boundary_loss", {"dice++", "tversky++", "combo", "wce"}),
])
def test_variants_change_only_what_they_compare(module, field, values):
    base = get_config("synthetic")
    seen = set()
    for label, make in module.VARIANTS.items():
        config = make(base)
        if label == variants.DECODER_VARIANT:  # the extra row beyond the paper: only the decoder changes
            assert changed_fields(base, config) == {"model.decoder"}
            continue
        assert changed_fields(base, config) <= {field}
        group, name = field.split(".")
        seen.add(getattr(getattr(config, group), name))
    assert seen == values


def test_boundary_models_smoke_trains_and_tables(tmp_path):
    trained = boundary_models.main(["--smoke", "--limit", "2", "--variants", "P2ORM-style entangled head",
                                    "--out", str(tmp_path)])
    assert list(trained) == ["P2ORM-style entangled head"] and trained["P2ORM-style entangled head"]["steps"] == 2
    rows = table_rows(tmp_path / "results.md")
    assert [r[0] for r in rows] == ["P2ORM-style entangled head"]
    assert_percentages(rows[0][1:])
    assert (tmp_path / "boundary_pr.png").stat().st_size > 0
    # another subset in the same folder trains beside it (each variant's folder is named by the variant: by
    # position, this one's would have been the first one's, and its config refused)
    trained = boundary_models.main(["--smoke", "--limit", "2", "--variants", "Ours (disentangled b, e)",
                                    "--out", str(tmp_path)])
    assert trained["Ours (disentangled b, e)"]["steps"] == 2
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["ours_disentangled_b_e",
                                                                      "p2orm-style_entangled_head"]


def test_unknown_variant_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        upsampling.main(["--smoke", "--variants", "diagonal", "--out", str(tmp_path)])
    assert "invalid choice: 'diagonal'" in capsys.readouterr().err
    # experiments that train one model have no variants to choose: the flag is refused, not ignored
    from experiments import direct_training, instance_quality

    for script in (direct_training, instance_quality):
        with pytest.raises(SystemExit):
            script.main(["--smoke", "--variants", "bogus", "--out", str(tmp_path)])
        assert "unrecognized arguments: --variants bogus" in capsys.readouterr().err
