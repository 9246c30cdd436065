"""The store component's wire protocol: requests and replies over one WebSocket (``store.server``,
``store.remote``).

Each frame is one JSON text. A request is ``{"id": n, "session": s, "method": m, "args": [...],
"kwargs": {...}}``; its reply ``{"id": n, "ok": value}`` or ``{"id": n, "error": {"type": t,
"message": text}}``. ``session`` is null for calls on the store itself (``STORE_METHODS``) and the
id ``open`` returned for calls on one mailbox (``SESSION_METHODS``): no other method is called.

The channel carries config-store calls too (``config.wire``: ``config.<method>`` on the store
itself); that module registers the config records and errors here (``register``), so this codec
knows them without the store package depending on the config store.

Values are encoded by an explicit codec of the store's own types: JSON scalars and lists as they
are, everything else tagged — ``{"$b": base64}`` bytes, ``{"$t": [...]}`` tuples, ``{"$s"/"$fs": [...]}``
sets, ``{"$d": [[key, value], ...]}`` mappings, ``{"$dt"/"$date": iso}`` times, ``{"$a": [...]}``
IMAP ``Adjacent`` lists and ``{"$r": name, "v": [fields]}`` for the records below. A value of any
other type is refused (``CodecError``) on either side; nothing is ever unpickled.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sealmail.errors import InvalidInput, NotFound, SealmailError
from sealmail.mime.imap import Adjacent
from sealmail.store import errors as store_errors
from sealmail.store import search as sk
from sealmail.store.contract import MAILBOX_METHODS
from sealmail.store.dav import DavCollection, DavItem, DavLimits, NewItem
from sealmail.store.model import (
    AppendResult,
    CopyResult,
    DrainResult,
    Filing,
    Folder,
    FolderStatus,
    LearnJob,
    Maildrop,
    MaildropEntry,
    MessageInfo,
    Placement,
    StoreResult,
)
from sealmail.store.ordering import SortCriterion, ThreadMessage

# A frame carries at most one message (APPEND, the MX's delivery) or one FETCH chunk, base64-encoded.
MAX_FRAME = 256 * 1024 * 1024
# Calls on the store itself (``session`` null) and on one open mailbox session. ``create_mailbox`` and
# ``delete_mailbox`` are the account services' (a new alias's empty mailbox, a removed alias's files).
STORE_METHODS = frozenset(
    {"open", "deliver", "deliver_sealed", "spool_appended", "spool_size", "create_mailbox", "delete_mailbox"}
)
# ``lock_maildrop``/``unlock_maildrop``: the POP3 lock (RFC 1939 §8) for that session, held until
# unlocked or the session (or its connection) ends.
# ``dav_begin`` .. ``dav_commit``/``dav_rollback``: the session's mailbox calls in between run in one
# transaction on the mailbox's thread (one DAV request; other sessions' calls wait behind it).
SESSION_METHODS = MAILBOX_METHODS | {
    "drain",
    "release",
    "lock_maildrop",
    "unlock_maildrop",
    "dav_begin",
    "dav_commit",
    "dav_rollback",
}

_RECORD_TYPES: tuple[type, ...] = (
    Folder,
    FolderStatus,
    MessageInfo,
    MaildropEntry,
    Maildrop,
    AppendResult,
    CopyResult,
    StoreResult,
    DrainResult,
    LearnJob,
    Placement,  # a Sieve script's filing, for ``deliver`` (sealed on the data host)
    Filing,
    DavLimits,
    DavCollection,
    NewItem,
    DavItem,
    sk.All,
    sk.HasFlag,
    sk.Text,
    sk.Header,
    sk.DateKey,
    sk.Age,
    sk.Size,
    sk.UidSet,
    sk.ModSeq,
    sk.EmailId,
    sk.Not,
    sk.And,
    sk.Or,
    SortCriterion,
    ThreadMessage,
)
RECORDS: dict[str, type] = {cls.__name__: cls for cls in _RECORD_TYPES}
_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else tuple(cls._fields)  # type: ignore[attr-defined]
    for cls in _RECORD_TYPES
}

# The errors a reply may carry, re-raised as themselves on the client (protocols map them as today).
ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        *(v for v in vars(store_errors).values() if isinstance(v, type) and issubclass(v, SealmailError)),
        InvalidInput,
        NotFound,
    )
}


def register(records: tuple[type, ...], errors: tuple[type[Exception], ...] = ()) -> None:
    """Teach the codec another module's records and errors (``config.wire``: the config store's)."""
    for cls in records:
        _claim(RECORDS, cls)
        _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    for error in errors:
        _claim(ERRORS, error)


def _claim(table: dict[str, Any], cls: type) -> None:
    """Values travel by class name: two classes of one name would decode as whichever came last
    (a mailbox's quota error arriving as a Sieve-script one), so a clash fails at import."""
    known = table.get(cls.__name__)
    if known is not None and known is not cls:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} and {known.__module__}.{known.__qualname__} share a wire name"
        )
    table[cls.__name__] = cls


