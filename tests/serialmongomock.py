"""mongomock made safe to call from several threads, as a MongoDB server is.

mongomock keeps documents in plain dicts and deep-copies them while another thread may be
updating them ("OrderedDict mutated during iteration"). A server applies each operation
atomically; this wrapper does the same by running every collection operation, and the
iteration of every cursor, under one lock. Operations still interleave between calls, so a
read-modify-write in the code under test stays visible to the tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import mongomock

_LOCK = threading.RLock()


class _Cursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cursor, name)
        if not callable(attr):
            return attr

        def chained(*args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                result = attr(*args, **kwargs)
            return _Cursor(result) if result is self._cursor else result

        return chained

    def __iter__(self) -> Iterator[Any]:
        with _LOCK:
            documents = list(self._cursor)
        return iter(documents)


class _Collection:
    def __init__(self, collection: Any) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                result = attr(*args, **kwargs)
            return _Cursor(result) if isinstance(result, mongomock.collection.Cursor) else result

        return locked


class _Database:
    def __init__(self, database: Any) -> None:
        self._database = database

    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self._database[name])

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._database, name)
        if isinstance(attr, mongomock.collection.Collection):
            return _Collection(attr)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with _LOCK:
                return attr(*args, **kwargs)

        return locked


class SerialMongoClient:
    """A mongomock client whose operations are atomic with respect to each other."""

    def __init__(self, **kwargs: Any) -> None:
        self._client = mongomock.MongoClient(**kwargs)

    def __getitem__(self, name: str) -> _Database:
        return _Database(self._client[name])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)
