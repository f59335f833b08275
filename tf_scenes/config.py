"""Frozen-dataclass configs loaded strictly from YAML, with command-line overrides.

    cfg = load_config(StudyConfig, "experiments/STUDY/configs/quick.yaml",
                      overrides=["train.epochs=3", "data.root=/data/tau"])

Unknown keys and wrong types raise ConfigError naming the dotted key, so a typo is never ignored.
A key repeated in one YAML mapping raises too (PyYAML would keep the last silently). A float field
accepts ``1e-3``, which YAML 1.1 reads as a string. Fields declared with :func:`bounded` are checked
against their range when the config is loaded, before any data work; an error caused by a
``--set`` override names that override.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError


# Numbers like 1e-3 / 5E+2: valid floats that PyYAML (YAML 1.1) loads as strings.
_EXPONENT_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp, value, key: str):
    """Check/convert `value` to type `tp`, raising ConfigError naming `key`."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: {value!r} is not a valid {' or '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: {value!r} is not one of {list(get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, prefix=key)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            items = [_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            a = args[0] if args else Any
            items = [_convert(a, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(kt, k, key): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _EXPONENT_FLOAT.match(value.strip()):
            return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    return value


def bounded(default, *, ge=None, gt=None, le=None, lt=None):
    """A dataclass field whose value (or each item of a tuple value; None is always allowed)
    :func:`from_dict` checks against the given bounds: ``epochs: int = bounded(50, ge=1)``."""
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


_BOUND_TEXT = {"ge": ">= {}", "gt": "> {}", "le": "<= {}", "lt": "< {}"}
_BOUND_OK = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b,
             "lt": lambda v, b: v < b}


def _check_bounds(bounds: dict, value, key: str) -> None:
    if value is None or not bounds:
        return
    items = value if isinstance(value, (tuple, list)) else (value,)
    for v in items:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            bad = [op for op, b in bounds.items() if not _BOUND_OK[op](v, b)]
            if bad:
                need = " and ".join(_BOUND_TEXT[op].format(bounds[op]) for op in bounds)
                raise ConfigError(f"{key}: {value!r} is out of range: must be {need}", key=key)


def from_dict(cls, data: dict | None, prefix: str = ""):
    """Build dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError."""
    data = dict(data or {})
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in {prefix}" if prefix else ""
        import difflib

        hints_txt = []
        for u in unknown:
            close = difflib.get_close_matches(u, fields, n=1)
            hints_txt.append(f"{u!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(f"unknown config key{'s' if len(unknown) > 1 else ''}{where}: {', '.join(hints_txt)}; "
                          f"valid keys: {', '.join(sorted(fields))}",
                          key=f"{prefix}.{unknown[0]}" if prefix else unknown[0])
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(hints[name], value, key)
        _check_bounds(fields[name].metadata.get("bounds", {}), kwargs[name], key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from e


def to_dict(obj) -> Any:
    """Dataclass (nested) -> plain dict/list data suitable for YAML/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.epochs=3' -> (['train', 'epochs'], 3). The value is parsed as YAML."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: cannot parse value: {e}") from e
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply dotted overrides to a nested dict (copying). Missing intermediate keys are created;
    whether the key is valid is checked later by from_dict."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides or []:
        parts, value = parse_override(text)
        node = data
        for p in parts[:-1]:
            child = node.get(p)
            if child is None:
                child = node[p] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {p!r} is not a section")
            node = child
        node[parts[-1]] = value
    return data


def _strict_loader():
    """A SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: let PyYAML report it
                break
            if first is not None:
                raise ConfigError(f"{key_node.start_mark.line + 1}: duplicate key {key!r} (first on line "
                                  f"{first}); a repeated key would silently replace the first")
            seen[key] = key_node.start_mark.line + 1
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


def read_yaml(path, _chain: tuple = ()) -> dict:
    """Read a YAML config (a mapping); ``base: other.yaml`` merges another file underneath.

    Raises ConfigError naming the file for a missing file, non-UTF-8 bytes, invalid YAML, a
    duplicate key (with its line) or a cycle of ``base:`` references."""
    import yaml

    path = Path(path)
    via = f" (base of {_chain[-1]})" if _chain else ""
    if not path.exists():
        raise ConfigError(f"{path}: config file not found{via}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}){via}") from e
    try:
        data = yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
    except ConfigError as e:
        raise ConfigError(f"{path}:{e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    # `base: other.yaml` merges another config (relative to this file) underneath.
    base = data.pop("base", None)
    if base:
        base_path = path.parent / base
        chain = (*_chain, path)
        if any(base_path.resolve() == p.resolve() for p in chain):
            raise ConfigError(f"{path}: `base: {base}` makes a cycle: "
                              + " -> ".join(str(p) for p in (*chain, base_path)))
        data = deep_merge(read_yaml(base_path, chain), data)
    return data


REPLACE = "__replace__"


def deep_merge(a: dict, b: dict) -> dict:
    """Merge mapping `b` over `a` recursively. A mapping in `b` holding `__replace__: true`
    replaces the base's mapping instead of merging into it (e.g. a profile with fewer models)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and v.get(REPLACE):
            out[k] = {kk: vv for kk, vv in v.items() if kk != REPLACE}
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


T = typing.TypeVar("T")


def load_config(cls: type[T], path=None, overrides: list[str] | None = None) -> T:
    """Read ``path`` (YAML, ``base:`` chains merged), apply ``overrides`` and check everything.

    An error about a key that an override set names the override (``--set train.batch_size=0:
    ...``), otherwise the file."""
    data = read_yaml(path) if path else {}
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        culprit = _override_for(getattr(e, "key", None) or _key_in_message(str(e)), overrides or [])
        if culprit:
            raise ConfigError(f"--set {culprit}: {e}", key=getattr(e, "key", None)) from None
        raise ConfigError(f"{path}: {e}" if path else str(e), key=getattr(e, "key", None)) from None


def _key_in_message(message: str) -> str | None:
    """The dotted key an error message starts with ("train.epochs: ..."), if any."""
    head = message.split(":", 1)[0].strip()
    return head if head and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", head) else None


def _override_for(key: str | None, overrides: list[str]) -> str | None:
    """The last override that set ``key`` (or a section containing it, or a key inside it)."""
    if not key:
        return None
    key = re.sub(r"\[\d+\]", "", key)
    for text in reversed(overrides):
        name = text.split("=", 1)[0].strip()
        if key == name or key.startswith(name + ".") or name.startswith(key + "."):
            return text
    return None


def dump_yaml(obj) -> str:
    import yaml

    return yaml.safe_dump(to_dict(obj), sort_keys=False)
