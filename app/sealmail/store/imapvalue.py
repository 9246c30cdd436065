"""Storing IMAP FETCH values (ENVELOPE, BODYSTRUCTURE) as JSON, computed once at append time.

The values are nested ``list``/``str``/``bytes``/``int``/``None`` with ``Adjacent`` lists (see
``sealmail.store.mime.imap``); JSON has no bytes and no list subclasses, so those two are tagged:
``{"b": "<base64>"}`` and ``{"a": [...]}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sealmail.store.mime.imap import Adjacent


def _encode(value: Any) -> Any:
    if isinstance(value, Adjacent):
        return {"a": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "a" in value:
            return Adjacent(_decode(v) for v in value["a"])
        return base64.b64decode(value["b"])
    return value


def dumps(value: Any) -> str:
    return json.dumps(_encode(value), ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Any:
    return _decode(json.loads(text))
