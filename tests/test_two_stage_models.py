"""Two-stage ASC models: exact reference parameter counts, shapes, names, config and save round trips."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tf_scenes import registry  # noqa: E402
from tf_scenes.errors import ConfigError  # noqa: E402
from tf_scenes.two_stage.model import (  # noqa: E402
    CLASS_CONV,
    CLASS_MAP,
    OUTPUT,
    TwoStageModelConfig,
    build_fcnn,
    build_fsfcnn,
    build_resnet,
    build_two_stage_model,
)


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# Totals of the authors' Keras models (github.com/MihawkHu/DCASE2020_task1) built under TF 2.21.
@pytest.mark.parametrize("arch, classes, total, trainable", [
    ("resnet", 10, 12_980_492, 12_966_444),
    ("resnet", 3, 3_247_758, None),
    ("fcnn", 10, 11_786_711, None),
    ("fcnn", 3, 11_782_546, None),
    ("fsfcnn", 10, 16_539_703, None),
])
def test_reference_parameter_counts(arch, classes, total, trainable):
    model = build_two_stage_model(TwoStageModelConfig(arch=arch, num_classes=classes))
    assert model.count_params() == total
    if trainable is not None:
        assert _trainable(model) == trainable
    out = model.get_layer(OUTPUT).output
    assert tuple(out.shape) == (None, classes)


@pytest.fixture(scope="module")
def small_models():
    keras.utils.set_random_seed(0)
    return {arch: build_two_stage_model(TwoStageModelConfig(arch=arch, num_classes=10, width=0.25))
            for arch in ("resnet", "fcnn", "fsfcnn")}


@pytest.mark.parametrize("arch", ["resnet", "fcnn", "fsfcnn"])
@pytest.mark.parametrize("frames", [400, 423])
def test_fully_convolutional_outputs_are_probabilities(small_models, arch, frames):
    model = small_models[arch]
    x = np.random.default_rng(frames).random((2, frames, 128, 3)).astype("float32")
    p = np.asarray(model(x, training=False))
    assert p.shape == (2, 10)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_width_multiplier_shrinks_models(small_models):
    full = {"resnet": 12_980_492, "fcnn": 11_786_711, "fsfcnn": 16_539_703}
    for arch, model in small_models.items():
        assert 0 < model.count_params() < full[arch] / 8, arch


def test_resnet_layout_splits_frequency_and_strides_time_only(small_models):
    model = small_models["resnet"]
    assert tuple(model.get_layer("freq_low").output.shape) == (None, None, 64, 3)
    assert tuple(model.get_layer("freq_high").output.shape) == (None, None, 64, 3)
    # Fixed-length input: time 400 -> 200 (stem) -> 100 -> 50 -> 25; frequency stays 64 per path.
    fixed = build_resnet(TwoStageModelConfig(arch="resnet", width=0.25, input_frames=400))
    assert tuple(fixed.get_layer("path1_stem_conv").output.shape)[1:3] == (200, 64)
    assert tuple(fixed.get_layer("path2_stack4_block2_add").output.shape)[1:3] == (25, 64)
    assert tuple(fixed.get_layer(CLASS_MAP).output.shape) == (None, 25, 128, 10)
    # Downsampling shortcut: avg-pool + zero channels (no parameters).
    assert fixed.get_layer("path1_stack2_block1_zeropad").count_params() == 0
    assert fixed.get_layer(CLASS_CONV).kernel.shape[:2] == (1, 1)


def test_stable_layer_names(small_models):
    names = {a: {layer.name for layer in m.layers} for a, m in small_models.items()}
    for a in names:
        assert {CLASS_CONV, CLASS_MAP, OUTPUT, "gap"} <= names[a], a
    assert {"block3_conv4", "block1_conv1", "block2_conv2", "attention_dense1"} <= names["fcnn"]
    assert {"block3_conv4", "block4_conv2"} <= names["fsfcnn"]
    assert {"path1_stem_conv", "path2_stack4_block2_unit2_conv", "head_conv"} <= names["resnet"]


def test_class_map_gap_equals_logits(small_models):
    """The named class map is what global average pooling turns into the softmax input."""
    model = small_models["fcnn"]
    sub = keras.Model(model.input, [model.get_layer(CLASS_MAP).output, model.output])
    x = np.random.default_rng(0).random((2, 64, 128, 3)).astype("float32")
    cmap, probs = sub(x, training=False)
    logits = np.asarray(cmap).mean(axis=(1, 2))
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(expected / expected.sum(1, keepdims=True), np.asarray(probs), atol=1e-5)


def test_arch_defaults_for_dropout_and_weight_decay():
    assert TwoStageModelConfig(arch="resnet").resolved_weight_decay == 1e-3
    assert TwoStageModelConfig(arch="fcnn").resolved_weight_decay == 0.0
    assert TwoStageModelConfig(arch="fcnn").resolved_dropout == 0.3
    assert TwoStageModelConfig(arch="fsfcnn").resolved_dropout == 0.5
    m = build_fcnn(TwoStageModelConfig(arch="fcnn", width=0.1, dropout=0.1, weight_decay=1e-4))
    assert [layer.rate for layer in m.layers if isinstance(layer, keras.layers.Dropout)] == [0.1] * 3
    assert m.get_layer("block1_conv1").kernel_regularizer is not None
    assert len(m.losses) == 9  # one L2 term per conv kernel
    r = build_resnet(TwoStageModelConfig(arch="resnet", width=0.1))
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in r.layers)
    assert r.get_layer("head_conv").kernel_regularizer.l2 == pytest.approx(1e-3)


def test_config_round_trip_and_validation():
    cfg = TwoStageModelConfig(arch="fsfcnn", num_classes=10, width=0.5, input_frames=423, dropout=0.2)
    d = cfg.to_dict()
    assert d["arch"] == "fsfcnn" and d["input_frames"] == 423
    assert TwoStageModelConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="num_classes"):
        TwoStageModelConfig.from_dict({"num_classes": 5})
    with pytest.raises(ConfigError, match="widht"):
        TwoStageModelConfig.from_dict({"widht": 1.0})
    with pytest.raises(ConfigError, match="width"):
        TwoStageModelConfig(width=0)
    with pytest.raises(ConfigError, match="arch"):
        build_resnet(TwoStageModelConfig(arch="fcnn"))


def test_registry_builds_two_stage_models():
    assert {"two_stage_resnet", "two_stage_fcnn", "two_stage_fsfcnn"} <= set(registry.list_models())
    m = registry.build("two_stage_fsfcnn", TwoStageModelConfig(arch="fsfcnn", num_classes=3, width=0.1))
    assert tuple(m.output.shape) == (None, 3)
    assert m.name == "two_stage_fsfcnn_3class"
    with pytest.raises(ConfigError, match="arch"):
        registry.build("two_stage_fsfcnn", TwoStageModelConfig(arch="resnet"))
    assert build_fsfcnn(None).count_params() == 16_539_703  # default config = the paper's model


@pytest.mark.parametrize("arch", ["resnet", "fcnn", "fsfcnn"])
def test_get_config_rebuild_and_keras_save_round_trip(small_models, arch, tmp_path):
    model = small_models[arch]
    rebuilt = keras.Model.from_config(model.get_config())
    assert rebuilt.count_params() == model.count_params()
    path = tmp_path / f"{arch}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(1).random((2, 423, 128, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                               rtol=1e-6, atol=1e-7)
