"""tf_scenes.pipelines.augment: random crop, SpecAugment, mixup (pure, seeded, stateless)."""

import numpy as np
import pytest
import tensorflow as tf

from tf_scenes.pipelines.augment import fold_seed, mixup, random_crop, spec_augment


def seed(a, b=0):
    return tf.constant([a, b], tf.int64)


def time_ramp(frames=423, mels=2, ch=1):
    """x[t, f, c] = t, so the first value of a crop is its offset."""
    t = np.arange(frames, dtype=np.float32)[:, None, None]
    return tf.constant(np.broadcast_to(t, (frames, mels, ch)).copy())


# ----------------------------------------------------------------------------- random_crop


def test_random_crop_offsets_cover_range_and_match_source_slice():
    x = time_ramp()
    offsets = set()
    for s in range(300):
        out = random_crop(x, 400, seed(s))
        assert out.shape == (400, 2, 1)
        off = int(out[0, 0, 0])
        np.testing.assert_array_equal(out.numpy(), x.numpy()[off:off + 400])
        offsets.add(off)
    # 0..22 as the reference's randint(0, 423 - 400): every offset but the last possible one (23)
    assert offsets == set(range(23))


def test_random_crop_other_axis_and_determinism():
    x = tf.transpose(time_ramp(50, 3, 2), [1, 0, 2])  # (3, 50, 2): time on axis 1
    a = random_crop(x, 20, seed(7), axis=1)
    b = random_crop(x, 20, seed(7), axis=1)
    assert a.shape == (3, 20, 2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    off = int(a[0, 0, 0])
    np.testing.assert_array_equal(a.numpy(), x.numpy()[:, off:off + 20])
    offs = {int(random_crop(x, 20, seed(s), axis=1)[0, 0, 0]) for s in range(20)}
    assert len(offs) > 5  # different seeds give different crops


def test_random_crop_equal_length_is_identity():
    x = time_ramp(30)
    np.testing.assert_array_equal(random_crop(x, 30, seed(1)).numpy(), x.numpy())


def test_random_crop_too_short_static_and_dynamic():
    x = time_ramp(423)
    with pytest.raises(ValueError, match=r"423 frames.*crop length 500"):
        random_crop(x, 500, seed(0))
    fn = tf.function(lambda v: random_crop(v, 500, seed(0)),
                     input_signature=[tf.TensorSpec([None, 2, 1], tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)crop length.*423.*500"):
        fn(x)


# ----------------------------------------------------------------------------- spec_augment


def _bands(out):
    """Rows (time) and columns (freq) that are entirely zero in a (T, F) mask of a ones input."""
    zero = out == 0
    rows = np.flatnonzero(zero.all(axis=1))
    cols = np.flatnonzero(zero.all(axis=0))
    return rows, cols


def _check_band(idx, size, max_width):
    if len(idx) == 0:
        return 0
    assert np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))), "mask is not one contiguous band"
    w = len(idx)
    assert 1 <= w <= max_width
    assert idx[0] <= size - w - 1  # reference start range randrange(0, size - w)
    return w


def test_spec_augment_reference_widths_and_zero_values():
    x = tf.ones((423, 128, 3))
    t_widths, f_widths = [], []
    for s in range(250):
        out = spec_augment(x, seed(s)).numpy()
        assert out.shape == (423, 128, 3)
        # all channels masked alike by default
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 0], out[..., 2])
        rows, cols = _bands(out[..., 0])
        t_widths.append(_check_band(rows, 423, 39))
        f_widths.append(_check_band(cols, 128, 12))
        # exactly the union of the two bands is zero, everything else untouched
        expect = np.ones((423, 128), np.float32)
        expect[rows, :] = 0
        expect[:, cols] = 0
        np.testing.assert_array_equal(out[..., 0], expect)
    assert max(t_widths) == 39 and min(t_widths) == 0
    assert max(f_widths) == 12 and min(f_widths) == 0


def test_spec_augment_value_fraction_and_rank2():
    x = tf.ones((100, 50))
    widths = []
    for s in range(60):
        out = spec_augment(x, seed(s), fraction=0.1, value=-2.0).numpy()
        masked = out == -2.0
        assert np.all((out == 1.0) | masked)
        rows = np.flatnonzero(masked.all(axis=1))
        cols = np.flatnonzero(masked.all(axis=0))
        widths.append((_check_band(rows, 100, 10), _check_band(cols, 50, 5)))
    assert max(w[0] for w in widths) == 10 and max(w[1] for w in widths) == 5


def test_spec_augment_multiple_masks_and_per_channel():
    x = tf.ones((200, 64, 3))
    out = spec_augment(x, seed(3), n_time_masks=2, n_freq_masks=3, max_time_width=10,
                       max_freq_width=4).numpy()[..., 0]
    rows, cols = _bands(out)
    assert len(rows) <= 20 and len(cols) <= 12
    differs = 0
    for s in range(20):
        out = spec_augment(x, seed(s), per_channel=True).numpy()
        for c in range(3):
            rows, cols = _bands(out[..., c])
            _check_band(rows, 200, 39)
            _check_band(cols, 64, 12)
        differs += not np.array_equal(out[..., 0], out[..., 1])
    assert differs >= 15  # channels get independent masks


