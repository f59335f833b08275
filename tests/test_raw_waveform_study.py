"""The raw-waveform study (experiments/raw_waveform): what is particular to it on the tiny profile
(the paper's rows, clip scores, the transfer split, figures, the whole-clip export, the embed
command) and the study's own logic on hand-made cases. The contract every study keeps is tested in
tests/test_families.py on the same tiny run."""

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from tf_scenes.experiments.raw_waveform import plan as rw  # noqa: E402
from tf_scenes.experiments.raw_waveform import report  # noqa: E402
from tf_scenes.experiments.reproduce import config_path  # noqa: E402
from tf_scenes.raw_waveform import embed  # noqa: E402
from tf_scenes.raw_waveform.figures import filter_responses  # noqa: E402
from tf_scenes.raw_waveform.windows import WindowView, clip_model, copy_matching_weights  # noqa: E402
from tf_scenes.config import load_config  # noqa: E402
from tf_scenes.datasets.esc50 import HierRecord  # noqa: E402
from tf_scenes.errors import ConfigError  # noqa: E402


ALL_RUNS = [*rw.RUNS, *rw.TRANSFER_RUNS]
SR = 16000


# ---------------------------------------------------------------------------------------------
# fixtures: tiny synthetic ESC-50 and the whole study on the tiny profile


@pytest.fixture
def tiny_esc50(study_root):
    return study_root / "data"


@pytest.fixture
def study(tiny_study):
    s = tiny_study("raw_waveform")
    return s.out, s.cfg


def _json(path):
    return json.loads(Path(path).read_text())


def _study_data(cfg, cache):
    root = rw.resolve_data_root(cfg)
    records, order = rw.load_records(cfg, root)
    classes = rw.choose_classes(records, order, cfg.transfer)
    splits = rw.make_splits(records, classes, cfg)
    windows = rw.clip_windows([r.path for r in records], cache)
    return records, classes, splits, windows


# ---------------------------------------------------------------------------------------------
# the whole study (tiny profile)


def test_tables_have_every_row_and_the_given_paper_numbers(study):
    out, _ = study
    t2 = _json(out / "table2.json")
    assert [r["key"] for r in t2["rows"]] == list(rw.TABLE2)
    paper = {r["key"]: r["paper"] for r in t2["rows"]}
    assert paper["both_attention"] == {"coarse_top1": 85.7, "coarse_top3": 92.1, "fine_top1": 86.2, "fine_top3": 92.6}
    assert all(paper[k] is None for k in rw.TABLE2 if k != "both_attention")
    for r in t2["rows"]:
        assert 0 <= r["coarse_top1"] <= r["coarse_top3"] <= 100
        if rw.RUNS[r["key"]].heads == "coarse":
            assert r["fine_top1"] is None and r["fine_top3"] is None  # no fine head
        else:
            assert 0 <= r["fine_top1"] <= r["fine_top3"] <= 100
    t6 = _json(out / "table6.json")
    assert [r["key"] for r in t6["rows"]] == ["both_lstm", "both_gru", "both_attention"]
    p6 = {r["key"]: r["paper"] for r in t6["rows"]}
    assert p6["both_gru"] == {"coarse_top1": 87.1, "coarse_top3": 93.8, "fine_top1": 87.7, "fine_top3": 93.5}
    assert p6["both_lstm"] is None
    t7 = _json(out / "table7.json")
    assert [r["key"] for r in t7["rows"]] == [rw.HIERARCHICAL, rw.FLAT]
    for r in t7["rows"]:
        assert r["paper"] is None
        for level in ("coarse", "fine"):
            assert r[f"{level}_intra"] > 0 and r[f"{level}_inter"] > 0
            assert r[f"{level}_ratio"] == pytest.approx(r[f"{level}_inter"] / r[f"{level}_intra"], rel=1e-5)
    t5 = _json(out / "table5.json")
    assert [r["key"] for r in t5["rows"]] == ["retrain", "finetune", "frozen_svm", "frozen_logreg"]
    assert all(r["paper"] is None and 0 <= r["fine_top1"] <= r["fine_top3"] <= 100 for r in t5["rows"])
    for key in ("table2", "table5", "table6", "table7"):
        doc = _json(out / f"{key}.json")
        md = (out / f"{key}.md").read_text()
        assert doc["synthetic"] is True and doc["profile"] == "tiny"
        assert "SYNTHETIC DATA" in md and "tiny" in md
        assert len([line for line in md.splitlines() if line.startswith("| ")]) == len(doc["rows"]) + 2
    md2 = (out / "table2.md").read_text()
    row = next(line for line in md2.splitlines() if line.startswith("| coarse + fine, attention |"))
    assert all(f" {v} |" in row for v in ("85.7", "92.1", "86.2", "92.6"))
    assert "no paper numbers" in (out / "table7.md").read_text().lower()


