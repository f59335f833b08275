"""CAM / Grad-CAM: maps live on the input grid and point at the evidence."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tf_scenes import saliency  # noqa: E402

T, F = 48, 32
REGION = (slice(28, 38), slice(18, 26))  # time x freq region where the "tone" of class 1 lives


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, T, F, 1)).astype(np.float32)
    y = rng.integers(0, 2, n)
    x[y == 1, REGION[0], REGION[1], 0] += 3.0
    return x, y


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, F, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    cls = keras.layers.Conv2D(2, 1, name="class_conv")(h)  # (batch, T, F, classes)
    out = keras.layers.Softmax(name="probs")(keras.layers.GlobalAveragePooling2D()(cls))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(256, 0)
    model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    xt, yt = _data(64, 1)
    acc = float(np.mean(model.predict(xt, verbose=0).argmax(1) == yt))
    assert acc > 0.9, f"toy model did not learn the tone (acc {acc})"
    return model


def _peak_in_region(m):
    t, f = np.unravel_index(np.argmax(m), m.shape)
    return REGION[0].start - 2 <= t < REGION[0].stop + 2 and REGION[1].start - 2 <= f < REGION[1].stop + 2


@pytest.mark.parametrize("method, layer", [("cam", "class_conv"), ("gradcam", "conv2"), ("gradcam", "class_conv")])
def test_saliency_peak_falls_in_tone_region(trained, method, layer):
    x, y = _data(16, 2)
    x1 = x[y == 1]
    fn = saliency.cam if method == "cam" else saliency.grad_cam
    maps = fn(trained, x1, layer, class_index=1)
    assert maps.shape == x1.shape[:3]
    assert maps.min() >= 0 and maps.max() <= 1 and np.isclose(maps.max(), 1)
    hits = [_peak_in_region(m) for m in maps]
    assert np.mean(hits) >= 0.9, hits
    # The mean saliency inside the region is far above the mean outside it.
    inside = maps[:, REGION[0], REGION[1]].mean()
    mask = np.ones(maps.shape[1:], bool)
    mask[REGION] = False
    assert inside > 2 * maps[:, mask].mean()


def test_saliency_upsamples_to_a_given_grid_and_names_bad_layers(trained):
    x, _ = _data(2, 3)
    m = saliency.grad_cam(trained, x, "conv1", class_index=[0, 1], grid=(96, 64))
    assert m.shape == (2, 96, 64)
    with pytest.raises(ValueError, match="no layer 'nope'.*conv1, conv2, class_conv"):
        saliency.cam(trained, x, "nope")
    with pytest.raises(ValueError, match="single output"):
        saliency.cam(trained, x, "class_conv", output="scene")


def test_normalise_constant_map_is_zero():
    m = saliency.normalise(np.ones((2, 3, 4)))
    assert np.all(m == 0)
    m = saliency.normalise(np.arange(6, dtype=float).reshape(1, 2, 3))
    assert m.min() == 0 and m.max() == 1


def test_grad_cam_on_dict_outputs_and_1d_maps():
    keras.utils.set_random_seed(1)
    inp = keras.Input((100, 4))
    h = keras.layers.Conv1D(6, 5, padding="same", activation="relu", name="c1")(inp)
    frames = keras.layers.Dense(3, activation="sigmoid", name="frames")(h)
    clip = keras.layers.GlobalMaxPooling1D(name="clip")(frames)
    model = keras.Model(inp, {"frames": frames, "clip": clip})
    x = np.random.default_rng(0).normal(size=(2, 100, 4)).astype(np.float32)
    for out in ("frames", "clip"):
        m = saliency.grad_cam(model, x, "c1", class_index=2, output=out)
        assert m.shape == (2, 100) and np.all(np.isfinite(m))
    with pytest.raises(ValueError, match="several outputs"):
        saliency.grad_cam(model, x, "c1")
