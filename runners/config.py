"""Loading typed job configurations from YAML, with ``--set key=value`` overrides.

A configuration is a frozen dataclass (a job's own, in ``runners/jobs/<job>.py``, built from
the shared sections of :mod:`tamis.runners.sections`). :func:`load` checks every key and type
and raises :class:`ConfigError` naming the key (with its dotted path) and what is allowed,
before any work starts; then every ``check`` method along the class's bases runs, the bases'
first. Each key is declared once, with :func:`key`: its default and the line the docs show.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import yaml

from tamis.storage.errors import ConfigError

T = TypeVar("T")


def read_yaml(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path} is a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, "
                          f"got {type(data).__name__}")
    return data


#: Sections whose keys are alternatives (``budget``: rows or tokens), by the key that holds
#: them: ``--set budget.rows=N`` replaces a ``budget.tokens`` of the file.
ONE_OF: dict[str, tuple[str, ...]] = {}


def apply_overrides(data: dict, overrides: Sequence[str]) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a copy of ``data``."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: expected key=value (a dotted key, e.g. "
                              f"budget.rows=1000)")
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem}); "
                              f"quote it to pass text") from None
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: '{part}' is not a section")
            node = child
        alternatives = ONE_OF.get(parts[-2]) if len(parts) > 1 else None
        if alternatives and parts[-1] in alternatives:
            for other in alternatives:
                if other != parts[-1]:
                    node.pop(other, None)
        node[parts[-1]] = value
    return data


def load(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build ``cls`` from ``data``, checking keys and types; ``where`` prefixes key names."""
    if not isinstance(data, Mapping):
        name = f"'{where.rstrip('.')}'" if where else "the config"
        raise ConfigError(f"{name} must be a section (a mapping of keys), got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown key '{where}{key}'{hint}; allowed: "
                              f"{', '.join(fields)}")
    for group in getattr(cls, "EXCLUSIVE", ()):
        given = [k for k in group if data.get(k) is not None]
        if len(given) > 1:
            raise ConfigError(f"{' and '.join(repr(where + k) for k in given)} cannot both be "
                              f"set: choose one")
    values = {}
    for name, f in fields.items():
        path = f"{where}{name}"
        if name in data:
            values[name] = _convert(hints[name], data[name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key '{path}'")
    obj = cls(**values)
    for klass in reversed(type(obj).__mro__):
        check = klass.__dict__.get("check")
        if check is not None:
            check(obj)
    return obj


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"'{path}' must be one of {', '.join(map(repr, args))}, "
                              f"got {value!r}")
        return value
    if origin in (tuple, list) or tp in (tuple, list):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"'{path}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        return load(tp, value, f"{path}.")
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"'{path}' must be a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"'{path}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{path}' must be text, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def key(default: Any = dataclasses.MISSING, doc: str = "", *,
        factory: Callable[[], Any] | None = None) -> Any:
    """A configuration key: its default (or ``factory`` for a section), and ``doc``, the
    meaning the docs' key tables show (:mod:`tamis.runners.docs` writes them from here)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def defaults_of(cls: Any) -> dict[str, Any]:
    """The keyword defaults of ``cls``'s constructor: where an algorithm declares its own
    hyper-parameters, a configuration section takes their defaults from it."""
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


def to_dict(config: Any) -> dict:
    """The resolved configuration as plain JSON-ready data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_hash(config: Any) -> str:
    canonical = json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
