"""Turning config records into backend values and back, driven by the dataclass field types."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from sealmail.timecodec import format_time, parse_time

T = TypeVar("T")


def _kinds(cls: type) -> dict[str, str]:
    kinds = {}
    for f in dataclasses.fields(cls):
        text = str(f.type)
        if "datetime" in text:
            kinds[f.name] = "datetime"
        elif text.startswith("list"):
            kinds[f.name] = "list"
        elif text == "bool":
            kinds[f.name] = "bool"
        else:
            kinds[f.name] = "plain"
    return kinds


_KIND_CACHE: dict[type, dict[str, str]] = {}


def field_kinds(cls: type) -> dict[str, str]:
    if cls not in _KIND_CACHE:
        _KIND_CACHE[cls] = _kinds(cls)
    return _KIND_CACHE[cls]


def to_sql(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if value is None:
            out[name] = None
        elif kind == "datetime":
            out[name] = format_time(value)
        elif kind == "list":
            out[name] = json.dumps(list(value), ensure_ascii=False)
        elif kind == "bool":
            out[name] = int(bool(value))
        else:
            out[name] = value
    return out


def from_sql(cls: type[T], row: Any) -> T:
    values: dict[str, Any] = {}
    for name, kind in field_kinds(cls).items():
        value = row[name]
        if value is None:
            values[name] = None
        elif kind == "datetime":
            values[name] = parse_time(value)
        elif kind == "list":
            values[name] = json.loads(value)
        elif kind == "bool":
            values[name] = bool(value)
        else:
            values[name] = value
    return cls(**values)


def to_document(obj: Any, key: str = "id") -> dict[str, Any]:
    # None is left out, so sparse unique indexes ignore unset optional fields.
    doc = {name: value for name in field_kinds(type(obj)) if (value := getattr(obj, name)) is not None}
    doc["_id"] = doc.pop(key)
    return doc


def from_document(cls: type[T], doc: dict[str, Any], key: str = "id") -> T:
    values = {}
    for name, kind in field_kinds(cls).items():
        value = doc["_id"] if name == key else doc.get(name)
        if kind == "bool" and value is None:
            value = False  # a flag newer than the document (no schema step rewrites old documents)
        elif kind == "datetime" and value is not None:
            value = parse_time(value)
        elif kind == "list" and value is not None:
            value = list(value)
        values[name] = value
    return cls(**values)


def rows_to_plain(rows: list[Any]) -> list[dict[str, Any]]:
    """A report's rows (frozen dataclasses of plain values and lists) as JSON-ready dicts."""
    return [dataclasses.asdict(row) for row in rows]


def rows_from_plain(cls: type[T], rows: list[dict[str, Any]]) -> list[T]:
    """The rows back; fields a row lacks take their defaults (rows older than a new field)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return [cls(**{k: v for k, v in row.items() if k in names}) for row in rows]
