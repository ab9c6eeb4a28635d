"""The ``kins`` and ``cocoa`` presets are the paper's training (supplement Sec. 4) and, where the paper says
"as in the implementation", the PSPNet reference's values; the synthetic presets may differ, these may not."""

import pytest

from oosis_jax.training.configs import get_config


@pytest.mark.parametrize("name, classes, resolution", [("kins", 7, (615, 2048)), ("cocoa", 80, None)])
def test_paper_presets_hold_the_paper_s_and_its_reference_s_values(name, classes, resolution):
    config = get_config(name)
    model, augment, loss = config.model, config.augment, config.loss
    # the paper: PSPNet-ResNet-50, 225x225 crops, batch 8, 200 epochs, wCE w = 0.9, Eq. (4) with e given b
    assert (model.stage_blocks, model.width, model.output_stride, model.pyramid_bins) == ((3, 4, 6, 3), 64, 8,
                                                                                          (1, 2, 3, 6))
    assert (model.head, model.upsample, model.decoder, model.num_classes) == ("disentangled", "joint", "none",
                                                                              classes)
    assert (augment.crop_size, config.batch_size, config.num_epochs, config.num_steps) == ((225, 225), 8, 200.0,
                                                                                          None)
    assert (loss.boundary_loss, loss.boundary_weight, loss.orientation_band) == ("wce", 0.9, 0)
    assert (loss.contact_weight, loss.small_weight) == (0.0, 0.0)
    # the reference implementation's: SGD, lr 0.01, momentum 0.9, wd 1e-4, poly 0.9, 10x new layers,
    # scales 0.5-2.0 with flips, aux CE 0.4, no colour jitter
    assert (config.optimizer, config.base_lr, config.momentum, config.weight_decay, config.lr_power) == (
        "sgd", 0.01, 0.9, 1e-4, 0.9)
    assert (config.new_layer_lr_mult, augment.scale_range, augment.flip, loss.aux_weight) == (10.0, (0.5, 2.0),
                                                                                              True, 0.4)
    assert (augment.brightness, augment.contrast, augment.saturation) == (0.0, 0.0, 0.0)
    assert config.eval_resolution == resolution and config.dataset == name
