"""DcaseNet v1/v2/v3: parameter counts, output shapes, task models sharing weights, save/load."""

import dataclasses

import keras
import numpy as np
import pytest

from tf_scenes import registry
from tf_scenes.config import from_dict, to_dict
from tf_scenes.errors import ConfigError
from tf_scenes.dcasenet.model import (
    VARIANTS,
    DcaseNetConfig,
    build_dcasenet,
    build_task_models,
    count_parameters,
    output_frames,
    sed_loss,
    trim_to_shorter,
)

SMALL = 0.25  # width for cheap forward passes; shapes do not depend on it


def small(version):
    return dataclasses.replace(VARIANTS[version], width=SMALL)


def features(batch, frames, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, frames, 128, 1)).astype("float32")


@pytest.fixture(scope="module")
def full_models():
    keras.utils.set_random_seed(0)
    return {v: build_dcasenet(VARIANTS[v]) for v in ("v1", "v2", "v3")}


@pytest.fixture(scope="module")
def small_tasks():
    keras.utils.set_random_seed(1)
    return {v: build_task_models(small(v)) for v in ("v1", "v2", "v3")}


# --- parameter counts -----------------------------------------------------------------------

def test_v3_parameter_count_matches_released_code(full_models):
    m = full_models["v3"]
    assert count_parameters(m) == 13_882_920                       # the released PyTorch model's count
    # Keras also counts BN moving mean/variance: 4,608 BN channels x 2 more.
    assert m.count_params() == 13_892_136
    assert count_parameters(m, include_bn_moving=True) == 13_892_136


@pytest.mark.parametrize("prefix, expected", [
    ("block1_", 37_696), ("block2_", 221_696), ("block3_", 885_760),
    ("block4_1_", 1_180_672), ("block4_2_", 1_180_672),
    ("gru_1", 493_056), ("gru_2", 493_056), ("sed_fc", 3_598),
    ("asc_res", 7_679_232), ("asc_code", 49_280), ("asc_fc", 1_290), ("tag_", 1_656_912),
])
def test_v3_parameter_breakdown(full_models, prefix, expected):
    assert count_parameters(full_models["v3"], prefix=prefix) == expected


@pytest.mark.parametrize("version, ours, keras_total, breakdown", [
    # Paper: v1 8.7 M, v2 8.9 M.  Pinned so that any change of the layers is noticed.
    ("v1", 8_833_064, 8_839_208, {"block": 4_686_144, "gru": 1_182_720, "sed_fc": 7_182,
                                  "asc_": 1_300_106, "tag_": 1_656_912}),
    ("v2", 8_862_504, 8_867_880, {"block1_": 37_696, "block2_": 221_696, "block3_": 885_760,
                                  "block4_": 3_540_992, "asc_": 961_418, "gru": 493_056,
                                  "sed_": 1_327_118, "tag_": 1_394_768}),
])
def test_v1_v2_parameter_counts(full_models, version, ours, keras_total, breakdown):
    m = full_models[version]
    assert count_parameters(m) == ours
    assert m.count_params() == keras_total
    assert sum(breakdown.values()) == ours
    for prefix, expected in breakdown.items():
        assert count_parameters(m, prefix=prefix) == expected, prefix
    paper = {"v1": 8.7e6, "v2": 8.9e6}[version]
    assert abs(ours - paper) / paper < 0.02


# --- shapes and values ------------------------------------------------------------------------

