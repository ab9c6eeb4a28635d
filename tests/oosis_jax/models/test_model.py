"""Shapes, bilinear initialisation, pyramid pooling and weight loading of the PSPNet (Sec. 3.1)."""

import dataclasses
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments.convert_torch_resnet import convert_state_dict
from oosis_jax.models import (ModelConfig, PSPNet, flat_state, fresh_pspnet, load_pretrained, normalize_images,
                              probabilities)
from oosis_jax.models.outputs import PAD_COLOR
from oosis_jax.models.pspnet import adaptive_avg_pool
from oosis_jax.models.layers import resize_bilinear
from oosis_jax.models.upsample import TransposedUpsample


def forward(model, images, train):
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, images):
        return nnx.merge(graphdef, state)(images, train=train)

    return run(state, images)


@pytest.mark.parametrize("head,upsample,stride", [("disentangled", "joint", 8), ("entangled", "separate", 4)])
def test_outputs_at_input_resolution_for_odd_sizes(head, upsample, stride):
    model = fresh_pspnet(ModelConfig.tiny(3, head=head, upsample=upsample, output_stride=stride), seed=1)
    images = jax.random.normal(jax.random.key(0), (2, 29, 43, 3))
    out = forward(model, images, train=True)
    expected = {"s_logits": (2, 29, 43, 4), "aux_logits": (2, 29, 43, 4)}
    expected.update({"b_logits": (2, 29, 43), "e_logits": (2, 29, 43, 4)} if head == "disentangled"
                    else {"o_logits": (2, 29, 43, 5)})
    assert {k: v.shape for k, v in out.items()} == expected
    assert all(bool(jnp.isfinite(v).all()) for v in out.values())
    probs = probabilities(out)
    np.testing.assert_allclose(probs["o"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs["e"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(1.0 - probs["o"][..., 4], probs["b"], atol=1e-6)
    np.testing.assert_allclose(probs["o"][..., :4], probs["b"][..., None] * probs["e"], atol=1e-5)
    eval_out = nnx.eval_shape(lambda: PSPNet(ModelConfig.tiny(3, head=head))(jnp.zeros((1, 17, 9, 3))))
    assert "aux_logits" not in eval_out and eval_out["s_logits"].shape == (1, 17, 9, 4)


def test_output_stride_sets_feature_resolution_and_upsampling_factor():
    for stride in (4, 8):
        model = nnx.eval_shape(lambda: PSPNet(ModelConfig.tiny(3, output_stride=stride)))  # noqa: B023
        stage3, stage4 = nnx.eval_shape(lambda m: m.backbone(jnp.zeros((1, 30, 41, 3)), False), model)
        assert stage3.shape[1:3] == stage4.shape[1:3] == (-(-30 // stride), -(-41 // stride))
        assert model.be_upsample.kernel.shape == (2 * stride, 2 * stride, 5, 5)
    with pytest.raises(ValueError, match="output_stride"):
        ModelConfig.tiny(3, output_stride=16)


def test_dropout_drops_whole_channels_of_each_image_as_dropout2d():
    model = fresh_pspnet(ModelConfig.tiny(2, dropout=0.5))
    x = jnp.ones((4, 6, 7, 32))
    kept = np.asarray(model.dropout(x, deterministic=False))
    np.testing.assert_array_equal(kept, kept[:, :1, :1, :] * np.ones_like(kept))  # one draw per image and channel
    assert set(np.unique(kept)) == {0.0, 2.0} and 0.3 < (kept[:, 0, 0] == 0).mean() < 0.7
    np.testing.assert_array_equal(model.dropout(x, deterministic=True), x)


def test_bfloat16_compute_keeps_float32_weights_and_outputs():
    model = nnx.eval_shape(lambda: PSPNet(ModelConfig.tiny(2, dtype="bfloat16")))
    assert {v.dtype for v in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype("float32")}
    out = nnx.eval_shape(lambda: PSPNet(ModelConfig.tiny(2, dtype="bfloat16"))(jnp.zeros((1, 24, 24, 3))))
    assert out["s_logits"].dtype == jnp.float32


@pytest.mark.parametrize("joint", [False, True])
def test_transposed_upsample_is_exact_bilinear_inside_the_border(joint):
    up = TransposedUpsample(5, 8, joint=joint)
    x = jax.random.normal(jax.random.key(3), (2, 6, 7, 5))
    y = up(x)
    reference = jax.image.resize(x, (2, 48, 56, 5), "bilinear")
    assert y.shape == (2, 48, 56, 5)
    np.testing.assert_allclose(y[:, 4:-4, 4:-4], reference[:, 4:-4, 4:-4], atol=1e-5)
    assert up.kernel.shape == ((16, 16, 5, 5) if joint else (16, 16, 1, 5))


def test_a_pyramid_branch_resized_to_a_smaller_map_keeps_its_bins():
    """6 bins back to a 2-row map (an input under 6 stride-8 features): no antialiasing blends the bins."""
    bins = jnp.asarray([0.0, 0.0, 0.0, 1.0, 1.0, 1.0]).reshape(1, 6, 1, 1)
    np.testing.assert_allclose(np.asarray(resize_bilinear(bins, 2, 1))[0, :, 0, 0], [0.0, 1.0])


def test_joint_upsample_mixes_channels_once_trained_separate_never_does():
    joint, separate = TransposedUpsample(5, 8, joint=True), TransposedUpsample(5, 8, joint=False)
    joint.kernel[...] = joint.kernel[...].at[:, :, 0, 3].set(0.5)
    x = jnp.zeros((1, 3, 3, 5)).at[..., 0].set(1.0)
    assert float(jnp.abs(joint(x)[..., 3]).max()) > 0.1
    assert float(jnp.abs(separate(x)[..., 1:]).max()) == 0.0


@pytest.mark.parametrize("h,w,bins", [(7, 5, 6), (13, 9, 3), (1, 4, 2), (29, 31, 6)])
def test_adaptive_pooling_matches_pytorch_bin_edges(h, w, bins):
    x = np.random.default_rng(0).normal(size=(1, h, w, 2)).astype(np.float32)
    expected = np.zeros((1, bins, bins, 2), np.float32)
    for i in range(bins):
        for j in range(bins):
            r0, r1 = (i * h) // bins, -((-(i + 1) * h) // bins)
            c0, c1 = (j * w) // bins, -((-(j + 1) * w) // bins)
            expected[0, i, j] = x[0, r0:r1, c0:c1].mean(axis=(0, 1))
    np.testing.assert_allclose(adaptive_avg_pool(jnp.asarray(x), bins), expected, atol=1e-5)


def test_normalize_images_contract():
    images = np.broadcast_to(PAD_COLOR, (1, 2, 3, 3))
    out = normalize_images(images)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (1, 2, 3, 3)
    assert float(np.abs(out).max()) < 0.02
    with pytest.raises(ValueError, match="uint8"):
        normalize_images(images.astype(np.float32))
    with pytest.raises(ValueError, match="non-empty"):
        normalize_images(np.zeros((1, 0, 3, 3), np.uint8))


def torch_resnet_state_dict(config: ModelConfig) -> dict[str, np.ndarray]:
    """A PyTorch-named (OIHW) ResNet state dict with the shapes of ``config``, random values."""
    rng = np.random.default_rng(0)
    shapes, stem = {}, config.stem_width

    def conv(name, cout, cin, k):
        shapes[f"{name}.weight"] = (cout, cin, k, k)

    def bn(name, c):
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{field}"] = (c,)

    conv("conv1", stem, 3, 3), bn("bn1", stem), conv("conv2", stem, stem, 3), bn("bn2", stem)
    conv("conv3", 2 * stem, stem, 3), bn("bn3", 2 * stem)
    cin = 2 * stem
    for k, blocks in enumerate(config.stage_blocks):
        width = config.width * 2**k
        for i in range(blocks):
            p = f"layer{k + 1}.{i}"
            conv(f"{p}.conv1", width, cin, 1), bn(f"{p}.bn1", width)
            conv(f"{p}.conv2", width, width, 3), bn(f"{p}.bn2", width)
            conv(f"{p}.conv3", 4 * width, width, 1), bn(f"{p}.bn3", 4 * width)
            if i == 0 and (k == 1 or cin != 4 * width):
                conv(f"{p}.downsample.0", 4 * width, cin, 1), bn(f"{p}.downsample.1", 4 * width)
            cin = 4 * width
    state = {f"module.{n}": rng.uniform(0.5, 1.5, s).astype(np.float32) for n, s in shapes.items()}
    state["module.fc.weight"] = np.zeros((1000, cin), np.float32)
    state["module.bn1.num_batches_tracked"] = np.zeros((), np.int64)
    return state


def test_converted_resnet50_names_and_shapes_match_the_model():
    config = ModelConfig.resnet50(8)
    converted = convert_state_dict(torch_resnet_state_dict(config))
    model = nnx.eval_shape(lambda: PSPNet(config))
    backbone = {n: v.shape for n, v in flat_state(model).items() if n.startswith("backbone/")}
    assert {n: a.shape for n, a in converted.items()} == backbone


def test_load_pretrained_copies_converted_weights(tmp_path):
    config = ModelConfig.tiny(2)
    torch_state = torch_resnet_state_dict(config)
    np.savez(tmp_path / "w.npz", **convert_state_dict(torch_state))
    model = fresh_pspnet(config)
    head_before = np.asarray(model.s_head.kernel[...])
    loaded = load_pretrained(model, tmp_path / "w.npz")
    assert len(loaded) == sum(1 for n in flat_state(model) if n.startswith("backbone/"))
    np.testing.assert_array_equal(model.backbone.layer2[0].conv2.kernel[...],
                                  torch_state["module.layer2.0.conv2.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.backbone.bn1.var[...], torch_state["module.bn1.running_var"])
    np.testing.assert_array_equal(model.s_head.kernel[...], head_before)


def test_load_pretrained_rejects_bad_files(tmp_path):
    model = fresh_pspnet(ModelConfig.tiny(2))
    with pytest.raises(FileNotFoundError):
        load_pretrained(model, tmp_path / "missing.npz")
    np.savez(tmp_path / "unknown.npz", **{"backbone/nope/kernel": np.zeros(3)})
    with pytest.raises(ValueError, match="not in the model"):
        load_pretrained(model, tmp_path / "unknown.npz")
    np.savez(tmp_path / "shape.npz", **{"backbone/bn1/scale": np.zeros(3)})
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(model, tmp_path / "shape.npz")
    with pytest.raises(ValueError, match="not a ResNet backbone tensor"):
        convert_state_dict({"classifier.weight": np.zeros((2, 2))})
    variance = np.asarray(flat_state(model)["backbone/bn1/var"].get_value())
    np.savez(tmp_path / "variance.npz", **{"backbone/bn1/var": variance - 2})  # every output NaN, silently
    with pytest.raises(ValueError, match=r"negative BatchNorm variances in \['backbone/bn1/var'\]"):
        load_pretrained(model, tmp_path / "variance.npz")
    np.savez(tmp_path / "text.npz", **{"backbone/bn1/var": np.array(["a"] * len(variance))})  # numpy's TypeError
    with pytest.raises(ValueError, match=r"not floating-point weights: \['backbone/bn1/var \(<U1\)'\]"):
        load_pretrained(model, tmp_path / "text.npz")
    np.savez(tmp_path / "ints.npz", **{"backbone/bn1/var": np.ones(len(variance), np.int64)})  # loaded as floats
    with pytest.raises(ValueError, match=r"not floating-point weights: \['backbone/bn1/var \(int64\)'\]"):
        load_pretrained(model, tmp_path / "ints.npz")
    np.savez(tmp_path / "huge.npz", **{"backbone/bn1/var": np.full(len(variance), 1e300)})  # inf as float32
    with pytest.raises(ValueError, match=r"non-finite values \(or beyond float32's range\) in \['backbone/bn1/var'\]"):
        load_pretrained(model, tmp_path / "huge.npz")
    np.savez(tmp_path / "empty.npz")  # would silently train from scratch
    with pytest.raises(ValueError, match="holds no array"):
        load_pretrained(model, tmp_path / "empty.npz")
    stem = np.asarray(flat_state(model)["backbone/conv1/kernel"].get_value())
    np.savez(tmp_path / "torchvision.npz", **{"backbone/conv1/kernel": np.zeros((7, 7) + stem.shape[2:], np.float32)})
    with pytest.raises(ValueError, match="a 7x7 stem .* loads into a model with model.deep_stem=False"):
        load_pretrained(model, tmp_path / "torchvision.npz")


def test_load_pretrained_says_what_a_wrong_file_most_likely_is_and_counts_what_it_leaves(tmp_path):
    config = ModelConfig.tiny(2)
    torch_state = torch_resnet_state_dict(config)
    model = fresh_pspnet(config)
    np.savez(tmp_path / "raw.npz", **torch_state)  # never converted
    with pytest.raises(ValueError, match="these are PyTorch names: convert the state dict with experiments/convert"):
        load_pretrained(model, tmp_path / "raw.npz")
    (tmp_path / "resnet50.pth").write_bytes(b"\x80\x02PK not a zip")
    with pytest.raises(ValueError, match="not a readable npz.*a PyTorch checkpoint: convert it with experiments/"):
        load_pretrained(model, tmp_path / "resnet50.pth")
    flat = fresh_pspnet(dataclasses.replace(config, deep_stem=False))
    deep = convert_state_dict(torch_state)  # the tiny config has the deep stem (conv1-conv3)
    np.savez(tmp_path / "deep.npz", **deep)
    with pytest.raises(ValueError, match="a deep stem .* loads into a model with model.deep_stem=True"):
        load_pretrained(flat, tmp_path / "deep.npz")
    # a state dict saved from named_parameters() has no BatchNorm statistics: they would stay 0/1 unnoticed
    np.savez(tmp_path / "params.npz", **{n: a for n, a in deep.items() if not n.endswith(("/mean", "/var"))})
    with pytest.warns(UserWarning, match=r"params.npz set \d+ of the model's \d+ backbone arrays; \d+ keep their "
                      r"initialisation, e.g. \['backbone/bn1/mean', 'backbone/bn1/var', "):
        load_pretrained(model, tmp_path / "params.npz")


def test_the_converter_reads_an_npz_without_torch_and_names_what_it_cannot_read(tmp_path, capsys):
    from experiments import convert_torch_resnet

    state = torch_resnet_state_dict(ModelConfig.tiny(2))
    np.savez(tmp_path / "state.npz", **state)
    convert_torch_resnet.main([str(tmp_path / "state.npz"), str(tmp_path / "backbone.npz")])
    with np.load(tmp_path / "backbone.npz") as archive:
        assert sorted(archive.files) == sorted(convert_state_dict(state))
    assert all(name.startswith("encoder/") for name in
               convert_state_dict(state, prefix="encoder"))  # the bottleneck check follows the prefix
    with pytest.raises(SystemExit) as stop:
        convert_torch_resnet.main([str(tmp_path / "missing.pth"), str(tmp_path / "out.npz")])
    assert stop.value.code == 2 and "missing.pth: no such file" in capsys.readouterr().err
    convert_torch_resnet.main([str(tmp_path / "state.npz"), str(tmp_path / "named")])  # np.savez adds .npz
    assert capsys.readouterr().out.strip().endswith(f"arrays to {tmp_path / 'named.npz'}")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "state.npz").read_bytes()[:2000])
    np.savez(tmp_path / "nested.npz", state_dict=np.array([state], dtype=object), epoch=3)
    basic = {n: a for n, a in state.items() if ".conv3." not in n and ".bn3." not in n}
    np.savez(tmp_path / "basic.npz", **basic)  # ResNet-18/34's blocks: two 3x3 convolutions, no conv3
    (tmp_path / "text.npz").write_text("conv1.weight 0.1 0.2\n")
    (tmp_path / "state.bin").write_bytes((tmp_path / "state.npz").read_bytes())  # an npz by another name
    convert_torch_resnet.main([str(tmp_path / "state.bin"), str(tmp_path / "from_bin.npz")])
    import zipfile  # torch.save's own zip layout (PyTorch >= 1.6) is a .pth, not an npz: it goes to torch.load

    with zipfile.ZipFile(tmp_path / "torch_layout.pth", "w") as archive:
        archive.writestr("archive/data.pkl", b"pickled state dict")
        archive.writestr("archive/data/0", b"\0" * 16)
    assert not convert_torch_resnet._npz_by_another_name(str(tmp_path / "torch_layout.pth"))
    assert convert_torch_resnet._npz_by_another_name(str(tmp_path / "state.bin"))
    if importlib.util.find_spec("torch") is None:  # said so, not misread as an npz
        with pytest.raises(SystemExit) as stop:
            convert_torch_resnet.main([str(tmp_path / "torch_layout.pth"), str(tmp_path / "out.npz")])
        assert stop.value.code == 2 and "reading a .pth file needs PyTorch" in capsys.readouterr().err
    np.savez(tmp_path / "labels.npz", **dict(state, **{"module.conv1.weight": np.ones((8, 3, 7, 7), np.int64)}))
    for bad_output, message in ((tmp_path, "is a folder: name the npz file to write"),
                                (tmp_path / "nowhere" / "out.npz", "nowhere does not exist")):
        with pytest.raises(SystemExit) as stop:
            convert_torch_resnet.main([str(tmp_path / "state.npz"), str(bad_output)])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    for name, message in (("cut.npz", "cut.npz is not a readable npz archive of arrays: BadZipFile"),
                          ("text.npz", "text.npz is not a readable npz archive of arrays: not a zip file"),
                          ("labels.npz", "'module.conv1.weight' is int64, not a floating-point tensor"),
                          ("", "is a folder: give the checkpoint file"),
                          ("nested.npz", "nested.npz: entry 'state_dict' is an object array, not a tensor (e.g. a "
                                         "nested dict"),
                          ("basic.npz", "no conv3: basic blocks (ResNet-18/34), but the model's stages are "
                                        "bottleneck blocks")):
        with pytest.raises(SystemExit) as stop:
            convert_torch_resnet.main([str(tmp_path / name), str(tmp_path / "out.npz")])
        error = capsys.readouterr().err
        assert stop.value.code == 2 and message in error and error.count("\n") == 1, error


def perturb_and_save(model, path, seed: int) -> dict:
    """Perturb every array of ``model`` in place, as training would (variances kept positive), save them to the
    npz file ``path`` and return them by name."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, variable in flat_state(model).items():
        value = np.asarray(variable.get_value())
        value = np.abs(value) + 0.5 if name.endswith("/var") else value + rng.normal(0, 0.1, value.shape)
        arrays[name] = value
        variable.set_value(jnp.asarray(value, variable.get_value().dtype))
    np.savez(path, **arrays)
    return arrays


def test_a_deeper_network_grown_from_trained_weights_computes_the_same_function(tmp_path):
    # The blocks a deeper stage_blocks or decoder_blocks adds start as identities (their last BatchNorm scale
    # is 0), so a shallower run's weights (with every array perturbed, as training would) give the same outputs.
    shallow = fresh_pspnet(ModelConfig.tiny(2, decoder="unet", decoder_width=8, output_stride=4), seed=3)
    arrays = perturb_and_save(shallow, tmp_path / "shallow.npz", seed=0)
    deep = fresh_pspnet(ModelConfig.tiny(2, decoder="unet", decoder_width=8, output_stride=4,
                                         stage_blocks=(2, 3, 2, 2), decoder_blocks=2), seed=4)
    with pytest.warns(UserWarning, match=r"shallow.npz set \d+ of the model's \d+ backbone arrays; \d+ keep their "
                      r"initialisation, e.g. \['backbone/layer1/1/"):  # the added blocks, as intended
        loaded = load_pretrained(deep, tmp_path / "shallow.npz")
    assert sorted(loaded) == sorted(arrays) and len(flat_state(deep)) > len(arrays)
    images = jax.random.normal(jax.random.key(0), (2, 21, 30, 3))
    before, after = forward(shallow, images, train=False), forward(deep, images, train=False)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-4, atol=1e-5)
    for bn in (deep.decoder.blocks[1].bn, deep.backbone.layer2[1].bn3):
        bn.scale.set_value(jnp.ones_like(bn.scale.get_value()))
        assert not np.allclose(forward(deep, images, train=False)["b_logits"], before["b_logits"], atol=1e-3)
        bn.scale.set_value(jnp.zeros_like(bn.scale.get_value()))


def test_wider_bottlenecks_grown_from_trained_weights_compute_the_same_function(tmp_path):
    # width 4 -> 8 with expansion 4 -> 2: the features between blocks keep their channels, each block's inside
    # doubles; the added channels start unread (zero weights into conv3 and conv2's old outputs).
    narrow = fresh_pspnet(ModelConfig.tiny(2, decoder="unet", decoder_width=8, output_stride=4), seed=3)
    arrays = perturb_and_save(narrow, tmp_path / "narrow.npz", seed=1)
    wide_config = ModelConfig.tiny(2, decoder="unet", decoder_width=8, output_stride=4, width=8,
                                   bottleneck_expansion=2)
    wide = fresh_pspnet(wide_config, seed=4)
    assert wide.backbone.layer3[0].conv3.kernel.shape == (1, 1, 32, 64)  # narrow: (1, 1, 16, 64)
    assert sorted(load_pretrained(wide, tmp_path / "narrow.npz")) == sorted(arrays)
    images = jax.random.normal(jax.random.key(0), (2, 21, 30, 3))
    before, after = forward(narrow, images, train=False), forward(wide, images, train=False)
    for key in before:
        np.testing.assert_allclose(after[key], before[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(wide.backbone.layer3[0].conv3.kernel[...][:, :, 16:], 0.0)
    # the added channels are live: once conv3 reads them the function changes
    conv3 = wide.backbone.layer3[0].conv3
    conv3.kernel.set_value(conv3.kernel.get_value().at[:, :, 16:].set(0.5))
    assert not np.allclose(forward(wide, images, train=False)["b_logits"], before["b_logits"], atol=1e-3)
    # only a block's inside may grow: a wider stem is still a shape mismatch
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(fresh_pspnet(dataclasses.replace(wide_config, stem_width=16)), tmp_path / "narrow.npz")
    # and only a file narrower alike everywhere: one narrower array among full-width ones is a mistake, not padded
    full = perturb_and_save(fresh_pspnet(wide_config, seed=5), tmp_path / "full.npz", seed=2)
    full["backbone/layer1/0/bn1/mean"] = full["backbone/layer1/0/bn1/mean"][:2]
    np.savez(tmp_path / "one_narrow.npz", **full)
    with pytest.raises(ValueError, match=r"shape mismatch for 1 arrays, e.g. \['backbone/layer1/0/bn1/mean: file "):
        load_pretrained(fresh_pspnet(wide_config, seed=6), tmp_path / "one_narrow.npz")
    half = dict(arrays, **{n: full[n] for n in full if n.startswith("backbone/layer2/")})  # blocks of two widths
    np.savez(tmp_path / "mixed.npz", **half)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(fresh_pspnet(wide_config, seed=6), tmp_path / "mixed.npz")