def test_table_numbers_recompute_from_saved_clip_scores(study):
    """Table II cells equal Top-k recomputed from each run's saved clip scores and labels (split order)."""
    from tf_scenes.metrics.clustering import topk_accuracy

    from tf_scenes.scores import read_scores

    out, _ = study
    doc = _json(out / "splits.json")
    test = doc["splits"]["main_test"]
    labels = {"coarse": np.array([doc["coarse"].index(r["coarse"]) for r in test]),
              "fine": np.array([doc["main_fine"].index(r["fine"]) for r in test])}
    rows = {r["key"]: r for r in _json(out / "table2.json")["rows"]}
    for key in rw.TABLE2:
        for level in ("coarse", "fine"):
            path = out / "runs" / key / f"scores_evaluate_{level}.tsv"
            if not path.exists():
                continue
            table = read_scores(path)
            assert list(table.clip_ids) == [Path(r["file"]).name for r in test]
            for k in (1, 3):
                assert rows[key][f"{level}_top{k}"] == round(100 * topk_accuracy(labels[level], table.scores, k), 2)
    fine_only = read_scores(out / "runs" / "fine_attention" / "scores_evaluate_coarse.tsv")
    np.testing.assert_allclose(fine_only.scores.sum(1), 1.0, atol=1e-5)  # fine probabilities summed per group


def test_run_folders_are_complete_and_reload(study):
    from tf_scenes.model_io import load_run_model

    out, cfg = study
    for name in ALL_RUNS:
        d = out / "runs" / name
        for f in ("model.json", "history.csv", "metrics.json", "config.yaml", "run.json", "model.weights.h5",
                  "checkpoints/last.weights.h5"):
            assert (d / f).exists(), f"{name}: {f} missing"
        assert _json(d / "run.json")["status"] == "finished"
        card = _json(d / "model.json")
        assert card["family"] == "raw_waveform" and card["input"] == "waveform"
        head = "coarse" if name.startswith("coarse_") else "fine"
        assert card["saliency"] == {"method": "gradcam", "layer": "short_conv4", "output": head}
        assert card["sample_rate"] == SR and card["feature_config"]["name"] == "raw"
    assert _json(out / "runs" / "coarse_mean" / "model.json")["outputs"] == {
        "coarse": ["animals", "natural", "human", "interior", "exterior"]}
    # the card rebuilds the model: same test-window embeddings as saved by the study
    _, _, splits, windows = _study_data(cfg, out.parent / "cache")
    x = WindowView(windows, splits["main_test"].rows).array()
    assert _json(out / "runs" / "both_gru" / "model.json")["builder"] == "raw_waveform_gru"
    model, card = load_run_model(out / "runs" / "both_mean")
    assert card["builder"] == "raw_waveform_mean"
    emb = model.predict(x, verbose=0)["embedding"]
    np.testing.assert_allclose(emb, np.load(out / "runs" / "both_mean" / "test_window_embeddings.npy"), atol=1e-5)
    # Grad-CAM over time at the card's layer
    from tf_scenes import saliency

    cam = saliency.grad_cam(model, x[:2], card["saliency"]["layer"], output=card["saliency"]["output"])
    assert cam.shape == (2, x.shape[1]) and np.all((cam >= 0) & (cam <= 1))
    assert _json(out / "study.json")["runs"] == ALL_RUNS
    assert _json(out / "run.json")["status"] == "finished"


def test_held_out_transfer_split_is_disjoint_from_training(study):
    out, cfg = study
    doc = _json(out / "splits.json")
    assert set(doc["transfer_fine"]) == set(cfg.transfer.classes)
    assert not set(doc["transfer_fine"]) & set(doc["main_fine"])
    files = {k: {r["file"] for r in v} for k, v in doc["splits"].items()}
    main = files["main_train"] | files["main_val"] | files["main_test"]
    transfer = files["transfer_train"] | files["transfer_val"] | files["transfer_test"]
    assert files["transfer_train"] and files["transfer_test"]
    assert not main & transfer
    assert not files["transfer_train"] & files["transfer_test"] and not files["main_train"] & files["main_test"]
    assert all(r["fine"] in doc["transfer_fine"] for k in ("transfer_train", "transfer_test") for r in doc["splits"][k])
    assert all(r["fine"] in doc["main_fine"] for r in doc["splits"]["main_train"])
    assert {r["fold"] for r in doc["splits"]["transfer_test"]} == {5}
    # the transfer runs trained on the transfer split only, with a head over the held-out classes
    assert _json(out / "runs" / "transfer_finetune" / "model.json")["outputs"] == {"fine": doc["transfer_fine"]}
    run_cfg = (out / "runs" / "transfer_finetune" / "config.yaml").read_text()
    assert "train_split: transfer_train" in run_cfg and "init_from: runs/both_attention" in run_cfg


