"""Storing IMAP FETCH values (ENVELOPE, BODYSTRUCTURE) as JSON, computed once at append time.

The values are nested ``list``/``str``/``bytes``/``int``/``None`` with ``Adjacent`` lists (see
``sealmail.mime.imap``); JSON has no bytes and no list subclasses, so those two are tagged:
``{"b": "<base64>"}`` and ``{"a": [...]}``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sealmail.mime.imap import Adjacent


def _encode(value: Any) -> Any:
    if isinstance(value, Adjacent):
        return {"a": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode("ascii")}
    return value


def dumps(value: Any) -> str:
    return json.dumps(_encode(value), ensure_ascii=False, separators=(",", ":"))


def _tagged(value: dict[str, Any]) -> Any:
    # json calls this bottom-up for every object, so the lists inside are decoded already.
    if "a" in value:
        return Adjacent(value["a"])
    return base64.b64decode(value["b"])


def loads(text: str) -> Any:
    """``dumps`` reversed (``object_hook`` keeps the walk in C: FETCH ENVELOPE reads thousands at once)."""
    return json.loads(text, object_hook=_tagged)
