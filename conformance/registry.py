"""The divergence registry (conformance/divergences.toml) as validated data.

    from conformance import registry
    registry.get("torch-running-var-unbiased").handling
    [d.id for d in registry.entries()]
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .ops import contract_functions

DEFAULT_PATH = Path(__file__).with_name("divergences.toml")

OPS = frozenset(contract_functions())
REQUIRED = ("id", "op", "frameworks", "condition", "behaviour", "evidence", "handling")
OPTIONAL = ("measured",)


@dataclass(frozen=True)
class Divergence:
    """One registry entry."""

    id: str
    ops: tuple[str, ...]
    frameworks: tuple[str, ...]
    condition: str
    behaviour: MappingProxyType
    evidence: tuple[str, ...]
    handling: str
    measured: str = ""


def _text(entry_name: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"divergence {entry_name}: {key!r} must be a non-empty string")
    return value


def _texts(entry_name: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"divergence {entry_name}: {key!r} must be a non-empty list of strings")
    return tuple(_text(entry_name, key, v) for v in value)


def _entry(position: int, raw: Any) -> Divergence:
    if not isinstance(raw, dict):
        raise ValueError(f"divergence #{position}: expected a table, got {type(raw).__name__}")
    name = repr(raw["id"]) if isinstance(raw.get("id"), str) else f"#{position}"
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ValueError(f"divergence {name}: missing required key(s) {missing}")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"divergence {name}: unknown key(s) {unknown}")
    ident = _text(name, "id", raw["id"])
    if ident != ident.strip().lower() or " " in ident:
        raise ValueError(f"divergence {name}: id must be lower-case without spaces")
    ops = _texts(name, "op", raw["op"])
    bad_ops = sorted(set(ops) - OPS)
    if bad_ops:
        raise ValueError(f"divergence {name}: unknown op(s) {bad_ops}; expected {sorted(OPS)}")
    frameworks = _texts(name, "frameworks", raw["frameworks"])
    behaviour = raw["behaviour"]
    if not isinstance(behaviour, dict) or not behaviour:
        raise ValueError(f"divergence {name}: 'behaviour' must be a table framework -> text")
    for fw, text in behaviour.items():
        _text(name, f"behaviour.{fw}", text)
    if set(behaviour) != set(frameworks):
        raise ValueError(
            f"divergence {name}: behaviour keys {sorted(behaviour)} must match frameworks "
            f"{sorted(frameworks)}"
        )
    return Divergence(
        id=ident,
        ops=ops,
        frameworks=frameworks,
        condition=_text(name, "condition", raw["condition"]),
        behaviour=MappingProxyType(dict(behaviour)),
        evidence=_texts(name, "evidence", raw["evidence"]),
        handling=_text(name, "handling", raw["handling"]),
        measured=_text(name, "measured", raw["measured"]) if "measured" in raw else "",
    )


def load(path: str | Path = DEFAULT_PATH) -> tuple[Divergence, ...]:
    """Read and validate a registry file; raises ValueError naming the offending entry."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    extra = sorted(set(data) - {"divergence"})
    if extra:
        raise ValueError(f"{path}: unexpected top-level key(s) {extra}")
    raw_entries = data.get("divergence", [])
    if not isinstance(raw_entries, list) or not raw_entries:
        raise ValueError(f"{path}: expected at least one [[divergence]] table")
    out: list[Divergence] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_entries, start=1):
        entry = _entry(position, raw)
        if entry.id in seen:
            raise ValueError(f"divergence {entry.id!r}: duplicate id (entry #{position})")
        seen.add(entry.id)
        out.append(entry)
    return tuple(out)


@functools.cache
def _default() -> tuple[Divergence, ...]:
    return load(DEFAULT_PATH)


def entries() -> tuple[Divergence, ...]:
    """All entries of the default registry, in file order."""
    return _default()


def ids() -> tuple[str, ...]:
    """All ids of the default registry, in file order."""
    return tuple(d.id for d in _default())


def get(divergence_id: str) -> Divergence:
    """The entry with this id; KeyError if there is none."""
    for d in _default():
        if d.id == divergence_id:
            return d
    raise KeyError(f"no divergence with id {divergence_id!r} in {DEFAULT_PATH.name}")
