"""A small model registry: register builders by name with their config dataclass, build by name.

    @register("fcnn", config=FcnnConfig)
    def build_fcnn(cfg: FcnnConfig) -> keras.Model: ...

    model = build("fcnn", cfg)
    config_class("fcnn")  # FcnnConfig

The registry is the allow-list that model cards are resolved against: a card names a builder, and
the builder's config class comes from here, never from a module named in the card.
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
        self._configs: dict[str, type | None] = {}
        self._loaded: set[str] = set()

    def register(self, name: str, *, config: type | None = None):
        """Decorator: register `fn` as builder `name`, taking a `config` dataclass instance."""
        def deco(fn):
            if name in self._builders and (self._builders[name] is not fn or self._configs[name] is not config):
                raise KeyError(f"model {name!r} is already registered")
            self._builders[name] = fn
            self._configs[name] = config
            return fn

        return deco

    def _load(self):
        """Import the model module of every family listed (once each; a family added to the list
        later is loaded on the next call)."""
        for mod in _model_modules():
            if mod in self._loaded:
                continue
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:  # a family not installed yet must not break the others
                if e.name != mod:
                    raise
            self._loaded.add(mod)

    def _check(self, name) -> None:
        self._load()
        if not isinstance(name, str) or name not in self._builders:
            raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(self._builders))}")

    def build(self, name: str, *args, **kwargs):
        self._check(name)
        return self._builders[name](*args, **kwargs)

    def config_class(self, name: str) -> type | None:
        """The config dataclass builder `name` was registered with (None if it takes none)."""
        self._check(name)
        return self._configs[name]

    def list_models(self) -> list[str]:
        self._load()
        return sorted(self._builders)


_REGISTRY = _Registry()
register = _REGISTRY.register
build = _REGISTRY.build
config_class = _REGISTRY.config_class
list_models = _REGISTRY.list_models
