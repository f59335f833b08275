"""Raw-waveform hierarchy-aware 1D-CNN (Abrol & Sharma 2020): model, layers, prototype loss, trainer."""

import dataclasses
import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from tf_scenes import registry  # noqa: E402
from tf_scenes.errors import ConfigError  # noqa: E402
from tf_scenes.raw_waveform.model import (  # noqa: E402
    VARIANTS,
    FrameAlign,
    OrthogonalWeightRegularizer,
    RawWaveformConfig,
    StatsPooling,
    WaveformNormalization,
    build_raw_waveform,
    l2_softmax_alpha,
    pipeline_geometry,
)
from tf_scenes.raw_waveform.prototype import (  # noqa: E402
    HierarchicalTrainer,
    PrototypeLoss,
    attach_hierarchical_losses,
)

# Table I model, concat merge, attention pooling, coarse + fine heads.  Our own count (no published number):
# short pipeline 2,077,456 + long pipeline 1,108,512 + fc1 1,024,512 + fc2 65,664 + attention 16,640
# + coarse head 1,032 + fine head 9,030.
DEFAULT_PARAMS = 4_302_846

# A small, fast configuration (1 s windows, narrow convs) for training and save/load tests.
SMALL = RawWaveformConfig(window_samples=16000, width=0.05, stats_window=2, fc_units=(16, 8), attention_units=8)


