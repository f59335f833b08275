"""DcaseNet study: joint training step, task subsets, pipelines, evaluation protocol, the feature
cache, the whole study on the tiny profile, `tf-scenes finetune` and the SavedModel export."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_scenes.dcasenet import evaluate as ev
from tf_scenes.dcasenet.crops import TaskSplit, restandardise, restandardise_np
from tf_scenes.dcasenet.joint import JointTrainer, check_tasks, summed_task_gradients, task_loss
from tf_scenes.dcasenet.model import VARIANTS, sed_loss
from tf_scenes.errors import ConfigError
from tf_scenes.experiments.dcasenet import plan as study
from tf_scenes.experiments.dcasenet import report as report
from tf_scenes.experiments.dcasenet.data import joint_dataset, train_dataset


REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "experiments" / "dcasenet" / "configs"


def tiny_cfg(version="v3"):
    # No dropout: training-mode losses are then deterministic and comparable.
    return dataclasses.replace(VARIANTS[version], width=0.0625, dropout=(0.0, 0.0))


def fixed_batches(seed=0, frames=80):
    rng = np.random.default_rng(seed)
    x = lambda b: rng.standard_normal((b, frames, 128, 1)).astype("float32")  # noqa: E731
    asc_y = np.eye(10, dtype="float32")[[1, 7, 3]]
    tag_y = (rng.random((2, 80)) < 0.05).astype("float32")
    tag_y[:, 4] = 1.0
    sed_y = (rng.random((2, frames // 40 * 8 + 3, 14)) < 0.2).astype("float32")  # 3 extra label frames
    return {"asc": (x(3), asc_y), "tag": (x(2), tag_y), "sed": (x(2), sed_y)}


# ---------------------------------------------------------------------------------------------
# joint training step


def test_joint_train_step_sums_task_losses():
    keras.utils.set_random_seed(0)
    trainer = JointTrainer(tiny_cfg(), ("asc", "tag", "sed"))
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    batches = fixed_batches()

    # Each task's loss computed separately, by hand, from its own model's output.
    sep = {}
    x, y = batches["asc"]
    logits = trainer.task_models["asc"](x, training=True)["scene"].numpy().astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    sep["asc"] = -np.mean(np.sum(y * logp, axis=1))
    x, y = batches["tag"]
    z = trainer.task_models["tag"](x, training=True)["tags"].numpy().astype(np.float64)
    sep["tag"] = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    x, y = batches["sed"]
    p = trainer.task_models["sed"](x, training=True)["frames"].numpy().astype(np.float64)
    n = p.shape[1]  # the model gives fewer frames than the labels: trimmed to the shorter
    p = np.clip(p, 1e-7, 1 - 1e-7)
    sep["sed"] = -np.mean(y[:, :n] * np.log(p) + (1 - y[:, :n]) * np.log(1 - p))
    frames = trainer.task_models["sed"](x, training=True)["frames"]
    assert float(sed_loss(y, frames)) == pytest.approx(sep["sed"], rel=1e-4)

    losses = {t: float(v) for t, v in trainer.task_losses(batches, training=True).items()}
    for t in ("asc", "tag", "sed"):
        assert losses[t] == pytest.approx(sep[t], rel=1e-4), t

    # Gradient of the sum, then one SGD(lr=1) step: every variable moves by -grad(sum).
    variables = trainer.net.trainable_variables
    with tf.GradientTape() as tape:
        total = tf.add_n(list(trainer.task_losses(batches, training=True).values()))
    grads = dict(zip([v.path for v in variables], tape.gradient(total, variables)))
    before = {v.path: v.numpy().copy() for v in variables}
    logs = trainer.train_step(batches)
    assert float(logs["loss"]) == pytest.approx(sum(sep.values()), rel=1e-4)
    for t in ("asc", "tag", "sed"):
        assert float(logs[f"loss_{t}"]) == pytest.approx(sep[t], rel=1e-4)
    for v in variables:
        g = grads[v.path]
        assert g is not None, v.path  # all three tasks active: every variable is used
        np.testing.assert_allclose(before[v.path] - v.numpy(), g.numpy(), rtol=1e-3, atol=1e-6, err_msg=v.path)


def test_joint_step_adds_task_gradients_in_a_fixed_order():
    """Shared variables get their tasks' gradients summed in task order, never by an AddN over
    tasks (TensorFlow's CPU AddN reorders its sum by which input buffer it can reuse, so the
    three-task run did not repeat); two tasks give exactly the gradient of the summed loss."""
    keras.utils.set_random_seed(2)
    trainer = JointTrainer(tiny_cfg(), ("asc", "tag", "sed"))
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1))
    batches = fixed_batches(2)
    variables = trainer._train_vars
    trainer.optimizer.build(variables)

    # The traced step: no AddN takes inputs from more than one task model.
    tensors = tf.nest.map_structure(tf.convert_to_tensor, batches)
    graph = tf.function(trainer.train_step).get_concrete_function(tensors).graph
    addn = [op for op in graph.get_operations() if op.type == "AddN"]
    assert addn  # the tape still uses AddN inside each task's backward pass
    for op in addn:
        owners = {t for t in ("asc", "tag", "sed") for x in op.inputs if f"dcasenet_v3_{t}" in x.name}
        assert len(owners) <= 1, (op.name, [x.name for x in op.inputs])

    with tf.GradientTape(persistent=True) as tape:
        losses = trainer.task_losses(batches, training=True)
    per_task = {t: tape.gradient(losses[t], variables) for t in trainer.tasks}
    summed = summed_task_gradients(tape, [losses[t] for t in trainer.tasks], variables)
    shared = 0
    for k, v in enumerate(variables):
        parts = [per_task[t][k].numpy() for t in trainer.tasks if per_task[t][k] is not None]
        expected = parts[0]
        for g in parts[1:]:
            expected = expected + g  # float32, in task order
        shared += len(parts) == 3
        np.testing.assert_array_equal(summed[k].numpy(), expected, err_msg=v.path)
    assert shared > 10  # the trunk is shared by all three tasks

    # Two tasks: bit-equal to the gradient of the summed loss (what the step computed before).
    with tf.GradientTape(persistent=True) as tape:
        two = trainer.task_losses(batches, training=True)
        total = two["asc"] + two["sed"]
    joint = tape.gradient(total, variables)
    pair = summed_task_gradients(tape, [two["asc"], two["sed"]], variables)
    for v, a, b in zip(variables, joint, pair):
        assert (a is None) == (b is None), v.path
        if a is not None:
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=v.path)


def test_task_subset_trains_only_the_variables_its_task_uses():
    keras.utils.set_random_seed(1)
    trainer = JointTrainer(tiny_cfg(), ("sed",))
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5))
    batches = fixed_batches(1)
    weight = {v.path: v for v in trainer.net.trainable_variables}
    names = {key: next(p for p in weight if p.startswith(key)) for key in
             ("asc_fc/kernel", "tag_fc3/kernel", "gru_1/", "sed_fc/kernel", "block1_conv1/kernel", "gru_2/")}
    before = {k: weight[p].numpy().copy() for k, p in names.items()}
    logs = trainer.train_step({"sed": batches["sed"]})  # only the SED batch is needed
    assert set(logs) == {"loss", "loss_sed"}
    changed = {k: not np.array_equal(before[k], weight[p].numpy()) for k, p in names.items()}
    assert changed == {"asc_fc/kernel": False, "tag_fc3/kernel": False, "gru_1/": False,
                       "sed_fc/kernel": True, "block1_conv1/kernel": True, "gru_2/": True}
    with pytest.raises(ValueError, match="no data for active task"):
        JointTrainer(tiny_cfg(), ("asc", "tag")).task_losses({"asc": batches["asc"]})


def test_task_sets_are_checked_and_canonical():
    assert check_tasks(["sed", "asc"]) == ("asc", "sed")
    for bad in ([], ["asc", "asc"], ["doa"]):
        with pytest.raises(ConfigError):
            check_tasks(bad)
    assert study.parse_tasks("tag+asc") == ("asc", "tag")
    with pytest.raises(ConfigError):
        study.parse_tasks("asc+")
    # softmax CE / BCE-with-logits / trimmed BCE on a hand-checkable case
    assert float(task_loss("asc", [[0.0, 1.0]], [[0.0, 0.0]])) == pytest.approx(np.log(2))
    assert float(task_loss("tag", [[1.0, 0.0]], [[0.0, 0.0]])) == pytest.approx(np.log(2))
    assert float(task_loss("sed", np.ones((1, 3, 1)), np.full((1, 2, 1), 0.5))) == pytest.approx(np.log(2))


# ---------------------------------------------------------------------------------------------
# pipelines


def _split(task, feats, labels, lengths=None, groups=None):
    from tf_scenes.pipelines.cache import ClipFeatures

    if isinstance(feats, list):
        offsets = np.concatenate([[0], np.cumsum([len(f) for f in feats])]).astype(np.int64)
        feats = ClipFeatures(np.concatenate(feats), offsets, tuple("x" * len(feats)), tuple([-1] * len(feats)))
        lengths = feats.lengths
    return TaskSplit(task, feats, np.asarray(lengths), labels, ["c"] * len(labels), groups)


def test_sed_windows_start_on_a_label_frame_and_carry_their_labels():
    frames, label_frames, hop, crop = 300, 60, 5, 100  # 6 s recordings, 2 s windows
    ramp = np.arange(frames, dtype=np.float32)
    feats = [np.broadcast_to(ramp[:, None, None] + 1000 * i, (frames, 8, 1)).copy() for i in range(3)]
    labels = np.stack([np.broadcast_to((np.arange(label_frames) + 1000 * i)[:, None], (label_frames, 14))
                       for i in range(3)]).astype(np.float32)
    ds = train_dataset(_split("sed", feats, labels), batch_size=3, crop_frames=crop, seed=3, epochs=2,
                       initial_epoch=0, steps_per_epoch=4, mixup_alpha=None, mixup_from_epoch=0, label_hop=hop)
    starts = set()
    for x, y in ds:
        assert x.shape == (3, crop, 8, 1) and y.shape == (3, crop // hop, 14)
        for xi, yi in zip(x.numpy(), y.numpy()):
            clip = int(xi[0, 0, 0] // 1000)
            s = int(yi[0, 0]) - 1000 * clip
            np.testing.assert_array_equal(xi[:, 0, 0], 1000 * clip + hop * s + np.arange(crop))
            np.testing.assert_array_equal(yi[:, 3], 1000 * clip + s + np.arange(crop // hop))
            assert 0 <= s < (frames - crop) // hop
            starts.add(s)
    assert len(starts) > 3  # random starts


def test_tag_crops_tile_short_clips_and_are_restandardised():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((100, 8, 1)).astype(np.float32)
    long = rng.standard_normal((400, 8, 1)).astype(np.float32)
    labels = np.eye(80, dtype=np.float32)[[3, 5]]
    ds = train_dataset(_split("tag", [base, long], labels), batch_size=2, crop_frames=251, seed=0, epochs=1,
                       initial_epoch=0, steps_per_epoch=3, mixup_alpha=None, mixup_from_epoch=0)
    for x, y in ds:
        for xi, yi in zip(x.numpy(), y.numpy()):
            assert xi.shape == (251, 8, 1)
            np.testing.assert_allclose(xi.mean(0), 0.0, atol=1e-5)
            np.testing.assert_allclose(xi.std(0, ddof=1), 1.0, atol=1e-4)
            if yi[3] == 1:  # the 100-frame clip, doubled to 400 frames: period 100
                np.testing.assert_allclose(xi[:151], xi[100:251], atol=1e-5)
            else:
                assert yi[5] == 1


def test_restandardising_a_crop_equals_standardising_it_alone():
    raw = np.random.default_rng(1).normal(3.0, 2.0, (500, 16, 1)).astype(np.float64)

    def standardise(a):
        return (a - a.mean(0)) / np.maximum(a.std(0, ddof=1), 1e-3)

    whole = standardise(raw)
    np.testing.assert_allclose(restandardise_np(whole[125:376]), standardise(raw[125:376]), atol=1e-5)
    np.testing.assert_allclose(restandardise(whole[125:376].astype(np.float32)).numpy(),
                               standardise(raw[125:376]), atol=1e-4)


def test_joint_dataset_gives_one_batch_per_active_task():
    rng = np.random.default_rng(0)
    splits = {"asc": _split("asc", rng.standard_normal((6, 300, 8, 1)).astype(np.float32), np.arange(6) % 10,
                            lengths=np.full(6, 300)),
              "sed": _split("sed", [rng.standard_normal((300, 8, 1)).astype(np.float32)] * 2,
                            np.zeros((2, 60, 14), np.float32))}
    crops = {"asc": 251, "sed": 100}
    ds = joint_dataset({t: train_dataset(s, batch_size=2, crop_frames=crops[t], seed=[0, k], epochs=3,
                                         initial_epoch=1, steps_per_epoch=2, mixup_alpha=0.1, mixup_from_epoch=2,
                                         n_classes=10)
                        for k, (t, s) in enumerate(splits.items())})
    assert int(ds.cardinality()) == 4  # (epochs - initial_epoch) * steps: what fit() checks
    elem = next(iter(ds))
    assert set(elem) == {"asc", "sed"}
    assert elem["asc"][0].shape == (2, 251, 8, 1) and elem["asc"][1].shape == (2, 10)
    assert elem["sed"][0].shape == (2, 100, 8, 1) and elem["sed"][1].shape == (2, 20, 14)


# ---------------------------------------------------------------------------------------------
# evaluation protocol


def test_three_crop_softmax_average_by_hand():
    ln3 = np.log(3.0)
    logits = np.array([[[0, 0], [0, ln3], [ln3, 0]],      # softmax .5/.5, .25/.75, .75/.25 -> .5/.5
                       [[0, 0], [0, 0], [ln3, 0]]])       # .5/.5, .5/.5, .75/.25 -> 7/12, 5/12
    np.testing.assert_allclose(ev.three_crop_mean(logits), [[0.5, 0.5], [7 / 12, 5 / 12]])
    assert ev.asc_crop_offsets(500, 251) == (0, 125, 249)  # 0-5 s, 2.5-7.5 s, 5-10 s of a 10 s clip


def test_predict_asc_feeds_the_three_restandardised_crops():
    x = np.random.default_rng(2).standard_normal((2, 500, 8, 1)).astype(np.float32)
    seen = []
    table = np.log(np.array([[1, 1], [1, 3], [3, 1], [1, 1], [1, 1], [3, 1]], np.float32))

    def runner(batch):
        seen.append(np.asarray(batch))
        return {"scene": tf.constant(table[: len(batch)])}

    probs = ev.predict_asc(runner, x, crop=251, batch_size=2)
    np.testing.assert_allclose(probs, [[0.5, 0.5], [7 / 12, 5 / 12]], rtol=1e-6)
    flat = seen[0]  # clip-major: clip 0 crops 0, 1, 2, then clip 1
    for c in range(2):
        for k, o in enumerate((0, 125, 249)):
            np.testing.assert_allclose(flat[3 * c + k], restandardise_np(x[c, o:o + 251]), atol=1e-5)


def test_four_channel_average_by_hand():
    # 2 recordings x 4 channel examples, 2 frames, 1 class: values chosen to average exactly.
    probs = np.array([0.1, 0.2, 0.3, 0.6, 0.0, 0.0, 1.0, 1.0])[:, None, None] * np.ones((8, 2, 1))
    groups = np.repeat([7, 3], 4)
    avg, ids = ev.channel_average(probs, groups)
    np.testing.assert_allclose(avg[:, 0, 0], [0.3, 0.5])
    assert ids.tolist() == [7, 3]
    # predict_sed through a runner giving each channel example a constant activity
    from tf_scenes.pipelines.cache import ClipFeatures

    n, frames = 8, 80
    clips = ClipFeatures(np.zeros((n * frames, 8, 1), np.float32), np.arange(0, n * frames + 1, frames),
                         tuple("r" * n), tuple(range(n)))
    values = iter(probs[:, 0, 0])

    def runner(batch):
        return {"frames": tf.constant(np.stack([np.full((16, 14), next(values))
                                                for _ in range(len(batch))]).astype(np.float32))}

    avg, ids = ev.predict_sed(runner, clips, groups, batch_size=3)
    assert avg.shape == (2, 16, 14)
    np.testing.assert_allclose(avg[:, 0, 0], [0.3, 0.5], rtol=1e-6)


def test_tile_min_frames_doubles_short_clips():
    x = np.arange(15)[:, None]
    assert len(ev.tile_min_frames(x)) == 60 and len(ev.tile_min_frames(np.arange(40)[:, None])) == 40


# ---------------------------------------------------------------------------------------------
# feature cache


def test_clip_features_split_channels_and_own_lengths(tmp_path):
    import functools

    from tf_scenes.audio import write_audio
    from tf_scenes.pipelines.cache import cached_clips
    from tf_scenes.errors import AudioError
    from tf_scenes.features import extract

    rng = np.random.default_rng(0)
    multi = (0.2 * rng.standard_normal((24000, 4))).astype(np.float32)
    write_audio(tmp_path / "four.wav", multi, 24000, subtype="FLOAT")
    short = (0.2 * rng.standard_normal(12000)).astype(np.float32)
    write_audio(tmp_path / "short.wav", short, 24000, subtype="FLOAT")
    cache = tmp_path / "cache"
    clip_features = functools.partial(cached_clips, feature_cfg="dcasenet")

    c = clip_features([tmp_path / "four.wav"], cache_dir=cache, split_channels=True, n_channels=4, progress=False)
    assert len(c) == 4 and c.channels == (0, 1, 2, 3)
    for k in range(4):
        np.testing.assert_allclose(c.clip(k), extract("dcasenet", multi[:, k]), atol=1e-4)
    mono = clip_features([tmp_path / "short.wav", tmp_path / "four.wav"], cache_dir=cache, progress=False)
    assert mono.lengths.tolist() == [25, 50]  # each clip at its own length: 1 + (n - 1) // 480
    np.testing.assert_allclose(mono.clip(0), extract("dcasenet", short), atol=1e-4)
    npy = sorted(cache.glob("dcasenet-clips-*.npy"))
    stamp = {p: p.stat().st_mtime_ns for p in npy}
    again = clip_features([tmp_path / "short.wav", tmp_path / "four.wav"], cache_dir=cache, progress=False)
    assert {p: p.stat().st_mtime_ns for p in npy} == stamp  # reused, not recomputed
    np.testing.assert_array_equal(np.asarray(again.data), np.asarray(mono.data))
    view = again.slice(1, 2)
    assert len(view) == 1 and view.lengths.tolist() == [50]
    padded = again.padded()
    assert padded.shape == (2, 50, 128, 1) and np.all(padded[0][25:] == 0)
    with pytest.raises(AudioError, match="short.wav.*1 channels, expected 4"):
        clip_features([tmp_path / "short.wav"], cache_dir=cache, split_channels=True, n_channels=4, progress=False)


# ---------------------------------------------------------------------------------------------
# configs and plan


def test_paper_profile_plans_every_row():
    from tf_scenes.config import load_config

    cfg = load_config(study.Config, CONFIGS / "paper.yaml", [])
    plan = study.plan_runs(cfg)
    joint = [n for n in plan if "-ft-" not in n and "nomixup" not in n]
    assert len([n for n in plan if "nomixup" in n]) == 3
    assert len(joint) == 21  # 7 combinations x 3 versions (single-task ones shared with Table 2)
    assert len([n for n in plan if "-ft-" in n]) == 27  # (2 + 2 + 2 + 3) tasks x 3 versions
    assert cfg.train.epochs == 160 and cfg.train.steps_per_epoch == 500 and cfg.model.width == 1.0
    for name in plan:  # fine-tuning runs come after their joint run
        if "-ft-" in name:
            assert list(plan).index(name.split("-ft-")[0]) < list(plan).index(name)
    quick = load_config(study.Config, CONFIGS / "quick.yaml", [])
    assert quick.subset_note and quick.table3_versions == ("v3",) and len(quick.table3_combinations) == 7
    with pytest.raises(ConfigError, match="table2"):
        load_config(study.Config, CONFIGS / "tiny.yaml", ["table2=[v4]"])
    with pytest.raises(ConfigError, match="table3_combinations"):
        load_config(study.Config, CONFIGS / "tiny.yaml", ["table3_combinations=[asc+doa]"])


def _fake_metrics(name, tasks, k):
    m = {"run": name, "tasks": list(tasks), "params": 1234}
    if "asc" in tasks:
        m["asc_acc"] = 0.5 + 0.01 * k
    if "tag" in tasks:
        m["tag_lwlrap"] = 0.25
    if "sed" in tasks:
        m.update({"sed_f1_1s": 0.4, "sed_er_1s": 0.75, "sed_f1_refcode_5s": float("nan"), "sed_er_refcode_5s": 0.5,
                  "sed_event_f1": 0.125, "sed_psds1": 0.0625})
    return m


def test_tables_have_every_row_with_the_paper_numbers(tmp_path):
    from tf_scenes.config import load_config

    cfg = load_config(study.Config, CONFIGS / "paper.yaml", [])
    plan = study.plan_runs(cfg)
    from types import SimpleNamespace

    from tf_scenes.datasets.provenance import DataLabel

    cfg = dataclasses.replace(cfg, figures=False, export_run="")
    results = {name: SimpleNamespace(metrics=_fake_metrics(name, spec.tasks, k))
               for k, (name, spec) in enumerate(plan.items())}
    data = SimpleNamespace(label=DataLabel("TAU; FSD; NIGENS", synthetic=False), tasks={})
    report.report(cfg, data, results, SimpleNamespace(out=tmp_path))
    tables = {k: json.loads((tmp_path / f"{k}.json").read_text()) for k in ("table2", "table3")}
    t2 = tables["table2"]["rows"]
    assert [r["key"] for r in t2] == ["v1-nomixup", "v1", "v2", "v3"]
    expected = {"v1-nomixup": (67.68, 68.01, 74.80, 0.3486), "v1": (68.19, 69.41, 79.62, 0.2926),
                "v2": (69.54, 69.19, 79.34, 0.3085), "v3": (68.33, 70.62, 78.61, 0.3085)}
    for r in t2:
        assert tuple(r["paper"][k] for k in ("asc_acc", "tag_lwlrap", "sed_f1", "sed_er")) == expected[r["key"]]
        k = list(plan).index(study.run_name(r["key"].split("-")[0], ("asc",), not r["key"].endswith("nomixup")))
        assert r["ours"]["asc_acc"] == pytest.approx(100 * (0.5 + 0.01 * k))  # the row's own ASC run, in %
        assert r["ours"]["tag_lwlrap"] == 25.0 and r["ours"]["sed_f1_1s"] == 40.0 and r["ours"]["sed_er_1s"] == 0.75
        assert r["ours"]["sed_f1_refcode_5s"] is None  # NaN (undefined) is reported as missing
        assert r["ours"]["sed_event_f1"] == 12.5 and r["ours"]["sed_psds1"] == 0.0625
    t3 = tables["table3"]["rows"]
    assert len(t3) == 3 * (7 + 4)  # 7 joint rows and 4 fine-tuned rows per version
    row = next(r for r in t3 if r["key"] == "v2-asc+sed-ft")
    assert row["runs"] == {"asc": "v2-asc+sed-ft-asc", "sed": "v2-asc+sed-ft-sed"}
    assert row["ours"]["tag_lwlrap"] is None and row["ours"]["asc_acc"] is not None and row["paper"] is None
    md2, md3 = (tmp_path / "table2.md").read_text(), (tmp_path / "table3.md").read_text()
    assert "SYNTHETIC" not in md2 and all(f"{v:.2f}" in md2 for row in expected.values() for v in row[:3])
    assert md3.count("| v1 |") == 11 and "not recorded" in md3
    # event-based columns: ours only (the paper reports none), their parameters in the notes
    header = md2.splitlines()[md2.splitlines().index(next(ln for ln in md2.splitlines() if ln.startswith("| system")))]
    assert "| SED event F1 % (macro) | SED PSDS1 |" in header and "event F1 % (macro) paper" not in header
    assert "SED ER (ref. code, 5 s) paper" in header
    assert "dtc 0.7, gtc 0.7, alpha_ct 0, alpha_st 1, eFPR up to 100 per hour" in md2
    assert "threshold 0.3, onset collar 200 ms, offset collar max(200 ms, 20% of the event)" in md2
    assert tables["table2"]["synthetic"] is False and tables["table2"]["banner"] == ""


def test_holdout_takes_whole_groups():
    groups = np.array(["a", "a", "b", "b", "b", "c", "d", "d"])
    tr, va = study.holdout(groups, 0.25, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(8))
    assert len(va) >= 2 and set(groups[va]).isdisjoint(groups[tr])
    assert len(study.holdout(groups, 0.0, 0)[1]) == 0
    assert len(study.holdout(np.array(["a", "a"]), 0.9, 0)[1]) == 0  # one group: nothing held out


# ---------------------------------------------------------------------------------------------
# the whole study on the tiny profile (shared by the tests below)


@pytest.fixture
def dcasenet_study(tiny_study, study_root):
    s = tiny_study("dcasenet")
    return {"out": s.out, "data": study_root / "data", "cache": s.cache}


def test_tiny_study_writes_tables_runs_figures_and_export(dcasenet_study):
    from tf_scenes.dcasenet.paper import TABLE2 as PAPER_TABLE2

    out = dcasenet_study["out"]
    t2 = json.loads((out / "table2.json").read_text())
    assert t2["synthetic"] is True and t2["profile"] == "tiny"
    assert [r["key"] for r in t2["rows"]] == ["v1-nomixup", "v2"]  # the tiny profile's rows
    for row in t2["rows"]:
        assert row["paper"] == dict(PAPER_TABLE2[row["key"]])
        assert all(row["ours"][k] is not None for k, _, _ in report.METRIC_COLUMNS), row
        assert 0 <= row["ours"]["asc_acc"] <= 100 and 0 <= row["ours"]["tag_lwlrap"] <= 100
        assert row["params"] > 0
    assert t2["rows"][0]["paper"] == {"asc_acc": 67.68, "tag_lwlrap": 68.01, "sed_f1": 74.80, "sed_er": 0.3486}
    md2 = (out / "table2.md").read_text()
    assert "SYNTHETIC DATA" in md2 and "67.68" in md2 and "0.3486" in md2 and "69.54" in md2
    assert "ref. code, 5 s" in md2 and "Table 2 lists v1 w/o mixup and v2 only" in md2

    t3 = json.loads((out / "table3.json").read_text())
    assert [(r["tasks"], r["training"]) for r in t3["rows"]] == [
        ("ASC+TAG+SED", "joint, random init"), ("ASC+TAG+SED", "fine-tuned per task from the joint run")]
    assert all(r["paper"] is None for r in t3["rows"]) and any("not recorded" in n for n in t3["notes"])
    assert all(v is not None for r in t3["rows"] for v in r["ours"].values())
    md3 = (out / "table3.md").read_text()
    assert "not recorded" in md3 and "Table 3 only lists DcaseNet-v3" in md3

    info = json.loads((out / "study.json").read_text())
    assert len(info["runs"]) == 10
    for name in info["runs"]:
        run = out / "runs" / name
        for f in ("model.json", "history.csv", "metrics.json", "config.yaml", "model.weights.h5"):
            assert (run / f).exists(), f"{name}: {f}"
        card = json.loads((run / "model.json").read_text())
        assert card["family"] == "dcasenet" and card["builder"].startswith("dcasenet_v")
        metrics = json.loads((run / "metrics.json").read_text())
        for t in metrics["tasks"]:
            assert {"asc": "asc_acc", "tag": "tag_lwlrap", "sed": "sed_f1_refcode_5s"}[t] in metrics
        history = (run / "history.csv").read_text()
        assert "loss_" in history and "val_score" in history
    ft = json.loads((out / "runs" / "v3-asc+tag+sed-ft-sed" / "metrics.json").read_text())
    assert ft["init_from"].endswith("v3-asc+tag+sed") and ft["tasks"] == ["sed"]
    assert sorted(p.name for p in (out / "figures").glob("activity_*.png")) == [
        "activity_v1-nomixup-sed_fold1_room1_mix001_ov1.png", "activity_v3-asc+tag+sed_fold1_room1_mix001_ov1.png"]
    assert max(info["export"]["max_abs_diff"].values()) < 1e-4


def test_event_f1_and_psds_of_each_sed_run_are_sed_scores_evals_on_its_files(dcasenet_study):
    """metrics.json holds event F1 and PSDS1 equal to sed_scores_eval reading the run's score files
    itself, against events built here from the TAU-NIGENS metadata csv files; the tables show them;
    a run whose metrics.json predates them gets the same numbers in the report."""
    from types import SimpleNamespace

    import sed_scores_eval as sse

    from tf_scenes.datasets import nigens2020
    from tf_scenes.synth import DATASET_DIRS

    out = dcasenet_study["out"]
    meta_dir = dcasenet_study["data"] / DATASET_DIRS["sed"] / "metadata_dev"
    t2 = {r["key"]: r for r in json.loads((out / "table2.json").read_text())["rows"]}
    sed_runs = [p for p in sorted((out / "runs").iterdir()) if "sed" in json.loads(
        (p / "metrics.json").read_text())["tasks"]]
    assert [p.name for p in sed_runs] == ["v1-nomixup-sed", "v2-sed", "v3-asc+tag+sed", "v3-asc+tag+sed-ft-sed"]
    for run in sed_runs:
        metrics = json.loads((run / "metrics.json").read_text())
        folder = run / "scores_evaluate_frames"
        gt, durations = {}, {}
        for f in sorted(folder.glob("*.tsv")):
            n = len(f.read_text().splitlines()) - 1
            act = nigens2020.activity_matrix(nigens2020.read_metadata(meta_dir / f"{f.stem}.csv"))[:n]
            events = []
            for k, name in enumerate(nigens2020.CLASSES):
                edges = np.flatnonzero(np.diff(np.r_[0, act[:, k], 0]))  # starts and ends of the runs
                events += [(round(a * 0.1, 6), round(b * 0.1, 6), name) for a, b in edges.reshape(-1, 2)]
            gt[f.stem], durations[f.stem] = events, n * 0.1
        classes = sorted({e[2] for v in gt.values() for e in v})
        scores = {k: v[["onset", "offset", *classes]] for k, v in sse.io.read_sed_scores(folder).items()}
        f1 = sse.collar_based.fscore(scores, gt, 0.3, onset_collar=0.2, offset_collar=0.2, offset_collar_rate=0.2)[0]
        psds = sse.intersection_based.psds(scores, gt, durations, dtc_threshold=0.7, gtc_threshold=0.7,
                                           alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0)[0]
        assert metrics["sed_event_classes"] == len(classes) > 0
        assert metrics["sed_event_f1"] == pytest.approx(float(f1["macro_average"]), abs=1e-12), run.name
        assert metrics["sed_event_f1_micro"] == pytest.approx(float(f1["micro_average"]), abs=1e-12), run.name
        assert metrics["sed_psds1"] == pytest.approx(float(psds), abs=1e-12), run.name
        if run.name in ("v1-nomixup-sed", "v2-sed"):
            row = t2[run.name[:-len("-sed")]]
            assert row["ours"]["sed_event_f1"] == round(100 * metrics["sed_event_f1"], 2)
            assert row["ours"]["sed_psds1"] == round(metrics["sed_psds1"], 4)

    # a run reused from before: its metrics lack the event keys, the report computes them
    split = SimpleNamespace(names=[n for n in sorted(gt) for _ in range(4)], groups=np.repeat(np.arange(len(gt)), 4),
                            labels=np.stack([nigens2020.activity_matrix(nigens2020.read_metadata(
                                meta_dir / f"{n}.csv")) for n in sorted(gt) for _ in range(4)]))
    old = {k: v for k, v in metrics.items() if not k.startswith("sed_event") and k != "sed_psds1"}
    results = {run.name: SimpleNamespace(metrics=old, run_dir=run)}
    filled = report.with_event_metrics(results, SimpleNamespace(tasks={"sed": SimpleNamespace(test=split)}))
    assert {k: filled[run.name][k] for k in metrics} == metrics


def test_exported_savedmodel_matches_keras(dcasenet_study):
    from tf_scenes.dcasenet.serving import serving_model
    from tf_scenes.export import read_export_metadata

    out = dcasenet_study["out"]
    path = out / "export" / "dcasenet_v3-asc+tag+sed"
    meta, labels = read_export_metadata(path)
    assert meta["input"]["sample_rate"] == 24000 and len(labels["scene"]) == 10 and len(labels["tags"]) == 80
    wav = (0.1 * np.random.default_rng(5).standard_normal((2, 36000))).astype(np.float32)  # 1.5 s
    got = tf.saved_model.load(str(path)).signatures["serving_default"](waveform=tf.constant(wav))
    model, _ = serving_model(out / "runs" / "v3-asc+tag+sed")
    ref = model(wav)
    assert got["scene"].shape == (2, 10) and got["tags"].shape == (2, 80) and got["frames"].shape == (2, 8, 14)
    np.testing.assert_allclose(got["scene"].numpy().sum(1), 1.0, rtol=1e-5)
    for k in ("scene", "tags", "frames"):
        np.testing.assert_allclose(got[k].numpy(), np.asarray(ref[k]), atol=1e-5)


def test_finetune_command_on_a_joint_run(dcasenet_study, tmp_path):
    from tf_scenes.experiments.cli import main

    joint = dcasenet_study["out"] / "runs" / "v3-asc+tag+sed"
    out = tmp_path / "ft_tag"
    rc = main(["finetune", str(joint), "--task", "tag", "--out", str(out), "--cache-dir", str(dcasenet_study["cache"])])
    assert rc == 0
    for f in ("model.json", "history.csv", "metrics.json", "model.weights.h5", "scores_evaluate_tags.tsv"):
        assert (out / f).exists(), f
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"] == ["tag"] and 0 <= metrics["tag_lwlrap"] <= 1
    assert metrics["init_from"] == str(joint.resolve())

    from tf_scenes.model_io import load_run_model

    before, _ = load_run_model(joint)
    after, card = load_run_model(out)
    assert card["trained_tasks"] == ["tag"] and card["builder"] == "dcasenet_v3"

    def same(layer):
        return all(np.array_equal(u, v) for u, v in zip(before.get_layer(layer).get_weights(),
                                                         after.get_layer(layer).get_weights()))

    assert same("asc_fc") and same("sed_fc")  # not on the TAG path: the joint run's weights, untouched
    assert not same("tag_fc3") and not same("gru_1")  # on the TAG path: trained from them

    assert main(["finetune", str(tmp_path), "--task", "asc"]) == 2  # not a run folder: clear error


def test_export_tflite_predict_and_saliency_commands_on_a_run(dcasenet_study, tmp_path, capsys):
    """The shipping commands on a DcaseNet run folder: `export --tflite` (checked against Keras),
    `predict` on a 44.1 kHz scene clip (resampled to 24 kHz) with frame activities, and `saliency`
    on each task head."""
    from tf_scenes.experiments.cli import main
    from tf_scenes.export import read_export_metadata

    run = dcasenet_study["out"] / "runs" / "v3-asc+tag+sed"
    exp = tmp_path / "export"
    assert main(["export", str(run), "--out", str(exp), "--tflite"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(res["tflite"]["max_abs_diff"]) == {"scene", "tags", "frames"}
    assert max(res["tflite"]["max_abs_diff"].values()) < 1e-3 and Path(res["tflite"]["path"]).exists()
    meta, labels = read_export_metadata(exp)
    assert meta["family"] == "dcasenet" and meta["input"]["sample_rate"] == 24000 and meta["frame_seconds"] == 0.1
    # the same SavedModel as the study's own export
    wav = (0.1 * np.random.default_rng(2).standard_normal((1, 30000))).astype(np.float32)
    ours = tf.saved_model.load(str(exp)).signatures["serving_default"](waveform=tf.constant(wav))
    study = tf.saved_model.load(str(dcasenet_study["out"] / "export" / "dcasenet_v3-asc+tag+sed")).signatures[
        "serving_default"](waveform=tf.constant(wav))
    for k in ("scene", "tags", "frames"):
        np.testing.assert_allclose(ours[k].numpy(), study[k].numpy(), atol=1e-6)

    clip = sorted((dcasenet_study["data"] / "TAU-urban-acoustic-scenes-2020-mobile-development" / "audio").glob("*.wav"))[0]
    assert main(["predict", str(exp), str(clip), "--top", "2", "--threshold", "0.5"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["file"] == str(clip) and line["sample_rate"] == 24000
    scene = line["outputs"]["scene"]["top"]
    assert len(scene) == 2 and scene[0][0] in labels["scene"] and scene[0][1] >= scene[1][1]
    frames = line["outputs"]["frames"]
    n_frames = len(frames["frames"])
    # 100 ms frames in whole trunk steps of 0.8 s (8 frames; a partial last step is dropped)
    assert n_frames % 8 == 0 and line["seconds"] / 0.1 - 8 < n_frames <= line["seconds"] / 0.1
    assert frames["frame_hop_s"] == 0.1
    assert all(len(f) == len(labels["frames"]) for f in frames["frames"]) and len(frames["active"]) == n_frames

    for head in ("scene", "tags", "frames"):
        fig = tmp_path / f"sal_{head}.png"
        assert main(["saliency", str(run), str(clip), "--output", head, "--out", str(fig)]) == 0
        res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert fig.stat().st_size > 10_000 and f"[{head}]" in res["panels"][0]
    # the export folder points back at its run: saliency accepts it too
    assert main(["saliency", str(exp), str(clip), "--output", "tags", "--out", str(tmp_path / "e.png")]) == 0
    assert main(["saliency", str(run), str(clip), "--output", "nope", "--out", str(tmp_path / "x.png")]) == 2


def test_predict_dcase_event_list_of_an_exported_sed_run(dcasenet_study, tmp_path, capsys):
    """`predict --format dcase` on an exported single-task SED run: one line per event, exactly the
    runs of 100 ms frames of the SavedModel's own frame output scoring above the threshold."""
    from tf_scenes.audio import read_audio
    from tf_scenes.datasets import nigens2020
    from tf_scenes.experiments.cli import main
    from tf_scenes.export_cli import export_run
    from tf_scenes.synth import DATASET_DIRS

    exp, _ = export_run(dcasenet_study["out"] / "runs" / "v2-sed", tmp_path / "sed_export")
    wav_path = sorted((dcasenet_study["data"] / DATASET_DIRS["sed"] / "mic_dev").glob("fold1_*.wav"))[0]
    wav, _ = read_audio(wav_path, sr=24000, mono=True)  # what predict feeds the model: the 4 channels' mean
    frames = tf.saved_model.load(str(exp)).signatures["serving_default"](
        waveform=tf.constant(wav[None]))["frames"].numpy()[0]  # (frames, 14)
    threshold = float(np.round(np.quantile(frames, 0.7), 3))  # some frames above, some below
    assert not np.any(frames == threshold)
    want = []
    for k, name in enumerate(nigens2020.CLASSES):
        edges = np.flatnonzero(np.diff(np.r_[0, (frames[:, k] > threshold).astype(int), 0])).reshape(-1, 2)
        want += [(a * 0.1, b * 0.1, name) for a, b in edges]
    want.sort()
    assert 0 < len(want)

    capsys.readouterr()
    assert main(["predict", str(exp), str(wav_path), "--format", "dcase", "--threshold", str(threshold)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{wav_path}\t{a:.3f}\t{b:.3f}\t{name}" for a, b, name in want]
    assert float(lines[-1].split("\t")[2]) <= len(wav) / 24000  # within the recording
