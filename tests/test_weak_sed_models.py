"""Weak-SED models: exact parameter counts, output shapes, attention properties, save/load."""

import keras
import numpy as np
import pytest

from tf_scenes import registry
from tf_scenes.config import from_dict, to_dict
from tf_scenes.errors import ConfigError
from tf_scenes.weak_sed.model import (MODELS, ClampedAttentionPooling2D, GlobalWeightedRankPooling2D,
                                       WeakSedConfig, WeightedSum, build_2apae, build_weak_sed,
                                       count_trainable_params, parameter_split, weak_sed_loss)

# (trainable = the paper's / PyTorch convention, Keras count_params() incl. BN moving statistics)
PARAMS = {
    "2apae": (1_967_366, 1_970_186),
    "gap": (587_593, 589_001),
    "gmp": (587_593, 589_001),
    "gwrp": (587_593, 589_001),
    "dilated_attention": (1_047_570, 1_048_466),  # ours, from the reference code's layer sizes
}
SMALL = dict(width=0.125, frames=24, n_mels=12, n_classes=5)


@pytest.fixture(scope="module")
def x_full():
    return np.random.default_rng(0).standard_normal((2, 311, 64)).astype("float32")


@pytest.fixture(scope="module")
def apae():
    return build_2apae(WeakSedConfig())


def test_2apae_parameter_counts(apae):
    assert count_trainable_params(apae) == PARAMS["2apae"][0]
    assert apae.count_params() == PARAMS["2apae"][1]
    assert parameter_split(apae) == {"encoder": 1_172_640, "class_conv": 10_537, "decoder": 581_805,
                                     "attention": 202_384, "total": 1_967_366}


@pytest.mark.parametrize("name", ["gap", "gmp", "gwrp", "dilated_attention"])
def test_baseline_parameter_counts(name):
    model = registry.build(f"weak_sed_{name}", WeakSedConfig(model=name))
    assert (count_trainable_params(model), model.count_params()) == PARAMS[name]


def test_2apae_outputs(apae, x_full):
    out = {k: np.asarray(v) for k, v in apae(x_full, training=False).items()}
    shapes = {k: v.shape for k, v in out.items()}
    assert shapes == {"clip": (2, 41), "reconstruction": (2, 311, 64), "class_map": (2, 41, 311, 64),
                      "freq_presence": (2, 41, 311, 64), "freq_attention": (2, 41, 311, 64),
                      "first_step": (2, 41, 311), "time_presence": (2, 41, 311),
                      "time_attention": (2, 41, 311)}
    assert all(np.isfinite(v).all() for v in out.values())
    np.testing.assert_allclose(out["freq_attention"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["time_attention"].sum(-1), 1.0, atol=1e-5)
    assert (out["clip"] >= 0).all() and (out["clip"] <= 1).all()
    assert (out["reconstruction"] >= 0).all()  # the reference decoder ends in ReLU -> avg pool
    # The two steps are the paper's two-step attention pooling (sum of presence x attention).
    np.testing.assert_allclose(out["first_step"], (out["freq_presence"] * out["freq_attention"]).sum(-1),
                               atol=1e-5)
    np.testing.assert_allclose(out["clip"], np.clip((out["time_presence"] * out["time_attention"]).sum(-1),
                                                    0, 1), atol=1e-5)


@pytest.mark.parametrize("name", ["gap", "gmp", "gwrp", "dilated_attention"])
def test_baseline_outputs(name, x_full):
    model = build_weak_sed(WeakSedConfig(model=name))
    out = {k: np.asarray(v) for k, v in model(x_full, training=False).items()}
    clip, cmap = out["clip"], out["class_map"]
    assert clip.shape == (2, 41) and cmap.shape == (2, 41, 311, 64)
    assert np.isfinite(clip).all() and (clip >= 0).all() and (clip <= 1).all()
    flat = cmap.reshape(2, 41, -1)
    if name == "gmp":
        np.testing.assert_allclose(clip, flat.max(-1), rtol=1e-6)
    elif name == "gap":
        np.testing.assert_allclose(clip, flat.mean(-1), rtol=1e-5)
    elif name == "gwrp":
        w = 0.9998 ** np.arange(flat.shape[-1])
        ref = (np.sort(flat, axis=-1)[..., ::-1] * w).sum(-1) / w.sum()
        np.testing.assert_allclose(clip, ref, rtol=1e-4)
        assert (clip <= flat.max(-1) + 1e-6).all() and (clip >= flat.mean(-1) - 1e-6).all()
    else:
        assert out["attention"].shape == (2, 41, 311, 64)
        assert (clip <= 0.5 + 1e-6).all()  # sigmoid of a weighted mean of log-softmax values
        np.testing.assert_allclose(np.exp(cmap).sum(1), 1.0, atol=1e-4)  # log-softmax over classes


def test_gwrp_layer_hand_computed():
    x = np.array([3.0, 1.0, 2.0, 0.0], "float32").reshape(1, 2, 2, 1)
    # sorted descending 3, 2, 1, 0 with weights 1, 1/2, 1/4, 1/8 -> (3 + 1 + 1/4) / (15/8)
    assert float(GlobalWeightedRankPooling2D(0.5)(x)[0, 0]) == pytest.approx(4.25 / 1.875, rel=1e-6)
    assert float(GlobalWeightedRankPooling2D(1.0)(x)[0, 0]) == pytest.approx(1.5)
    assert float(GlobalWeightedRankPooling2D(0.0)(x)[0, 0]) == pytest.approx(3.0)


def test_clamped_attention_pooling_hand_computed():
    att = np.array([0.0, 0.5, 1.0, 0.5], "float32").reshape(1, 2, 2, 1)  # clamped: .1 .5 .9 .5
    val = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 2, 2, 1)
    expected = (0.1 * 1 + 0.5 * 2 + 0.9 * 3 + 0.5 * 4) / 2.0
    assert float(ClampedAttentionPooling2D(0.1)([att, val])[0, 0]) == pytest.approx(expected, rel=1e-6)