def np_(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def default_model():
    return build_raw_waveform(RawWaveformConfig())


@pytest.fixture(scope="module")
def default_out(default_model):
    x = np.random.default_rng(0).normal(scale=0.1, size=(2, 32000)).astype("float32")
    return {k: np_(v) for k, v in default_model(x, training=False).items()}


def test_output_shapes_for_2s_window(default_out):
    assert {k: v.shape for k, v in default_out.items()} == {
        "coarse": (2, 8), "fine": (2, 70), "embedding": (2, 128),
        "frame_embedding": (2, 18, 128), "attention": (2, 18),
    }
    assert all(np.isfinite(v).all() for v in default_out.values())


def test_attention_and_heads_sum_to_one(default_out):
    np.testing.assert_allclose(default_out["attention"].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(default_out["coarse"].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(default_out["fine"].sum(-1), 1.0, rtol=1e-5)
    assert (default_out["attention"] >= 0).all()
    # the embedding is the attention-weighted sum of the frame embeddings
    want = np.einsum("bt,btd->bd", default_out["attention"], default_out["frame_embedding"])
    np.testing.assert_allclose(default_out["embedding"], want, rtol=1e-4, atol=1e-6)


def test_parameter_count_pinned(default_model):
    assert default_model.count_params() == DEFAULT_PARAMS
    counts = {layer.name: layer.count_params() for layer in default_model.layers}
    assert counts["short_conv1"] == 20 * 1 * 100 + 100
    assert counts["long_conv1"] == 300 * 1 * 100 + 100
    assert counts["short_conv5"] == 3 * 512 * 512 + 512
    assert "long_conv5" not in counts  # the long-kernel pipeline has no Conv5 (Table I)
    assert counts["fc1"] == 2000 * 512 + 512  # concat of two 1000-D statistics vectors


def test_table1_layer_geometry(default_model):
    shapes = {layer.name: layer.output.shape for layer in default_model.layers
              if layer.name.endswith(("conv1", "conv6"))}
    # valid padding: short (32000 - 20) // 5 + 1 = 6397, long (32000 - 300) // 100 + 1 = 318
    assert shapes["short_conv1"] == (None, 6397, 100)
    assert shapes["long_conv1"] == (None, 318, 100)
    assert shapes["short_conv6"] == (None, 223, 500)
    assert shapes["long_conv6"] == (None, 22, 500)
    geo = pipeline_geometry(RawWaveformConfig())
    assert (geo["short"]["conv"].n_frames, geo["short"]["conv"].hop) == (223, 135)  # 5 * 3 * 3 * 3
    assert (geo["long"]["conv"].n_frames, geo["long"]["conv"].hop) == (22, 900)  # 100 * 3 * 3
    # same duration as the long grid's 5-frame window / 1-frame hop: round(5 * 900 / 135), round(900 / 135)
    assert geo["short"]["stats_window"] == 33 and geo["short"]["stats_hop"] == 7
    assert geo["long"]["stats"].n_frames == 18


def test_l2_alpha_lower_bound_per_head(default_model):
    assert l2_softmax_alpha(8) == pytest.approx(math.log(0.9 * 6 / 0.1))  # log 54
    assert l2_softmax_alpha(70) == pytest.approx(math.log(0.9 * 68 / 0.1))  # log 612
    assert l2_softmax_alpha(8) == pytest.approx(3.98898, abs=1e-5)
    assert l2_softmax_alpha(70) == pytest.approx(6.41673, abs=1e-5)
    assert default_model.get_layer("coarse_scale").scale == pytest.approx(math.log(54))
    assert default_model.get_layer("fine_scale").scale == pytest.approx(math.log(612))
    fixed = RawWaveformConfig(l2_alpha=16.0)
    assert fixed.alpha("coarse") == fixed.alpha("fine") == 16.0


def test_orthogonal_regularizer_hand_check(default_model):
    reg = OrthogonalWeightRegularizer(0.5)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))
    assert float(np_(reg(keras.ops.convert_to_tensor(q.astype("float32"))))) == pytest.approx(0.0, abs=1e-5)
    # W = [[1, 1], [0, 1]]: W^T W - I = [[0, 1], [1, 1]] -> ||.||_F^2 = 3
    w = keras.ops.convert_to_tensor(np.array([[1.0, 1.0], [0.0, 1.0]], dtype="float32"))
    assert float(np_(reg(w))) == pytest.approx(0.5 * 3.0)
    # a conv kernel (kW=2, C_in=1, C_out=3) reshapes to (2, 3): the smaller Gram is W W^T (2 x 2)
    k = np.zeros((2, 1, 3), dtype="float32")
    k[0, 0] = [1.0, 0.0, 0.0]
    k[1, 0] = [0.0, 2.0, 0.0]  # W W^T = diag(1, 4) -> (4 - 1)^2 = 9
    assert float(np_(reg(keras.ops.convert_to_tensor(k)))) == pytest.approx(0.5 * 9.0)
    assert OrthogonalWeightRegularizer.from_config(reg.get_config()).factor == 0.5
    # orthogonal initialisation: the model's regularisation losses are ~0 at init
    assert len(default_model.losses) == 11  # one per conv layer (6 short + 5 long)
    assert sum(float(np_(loss)) for loss in default_model.losses) < 1e-6


def test_stats_pooling_matches_numpy():
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype("float32")
    out = np_(StatsPooling(window=4, hop=2, eps=0.0)(x))
    assert out.shape == (2, 3, 6)
    for j, s in enumerate(range(0, 6, 2)):
        seg = x[:, s:s + 4]
        np.testing.assert_allclose(out[:, j, :3], seg.mean(1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[:, j, 3:], seg.std(1), rtol=1e-4, atol=1e-5)


def test_frame_align_interpolates_at_reference_centres():
    src = np.arange(10, dtype="float32").reshape(1, 10, 1) * np.array([1.0, -2.0], dtype="float32")  # (1, 10, 2)
    ref = np.zeros((1, 4, 1), dtype="float32")
    # source frame k centred on 100 + 10 k; reference frames on 95, 125, 155, 300
    out = np_(FrameAlign(100.0, 10.0, 95.0, 30.0)([src, ref]))
    pos = np.clip((np.array([95.0, 125.0, 155.0, 185.0]) - 100.0) / 10.0, 0, 9)  # 0 (edge hold), 2.5, 5.5, 8.5
    np.testing.assert_allclose(out[0, :, 0], pos, rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 1], -2.0 * pos, rtol=1e-6)


def test_waveform_normalization_matches_numpy():
    x = np.random.default_rng(2).normal(size=(2, 50)).astype("float32")
    out = np_(WaveformNormalization(0.97)(x))
    y = x - 0.97 * np.concatenate([np.zeros((2, 1), "float32"), x[:, :-1]], axis=1)
    np.testing.assert_allclose(out, y - y.mean(1, keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,rnn", [("raw_waveform_gru", "GRU"), ("raw_waveform_lstm", "LSTM")])
def test_recurrent_variants_build(name, rnn):
    model = registry.build(name, dataclasses.replace(SMALL, fc_units=(16, 128)))
    assert type(model.get_layer("rnn1")).__name__ == rnn and model.get_layer("rnn2").units == 30
    out = model(np.zeros((2, 16000), "float32"))
    assert set(out) == {"coarse", "fine", "embedding", "frame_embedding"}
    assert out["embedding"].shape == (2, 128) and out["frame_embedding"].shape == (2, 3, 128)
    bare = build_raw_waveform(dataclasses.replace(SMALL, pooling="gru", rnn_projection=False))
    assert bare.output["embedding"].shape == (None, 30)


def test_registry_names_and_variants():
    names = registry.list_models()
    for name in ("raw_waveform", "raw_waveform_mean", "raw_waveform_lstm", "raw_waveform_gru"):
        assert name in names
    assert VARIANTS["gru"].pooling == "gru"
    mean = registry.build("raw_waveform_mean", SMALL)
    assert "attention" not in mean.output and mean.get_layer("mean_pool") is not None


def test_single_heads():
    coarse = build_raw_waveform(dataclasses.replace(SMALL, heads="coarse"))
    assert set(coarse.output) == {"coarse", "embedding", "frame_embedding", "attention"}
    fine = build_raw_waveform(dataclasses.replace(SMALL, heads="fine"))
    assert set(fine.output) == {"fine", "embedding", "frame_embedding", "attention"}
    assert fine.output["fine"].shape == (None, 70)


def test_merge_options():
    def fc1_in(cfg):
        return build_raw_waveform(cfg).get_layer("fc1").input.shape

    base = RawWaveformConfig(width=0.1, fc_units=(8, 8), attention_units=4)
    assert fc1_in(base) == (None, 18, 200)  # concat: 2 x (mean + std of 50 conv6 channels) on the long grid
    assert fc1_in(dataclasses.replace(base, merge="sum")) == (None, 18, 100)
    assert fc1_in(dataclasses.replace(base, align_to="short")) == (None, 28, 200)
    assert fc1_in(dataclasses.replace(base, merge="short")) == (None, 28, 100)
    long_only = build_raw_waveform(dataclasses.replace(base, merge="long"))
    assert all(not layer.name.startswith("short_") for layer in long_only.layers)


def test_config_round_trip_and_errors():
    from tf_scenes.config import apply_overrides, from_dict, to_dict

    cfg = RawWaveformConfig(pooling="gru", l2_alpha=12.0, fc_units=(256, 64))
    assert from_dict(RawWaveformConfig, to_dict(cfg)) == cfg
    data = apply_overrides(to_dict(RawWaveformConfig()), ["merge=sum", "l2_alpha=null"])
    assert from_dict(RawWaveformConfig, data) == RawWaveformConfig(merge="sum")
    with pytest.raises(ConfigError, match="pooling"):
        RawWaveformConfig(pooling="max")
    with pytest.raises(ConfigError, match="merge"):
        from_dict(RawWaveformConfig, {"merge": "product"})
    with pytest.raises(ConfigError, match="no statistics frame in the long-kernel pipeline"):
        build_raw_waveform(RawWaveformConfig(window_samples=16000))


def test_keras_save_load_round_trip(tmp_path):
    cfg = dataclasses.replace(SMALL, preprocess=True, ortho_reg=1e-3)
    model = build_raw_waveform(cfg)
    x = np.random.default_rng(3).normal(size=(2, 16000)).astype("float32")
    path = tmp_path / "raw_waveform.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    want, got = model(x), loaded(x)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(np_(got[k]), np_(want[k]), rtol=1e-6, atol=1e-7)
    assert loaded.get_layer("short_conv1").kernel_regularizer.factor == pytest.approx(1e-3)


# ---------------------------------------------------------------------------------------------
# prototype loss


def _toy_prototype_layer(margin=1.0):
    layer = PrototypeLoss(3, 2, margin=margin)
    layer.prototypes.assign(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype="float32"))
    return layer


TOY_R = np.array([[0.5, 0.0], [0.0, 1.5]], dtype="float32")
TOY_Y = np.array([0, 2])


def test_prototype_loss_hand_computed():
    # r_a = (0.5, 0), class 0: d2 = (0.25, 0.25, 4.25) -> 0.25 + max(0, 1 - 0.25) + 0 = 1.0
    # r_b = (0, 1.5), class 2: d2 = (2.25, 3.25, 0.25) -> 0.25 + 0 + 0 = 0.25;  mean over the batch = 0.625
    layer = _toy_prototype_layer()
    np.testing.assert_allclose(np_(layer.per_example(TOY_R, TOY_Y)), [1.0, 0.25], rtol=1e-6)
    assert float(np_(layer(TOY_R, TOY_Y))) == pytest.approx(0.625)
    onehot = np.eye(3, dtype="float32")[TOY_Y]
    assert float(np_(layer(TOY_R, onehot))) == pytest.approx(0.625)
    # margin 3: a -> 0.25 + 2.75 + 0 = 3.0; b -> 0.25 + 0.75 + 0 = 1.0; mean 2.0
    assert float(np_(_toy_prototype_layer(3.0)(TOY_R, TOY_Y))) == pytest.approx(2.0)


def test_prototype_gradients_flow_to_prototypes():
    layer = _toy_prototype_layer()
    with tf.GradientTape() as tape:
        loss = layer(tf.constant(TOY_R), tf.constant(TOY_Y))
    (grad,) = tape.gradient(loss, [layer.prototypes])
    # d/dz0 of pull_a = -2 (r_a - z0) = (-1, 0); d/dz1 of push_a = 2 (r_a - z1) = (-1, 0);
    # d/dz2 of pull_b = -2 (r_b - z2) = (0, 1); halved by the batch mean
    np.testing.assert_allclose(np_(grad), [[-0.5, 0.0], [-0.5, 0.0], [0.0, 0.5]], rtol=1e-6, atol=1e-7)


def _toy_batch(n=8):
    rng = np.random.default_rng(4)
    x = rng.normal(scale=0.1, size=(n, 16000)).astype("float32")
    return x, {"coarse": np.arange(n) % 8, "fine": (np.arange(n) * 7) % 70}


def test_trainer_loss_is_weighted_ce_plus_prototype_plus_regularisers():
    model = build_raw_waveform(dataclasses.replace(SMALL, ortho_reg=0.01, prototype_weight=0.7,
                                                   coarse_loss_weight=0.5, fine_loss_weight=2.0))
    conv = model.get_layer("short_conv2")
    conv.kernel.assign(conv.kernel * 2.0)  # move away from orthogonal so the regulariser is non-zero
    trainer = attach_hierarchical_losses(model, RawWaveformConfig(prototype_weight=0.7, coarse_loss_weight=0.5,
                                                                  fine_loss_weight=2.0))
    x, y = _toy_batch()
    pred = trainer(x, training=False)
    got = float(np_(trainer.compute_loss(x, y, pred, training=False)))
    p_c, p_f, emb = np_(pred["coarse"]), np_(pred["fine"]), np_(pred["embedding"])
    ce_c = -np.mean(np.log(p_c[np.arange(8), y["coarse"]]))
    ce_f = -np.mean(np.log(p_f[np.arange(8), y["fine"]]))
    z = np_(trainer.prototype_loss.prototypes)
    d2 = ((emb[:, None, :] - z[None]) ** 2).sum(-1)
    onehot = np.eye(8)[y["coarse"]]
    proto = np.mean((onehot * d2).sum(1) + ((1 - onehot) * np.maximum(0, 1 - d2)).sum(1))
    reg = sum(float(np_(loss)) for loss in model.losses)
    assert reg > 1e-3
    assert got == pytest.approx(0.5 * ce_c + 2.0 * ce_f + 0.7 * proto + reg, rel=1e-4)


def test_trainer_fit_updates_prototypes_and_round_trips(tmp_path):
    model = build_raw_waveform(dataclasses.replace(SMALL, heads="fine"))
    trainer = attach_hierarchical_losses(model, SMALL)
    x, y = _toy_batch()
    z0 = np_(trainer.prototype_loss.prototypes).copy()
    hist = trainer.fit(x, y, batch_size=4, epochs=1, verbose=0).history
    assert set(hist) == {"loss", "prototype_loss", "fine_top1", "fine_top3"}
    assert np.isfinite(hist["loss"][0]) and hist["prototype_loss"][0] > 0
    assert np.abs(np_(trainer.prototype_loss.prototypes) - z0).max() > 0
    path = tmp_path / "trainer.keras"
    trainer.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, HierarchicalTrainer)
    np.testing.assert_allclose(np_(loaded.prototype_loss.prototypes), np_(trainer.prototype_loss.prototypes))
    np.testing.assert_allclose(np_(loaded(x)["fine"]), np_(trainer(x)["fine"]), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="targets lack"):
        trainer.compute_loss(x, {"coarse": y["coarse"]}, trainer(x))
