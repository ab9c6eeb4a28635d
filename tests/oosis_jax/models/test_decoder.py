"""The U-Net boundary decoder option (``ModelConfig.decoder = "unet"``, beyond the paper)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers.networks import quick_pspnet

from oosis_jax.models import ModelConfig, PSPNet, flat_state, probabilities
from oosis_jax.training import input_pipeline
from oosis_jax.training import loop as train
from oosis_jax.training.configs import get_config


def unet(num_classes=3, **overrides):
    return ModelConfig.tiny(num_classes, decoder="unet", decoder_width=8, **overrides)


def abstract_outputs(config, shape, train):
    """Output shapes and dtypes of ``PSPNet(config)`` on images of ``shape``, traced only (no compilation)."""
    return nnx.eval_shape(lambda: PSPNet(config, rngs=nnx.Rngs(0))(jnp.zeros(shape), train=train))


@pytest.mark.parametrize("height,width,stride,head", [(30, 41, 4, "disentangled"), (30, 41, 8, "disentangled"),
                                                      (33, 17, 4, "disentangled"), (33, 17, 8, "entangled"),
                                                      (5, 7, 8, "disentangled")])
def test_unet_outputs_at_input_resolution_for_odd_sizes(height, width, stride, head):
    config = unet(3, output_stride=stride, head=head)
    out = abstract_outputs(config, (2, height, width, 3), train=True)
    expected = {"s_logits": (2, height, width, 4), "aux_logits": (2, height, width, 4)}
    expected.update({"b_logits": (2, height, width), "e_logits": (2, height, width, 4)} if head == "disentangled"
                    else {"o_logits": (2, height, width, 5)})
    assert {k: v.shape for k, v in out.items()} == expected
    assert {v.dtype for v in out.values()} == {jnp.dtype("float32")}
    eval_out = abstract_outputs(config, (1, height, width, 3), train=False)
    assert "aux_logits" not in eval_out
    assert {k: v.shape[1:3] for k, v in eval_out.items()} == {k: (height, width) for k in eval_out}


@pytest.mark.parametrize("stride", [4, 8])
def test_backbone_features_have_the_decoder_strides(stride):
    config = unet(3, output_stride=stride)
    model = nnx.eval_shape(lambda: PSPNet(config))
    features = nnx.eval_shape(lambda m: m.backbone.features(jnp.zeros((1, 30, 41, 3)), False), model)
    ceil = lambda n, s: -(-n // s)  # noqa: E731
    assert features["stem"].shape == (1, 15, 21, model.backbone.stem_channels)
    assert features["stage1"].shape == (1, 8, 11, model.backbone.stage1_channels)
    for name, channels in (("stage3", model.backbone.stage3_channels), ("stage4", model.backbone.stage4_channels)):
        assert features[name].shape == (1, ceil(30, stride), ceil(41, stride), channels)
    stage3, stage4 = nnx.eval_shape(lambda m: m.backbone(jnp.zeros((1, 30, 41, 3)), False), model)
    assert stage3.shape == features["stage3"].shape and stage4.shape == features["stage4"].shape
    for deep_stem in (True, False):  # the 7x7 stem has stem_width channels, the deep one twice that
        m = nnx.eval_shape(lambda: PSPNet(unet(3, deep_stem=deep_stem)))  # noqa: B023
        stem = nnx.eval_shape(lambda m: m.backbone.features(jnp.zeros((1, 9, 9, 3)), False)["stem"], m)
        assert stem.shape[-1] == m.backbone.stem_channels == (16 if deep_stem else 8)


def test_none_keeps_the_papers_upsampling_and_unet_replaces_it():
    paper = nnx.eval_shape(lambda: PSPNet(ModelConfig.tiny(3)))
    assert ModelConfig.tiny(3).decoder == "none"
    assert hasattr(paper, "s_upsample") and hasattr(paper, "be_upsample") and not hasattr(paper, "decoder")
    names = set(flat_state(paper))
    assert any(n.startswith("s_upsample/") for n in names) and any(n.startswith("be_upsample/") for n in names)

    config = ModelConfig.tiny(3, decoder="unet", decoder_width=6)
    model = nnx.eval_shape(lambda: PSPNet(config))
    assert not hasattr(model, "s_upsample") and not hasattr(model, "be_upsample")
    names = set(flat_state(model))
    assert not any("upsample" in n for n in names)
    assert any(n.startswith("decoder/") for n in names)
    # every head is a 1x1 convolution of the decoder's full-resolution features
    assert model.decoder.out_channels == 6
    for head, cout in (("s_head", 4), ("b_head", 1), ("e_head", 4)):
        assert getattr(model, head).kernel.shape == (1, 1, 6, cout)
    assert model.decoder.full_b.conv.kernel.shape[-1] == 3  # width // 2 at full resolution


def test_config_validation_and_round_trip():
    with pytest.raises(ValueError, match="decoder"):
        ModelConfig.tiny(3, decoder="fpn")
    for width in (1, 0, -4):
        with pytest.raises(ValueError, match="decoder_width"):
            ModelConfig.tiny(3, decoder="unet", decoder_width=width)
    ModelConfig.tiny(3, decoder="unet", decoder_width=2)  # the smallest allowed
    config = unet(3, output_stride=4)
    assert ModelConfig.from_dict(dataclasses.asdict(config)) == config
    # configurations written before the option existed read back as the paper's network
    old = {k: v for k, v in dataclasses.asdict(ModelConfig.tiny(3)).items() if not k.startswith("decoder")}
    assert ModelConfig.from_dict(old).decoder == "none"


def test_tiny_unet_gradient_steps_reduce_the_loss_on_a_fixed_batch():
    steps = 6
    model = ModelConfig.tiny(5, dropout=0.0, deep_stem=False, pyramid_bins=(1, 2), decoder="unet",
                             decoder_width=8)
    config = get_config("smoke", num_steps=steps, base_lr=0.05, model=model)
    batch = next(iter(input_pipeline.eval_dataset(input_pipeline.SyntheticScenes(2, (24, 32)), batch_size=2)))
    # the training loop's own step, on a model built without eager initialisation (`quick_pspnet`)
    graphdef, params, stats, rng_state = nnx.split(quick_pspnet(model), nnx.Param, nnx.BatchStat, ...)
    assert "decoder" in params and not any("upsample" in k for k in params)
    state = train.TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                             opt_state=jax.jit(train.make_optimizer(config, steps).init)(params))
    train_step = train.make_train_step(graphdef, rng_state, config)
    device_batch = jax.tree.map(jnp.asarray, batch)
    losses = []
    for _ in range(steps):
        state, metrics = train_step(state, device_batch, np.int32(steps))
        losses.append(float(metrics["loss"][0]))
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < 0.9 * losses[0], losses
    # the trained decoder's outputs are finite probabilities at the input resolution
    forward = jax.jit(lambda s: probabilities(nnx.merge(graphdef, s.params, s.batch_stats, rng_state)(
        device_batch["image"], train=False)))  # one program, not one per operation
    probs = forward(state)
    assert probs["b"].shape == batch["image"].shape[:3]
    assert bool(jnp.isfinite(probs["o"]).all())
    np.testing.assert_allclose(probs["o"].sum(-1), 1.0, atol=1e-5)