def test_spec_augment_deterministic():
    x = tf.random.stateless_normal((120, 40, 2), seed=[1, 2])
    a = spec_augment(x, seed(11)).numpy()
    b = spec_augment(x, seed(11)).numpy()
    c = spec_augment(x, seed(12)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_spec_augment_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        spec_augment(tf.ones((10,)), seed(0))
    with pytest.raises(ValueError, match="fraction"):
        spec_augment(tf.ones((10, 4)), seed(0), fraction=1.5)
    with pytest.raises(ValueError, match="shape"):
        spec_augment(tf.ones((10, 4)), tf.constant([1, 2, 3]))


# ----------------------------------------------------------------------------- mixup


def _recover(ym_id, i):
    """From mixed one-hot identity labels of output i: (lam, partner)."""
    row = ym_id[i]
    others = np.delete(np.arange(len(row)), i)
    j = others[np.argmax(row[others])]
    if row[j] == 0:  # paired with itself (or lam == 1)
        return 1.0, i
    return float(row[i]), int(j)


@pytest.mark.parametrize("pairing", ["permutation", "reverse"])
def test_mixup_convex_combination_same_lambda_for_labels(pairing):
    b = 8
    x = tf.random.stateless_normal((b, 6, 5, 2), seed=[0, 1])
    frames = tf.cast(tf.random.stateless_uniform((b, 7, 4), seed=[0, 2]) > 0.5, tf.float32)
    multi = tf.cast(tf.random.stateless_uniform((b, 10), seed=[0, 3]) > 0.7, tf.float32)
    y = {"id": tf.eye(b), "frames": frames, "multi": multi}
    xm, ym = mixup(x, y, seed(5), alpha=0.4, pairing=pairing)
    assert xm.shape == x.shape and ym["frames"].shape == frames.shape
    xn, ymn = xm.numpy(), {k: v.numpy() for k, v in ym.items()}
    partners = []
    for i in range(b):
        lam, j = _recover(ymn["id"], i)
        partners.append(j)
        assert 0.0 <= lam <= 1.0
        np.testing.assert_allclose(xn[i], lam * x.numpy()[i] + (1 - lam) * x.numpy()[j], atol=1e-5)
        np.testing.assert_allclose(ymn["frames"][i], lam * frames.numpy()[i] + (1 - lam) * frames.numpy()[j],
                                   atol=1e-6)
        np.testing.assert_allclose(ymn["multi"][i], lam * multi.numpy()[i] + (1 - lam) * multi.numpy()[j],
                                   atol=1e-6)
    if pairing == "reverse":
        assert partners == list(range(b - 1, -1, -1))
    else:
        assert sorted(partners) == list(range(b))  # a permutation


def test_mixup_halves_reference_pairs():
    x = tf.random.stateless_normal((8, 3, 2, 1), seed=[4, 4])
    xm, ym = mixup(x, tf.eye(8), seed(1), pairing="halves")
    assert xm.shape == (4, 3, 2, 1) and ym.shape == (4, 8)
    for i in range(4):
        lam = float(ym[i, i])
        np.testing.assert_allclose(float(ym[i, i + 4]), 1 - lam, atol=1e-6)
        np.testing.assert_allclose(xm[i].numpy(), lam * x[i].numpy() + (1 - lam) * x[i + 4].numpy(), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="even batch"):
        mixup(x[:7], tf.eye(8)[:7], seed(1), pairing="halves")


def test_mixup_lambda_is_beta_distributed():
    n = 4000
    # first half labelled e0, second half e1; with pairing "reverse" output i < n/2 is
    # lam_i * e0 + (1 - lam_i) * e1, so lam_i can be read off the labels
    y = np.zeros((n, 2), np.float32)
    y[: n // 2, 0] = 1
    y[n // 2:, 1] = 1
    _, ym = mixup(tf.zeros((n, 1)), tf.constant(y), seed(9), alpha=0.4, pairing="reverse")
    lam = ym.numpy()[:, 0][: n // 2]  # first half: lam * e0 + (1 - lam) * e1
    # Beta(0.4, 0.4): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.1389
    assert abs(lam.mean() - 0.5) < 0.03
    assert abs(lam.var() - 1 / (4 * 1.8)) < 0.012
    assert lam.min() >= 0 and lam.max() <= 1


def test_mixup_one_lambda_per_batch_and_small_alpha():
    _, ym = mixup(tf.zeros((16, 2)), tf.eye(16), seed(2), alpha=0.1, pairing="reverse", per_example=False)
    diag = np.diag(ym.numpy())
    np.testing.assert_allclose(diag, diag[0])
    # alpha = 0.1 (DcaseNet): no NaN even though Gamma(0.1) often underflows float32
    _, ym = mixup(tf.zeros((5000, 1)), tf.ones((5000, 1)), seed(3), alpha=0.1)
    assert np.isfinite(ym.numpy()).all()


def test_mixup_deterministic_and_seed_dependent():
    x = tf.random.stateless_normal((6, 4), seed=[2, 2])
    y = tf.constant([0, 1, 2, 0, 1, 2])  # integer labels are cast to float32
    a = mixup(x, y, seed(1))
    b = mixup(x, y, seed(1))
    c = mixup(x, y, seed(2))
    assert a[1].dtype == tf.float32
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_mixup_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        mixup(tf.zeros((2, 1)), tf.zeros((2, 1)), seed(0), alpha=0)
    with pytest.raises(ValueError, match="pairing"):
        mixup(tf.zeros((2, 1)), tf.zeros((2, 1)), seed(0), pairing="shuffle")


def test_fold_seed():
    s = seed(1, 2)
    np.testing.assert_array_equal(fold_seed(s, 3).numpy(), fold_seed(s, 3).numpy())
    assert not np.array_equal(fold_seed(s, 3).numpy(), fold_seed(s, 4).numpy())
    assert fold_seed(s, 3, 5).shape == (2,)
