"""One harness for every registered model (tf_scenes.registry.list_models()): parameter counts of the
paper's model, output shapes and finite values on the input its card says it takes, the card's
saliency layer and outputs, config round trip, save / load. Family-specific model tests stay in
tests/test_<family>_models.py."""

import dataclasses

import numpy as np
import pytest

from tf_scenes import families, registry
from tf_scenes.config import from_dict, to_dict

# Keras count_params() of each builder's paper model (trainable weights + BatchNorm moving statistics).
# Equal to the reference implementations' totals where those exist (two-stage: the authors' Keras code;
# the DcaseNet v3 and weak-SED trainable counts are checked in the family tests).
PARAMS = {
    "two_stage_resnet": 12_980_492, "two_stage_fcnn": 11_786_711, "two_stage_fsfcnn": 16_539_703,
    "dcasenet_v1": 8_839_208, "dcasenet_v2": 8_867_880, "dcasenet_v3": 13_892_136,
    "weak_sed_2apae": 1_970_186, "weak_sed_gap": 589_001, "weak_sed_gmp": 589_001, "weak_sed_gwrp": 589_001,
    "weak_sed_dilated_attention": 1_048_466,
    "raw_waveform": 4_302_846, "raw_waveform_mean": 4_286_206, "raw_waveform_lstm": 4_316_574,
    "raw_waveform_gru": 4_310_154,
}
SMALL_WIDTH = 0.0625


def test_every_registered_model_has_an_expected_parameter_count_and_a_family():
    assert sorted(PARAMS) == registry.list_models()
    owned = sorted(b for f in families.all_families() for b in f.builders)
    assert owned == registry.list_models()


def _context(cfg) -> dict:
    """What a study would tell the card: class names for data-dependent outputs, trained tasks."""
    n = {"coarse": getattr(cfg, "n_coarse", 0), "fine": getattr(cfg, "n_fine", 0)}
    return {"classes": {k: [f"{k}{i}" for i in range(v)] for k, v in n.items()}, "tasks": ["asc"]}


def _input(facts, cfg, batch: int = 2) -> np.ndarray:
    """A batch of what the model takes, as its card describes it: features of a short clip under
    the card's feature config, or 2 s waveform windows."""
    from tf_scenes.features import extract, get_feature_config

    rng = np.random.default_rng(0)
    fcfg = get_feature_config(facts.feature_config)
    if facts.input == "waveform":
        return (0.1 * rng.standard_normal((batch, cfg.window_samples))).astype(np.float32)
    wav = (0.1 * rng.standard_normal(int(2.0 * fcfg.sample_rate))).astype(np.float32)
    x = np.stack([extract(fcfg, wav)] * batch)  # (batch, frames, mels, channels)
    return x[..., 0] if facts.squeeze_channel else x


@pytest.mark.parametrize("name", registry.list_models())
def test_model_contract(name, tmp_path):
    import keras

    family = families.of_builder(name)
    paper_cfg = family.default_config(name)
    assert registry.build(name, paper_cfg).count_params() == PARAMS[name]
    keras.backend.clear_session()

    cfg = dataclasses.replace(paper_cfg, width=SMALL_WIDTH)
    assert from_dict(type(cfg), to_dict(cfg)) == cfg  # config round trip
    keras.utils.set_random_seed(0)
    model = registry.build(name, cfg)
    facts = family.card(name, cfg, _context(cfg))
    # the card's saliency layer exists and its outputs are the model's (class counts included)
    assert model.get_layer(facts.saliency["layer"]) is not None
    x = _input(facts, cfg)
    out = model(x, training=False)
    outs = out if isinstance(out, dict) else {next(iter(facts.outputs)): out}
    for key, classes in facts.outputs.items():
        assert key in outs, f"{name}: card output {key!r} not among {sorted(outs)}"
        v = np.asarray(outs[key])
        assert v.shape[0] == len(x) and len(classes) in v.shape[1:], (key, v.shape, len(classes))
    for key, v in outs.items():
        assert np.all(np.isfinite(np.asarray(v))), key
    # save / load through the registry (weights), identical outputs
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    keras.utils.set_random_seed(1)
    again = registry.build(name, cfg)
    again.load_weights(path)
    out2 = again(x, training=False)
    outs2 = out2 if isinstance(out2, dict) else {next(iter(facts.outputs)): out2}
    for key in outs:
        np.testing.assert_array_equal(np.asarray(outs[key]), np.asarray(outs2[key]))
