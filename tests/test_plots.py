"""The suite's figures follow one set of conventions (tf_scenes.plots): time in seconds and frequency
in Hz (mel-spaced ticks at the bands holding those frequencies), a labelled colour bar beside every
image, perceptually uniform colour maps, stacked panels on one shared time axis of one width, the
two-stage ResNet's frequency-path edge explained, the SED threshold named, PCA axes with their share
of the variance, and PNG plus a vector file written. Every figure is built from small synthetic
arrays on the Agg backend."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tf_scenes import plots  # noqa: E402
from tf_scenes.errors import ConfigError  # noqa: E402
from tf_scenes.two_stage.features import FEATURES as TWO_STAGE  # noqa: E402
from tf_scenes.weak_sed.features import FEATURES as WEAK_SED  # noqa: E402

UNIFORM = {"viridis", "magma", "inferno", "cividis", "plasma"}


def _images(fig):
    return [im for ax in fig.axes for im in ax.images]


def _check_images(fig, allowed=UNIFORM):
    """Every image has a labelled colour bar and a perceptually uniform (or two-colour) colour map."""
    images = _images(fig)
    assert images
    for im in images:
        assert im.colorbar is not None, f"image in {im.axes.get_title(loc='left')!r} without a colour bar"
        assert im.colorbar.ax.get_ylabel().strip(), "colour bar without a label"
        name = im.get_cmap().name
        assert name != "jet" and (name in allowed or im.get_cmap().N == 2), name
    return images


def _check_time_axes(fig, axes):
    """Panels share one x axis (same group, same limits, same left edge and width on the page) in
    seconds."""
    fig.canvas.draw()
    boxes = [ax.get_position() for ax in axes]
    for ax, box in zip(axes[1:], boxes[1:]):
        assert axes[0].get_shared_x_axes().joined(axes[0], ax)
        assert ax.get_xlim() == axes[0].get_xlim()
        assert box.x0 == pytest.approx(boxes[0].x0, abs=1e-6) and box.width == pytest.approx(boxes[0].width, abs=1e-6)
    assert axes[-1].get_xlabel() == "Time (s)"


def _mel_ticks(ax, freqs_hz):
    """(Hz value of each tick label, centre frequency of the band its position falls in)."""
    out = []
    for pos, lab in zip(ax.get_yticks(), ax.get_yticklabels()):
        text = lab.get_text()
        hz = float(text[:-1]) * 1000 if text.endswith("k") else float(text)
        out.append((hz, freqs_hz[int(np.floor(pos))]))
    return out


@pytest.fixture
def synthetic_clip():
    rng = np.random.default_rng(0)
    frames = 40
    spec = rng.standard_normal((frames, 128))
    cam = rng.random((frames, 128))
    curve = rng.random(frames)
    return frames, spec, cam, curve


def test_feature_grids_place_frames_in_seconds_and_bands_in_hz():
    # two-stage: centred frames, 4 frames lost at each end to the valid deltas -> first at 4 hops
    g = plots.feature_grid(TWO_STAGE, 423)
    assert g.times_s[0] == pytest.approx(4 * 1024 / 44100) and g.hop_s == pytest.approx(1024 / 44100)
    assert g.times_s[-1] == pytest.approx(426 * 1024 / 44100)  # 431 STFT frames of a 10 s clip, minus 4
    # 128 HTK bands over 0-22050 Hz: the lowest centre is one mel step, the highest just under fmax
    assert len(g.freqs_hz) == 128 and 0 < g.freqs_hz[0] < 30 and 20000 < g.freqs_hz[-1] < 22050
    # weak-SED: uncentred frames -> first frame centre at n_fft / 2 = 32 ms; 64 Slaney bands 50 Hz - 16 kHz
    w = plots.feature_grid(WEAK_SED, 311)
    assert w.times_s[0] == pytest.approx(1024 / 32000) and len(w.freqs_hz) == 64
    assert 50 < w.freqs_hz[0] < 120 and 14000 < w.freqs_hz[-1] < 16000


def test_saliency_figure_seconds_hz_colour_bars_and_one_time_axis(synthetic_clip):
    frames, spec, cam, curve = synthetic_clip
    grid = plots.feature_grid(TWO_STAGE, frames)
    note = plots.frequency_paths_note([64], grid, 128)
    fig = plots.draw_saliency(spec, [("CAM 3-class", cam), ("CAM 10-class", cam), ("over time", curve)], grid,
                              spectrogram_label=plots.DB_LABEL, note=note, band_edges=[64])
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible() and ax.get_title(loc="left")]
    assert len(axes) == 4
    images = _check_images(fig)
    assert [im.colorbar.ax.get_ylabel().replace("\n", " ") for im in images] == [
        "Log-mel power (dB)", "Normalised saliency", "Normalised saliency"]
    assert images[0].get_cmap().name == "magma" and images[1].get_cmap().name == "viridis"
    _check_time_axes(fig, axes)
    # time extent: first frame centre minus half a hop to the last plus half a hop, in seconds
    assert axes[0].get_xlim() == pytest.approx((3.5 * 1024 / 44100, (3.5 + frames) * 1024 / 44100))
    for ax in axes[:3]:
        assert ax.get_ylabel() == "Frequency (Hz)"
        ticks = _mel_ticks(ax, grid.freqs_hz)
        hz = [h for h, _ in ticks]  # round Hz values, the decades first, those that would collide left out
        assert {100, 1000, 10000} <= set(hz) <= set(plots.MEL_TICKS_HZ) and hz == sorted(hz)
        for hz, band_centre in ticks:  # each label sits in the band holding its frequency (within a band)
            assert hz == pytest.approx(band_centre, rel=0.12, abs=25)
    # the ResNet's path edge: a dashed line at band 64 on both CAMs, explained under the figure
    for ax in axes[1:3]:
        assert [ln.get_ydata()[0] for ln in ax.get_lines()] == [64]
    assert "mel bands 0-63 and 64-127 in separate paths" in note and "band 64 (3.3 kHz" in note
    assert any(note[:40] in t.get_text().replace("\n", " ") for t in fig.texts)
    plots._plt().close(fig)


def test_save_writes_png_and_vector_beside_it(tmp_path, synthetic_clip):
    frames, spec, cam, _ = synthetic_clip
    grid = plots.feature_grid(TWO_STAGE, frames)
    png = plots.saliency_panels(spec, [("CAM", cam)], tmp_path / "cam.png", grid=grid)
    assert png == tmp_path / "cam.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cam.pdf").read_bytes()[:5] == b"%PDF-"
    plots.saliency_panels(spec, [("CAM", cam)], tmp_path / "b.png", grid=grid, vector="svg")
    assert b"<svg" in (tmp_path / "b.svg").read_bytes()[:500] and not (tmp_path / "b.pdf").exists()
    plots.saliency_panels(spec, [("CAM", cam)], tmp_path / "c.png", grid=grid, vector=None)
    assert sorted(p.name for p in tmp_path.glob("c.*")) == ["c.png"]
    # the same figure gives the same PDF bytes (no creation date)
    plots.saliency_panels(spec, [("CAM", cam)], tmp_path / "d.png", grid=grid)
    assert (tmp_path / "d.pdf").read_bytes() == (tmp_path / "cam.pdf").read_bytes()
    with pytest.raises(ConfigError, match=r"e\.jpg: figure format '\.jpg' is not supported"):
        plots.saliency_panels(spec, [("CAM", cam)], tmp_path / "e.jpg", grid=grid)


def test_activity_plot_threshold_colour_bars_and_shared_time(tmp_path):
    classes = ["alarm", "baby", "crash"]
    ref = np.zeros((50, 3))
    ref[10:20, 1] = 1
    pred = np.full((50, 3), 0.1)
    pred[8:22, 1] = 0.9  # one run above 0.5 in class 1
    pred[30:35, 2] = 0.7  # one run in class 2
    pred[40, 2] = 0.7  # a single frame: a third run
    fig = plots.draw_activity(ref, pred, classes, hop_seconds=0.1, threshold=0.5)
    axes = [ax for ax in fig.axes if ax.images]
    images = _check_images(fig)
    assert [im.colorbar.ax.get_ylabel() for im in images] == ["Reference", "Probability"]
    _check_time_axes(fig, axes)
    assert axes[0].get_xlim() == pytest.approx((0.0, 5.0))
    # the threshold: named in the legend, a line on the probability colour bar, detections outlined
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["threshold 0.5"]
    bar_lines = images[1].colorbar.ax.get_lines()
    assert [ln.get_ydata()[0] for ln in bar_lines] == [0.5]
    boxes = sorted((p.get_x(), p.get_y(), p.get_width()) for p in axes[1].patches)
    assert np.allclose(boxes, [(0.8, 0.5, 1.4), (3.0, 1.5, 0.5), (4.0, 1.5, 0.1)])
    plots.save(fig, tmp_path / "act.png")
    assert (tmp_path / "act.pdf").stat().st_size > 1000


def test_weak_sed_figure2_conventions(tmp_path):
    from tf_scenes.weak_sed.figures import draw_figure2, figure2

    rng = np.random.default_rng(1)
    frames, classes = 60, ["a", "b", "c", "d"]
    outs = {"clip": np.array([0.1, 0.9, 0.5, 0.3]), "reconstruction": rng.standard_normal((frames, 64)),
            "freq_attention": rng.random((4, frames, 64)), "first_step": rng.random((4, frames)),
            "time_attention": rng.random((4, frames))}
    fig = draw_figure2(rng.standard_normal((frames, 64)), outs, classes, events=[("b", 0.5, 1.0)], top_k=2)
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert len(panels) == 2 + 2 + 3
    images = _check_images(fig)
    assert len(images) == 5
    assert [im.colorbar.ax.get_ylabel().replace("\n", " ") for im in images[:2]] == ["Log-mel (standardised)"] * 2
    time_panels = panels[:-1]  # the clip-level bars are not on the time axis
    _check_time_axes(fig, time_panels)
    assert time_panels[0].get_xlim() == pytest.approx((1024 / 32000 - 0.016, 1024 / 32000 + (frames - 0.5) * 0.032))
    for ax in panels[:4]:
        assert ax.get_ylabel() == "Frequency (Hz)"
    assert not panels[-1].get_shared_x_axes().joined(panels[0], panels[-1])
    # the first-step panel: one labelled row per class shown above (top 2: b, c) or in the clip (b)
    first = panels[4]
    assert [t.get_text() for t in first.get_yticklabels()] == ["b *", "c"]
    assert images[4].get_array().shape == (2, frames)
    plots._plt().close(fig)
    path = figure2(rng.standard_normal((frames, 64)), outs, classes, tmp_path / "f2.png", events=[("b", 0.5, 1.0)])
    assert path.exists() and (tmp_path / "f2.pdf").exists()


def test_projection_axes_give_the_variance_of_each_component(tmp_path):
    rng = np.random.default_rng(2)
    # variances 9, 1 and 0 along three axes: PC1 explains 90 %, PC2 10 %
    x = np.zeros((4000, 3))
    x[:, 0] = 3 * rng.standard_normal(4000)
    x[:, 1] = rng.standard_normal(4000)
    xy, explained = plots.pca_2d(x)
    assert explained == pytest.approx([0.9, 0.1], abs=0.01)
    labels = (x[:, 0] > 0).astype(int)
    fig = plots.draw_projection([("hierarchical", xy, explained), ("flat", xy, explained)], labels, ["lo", "hi"])
    for ax in fig.axes:
        assert ax.get_xlabel() == f"PC1 ({100 * explained[0]:.1f} % of variance)"
        assert ax.get_ylabel() == f"PC2 ({100 * explained[1]:.1f} % of variance)"
    assert plots.component_labels("tsne") == ("t-SNE 1", "t-SNE 2")
    plots.save(fig, tmp_path / "p.png", vector="svg")
    assert (tmp_path / "p.svg").exists()


def test_confusion_matrix_device_bars_and_filter_figure(tmp_path):
    from tf_scenes.raw_waveform.figures import draw_filter_figure, filter_responses

    fig = plots.draw_confusion_matrix(np.eye(3) * 5 + 1, ["a", "b", "c"])
    (im,) = _check_images(fig)
    assert im.get_cmap().name == "cividis" and im.colorbar.ax.get_ylabel().startswith("Recall")
    plots._plt().close(fig)
    plots.device_bars({"m": {"a": 0.5, "s1": 0.4}}, tmp_path / "bars.png")
    assert (tmp_path / "bars.pdf").exists()
    kernel = np.random.default_rng(3).standard_normal((20, 1, 6))
    freqs, db, peak, _ = filter_responses(kernel, 16000)
    fig = draw_filter_figure([("short", freqs, db, peak)])
    (im,) = _check_images(fig)
    assert im.colorbar.ax.get_ylabel() == "Gain (dB re filter peak)"
    # rows are the filters' ranks 1..n, centred on their integer tick
    ax = im.axes
    assert ax.get_ylabel() == "Filter rank by peak frequency"
    assert tuple(ax.get_ylim()) == (0.5, db.shape[0] + 0.5)
    assert list(ax.lines[0].get_ydata()) == list(range(1, db.shape[0] + 1))
    assert fig.axes[0].get_xlabel() == "Frequency (Hz)"
    plots._plt().close(fig)


def test_frequency_path_edges_of_the_two_stage_resnet():
    from tf_scenes.registry import build
    from tf_scenes.saliency import frequency_path_edges
    from tf_scenes.two_stage.model import TwoStageModelConfig

    resnet = build("two_stage_resnet", TwoStageModelConfig(arch="resnet", width=0.125, num_classes=3))
    assert frequency_path_edges(resnet) == [64]
    fcnn = build("two_stage_fcnn", TwoStageModelConfig(arch="fcnn", width=0.125, num_classes=3))
    assert frequency_path_edges(fcnn) == []


def test_saliency_cli_spectrogram_is_in_db_on_the_model_grid():
    """The CLI's spectrogram panel: the card's log-mel before scaling and deltas, in dB, cut to the
    model's frames, on the grid of the maps (seconds, Hz)."""
    from tf_scenes.features import extract
    from tf_scenes.saliency_cli import check_out, figure_spectrogram

    rng = np.random.default_rng(4)
    wav = 0.1 * rng.standard_normal(44100 * 10).astype(np.float32)
    card = {"input": "logmel", "sample_rate": 44100, "feature_config": "two_stage"}
    spec, grid, label = figure_spectrogram(card, wav, 423)
    raw = extract(TWO_STAGE.replace(scaling="none", deltas=0), wav)[:, :, 0]
    assert spec.shape == (423, 128) and label == "Log-mel power (dB)"
    np.testing.assert_allclose(spec, 10 * np.log10(np.exp(raw[4:427].astype(np.float64))), rtol=1e-5, atol=1e-3)
    assert grid.times_s[0] == pytest.approx(4 * 1024 / 44100)
    with pytest.raises(ConfigError, match=r"fig\.jpg: figure format '\.jpg' is not supported"):
        check_out(__import__("pathlib").Path("fig.jpg"))


