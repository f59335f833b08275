"""A small model registry: register builders by name, build by name, list names.

    @register("fcnn")
    def build_fcnn(cfg) -> keras.Model: ...

    model = build("fcnn", cfg)
"""

from __future__ import annotations

import importlib
from typing import Callable


def _model_modules() -> list[str]:
    """Each family's ``model`` module registers its builders when imported (tf_scenes.families);
    importing them on first use keeps `import tf_scenes` free of TensorFlow."""
    from .families import FAMILIES

    return [f"{library}.model" for library, _ in FAMILIES.values()]


class _Registry:
    def __init__(self):
        self._builders: dict[str, Callable] = {}
        self._loaded = False

    def register(self, name: str):
        def deco(fn):
            if name in self._builders and self._builders[name] is not fn:
                raise KeyError(f"model {name!r} is already registered")
            self._builders[name] = fn
            return fn

        return deco

    def _load(self):
        if self._loaded:
            return
        for mod in _model_modules():
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:  # a family not installed yet must not break the others
                if e.name != mod:
                    raise
        self._loaded = True

    def build(self, name: str, *args, **kwargs):
        self._load()
        if name not in self._builders:
            raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(self._builders))}")
        return self._builders[name](*args, **kwargs)

    def list_models(self) -> list[str]:
        self._load()
        return sorted(self._builders)


_REGISTRY = _Registry()
register = _REGISTRY.register
build = _REGISTRY.build
list_models = _REGISTRY.list_models
