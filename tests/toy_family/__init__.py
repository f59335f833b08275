"""A minimal fifth family, used by tests/test_toy_family.py to show what adding a family takes: this
folder (both sides in one place here: the library side is __init__.py, model.py and features.py,
the study side study.py and configs/) and one line in tf_scenes.families.FAMILIES."""

from __future__ import annotations

from tf_scenes.families import CardFacts, Family

CLASSES = ("tone", "noise")


def default_config(builder: str):
    from .model import ToyConfig

    return ToyConfig()


def card(builder: str, config, context=None) -> CardFacts:
    return CardFacts(outputs={"probs": list(CLASSES)}, saliency={"method": "gradcam", "layer": "toy_conv"},
                     feature_config="toy")


FAMILY = Family(name="toy", title="A toy family (tests)", builders=("toy_cnn",), default_config=default_config,
                card=card)