def test_weighted_sum_clips():
    p = np.array([[0.5, 2.0]], "float32")
    a = np.array([[0.5, 0.5]], "float32")
    assert float(WeightedSum()([p, a])[0]) == pytest.approx(1.25)
    assert float(WeightedSum(clip_min=0.0, clip_max=1.0)([p, a])[0]) == pytest.approx(1.0)


def test_config_round_trip_and_validation():
    cfg = WeakSedConfig(model="gwrp", alpha=0.1, width=0.5, gwrp_decay=0.99)
    assert from_dict(WeakSedConfig, to_dict(cfg)) == cfg
    assert WeakSedConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="model"):
        WeakSedConfig(model="cnn")
    with pytest.raises(ConfigError, match="unknown config key"):
        WeakSedConfig.from_dict({"modle": "gap"})
    with pytest.raises(ConfigError, match="width"):
        WeakSedConfig(width=0)
    with pytest.raises(ConfigError, match="model='gap'"):
        registry.build("weak_sed_2apae", WeakSedConfig(model="gap"))
    assert {f"weak_sed_{m}" for m in MODELS} <= set(registry.list_models())


@pytest.mark.parametrize("name", MODELS)
def test_keras_save_load_round_trip(name, tmp_path):
    model = build_weak_sed(WeakSedConfig(model=name, **SMALL))
    x = np.random.default_rng(1).standard_normal((2, 24, 12)).astype("float32")
    model.predict(x, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    a, b = model(x, training=False), loaded(x, training=False)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


def test_loss_is_bce_plus_alpha_mse():
    model = build_2apae(WeakSedConfig(**SMALL))
    model.compile(optimizer="adam", run_eagerly=True, **weak_sed_loss(0.1))
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 24, 12)).astype("float32")
    y = (rng.random((4, 5)) < 0.5).astype("float32")
    ev = model.evaluate(x, {"clip": y, "reconstruction": x}, verbose=0, return_dict=True)
    out = model(x, training=False)
    bce = float(keras.losses.BinaryCrossentropy()(y, out["clip"]))
    mse = float(np.mean((np.asarray(out["reconstruction"]) - x) ** 2))
    assert ev["loss"] == pytest.approx(bce + 0.1 * mse, rel=1e-4)
    history = model.fit(x, {"clip": y, "reconstruction": x}, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert weak_sed_loss(0.0, reconstruction=False)["loss_weights"] == {"clip": 1.0}
    with pytest.raises(ConfigError):
        weak_sed_loss(-1.0)
