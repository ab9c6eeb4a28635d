"""Eq. (4), supplement Theorem 1 and the Tab. 3b boundary losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oosis_jax.training import losses
from oosis_jax.models import probabilities


def random_targets(key, shape=(2, 6, 7)):
    kb, ke, ks, kd = jax.random.split(key, 4)
    boundary = (jax.random.uniform(kb, shape) < 0.4).astype(jnp.float32)
    raw = (jax.random.uniform(ke, shape + (4,)) < 0.5).astype(jnp.float32).at[..., 0].set(1.0)
    orientation = raw / raw.sum(-1, keepdims=True) * boundary[..., None]
    semantic = jax.random.randint(ks, shape, 0, 3)
    return {"semantic": semantic, "boundary": boundary, "orientation": orientation}


def random_outputs(key, shape=(2, 6, 7)):
    kb, ke, ks = jax.random.split(key, 3)
    return {"s_logits": 2 * jax.random.normal(ks, shape + (3,)), "b_logits": 3 * jax.random.normal(kb, shape),
            "e_logits": 3 * jax.random.normal(ke, shape + (4,))}


@pytest.mark.parametrize("seed", range(5))
def test_theorem1_oriented_ce_equals_boundary_ce_plus_masked_orientation_ce(seed):
    outputs = random_outputs(jax.random.key(seed))
    batch = random_targets(jax.random.key(100 + seed))
    valid = jnp.ones_like(batch["boundary"])
    o = probabilities(outputs)["o"]
    target_o = jnp.concatenate([batch["boundary"][..., None] * batch["orientation"],
                                1.0 - batch["boundary"][..., None]], axis=-1)
    lhs = -(target_o * jnp.log(o)).sum()
    b_sum, _ = losses.boundary_bce(outputs["b_logits"], batch["boundary"], valid)
    e_sum, _ = losses.orientation_ce(outputs["e_logits"], batch["orientation"], batch["boundary"], valid)
    np.testing.assert_allclose(lhs, b_sum + e_sum, rtol=1e-5)
    # The entangled CE on logits log(o) is the same quantity.
    o_sum, _ = losses.oriented_ce(jnp.log(o), batch["boundary"], batch["orientation"], valid)
    np.testing.assert_allclose(o_sum, lhs, rtol=1e-5)


def test_semantic_ce_ignores_unlabelled_pixels():
    logits = jnp.array([[[[2.0, 0.0], [0.0, 5.0]]]])
    semantic = jnp.array([[[0, losses.IGNORE_LABEL]]])
    total, count = losses.semantic_ce(logits, semantic)
    assert float(count) == 1.0
    np.testing.assert_allclose(total, -jax.nn.log_softmax(jnp.array([2.0, 0.0]))[0], rtol=1e-6)


def test_weighted_bce_weights_boundary_pixels_by_w():
    logits, valid = jnp.zeros((1, 1, 2)), jnp.ones((1, 1, 2))
    total, count = losses.boundary_bce(logits, jnp.array([[[1.0, 0.0]]]), valid, weight=0.9)
    np.testing.assert_allclose(total, (0.9 + 0.1) * np.log(2.0), rtol=1e-6)
    positive, _ = losses.boundary_bce(logits, jnp.array([[[1.0, 1.0]]]), valid, weight=0.9)
    np.testing.assert_allclose(positive, 2 * 0.9 * np.log(2.0), rtol=1e-6)
    assert float(count) == 2.0


def test_orientation_ce_only_counts_boundary_pixels():
    e_logits = jnp.zeros((1, 1, 2, 4))
    orientation = jnp.array([[[[1.0, 0, 0, 0], [0, 0, 0, 0]]]])
    total, _ = losses.orientation_ce(e_logits, orientation, jnp.array([[[1.0, 0.0]]]), jnp.ones((1, 1, 2)))
    np.testing.assert_allclose(total, np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("name", losses.BOUNDARY_LOSSES)
def test_boundary_losses_prefer_correct_predictions(name):
    batch = random_targets(jax.random.key(7))
    config = losses.LossConfig(boundary_loss=name, aux_weight=0.0)
    good = {"s_logits": jnp.zeros((2, 6, 7, 3)), "e_logits": jnp.zeros((2, 6, 7, 4)),
            "b_logits": 8.0 * (2 * batch["boundary"] - 1)}
    bad = dict(good, b_logits=-good["b_logits"])
    b_good, n_good = losses.loss_terms(good, batch, config)["b"]
    b_bad, _ = losses.loss_terms(bad, batch, config)["b"]
    assert float(b_good / n_good) < 0.05 < float(b_bad / n_good)
    grad = jax.grad(lambda b: losses.total_loss(losses.loss_terms(dict(good, b_logits=b), batch, config), config))
    assert bool(jnp.isfinite(grad(jnp.zeros((2, 6, 7)))).all())


def test_dice_pp_is_tversky_pp_at_one_half_and_matches_formula():
    batch = random_targets(jax.random.key(3))
    logits = jax.random.normal(jax.random.key(4), (2, 6, 7))
    valid = jnp.ones_like(logits)
    total, count = losses.tversky_pp(logits, batch["boundary"], valid, 0.5, 0.5, 2.0, smooth=0.0)
    p, y = np.asarray(jax.nn.sigmoid(logits)), np.asarray(batch["boundary"])
    tp, fp, fn = (p * y).sum((1, 2)), ((p * (1 - y)) ** 2).sum((1, 2)), (((1 - p) * y) ** 2).sum((1, 2))
    np.testing.assert_allclose(total, (1 - 2 * tp / (2 * tp + fp + fn)).sum(), rtol=1e-5)
    assert float(count) == 2
    # Sec. 5.6's asymmetric weights: alpha on the missed boundary (FN), beta on the false alarms (FP)
    total, _ = losses.tversky_pp(logits, batch["boundary"], valid, 0.8, 0.2, 2.0, smooth=1.0)
    np.testing.assert_allclose(total, (1 - (tp + 1) / (tp + 0.8 * fn + 0.2 * fp + 1)).sum(), rtol=1e-5)


def test_combo_is_weighted_ce_plus_dice_by_formula():
    batch = random_targets(jax.random.key(7))
    logits = jax.random.normal(jax.random.key(8), (2, 6, 7))
    valid = jnp.ones_like(logits).at[1, :2].set(0.0)  # image 1: 2 rows unlabelled
    total, count = losses.combo(logits, batch["boundary"], valid, alpha=0.3, weight=0.9, smooth=1.0)
    p, y, v = (np.asarray(a, np.float64) for a in (jax.nn.sigmoid(logits), batch["boundary"], valid))
    wce = -(0.9 * y * np.log(p) + 0.1 * (1 - y) * np.log(1 - p))
    wce = (wce * v).sum((1, 2)) / v.sum((1, 2))
    tp, fp, fn = ((p * y * v).sum((1, 2)), (p * (1 - y) * v).sum((1, 2)), ((1 - p) * y * v).sum((1, 2)))
    dice = (2 * tp + 1) / (2 * tp + fp + fn + 1)
    np.testing.assert_allclose(total, (0.3 * wce + 0.7 * (1 - dice)).sum(), rtol=1e-5)
    assert float(count) == 2


def test_total_loss_is_eq4_plus_weighted_aux_and_entangled_uses_5_way_ce():
    batch = random_targets(jax.random.key(5))
    outputs = random_outputs(jax.random.key(6))
    outputs["aux_logits"] = outputs["s_logits"] * 0.5
    config = losses.LossConfig()
    terms = losses.loss_terms(outputs, batch, config)
    assert set(terms) == {"s", "aux", "b", "e"}
    expected = sum(t / c for k, (t, c) in terms.items() if k != "aux") + 0.4 * terms["aux"][0] / terms["aux"][1]
    np.testing.assert_allclose(losses.total_loss(terms, config), expected, rtol=1e-6)
    entangled = {"s_logits": outputs["s_logits"], "o_logits": jnp.zeros((2, 6, 7, 5))}
    o_terms = losses.loss_terms(entangled, batch, config)
    assert set(o_terms) == {"s", "o"}
    np.testing.assert_allclose(o_terms["o"][0] / o_terms["o"][1], np.log(5.0), rtol=1e-6)


def test_loss_config_rejects_unknown_names():
    with pytest.raises(ValueError, match="boundary_loss"):
        losses.LossConfig(boundary_loss="focal")
    with pytest.raises(ValueError, match="boundary_weight"):
        losses.LossConfig(boundary_weight=1.5)


def test_band_orientation_spreads_e_one_pixel_around_the_boundary():
    boundary = np.zeros((1, 6, 5), np.float32)
    orientation = np.zeros((1, 6, 5, 4), np.float32)
    boundary[0, 3, :] = 1.0
    orientation[0, 3, :3, 3] = 1.0  # occludes the pixel below
    orientation[0, 3, 3:, 1] = 1.0  # occludes the pixel to the right
    mask, target = losses.band_orientation(jnp.asarray(boundary), jnp.asarray(orientation), 1)
    mask, target = np.asarray(mask), np.asarray(target)
    np.testing.assert_array_equal(mask[0, :, 0], [0, 0, 1, 1, 1, 0])
    np.testing.assert_allclose(target[0, 3], orientation[0, 3])  # boundary pixels keep their own E
    np.testing.assert_allclose(target[0, 2, 0], [0, 0, 0, 1])  # above: only "bottom" pixels in reach
    np.testing.assert_allclose(target[0, 4, 3], [0, 2 / 3, 0, 1 / 3], atol=1e-6)  # mean of three in reach
    np.testing.assert_allclose(target[mask > 0].sum(-1), 1.0, atol=1e-6)


def test_orientation_band_trains_e_near_the_boundary_too():
    rng = np.random.default_rng(0)
    boundary = np.zeros((1, 6, 5), np.float32)
    boundary[0, 3, :] = 1.0
    orientation = np.zeros((1, 6, 5, 4), np.float32)
    orientation[0, 3, :, 3] = 1.0
    batch = {"semantic": jnp.zeros((1, 6, 5), jnp.int32), "boundary": jnp.asarray(boundary),
             "orientation": jnp.asarray(orientation)}
    outputs = {"s_logits": jnp.zeros((1, 6, 5, 2)), "b_logits": jnp.zeros((1, 6, 5)),
               "e_logits": jnp.asarray(rng.normal(size=(1, 6, 5, 4)), jnp.float32)}
    paper = losses.loss_terms(outputs, batch, losses.LossConfig())["e"]
    band = losses.loss_terms(outputs, batch, losses.LossConfig(orientation_band=1))["e"]
    assert float(band[0]) > float(paper[0]) and float(band[1]) == float(paper[1])  # more pixels, same count
    logits_off_band = outputs["e_logits"].at[0, 0].set(100.0)  # rows 0, 5 lie outside the band
    moved = losses.loss_terms({**outputs, "e_logits": logits_off_band}, batch, losses.LossConfig(orientation_band=1))
    assert float(moved["e"][0]) == pytest.approx(float(band[0]))
    with pytest.raises(ValueError, match="orientation_band"):
        losses.LossConfig(orientation_band=-1)


def _two_touching_objects():
    """A 1x6 row: background, object 1 (class 1) x2, object 2 (class 2) x2, background; object 1 occludes 2.
    Boundary pixels: column 1 (occludes the background on its left), column 2 (occludes object 2 on its
    right), column 4 (occludes the background on its right)."""
    semantic = jnp.asarray([[[0, 1, 1, 2, 2, 0]]], jnp.int32)
    boundary = jnp.asarray([[[0, 1, 1, 0, 1, 0]]], jnp.float32)
    orientation = np.zeros((1, 1, 6, 4), np.float32)
    orientation[0, 0, 1, 0] = orientation[0, 0, 2, 1] = orientation[0, 0, 4, 1] = 1.0
    return {"semantic": semantic, "boundary": boundary, "orientation": jnp.asarray(orientation)}


def test_contact_share_marks_boundaries_between_objects_only():
    batch = _two_touching_objects()
    share = losses.contact_share(batch["semantic"], batch["boundary"], batch["orientation"])
    np.testing.assert_allclose(share[0, 0], [0, 0, 1, 0, 0, 0])
    # A pixel occluding an object on its right and the background above counts half.
    orientation = batch["orientation"].at[0, 0, 2].set(jnp.asarray([0, 0.5, 0.5, 0]))
    assert float(losses.contact_share(batch["semantic"], batch["boundary"], orientation)[0, 0, 2]) == 0.5
    # Padding (IGNORE_LABEL) is not an object.
    semantic = batch["semantic"].at[0, 0, 3].set(losses.IGNORE_LABEL)
    assert float(losses.contact_share(semantic, batch["boundary"], batch["orientation"])[0, 0, 2]) == 0.0


@pytest.mark.parametrize("boundary_loss", losses.BOUNDARY_LOSSES)
def test_contact_weight_penalises_gaps_between_objects_more(boundary_loss):
    batch = _two_touching_objects()
    outputs = {"s_logits": jnp.zeros((1, 1, 6, 3)), "e_logits": jnp.zeros((1, 1, 6, 4))}

    def b_loss(contact_weight, missed):
        logits = jnp.full((1, 1, 6), -4.0).at[0, 0, jnp.asarray([1, 2, 4])].set(4.0).at[0, 0, missed].set(-4.0)
        config = losses.LossConfig(boundary_loss=boundary_loss, contact_weight=contact_weight)
        total, count = losses.loss_terms({**outputs, "b_logits": logits}, batch, config)["b"]
        return float(total / count)

    # Off, a gap costs the same wherever it is; on, a gap between the two objects (column 2) costs more
    # than one between an object and the background (column 4), and more than with the weight off.
    assert b_loss(0.0, 2) == pytest.approx(b_loss(0.0, 4), rel=1e-5)
    assert b_loss(3.0, 2) > b_loss(3.0, 4) * 1.05
    assert b_loss(3.0, 2) > b_loss(0.0, 2)
    with pytest.raises(ValueError, match="contact_weight"):
        losses.LossConfig(contact_weight=-1.0)
    with pytest.raises(ValueError, match="entangled o head"):
        losses.loss_terms({**outputs, "o_logits": jnp.zeros((1, 1, 6, 5))}, batch,
                          losses.LossConfig(contact_weight=1.0))


def test_smallness_ramps_with_area_and_reaches_the_occluders_ring():
    area = jnp.zeros((1, 5, 7)).at[0, 2, 1].set(25.0).at[0, :, 4:].set(400.0)  # a 25-px and a 400-px object
    m = losses.smallness(area, 100.0)
    assert float(m[0, 2, 1]) == pytest.approx(0.75)
    np.testing.assert_allclose(m[0, 1:4, 0:3], 0.75)  # the 3x3 ring: its boundary pixels on other objects
    assert float(m[0, 0, 6]) == 0.0 and float(m[0, 4, 0]) == 0.0  # large objects and far background: 0


def test_small_weight_weighs_small_instances_in_every_term():
    batch = _two_touching_objects()
    batch["area"] = jnp.asarray([[[0, 2, 2, 500, 500, 0]]], jnp.float32)  # object 1 small, object 2 large
    outputs = random_outputs(jax.random.key(3), (1, 1, 6))
    plain = losses.loss_terms(outputs, batch, losses.LossConfig(boundary_loss="wce"))
    weighted = losses.loss_terms(outputs, batch, losses.LossConfig(boundary_loss="wce", small_weight=2.0))
    for name in ("s", "b", "e"):
        assert float(weighted[name][0]) > float(plain[name][0]) and float(weighted[name][1]) == float(plain[name][1])
    # Only the pixels of the small object and its ring count more: a change at column 5 (background two pixels
    # from object 1) changes both losses by the same amount.
    moved = {**outputs, "s_logits": outputs["s_logits"].at[0, 0, 5].add(3.0)}

    def s_change(config, before):
        return float(losses.loss_terms(moved, batch, config)["s"][0]) - float(before["s"][0])

    assert s_change(losses.LossConfig(boundary_loss="wce", small_weight=2.0), weighted) == pytest.approx(
        s_change(losses.LossConfig(boundary_loss="wce"), plain), rel=1e-5)
    with pytest.raises(ValueError, match="area"):
        losses.loss_terms(outputs, {k: v for k, v in batch.items() if k != "area"}, losses.LossConfig(small_weight=1.0))
    for bad in (dict(small_weight=-1.0), dict(small_area=0.0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            losses.LossConfig(**bad)


@pytest.mark.parametrize("small_weight", [0.0, 2.0])
def test_batch_keys_name_everything_the_loss_reads_and_nothing_more(small_weight):
    config = losses.LossConfig(boundary_loss="wce", small_weight=small_weight)
    batch = _two_touching_objects()
    batch["area"] = jnp.asarray([[[0, 2, 2, 500, 500, 0]]], jnp.float32)
    outputs = random_outputs(jax.random.key(4), (1, 1, 6))
    keys = losses.batch_keys(config)
    assert ("area" in keys) == bool(small_weight)
    whole = losses.loss_terms(outputs, batch, config)
    sent = losses.loss_terms(outputs, {k: batch[k] for k in keys}, config)
    for name in whole:
        assert float(sent[name][0]) == float(whole[name][0])


@pytest.mark.parametrize("boundary_loss", losses.BOUNDARY_LOSSES)
def test_an_image_without_labelled_pixels_changes_no_term(boundary_loss):
    """What a validation batch is padded with (`oosis_jax.training.validation`): an image whose pixels are all
    `IGNORE_LABEL` adds nothing to any term's sum or count, the per-image Dice++/Tversky++/Combo included
    (they counted it as an image, diluting the validation's b loss)."""
    targets, outputs = random_targets(jax.random.key(1)), random_outputs(jax.random.key(2))
    outputs["aux_logits"] = outputs["s_logits"] * 0.5
    padded_targets = {k: jnp.concatenate([v, jnp.zeros_like(v[:1])]) for k, v in targets.items()}
    padded_targets["semantic"] = padded_targets["semantic"].at[-1].set(losses.IGNORE_LABEL)
    padded_outputs = {k: jnp.concatenate([v, v[:1]]) for k, v in outputs.items()}
    config = losses.LossConfig(boundary_loss=boundary_loss, orientation_band=1, contact_weight=0.5)
    plain = losses.loss_terms(outputs, targets, config)
    padded = losses.loss_terms(padded_outputs, padded_targets, config)
    assert sorted(plain) == sorted(padded) == ["aux", "b", "e", "s"]
    for name in plain:
        np.testing.assert_allclose(padded[name], plain[name], rtol=1e-6, err_msg=name)