class CodecError(ValueError):
    """A value the wire protocol does not carry (an unknown type or tag)."""


class MethodNotAllowed(SealmailError):
    """A request named a method outside the contract."""


class RemoteError(SealmailError):
    """The store failed a call for a reason the contract has no error for."""


def encode(value: Any) -> Any:  # noqa: PLR0911 - one return per type, flat on purpose
    """``value`` as JSON-ready data (see the module docstring); ``CodecError`` for anything else."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        return [encode(v) for v in value]
    if kind in _FIELDS:
        return {"$r": kind.__name__, "v": [encode(getattr(value, name)) for name in _FIELDS[kind]]}
    if kind in (bytes, bytearray, memoryview):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if kind is tuple:
        return {"$t": [encode(v) for v in value]}
    if kind is Adjacent:
        return {"$a": [encode(v) for v in value]}
    if kind is set:
        return {"$s": [encode(v) for v in value]}
    if kind is frozenset:
        return {"$fs": [encode(v) for v in value]}
    if kind is datetime:
        return {"$dt": value.isoformat()}
    if kind is date:
        return {"$date": value.isoformat()}
    if kind in (dict, types.MappingProxyType) or isinstance(value, Mapping):
        return {"$d": [[encode(k), encode(v)] for k, v in value.items()]}
    if kind in (types.GeneratorType, range, type({}.keys()), type({}.values())):
        return [encode(v) for v in value]  # an argument given as an iterable arrives as a list
    raise CodecError(f"the store protocol does not carry {kind.__name__} values")


def _hook(obj: dict[str, Any]) -> Any:  # noqa: PLR0911, PLR0912 - one return per tag
    # json calls this bottom-up: the values inside are decoded already.
    if "$r" in obj:
        cls = RECORDS.get(obj["$r"]) if isinstance(obj["$r"], str) else None
        if cls is None or not isinstance(obj.get("v"), list) or len(obj["v"]) != len(_FIELDS[cls]):
            raise CodecError("unknown record type")
        return cls(**dict(zip(_FIELDS[cls], obj["v"], strict=True)))  # by name: some fields are keyword-only
    if len(obj) != 1:
        return obj  # a frame's own fields (id, method, args, ...)
    tag, value = next(iter(obj.items()))
    try:
        if tag == "$b":
            return base64.b64decode(value, validate=True)
        if tag == "$t":
            return tuple(value)
        if tag == "$a":
            return Adjacent(value)
        if tag == "$s":
            return set(value)
        if tag == "$fs":
            return frozenset(value)
        if tag == "$d":
            return dict(value)
        if tag == "$dt":
            return datetime.fromisoformat(value)
        if tag == "$date":
            return date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"bad {tag} value") from exc
    if tag.startswith("$"):
        raise CodecError("unknown tag")
    return obj


def dumps(frame: dict[str, Any]) -> str:
    """A frame whose fields are already encoded (``request``/``reply``) as its JSON text."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> dict[str, Any]:
    try:
        frame = json.loads(text, object_hook=_hook)
    except CodecError:
        raise
    except (TypeError, ValueError, RecursionError) as exc:
        raise CodecError("not a frame") from exc
    if not isinstance(frame, dict):
        raise CodecError("not a frame")
    return frame


def request(call_id: int, session: str | None, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    return dumps(
        {
            "id": call_id,
            "session": session,
            "method": method,
            "args": [encode(a) for a in args],
            "kwargs": {k: encode(v) for k, v in kwargs.items()},
        }
    )


def reply_ok(call_id: int, value: Any) -> str:
    return dumps({"id": call_id, "ok": encode(value)})


def reply_error(call_id: int | None, exc: BaseException) -> str:
    name = type(exc).__name__
    if name not in ERRORS and not isinstance(exc, (MethodNotAllowed, CodecError)):
        name = "RemoteError"
    return dumps({"id": call_id, "error": {"type": name, "message": str(exc)[:500]}})


def error_of(payload: Any) -> Exception:
    """The exception a reply's ``error`` field stands for, to raise on the client."""
    if not isinstance(payload, dict):
        return RemoteError("malformed error reply")
    name, message = payload.get("type"), str(payload.get("message", ""))
    if name == "MethodNotAllowed":
        return MethodNotAllowed(message)
    if name == "CodecError":
        return CodecError(message)
    cls = ERRORS.get(name) if isinstance(name, str) else None
    return cls(message) if cls is not None else RemoteError(message)