def test_figures_written(study):
    out, _ = study
    for name in ("figure3_filters.png", "projection_pca.png"):
        data = (out / "figures" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    f = np.load(out / "figures" / "figure3_filters.npz")
    n_filters = round(100 * 0.03)  # Conv1 has 100 filters x width 0.03
    for layer in ("short_conv1", "long_conv1"):
        assert f[f"{layer}_db"].shape == (n_filters, 257)
        assert np.all(np.diff(f[f"{layer}_peak_hz"]) >= 0)  # sorted by peak frequency
        assert sorted(f[f"{layer}_order"]) == list(range(n_filters))


def test_export_round_trip_matches_keras(study, tiny_esc50):
    from tf_scenes.audio import read_audio
    from tf_scenes.export import read_export_metadata
    from tf_scenes.metrics.clustering import clip_decision
    from tf_scenes.model_io import load_run_model

    out, cfg = study
    export_dir = out / "export" / "raw_waveform_hierarchical"
    meta, labels = read_export_metadata(export_dir)
    assert meta["input"]["sample_rate"] == SR and meta["input"]["min_samples"] == 32000
    assert labels["coarse"] == ["animals", "natural", "human", "interior", "exterior"] and len(labels["fine"]) == 40
    test_files = [r["file"] for r in _json(out / "splits.json")["splits"]["main_test"]][:2]
    wav = np.stack([read_audio(tiny_esc50 / "ESC-50" / f, sr=SR)[0] for f in test_files])  # (2, 80000)
    served = tf.saved_model.load(str(export_dir)).signatures["serving_default"](waveform=tf.constant(wav))
    # Keras: the backbone on the cached training-pipeline windows, clip = mean over windows
    model, _ = load_run_model(out / "runs" / rw.HIERARCHICAL)
    _, _, splits, windows = _study_data(cfg, out.parent / "cache")
    view = WindowView(windows, splits["main_test"].rows[:2])
    keras_out = model.predict(view.array(), verbose=0)
    for key in ("coarse", "fine", "embedding"):
        expect = clip_decision(keras_out[key], view.clip_ids())[1]
        np.testing.assert_allclose(served[key].numpy(), expect, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(served["coarse"].numpy().sum(1), 1.0, atol=1e-5)
    # longer input: 4 windows inside the graph, same as the Keras clip model
    long = np.concatenate([wav[:1], wav[1:, :32000]], axis=1)  # (1, 112000): 7 s
    served_long = tf.saved_model.load(str(export_dir)).signatures["serving_default"](waveform=tf.constant(long))
    keras_long = clip_model(model)(long)
    np.testing.assert_allclose(served_long["fine"].numpy(), np.asarray(keras_long["fine"]), atol=2e-5)


def test_embed_command_writes_npz(study, tiny_esc50, tmp_path):
    from tf_scenes.audio import read_audio, write_audio
    from tf_scenes.experiments.cli import main

    out, cfg = study
    clip = tiny_esc50 / "ESC-50" / "audio" / Path(_json(out / "splits.json")["splits"]["main_test"][0]["file"]).name
    x, _ = read_audio(clip, sr=SR)
    write_audio(tmp_path / "long.wav", np.concatenate([x, x[: 2 * SR]]), SR, subtype="FLOAT")  # 7 s
    write_audio(tmp_path / "short.wav", x[:SR], SR, subtype="FLOAT")  # 1 s: padded to one window
    rc = main(["embed", str(out / "runs" / rw.HIERARCHICAL), str(clip), str(tmp_path / "long.wav"),
               str(tmp_path / "short.wav"), "--out", str(tmp_path / "emb")])
    assert rc == 0
    dim = cfg.model.fc_units[-1]
    for stem, n_win, dur in ((clip.stem, 3, 5.0), ("long", 4, 7.0), ("short", 1, 1.0)):
        z = np.load(tmp_path / "emb" / f"{stem}.npz")
        assert z["window_embeddings"].shape == (n_win, dim) and z["clip_embedding"].shape == (dim,)
        np.testing.assert_allclose(z["window_start"], 1.5 * np.arange(n_win))
        np.testing.assert_allclose(z["window_end"], 1.5 * np.arange(n_win) + 2.0)
        np.testing.assert_allclose(z["clip_embedding"], z["window_embeddings"].mean(0), rtol=1e-6)
        assert float(z["duration"]) == pytest.approx(dur, abs=1e-3) and int(z["sample_rate"]) == SR
        assert z["coarse"].shape == (5,) and z["fine"].shape == (40,) and list(z["coarse_labels"])[0] == "animals"
    # the 5 s clip: same windows as the study's cache, hence the study's test embeddings
    test_rows = _json(out / "splits.json")["splits"]["main_test"]
    i = [Path(r["file"]).name for r in test_rows].index(clip.name)
    saved = np.load(out / "runs" / rw.HIERARCHICAL / "test_window_embeddings.npy")[3 * i:3 * i + 3]
    np.testing.assert_allclose(np.load(tmp_path / "emb" / f"{clip.stem}.npz")["window_embeddings"], saved, atol=1e-5)


def test_embed_rejects_other_families_and_clashing_names(tmp_path):
    from tf_scenes.errors import TFScenesError

    from tf_scenes.model_io import write_model_card
    from tf_scenes.two_stage.model import TwoStageModelConfig

    write_model_card(tmp_path / "run", family="two_stage", builder="two_stage_resnet", config=TwoStageModelConfig(),
                     feature_config="two_stage", outputs={"scene": ["airport"]})
    with pytest.raises(TFScenesError, match="raw-waveform run folder"):
        embed.load_embedding_model(tmp_path / "run")
    with pytest.raises(ConfigError, match="both write a.npz"):
        embed.embed_files(tmp_path / "run", [tmp_path / "x" / "a.wav", tmp_path / "y" / "a.wav"], tmp_path / "o")


# ---------------------------------------------------------------------------------------------
# study logic on hand-made cases (no training)


def _records(groups: dict, clips_per_class: int = 5):
    recs = []
    for coarse, fines in groups.items():
        for fine in fines:
            for k in range(clips_per_class):
                recs.append(HierRecord(Path(f"{fine}_{k}.wav"), fine, coarse, fold=k % 5 + 1))
    return recs


GROUPS = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3"], "c": ["c1", "c2", "c3"]}
ORDER = [f for fs in GROUPS.values() for f in fs]


def test_choose_classes_holds_out_k_per_group_seeded():
    recs = _records(GROUPS)
    tcfg = rw.TransferConfig(holdout_per_coarse=1, seed=3)
    c = rw.choose_classes(recs, ORDER, tcfg)
    assert c.coarse == ("a", "b", "c")
    assert len(c.transfer) == 3 and sorted(c.coarse_of[f] for f in c.transfer) == ["a", "b", "c"]
    assert set(c.fine) | set(c.transfer) == set(ORDER) and not set(c.fine) & set(c.transfer)
    assert list(c.fine) == [f for f in ORDER if f in c.fine]  # class-map order kept
    assert rw.choose_classes(recs, ORDER, tcfg) == c  # deterministic
    m = c.fine_to_coarse_matrix()
    assert m.shape == (7, 3) and np.all(m.sum(1) == 1)
    assert [c.coarse[j] for j in m.argmax(1)] == [c.coarse_of[f] for f in c.fine]
    # explicit classes, and the errors
    e = rw.choose_classes(recs, ORDER, rw.TransferConfig(classes=("a1", "b1", "c1")))
    assert e.transfer == ("a1", "b1", "c1") and e.fine == ("a2", "a3", "a4", "b2", "b3", "c2", "c3")
    with pytest.raises(ConfigError, match="not fine classes"):
        rw.choose_classes(recs, ORDER, rw.TransferConfig(classes=("a1", "zz", "c1")))
    with pytest.raises(ConfigError, match="keep no fine class"):
        rw.choose_classes(recs, ORDER, rw.TransferConfig(classes=("b1", "b2", "b3")))
    with pytest.raises(ConfigError, match=">= 3 transfer"):
        rw.choose_classes(recs, ORDER, rw.TransferConfig(classes=("a1", "b1")))


def test_load_records_folder_per_class_with_class_map(tmp_path):
    from tf_scenes.errors import DataFormatError

    root = tmp_path / "set"
    for fine in ("b1", "a1", "a2"):
        for k in range(5):
            (root / fine).mkdir(parents=True, exist_ok=True)
            (root / fine / f"{k}.wav").write_bytes(b"")  # listed only; no audio is read here
    cfg = rw.Config(data=rw.DataConfig(root=str(root)))
    with pytest.raises(DataFormatError, match="class map"):
        rw.load_records(cfg, root)
    (root / "class_map.csv").write_text("fine,coarse\na1,A\na2,A\nb1,B\n")
    records, order = rw.load_records(cfg, root)
    assert order == ["a1", "a2", "b1"] and len(records) == 15
    assert {(r.fine, r.coarse) for r in records} == {("a1", "A"), ("a2", "A"), ("b1", "B")}
    assert sorted(r.fold for r in records if r.fine == "b1") == [1, 2, 3, 4, 5]  # seeded class-balanced folds
    assert rw.resolve_data_root(cfg) == root


def test_make_splits_by_fold_and_label_ids():
    recs = _records(GROUPS)
    c = rw.choose_classes(recs, ORDER, rw.TransferConfig(classes=("a1", "b1", "c1")))
    cfg = rw.Config()
    s = rw.make_splits(recs, c, cfg)
    assert len(s["main_train"]) == 7 * 3 and len(s["main_val"]) == 7 and len(s["main_test"]) == 7
    assert len(s["transfer_train"]) == 9 and len(s["transfer_test"]) == 3
    tr = s["transfer_train"]
    for i, r in zip(tr.rows, tr.records):
        assert recs[i] is r and r.fold in (1, 2, 3)
    assert [c.transfer[k] for k in tr.fine] == [r.fine for r in tr.records]
    assert [c.coarse[k] for k in s["main_test"].coarse] == [r.coarse for r in s["main_test"].records]
    with pytest.raises(ConfigError, match="empty"):
        rw.make_splits(recs, c, rw.Config(data=rw.DataConfig(test_folds=(9,))))
    with pytest.raises(ConfigError, match="disjoint"):
        rw.Config(data=rw.DataConfig(train_folds=(1, 2), val_folds=(2,)))


def test_window_view_indexes_clip_rows_lazily():
    arr = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5, 1)
    v = WindowView(arr, np.array([1, 0]))
    assert v.shape == (6, 5) and len(v) == 6
    np.testing.assert_array_equal(v[0], arr[1, 0, :, 0])
    np.testing.assert_array_equal(v[4], arr[0, 1, :, 0])
    np.testing.assert_array_equal(v.array(), np.concatenate([arr[1, :, :, 0], arr[0, :, :, 0]]))
    np.testing.assert_array_equal(v.clip_ids(), [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(v.repeat([7, 9]), [7, 7, 7, 9, 9, 9])


def _aug(**kw):
    off = dict(enabled=True, gain_db=0.0, speed=0.0, speed_prob=0.0, stretch_prob=0.0, pitch_prob=0.0, drc_prob=0.0,
               noise_prob=0.0)
    off.update(kw)
    return rw.AugmentConfig(**off)


def _seed(k):
    return tf.constant([k, 7], tf.int64)


def test_augment_window_identity_determinism_and_mean():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(32000) + 0.3).astype(np.float32)
    y = rw.augment_window(tf.constant(x), _seed(1), _aug()).numpy()
    np.testing.assert_allclose(y, x - x.mean(), atol=1e-5)  # everything off: only the mean removal
    full = rw.AugmentConfig()
    a = rw.augment_window(tf.constant(x), _seed(1), full).numpy()
    b = rw.augment_window(tf.constant(x), _seed(1), full).numpy()
    c = rw.augment_window(tf.constant(x), _seed(2), full).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert abs(a.mean()) < 1e-5


def test_augment_speed_moves_the_frequency_within_bounds():
    n, f0 = 32000, 1000.0
    x = np.sin(2 * np.pi * f0 * np.arange(n) / SR).astype(np.float32)
    freqs = np.fft.rfftfreq(n, 1 / SR)
    peaks = []
    for k in range(6):
        y = rw.augment_window(tf.constant(x), _seed(k), _aug(speed=0.1, speed_prob=1.0)).numpy()
        peaks.append(freqs[np.abs(np.fft.rfft(y)).argmax()])
    assert all(900 - 1 <= p <= 1100 + 1 for p in peaks) and len(set(np.round(peaks))) > 1


def test_augment_noise_snr_and_gain():
    x = np.sin(2 * np.pi * 440 * np.arange(32000) / SR).astype(np.float32)
    y = rw.augment_window(tf.constant(x), _seed(3), _aug(noise_prob=1.0, noise_snr_db=(20.0, 20.0))).numpy()
    ratio = np.sqrt(np.mean((y - x) ** 2) / np.mean(x ** 2))
    assert ratio == pytest.approx(0.1, rel=0.05)  # 20 dB SNR
    g = rw.augment_window(tf.constant(x), _seed(4), _aug(gain_db=6.0)).numpy()
    gain_db = 20 * np.log10(np.sqrt(np.mean(g ** 2) / np.mean(x ** 2)))
    assert -6.0 <= gain_db <= 6.0 and abs(gain_db) > 1e-3


def test_augment_drc_compresses_loud_parts_keeping_rms():
    t = np.arange(32000) / SR
    x = np.sin(2 * np.pi * 300 * t) * np.where(t < 1.0, 1.0, 0.05)  # loud first second, quiet second
    x = (x - x.mean()).astype(np.float32)
    y = rw.augment_window(tf.constant(x), _seed(5), _aug(drc_prob=1.0)).numpy()
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=0.01)
    loud_quiet = lambda s: np.sqrt(np.mean(s[2000:14000] ** 2) / np.mean(s[18000:30000] ** 2))  # noqa: E731
    assert loud_quiet(y) < 0.8 * loud_quiet(x)  # the level difference shrinks


def test_window_augmentations_are_the_two_stage_functions_as_named_transforms():
    """Each kind is a named transform on its own seed stream (switching one off leaves the others'
    draws alone) and computes what the two-stage augmentation computes with the drawn value: speed
    change = band-limited resampling, DRC = the sox-style compander (at 16 kHz) with the loudness
    kept, noise = the noise kind's N(0, 1) draw scaled to the SNR."""
    from tf_scenes.pipelines import transforms as T
    from tf_scenes.pipelines import waveform_augment as wa
    from tf_scenes.pipelines.augment import fold_seed

    every = _aug(speed=0.1, speed_prob=1.0, stretch=0.1, stretch_prob=1.0, pitch_prob=1.0, drc_prob=1.0,
                 noise_prob=1.0, gain_db=3.0)
    ts = rw.window_transforms(every, SR)
    names = ["speed_change", "time_stretch", "pitch_shift", "compander", "noise", "gain", "remove_mean"]
    assert [t.name for t in ts] == names
    assert [t.stream for t in ts[:-1]] == [T.STREAMS[n] for n in names[:-1]]  # one stream each
    x = tf.constant(np.random.default_rng(1).normal(0, 0.1, 32000).astype(np.float32))
    s = _seed(3)

    def u(seed, lo, hi):
        return tf.random.stateless_uniform([], seed=fold_seed(seed, 1), minval=lo, maxval=hi)

    got = {t.name: t.fn(x, (), s)[0].numpy() for t in ts}
    np.testing.assert_array_equal(got["speed_change"], wa.apply_speed_change(x, u(s, 0.9, 1.1)).numpy())
    np.testing.assert_array_equal(got["time_stretch"], wa.apply_time_stretch(x, u(s, 0.9, 1.1)).numpy())
    np.testing.assert_array_equal(got["pitch_shift"], wa.apply_pitch_shift(x, u(s, -2.0, 2.0)).numpy())
    params = wa.AugmentParams(wa.WaveAugmentConfig(sample_rate=SR))
    drc = wa.augment("drc", x, fold_seed(s, 1), params).numpy()
    np.testing.assert_allclose(got["compander"], drc * np.sqrt(np.mean(x.numpy() ** 2) / np.mean(drc ** 2)), rtol=1e-5)
    snr = tf.random.stateless_uniform([], seed=fold_seed(fold_seed(s, 1), 0), minval=10.0, maxval=30.0).numpy()
    unit = tf.random.stateless_normal([32000], seed=fold_seed(fold_seed(fold_seed(s, 1), 1), 4)).numpy()
    want = x.numpy() + unit * np.sqrt(np.mean(x.numpy() ** 2) + 1e-12) * 10 ** (-snr / 20)
    np.testing.assert_allclose(got["noise"], want, atol=1e-6)
    # a probability of 0.5: some windows untouched, the others changed, by the example's seed
    half = T.speed_change(0.1, 0.5)
    changed = [not np.array_equal(half.fn(x, (), _seed(k))[0].numpy(), x.numpy()) for k in range(12)]
    assert 0 < sum(changed) < 12


def test_window_time_stretch_and_pitch_shift_per_the_paper():
    """Time stretch keeps the pitch and moves the onsets; pitch shift moves the pitch and keeps the
    timing (the paper's augmentations; off in the quick profile, on in the paper profile)."""
    t = np.arange(32000) / SR
    x = (np.sin(2 * np.pi * 500 * t) * (t >= 1.0)).astype(np.float32)  # a tone starting at 1 s
    freqs = np.fft.rfftfreq(16000, 1 / SR)

    def peak(y):
        return freqs[np.abs(np.fft.rfft(y[16000:])).argmax()]

    def onset(y):
        return np.argmax(np.abs(y) > 0.5) / SR

    for k in range(4):
        st = rw.augment_window(tf.constant(x), _seed(k), _aug(stretch=0.2, stretch_prob=1.0)).numpy()
        ps = rw.augment_window(tf.constant(x), _seed(k), _aug(pitch_semitones=3.0, pitch_prob=1.0)).numpy()
        assert peak(st) == pytest.approx(500, abs=2) and 1 / 1.2 - 0.02 <= onset(st) <= 1 / 0.8 + 0.02
        assert 500 * 2 ** (-3 / 12) - 3 <= peak(ps) <= 500 * 2 ** (3 / 12) + 3 and abs(peak(ps) - 500) > 2
        assert onset(ps) == pytest.approx(1.0, abs=0.04)
    paper = load_config(rw.Config, config_path("raw_waveform", "paper"))
    quick = load_config(rw.Config, config_path("raw_waveform", "quick"))
    assert paper.augment.stretch_prob > 0 and paper.augment.pitch_prob > 0 and paper.augment.speed_prob == 0
    assert quick.augment.stretch_prob == quick.augment.pitch_prob == 0 and quick.augment.speed_prob > 0
    assert report.augment_summary(paper.augment) == (
        "time stretch +/-10 % (p=0.5); pitch shift +/-2 semitones (p=0.5); dynamic range compression, "
        "light/medium/heavy compander curves (p=0.3); Gaussian noise at 10-30 dB SNR (p=0.5); gain +/-6 dB")
    assert report.augment_summary(quick.augment).startswith("speed change +/-5 % (p=0.5; tempo + pitch); dynamic")


def test_classifier_scores_map_columns_and_binary_decisions():
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    x = np.array([[0.0], [0.1], [5.0], [5.1]])
    y = np.array([0, 0, 2, 2])  # class 1 never seen in training
    lr = LogisticRegression().fit(x, y)
    s = report._classifier_scores(lr, x, 3)
    assert s.shape == (4, 3) and np.all(s[:, 1] == -1e9)
    np.testing.assert_allclose(s[:, [0, 2]], lr.predict_proba(x))
    svc = SVC(kernel="poly", degree=3).fit(x, y)
    d = svc.decision_function(x)  # binary: (n,), positive = class 2
    s = report._classifier_scores(svc, x, 3)
    np.testing.assert_allclose(s[:, 2], d)
    np.testing.assert_allclose(s[:, 0], -d)
    assert list(s.argmax(1)) == [0, 0, 2, 2]


def test_filter_responses_peaks_and_sort_order():
    taps = np.arange(300) / SR
    freqs = [1000.0, 4000.0, 250.0]
    kernel = np.stack([np.cos(2 * np.pi * f * taps) * np.hanning(300) for f in freqs], axis=1)[:, None, :]
    f, db, peak, order = filter_responses(kernel, SR, n_fft=1600)  # 10 Hz bins
    assert list(order) == [2, 0, 1]
    np.testing.assert_allclose(peak, [250.0, 1000.0, 4000.0], atol=10.0)
    assert db.shape == (3, 801) and np.allclose(db.max(1), 0.0)
    with pytest.raises(ValueError, match="Conv1D kernel"):
        filter_responses(np.zeros((3, 4)), SR)


def test_cluster_row_hand_computed():
    emb = np.array([[0, 0], [0, 2], [10, 0], [10, 2]], float)
    coarse = np.array([0, 0, 1, 1])
    fine = np.array([0, 1, 2, 3])  # singletons: intra undefined
    r = report.cluster_row("k", "label", emb, coarse, fine)
    assert r["coarse_intra"] == 2.0 and r["coarse_inter"] == 10.0 and r["coarse_ratio"] == 5.0
    assert r["fine_intra"] is None and r["fine_ratio"] is None
    # centroids are the points: pairs at 2, 10, 2, sqrt(104), sqrt(104), 10 -> mean
    assert r["fine_inter"] == pytest.approx((2 + 10 + 2 + 10 + 2 * np.sqrt(104)) / 6, rel=1e-5)


def test_binaural_clip_becomes_four_windowed_waveforms(tmp_path):
    from tf_scenes.audio import write_audio
    from tf_scenes.features import extract, get_feature_config

    rng = np.random.default_rng(1)
    st = (0.2 * rng.standard_normal((5 * SR, 2))).astype(np.float32)
    write_audio(tmp_path / "s.wav", st, SR, subtype="FLOAT")
    rec = HierRecord(tmp_path / "s.wav", "x", "y", 1)
    assert rw.is_binaural([rec], "auto") and not rw.is_binaural([rec], "off")
    w = rw.clip_windows([tmp_path / "s.wav"], tmp_path / "cache", binaural=True)
    assert w.shape == (1, 12, 32000, 1)
    raw = get_feature_config("raw")
    for k, sig in enumerate((st[:, 0], st[:, 1], st[:, 0] + st[:, 1], st[:, 0] - st[:, 1])):
        np.testing.assert_allclose(w[0, 3 * k:3 * k + 3], extract(raw, sig), atol=1e-6)
    again = rw.clip_windows([tmp_path / "s.wav"], tmp_path / "cache", binaural=True)  # cache hit
    np.testing.assert_array_equal(again, w)


def test_copy_matching_weights_skips_heads_of_another_size():
    from tf_scenes.raw_waveform.model import RawWaveformConfig, build_raw_waveform

    small = dict(width=0.03, fc_units=(8, 4), attention_units=4, n_coarse=3)
    keras.utils.set_random_seed(0)
    a = build_raw_waveform(RawWaveformConfig(n_fine=5, **small))
    keras.utils.set_random_seed(1)
    b = build_raw_waveform(RawWaveformConfig(n_fine=4, heads="fine", **small))
    head_before = b.get_layer("fine_head").get_weights()[0].copy()
    copied = copy_matching_weights(a, b)
    assert "fine_head" not in copied and "short_conv1" in copied and "attention_pool" in copied
    np.testing.assert_array_equal(b.get_layer("fine_head").get_weights()[0], head_before)
    np.testing.assert_array_equal(b.get_layer("fc1").get_weights()[0], a.get_layer("fc1").get_weights()[0])


def test_profiles_load_and_tiny_transfer_classes_exist():
    from tf_scenes.synth.classes import ESC50_CATEGORIES

    cfgs = {p: load_config(rw.Config, config_path("raw_waveform", p)) for p in ("paper", "quick", "tiny")}
    assert cfgs["paper"].model.width == 1.0 and cfgs["paper"].train.lr == 1e-3
    assert cfgs["quick"].model.width == 0.125 and cfgs["quick"].data.synthetic_size == "small"
    assert cfgs["tiny"].train.epochs == 1 and cfgs["tiny"].data.synthetic_size == "tiny"
    assert set(cfgs["tiny"].transfer.classes) <= set(ESC50_CATEGORIES)
    assert all(c.description for c in cfgs.values())


# ---------------------------------------------------------------------------------------------
# resume (slow: three trainer traces)


@pytest.mark.slow
def test_fit_resumes_hierarchical_trainer_exactly(tmp_path):
    """fit() on a HierarchicalTrainer: 1 epoch, then resume to 2 == 2 epochs straight (bitwise)."""
    from tf_scenes.training.trainer import set_determinism

    from types import SimpleNamespace

    from tf_scenes import registry
    from tf_scenes.experiments.study import RunSpec, run_setup

    set_determinism(0)
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((6, 3, 32000, 1)).astype(np.float32)
    cfg = rw.Config(model=rw.ModelSettings(width=0.03, fc_units=(8, 4), attention_units=4),
                    train=rw.TrainConfig(batch_size=6, verbose=0, tensorboard=False))
    classes = rw.Classes(("g0", "g1", "g2"), tuple(f"f{i}" for i in range(6)), (), {})
    recs = [HierRecord(Path(f"{i}.wav"), f"f{i}", f"g{i % 3}", 1) for i in range(6)]
    train = rw.Split("main_train", recs, np.arange(6), np.array([0, 1, 2, 0, 1, 2]), np.arange(6))
    val = rw.Split("main_val", [], np.arange(0), np.arange(0), np.arange(0))
    data = SimpleNamespace(classes=classes, splits={"main_train": train, "main_val": val},
                           views={"main_train": WindowView(windows, train.rows), "main_val": WindowView(windows, val.rows)})
    mcfg = rw.model_config(cfg, rw.RUNS["both_attention"], classes)

    def weights(folder, epochs):  # same seed: same initial weights and batches
        item = rw.Item(rw.RUNS["both_attention"], "main_train", "main_val", "main_test", classes.fine, epochs, 1e-3)
        spec = RunSpec("run", "raw_waveform", mcfg, {}, seed=7, train=cfg.train, item=item)
        with run_setup(spec.seed, cfg.train) as strategy:
            trained = rw.train(spec, data, tmp_path / folder, lambda: registry.build("raw_waveform", mcfg),
                               SimpleNamespace(config=cfg), strategy=strategy)
        state = json.loads((tmp_path / folder / "checkpoints" / "state.json").read_text())
        return [w.copy() for w in trained.model.get_weights()], state

    straight, _ = weights("a", 2)
    _, first = weights("b", 1)
    resumed, state = weights("b", 2)
    assert first["epoch"] == 0 and state["epoch"] == 1 and len(state["history"]) == 2
    assert len(straight) == len(resumed)
    for x, y in zip(straight, resumed):
        np.testing.assert_array_equal(x, y)


def test_export_tflite_predict_and_saliency_commands_on_a_run(study, tiny_esc50, tmp_path, capsys):
    """The shipping commands on the raw-waveform run folder: `export --tflite` (whole clips, same
    outputs as the study's export), `predict` on a 44.1 kHz stereo file (down-mixed, resampled), and
    `saliency`: Grad-CAM over time plus the first-layer filter responses."""
    from tf_scenes.audio import read_audio, write_audio
    from tf_scenes.experiments.cli import main
    from tf_scenes.export import read_export_metadata

    out, _ = study
    run = out / "runs" / rw.HIERARCHICAL
    exp = tmp_path / "export"
    assert main(["export", str(run), "--out", str(exp), "--tflite"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res["tflite"]["max_abs_diff"]) == {"coarse", "fine", "embedding"}
    assert max(res["tflite"]["max_abs_diff"].values()) < 1e-3
    meta, labels = read_export_metadata(exp)
    assert meta["family"] == "raw_waveform" and meta["input"]["sample_rate"] == SR
    study_meta, _ = read_export_metadata(out / "export" / "raw_waveform_hierarchical")
    # the same input contract as the study's export: at least one 2 s window, the same windowing
    assert meta["input"]["min_samples"] == study_meta["input"]["min_samples"] == 2 * SR
    for k in ("window_seconds", "hop_seconds", "clip_decision"):
        assert meta[k] == study_meta[k]
    clip = tiny_esc50 / "ESC-50" / "audio" / Path(_json(out / "splits.json")["splits"]["main_test"][0]["file"]).name
    x, _ = read_audio(clip, sr=SR)
    ours = tf.saved_model.load(str(exp)).signatures["serving_default"](waveform=tf.constant(x[None]))
    theirs = tf.saved_model.load(str(out / "export" / "raw_waveform_hierarchical")).signatures[
        "serving_default"](waveform=tf.constant(x[None]))
    for k in ("coarse", "fine", "embedding"):
        np.testing.assert_allclose(ours[k].numpy(), theirs[k].numpy(), atol=1e-6)

    import soxr

    stereo = soxr.resample(np.stack([x, x], axis=1), SR, 44100)
    write_audio(tmp_path / "stereo44k.wav", stereo, 44100, subtype="FLOAT")
    assert main(["predict", str(exp), str(clip), str(tmp_path / "stereo44k.wav")]) == 0
    lines = [json.loads(s) for s in capsys.readouterr().out.strip().splitlines()]
    assert [ln["file"] for ln in lines] == [str(clip), str(tmp_path / "stereo44k.wav")]
    for ln in lines:
        assert ln["sample_rate"] == SR and ln["seconds"] == pytest.approx(5.0, abs=1e-3)
        assert ln["outputs"]["coarse"]["top"][0][0] in labels["coarse"]
        assert len(ln["outputs"]["fine"]["top"]) == 3
    top = lines[0]["outputs"]["coarse"]["top"]
    np.testing.assert_allclose([p for _, p in top], np.sort(ours["coarse"].numpy()[0])[::-1][:3], atol=1e-5)
    assert lines[1]["outputs"]["coarse"]["top"][0][0] == top[0][0]  # the same sound after resampling

    fig = tmp_path / "sal.png"
    assert main(["saliency", str(run), str(clip), "--output", "fine", "--out", str(fig)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fig.stat().st_size > 10_000 and "gradcam at short_conv4" in res["panels"][0]
    assert res["filters"] == str(tmp_path / "sal_filters.png") and Path(res["filters"]).stat().st_size > 10_000
    arrays = np.load(tmp_path / "sal_filters.npz")
    assert {"short_conv1_db", "long_conv1_db", "freqs_hz"} <= set(arrays.files)
    assert np.all(np.diff(arrays["short_conv1_peak_hz"]) >= 0)  # sorted by peak frequency