def test_two_stage_cam_figure_shows_the_clip_in_db(tmp_path):
    """The two-stage study's CAM figures show the clip's log-mel in dB recomputed from its audio (the
    cached model input is min-max scaled); min-max scaling that panel gives back the model input's
    static channel. A clip whose audio is gone falls back to the model input, labelled as scaled."""
    from tf_scenes.experiments.two_stage.report import _cam_spectrogram
    from tf_scenes.audio import write_audio
    from tf_scenes.features import extract

    rng = np.random.default_rng(5)
    wav = (0.1 * rng.standard_normal(44100 * 10)).astype(np.float32)
    path = write_audio(tmp_path / "airport-lisbon-1000-40000-a.wav", wav, 44100, subtype="FLOAT")
    model_input = extract(TWO_STAGE, wav)[:, :, 0]
    assert model_input.shape == (423, 128)
    spec, label = _cam_spectrogram(path, model_input)
    assert label == "Log-mel power (dB)" and spec.shape == (423, 128)
    assert spec.max() - spec.min() > 10  # dB, not [0, 1]
    # the 423 frames the deltas keep; the model input was min-max scaled over all 431 frames
    raw_all = extract(TWO_STAGE.replace(scaling="none", deltas=0), wav)[:, :, 0].astype(np.float64)
    lo, hi = raw_all.min(), raw_all.max()
    np.testing.assert_allclose((spec / (10 / np.log(10)) - lo) / (hi - lo), model_input, atol=1e-4)
    gone, label = _cam_spectrogram(tmp_path / "missing.wav", model_input)
    assert label == "Log-mel (min-max scaled)" and gone is model_input