def test_v3_full_width_forward_5s(full_models):
    out = full_models["v3"](features(1, 251), training=False)
    assert tuple(out["scene"].shape) == (1, 10)
    assert tuple(out["tags"].shape) == (1, 80)
    assert tuple(out["frames"].shape) == (1, 48, 14)
    for v in out.values():
        assert np.isfinite(np.asarray(v)).all()


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
@pytest.mark.parametrize("frames", [251, 3000])
def test_output_shapes_and_finite(small_tasks, version, frames):
    batch = 2 if frames < 1000 else 1
    out = small_tasks[version]["joint"](features(batch, frames), training=False)
    assert set(out) == {"scene", "tags", "frames"}
    assert tuple(out["scene"].shape) == (batch, 10)
    assert tuple(out["tags"].shape) == (batch, 80)
    # 251 frames (5 s at 20 ms) -> 6 steps of 0.8 s -> 48 frames; 3000 (60 s) -> 75 -> 600.
    assert output_frames(frames) == {251: 48, 3000: 600}[frames]
    assert tuple(out["frames"].shape) == (batch, (frames // 40) * 8, 14)
    for v in out.values():
        assert np.isfinite(np.asarray(v)).all()
    p = np.asarray(out["frames"])
    assert (p >= 0).all() and (p <= 1).all()


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_sed_frames_repeat_each_step_eight_times(small_tasks, version):
    joint = small_tasks[version]["joint"]
    step_layer = "sed_fc" if version != "v2" else "sed_sigmoid"
    probe = keras.Model(joint.input, [joint.get_layer(step_layer).output, joint.get_layer("sed_repeat").output])
    steps, frames = (np.asarray(t) for t in probe(features(1, 400), training=False))
    assert steps.shape == (1, 10, 14)
    np.testing.assert_array_equal(frames, np.repeat(steps, 8, axis=1))


def test_v3_mel_mean_and_strided_se_conv_follow_pytorch_semantics(small_tasks):
    joint = small_tasks["v3"]["joint"]
    names = ["block4_concat", "mel_mean", "block4_2_pool", "asc_res1_conv1"]
    probe = keras.Model(joint.input, [joint.get_layer(n).output for n in names])
    cat, mean, x2, conv = (np.asarray(t) for t in probe(features(1, 251, seed=3), training=False))
    np.testing.assert_allclose(mean, cat.mean(axis=2), rtol=1e-5, atol=1e-6)
    # Conv 3x3, stride 2, zero padding 1 on BOTH sides (PyTorch padding=1), computed by hand.
    k = np.asarray(joint.get_layer("asc_res1_conv1").kernel)     # (3, 3, c_in, c_out)
    xp = np.pad(x2[0], ((1, 1), (1, 1), (0, 0)))
    ho, wo = conv.shape[1:3]
    assert (ho, wo) == (3, 4)                                    # ceil(6 / 2), ceil(8 / 2)
    ref = np.zeros((ho, wo, k.shape[-1]))
    for i in range(ho):
        for j in range(wo):
            ref[i, j] = np.einsum("abc,abco->o", xp[2 * i:2 * i + 3, 2 * j:2 * j + 3], k)
    np.testing.assert_allclose(conv[0], ref, rtol=1e-4, atol=1e-4)


# --- SED loss trimming ----------------------------------------------------------------------

def test_sed_loss_trims_to_shorter_length():
    rng = np.random.default_rng(0)
    y_true = (rng.random((2, 50, 14)) < 0.2).astype("float32")   # 5 s of 100 ms labels
    y_pred = rng.uniform(0.05, 0.95, (2, 48, 14)).astype("float32")  # model output for 251 frames
    t, p = trim_to_shorter(y_true, y_pred)
    assert tuple(t.shape) == tuple(p.shape) == (2, 48, 14)
    yt = y_true[:, :48]
    expected = -np.mean(yt * np.log(y_pred) + (1 - yt) * np.log(1 - y_pred))
    assert float(sed_loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    # Symmetric: a longer prediction is trimmed too.
    longer = np.concatenate([y_pred, y_pred[:, :5]], axis=1)
    assert float(sed_loss(y_true[:, :48], longer)) == pytest.approx(expected, rel=1e-5)
    # In a graph with unknown lengths (as in training).
    import tensorflow as tf
    spec = tf.TensorSpec((None, None, 14), tf.float32)
    graph_loss = tf.function(sed_loss, input_signature=[spec, spec])
    assert float(graph_loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_sed_task_model_trains_on_5s_crops_with_50_label_frames():
    keras.utils.set_random_seed(2)
    sed = build_task_models(dataclasses.replace(VARIANTS["v3"], width=0.125))["sed"]
    sed.compile(optimizer="adam", loss={"frames": sed_loss})
    x = features(2, 251)
    y = (np.random.default_rng(0).random((2, 50, 14)) < 0.2).astype("float32")
    history = sed.fit(x, {"frames": y}, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# --- task models ------------------------------------------------------------------------------

TASK_LAYERS = {
    # version: task -> (layers it must contain, layers it must not contain)
    "v3": {"asc": ({"block4_2_conv1", "asc_res3_conv2", "asc_fc"},
                   {"block4_1_conv1", "gru_1", "gru_2", "sed_fc", "tag_fc1"}),
           "sed": ({"block4_1_conv1", "block4_2_conv1", "gru_2", "sed_fc"},
                   {"gru_1", "asc_res1_conv1", "tag_fc1"}),
           "tag": ({"gru_1", "gru_2", "tag_fc3"}, {"asc_res1_conv1", "sed_fc"})},
    "v1": {"asc": ({"gru", "asc_res1_conv1"}, {"sed_fc", "tag_fc1"}),
           "sed": ({"gru", "sed_fc"}, {"asc_res1_conv1", "tag_fc1"}),
           "tag": ({"gru", "tag_fc1"}, {"asc_res1_conv1", "sed_fc"})},
    "v2": {"asc": ({"block2_conv2", "asc_res1_conv1"}, {"block3_conv1", "gru", "sed_fc1", "tag_fc1"}),
           "sed": ({"block4_conv2", "gru", "sed_fc3"}, {"asc_res1_conv1", "tag_fc1"}),
           "tag": ({"gru", "tag_fc3"}, {"asc_res1_conv1", "sed_fc1"})},
}


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_task_models_compute_only_their_heads(small_tasks, version):
    models = small_tasks[version]
    assert set(models) == {"asc", "tag", "sed", "joint"}
    joint_ids = {id(w) for w in models["joint"].weights}
    for task, key in (("asc", "scene"), ("tag", "tags"), ("sed", "frames")):
        m = models[task]
        names = {layer.name for layer in m.layers}
        must, must_not = TASK_LAYERS[version][task]
        assert must <= names, (task, must - names)
        assert not (must_not & names), (task, must_not & names)
        ids = {id(w) for w in m.weights}
        assert ids < joint_ids                      # a strict subset of the joint model's weights
        out = m(features(1, 120), training=False)
        assert list(out) == [key]


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_task_models_share_weights_with_joint(small_tasks, version):
    models = small_tasks[version]
    x = features(2, 120, seed=5)
    joint_out = models["joint"](x, training=False)
    before = {t: np.asarray(models[t](x, training=False)[k]) for t, k in
              (("asc", "scene"), ("tag", "tags"), ("sed", "frames"))}
    np.testing.assert_allclose(before["asc"], np.asarray(joint_out["scene"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(before["tag"], np.asarray(joint_out["tags"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(before["sed"], np.asarray(joint_out["frames"]), rtol=1e-5, atol=1e-6)
    kernel = models["joint"].get_layer("block1_conv1").kernel
    old = np.asarray(kernel)
    try:
        kernel.assign(old * 1.5 + 0.1)               # change the trunk through the joint model
        after = {t: np.asarray(models[t](x, training=False)[k]) for t, k in
                 (("asc", "scene"), ("tag", "tags"), ("sed", "frames"))}
    finally:
        kernel.assign(old)
    for task in before:
        assert not np.allclose(before[task], after[task]), task


# --- registry, config, save / load --------------------------------------------------------------

def test_registered_builders():
    assert {"dcasenet_v1", "dcasenet_v2", "dcasenet_v3"} <= set(registry.list_models())
    m = registry.build("dcasenet_v2", width=SMALL)
    assert m.name == "dcasenet_v2"
    assert set(m.output) == {"scene", "tags", "frames"}
    with pytest.raises(ConfigError, match="version"):
        registry.build("dcasenet_v1", VARIANTS["v3"])


def test_config_round_trip_and_validation():
    for cfg in VARIANTS.values():
        assert from_dict(DcaseNetConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="version"):
        DcaseNetConfig(version="v4")
    with pytest.raises(ConfigError, match="n_mels"):
        DcaseNetConfig(n_mels=100)
    with pytest.raises(ConfigError, match="width"):
        DcaseNetConfig(width=0.0)
    with pytest.raises(ConfigError, match="dropout"):
        DcaseNetConfig(dropout=(0.2, 1.0))


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_keras_save_load_round_trip(small_tasks, version, tmp_path):
    model = small_tasks[version]["joint"]
    path = tmp_path / f"dcasenet_{version}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = features(2, 251, seed=7)
    a, b = model(x, training=False), loaded(x, training=False)
    assert set(b) == {"scene", "tags", "frames"}
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-5, atol=1e-6)
    assert count_parameters(loaded) == count_parameters(model)
