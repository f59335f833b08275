"""tf-scenes: Keras/TensorFlow reproductions of acoustic scene and event analysis papers.

Families: two-stage device-robust ASC (Hu et al. 2021), DcaseNet (Jung et al. 2021), weakly
supervised SED with two-step attention pooling (Deshmukh et al. 2021) and the raw-waveform
hierarchy-aware 1D-CNN (Abrol & Sharma 2020).

    import tf_scenes
    model = tf_scenes.load(run_or_export_folder)
    model.predict(waveform, sample_rate)["probs"].top(3)

The public interface (:mod:`tf_scenes.api`, docs/api.md): :func:`load`, :class:`Model`,
:class:`Scores`, :func:`list_models`, :func:`build`, :func:`features`. Importing this package has
no side effects and does not import TensorFlow (it loads on first use).
"""

__version__ = "0.1.0"

_API = ("load", "Model", "Scores", "list_models", "build")
__all__ = ["__version__", *_API, "features"]


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "features":  # the subpackage, which is also callable: tf_scenes.features(name, wav, sr)
        import importlib

        return importlib.import_module(".features", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API) + ["features"])
