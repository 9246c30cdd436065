"""The DAV WSGI application: Radicale with Sealmail's plug-ins and error answers.

Radicale handles WebDAV, CalDAV (RFC 4791), CardDAV (RFC 6352), sync-collection (RFC 6578),
current-user-principal (RFC 5397) and the well-known redirects (RFC 6764). This module configures it
so that nothing touches the filesystem, and translates the store's domain errors (STYLE.md):

| store error                          | answer                                   |
|--------------------------------------|------------------------------------------|
| ``ItemTooLarge``                     | 413, with the limit                      |
| ``QuotaExceeded``, ``DavLimitExceeded`` | 507 Insufficient Storage, with the reason |
| ``DavPreconditionFailed``            | 412                                      |
| ``DavConflict``                      | 409                                      |
| ``DavNotFound``                      | 404 (409 when a parent is missing)       |
| ``StoreUnavailable``                 | 503 with Retry-After (the data host's store is unreachable) |

Malformed iCalendar or vCard gets 400 with the parser's reason instead of Radicale's bare
"Bad Request".
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from http import client
from typing import TYPE_CHECKING, Any

from defusedxml import DefusedXmlException
from radicale import config as radicale_config
from radicale import httputils
from radicale.app import Application

from sealmail.dav import fastpaths, plugins
from sealmail.errors import SealmailError
from sealmail.store.errors import (
    DavCollectionExists,
    DavConflict,
    DavLimitExceeded,
    DavNotFound,
    DavPreconditionFailed,
    ItemTooLarge,
    QuotaExceeded,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from sealmail.dav.sessions import DavSessions

log = logging.getLogger("sealmail.dav")
_reasons = threading.local()
_LEAF_TAGS = ("VCALENDAR", "VADDRESSBOOK")
_XML_TYPES = ("", "application/xml", "text/xml")


def _text(status: int, message: str) -> tuple[int, dict[str, str], str, None]:
    return status, {"Content-Type": "text/plain"}, message, None


def _translate(exc: SealmailError) -> tuple[int, dict[str, str], str, None]:  # noqa: PLR0911 - the table above
    if isinstance(exc, ItemTooLarge):
        return _text(client.REQUEST_ENTITY_TOO_LARGE, f"Request entity too large: {exc}")
    if isinstance(exc, QuotaExceeded | DavLimitExceeded):
        return _text(client.INSUFFICIENT_STORAGE, f"Insufficient storage: {exc}")
    if isinstance(exc, DavPreconditionFailed):
        return _text(client.PRECONDITION_FAILED, f"Precondition failed: {exc}")
    if isinstance(exc, DavConflict):
        return _text(client.CONFLICT, f"Conflict: {exc}")
    if isinstance(exc, DavCollectionExists):
        return _text(client.METHOD_NOT_ALLOWED, f"Method not allowed: {exc}")
    if isinstance(exc, DavNotFound):
        return _text(client.NOT_FOUND, f"Not found: {exc}")
    if isinstance(exc, StoreUnavailable):  # RFC 9110 §15.6.4: temporary; Retry-After says when
        return client.SERVICE_UNAVAILABLE, {"Content-Type": "text/plain", "Retry-After": "10"}, f"{exc}", None
    raise exc


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Domain errors raised under Radicale's handler (and after the store rolled back) become answers."""

    @functools.wraps(method)
    def handler(self: SealmailDav, *args: Any) -> Any:
        _reasons.bad = None
        try:
            status, headers, answer, xml = method(self, *args)
        except SealmailError as exc:
            log.info("dav %s refused: %s", method.__name__.removeprefix("do_"), exc)
            return _translate(exc)
        if status == client.BAD_REQUEST and answer == "Bad Request" and _reasons.bad:
            # Radicale only logs why a resource was refused; say it to the client (RFC 4791 §5.3.2.1:
            # valid-calendar-data / RFC 6352 §6.3.2.1: valid-address-data).
            return _text(client.BAD_REQUEST, f"Bad Request: {_reasons.bad}")
        return status, headers, answer, xml

    return handler


class _ReasonCatcher(logging.Filter):
    """Keeps the parser's message of a refused PUT for the answer, and drops Radicale's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(("Bad PUT request on", "Bad MKCALENDAR request", "Bad MKCOL request")) and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            reason = str(args[-1]).strip().splitlines()[0] if str(args[-1]).strip() else "invalid data"
            _reasons.bad = reason[:300]
            log.info("dav refused a resource: %s", _reasons.bad)
            return False
        if record.levelno < logging.ERROR and record.exc_info:
            # A client's bad request is one log line, not a traceback.
            record.exc_info = None
            record.exc_text = None
        return True


class SealmailDav(Application):
    """Radicale's application with domain errors translated on every method that writes."""

    # Radicale dispatches on these names (do_<METHOD>).

    do_PUT = _guarded(Application.do_PUT)  # noqa: N815
    do_DELETE = _guarded(Application.do_DELETE)  # noqa: N815

    @_guarded
    def do_MKCOL(  # noqa: N802
        self,
        environ: dict[str, Any],
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> Any:
        # RFC 4918 §9.3: a body MKCOL does not understand is 415; extended MKCOL (RFC 5689) is XML.
        kind = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if int(environ.get("CONTENT_LENGTH") or 0) > 0 and kind not in _XML_TYPES:
            return _text(
                client.UNSUPPORTED_MEDIA_TYPE, f"Unsupported media type: MKCOL takes an XML body, not {kind!r}"
            )
        return Application.do_MKCOL(self, environ, base_prefix, path, user, user_groups, request_info)

    do_MKCALENDAR = _guarded(Application.do_MKCALENDAR)  # noqa: N815
    do_PROPPATCH = _guarded(Application.do_PROPPATCH)  # noqa: N815
    do_MOVE = _guarded(Application.do_MOVE)  # noqa: N815
    do_REPORT = _guarded(Application.do_REPORT)  # noqa: N815

    @_guarded
    def do_PROPFIND(  # noqa: N802
        self,
        environ: dict[str, Any],
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> Any:
        """Depth 1 on a calendar or address book: members from the store's rows (fastpaths.py)."""
        if environ.get("HTTP_DEPTH", "0") != "1" or not user:
            return Application.do_PROPFIND(self, environ, base_prefix, path, user, user_groups, request_info)
        body = httputils.read_raw_request_body(self.configuration, environ)
        props = fastpaths.requested_props(body)
        collection = next(iter(self._storage.discover(path)), None) if props is not None else None
        if props is None or not isinstance(collection, plugins.Collection) or collection.tag not in _LEAF_TAGS:
            again = fastpaths.as_environ_with(environ, body, "1")
            return Application.do_PROPFIND(self, again, base_prefix, path, user, user_groups, request_info)
        own = fastpaths.as_environ_with(environ, body, "0")
        status, headers, answer, xml = Application.do_PROPFIND(
            self, own, base_prefix, path, user, user_groups, request_info
        )
        if status != client.MULTI_STATUS or not isinstance(answer, bytes):
            return status, headers, answer, xml
        rows = collection.mailbox.dav_item_heads(collection.name)
        members = fastpaths.member_responses(collection, rows, props, base_prefix, self._encoding)
        spliced = fastpaths.splice(answer, members, self._encoding)
        if spliced is None:
            again = fastpaths.as_environ_with(environ, body, "1")
            return Application.do_PROPFIND(self, again, base_prefix, path, user, user_groups, request_info)
        return status, headers, spliced, xml

    do_GET = _guarded(Application.do_GET)  # noqa: N815

    def _read_xml_request_body(self, environ: Mapping[str, Any], request_info: dict[str, Any]) -> Any:
        """Radicale's reader, with defusedxml's refusals as bad XML too.

        Radicale parses bodies with defusedxml, which refuses entity declarations (RFC 4918 §20.6:
        XML external entities) with exceptions Radicale does not catch: such a PROPFIND or REPORT was
        a 500. Radicale answers the RuntimeError below with 400, as for XML that is not well formed
        (RFC 4918 §8.2: "the server MUST reject the entire request with a 400 (Bad Request)")."""
        try:
            return Application._read_xml_request_body(self, environ, request_info)
        except DefusedXmlException as exc:
            raise RuntimeError(f"Failed to parse XML: {exc!r}") from None


def radicale_configuration(sessions: DavSessions, *, max_request_size: int, max_item_size: int) -> Any:
    configuration = radicale_config.load()
    configuration.update(
        {
            "auth": {
                "type": lambda conf: plugins.Auth(conf, sessions),
                "realm": "Sealmail",
                "delay": "0",  # failures are throttled by the login limiter, not by sleeping a thread
                "cache_logins": "False",  # sessions.py caches unlocked mailboxes itself
                "lc_username": "False",
                "strip_domain": "False",
                "urldecode_username": "False",
            },
            "rights": {"type": plugins.Rights},
            "storage": {
                "type": lambda conf: plugins.Storage(conf, sessions),
                "predefined_collections": "{}",  # sessions.py makes the defaults at first use
                "hook": "none",
            },
            "web": {"type": "none"},
            "sharing": {"type": "none"},
            "hook": {"type": "none"},
            "server": {
                "max_content_length": str(max_request_size),
                # Radicale refuses larger items with 412; the store refuses them first with 413.
                "max_resource_size": str(max(max_item_size * 2, int(max_request_size * 0.8))),
            },
            "logging": {
                "mask_passwords": "True",
                "bad_put_request_content": "False",
                "request_header_on_debug": "False",
                "request_content_on_debug": "False",
                "response_header_on_debug": "False",
                "response_content_on_debug": "False",
            },
        },
        "sealmail",
        privileged=True,
    )
    return configuration


class DavApp:
    """The WSGI callable: request-size limit, per-request account scope, then Radicale."""

    def __init__(self, sessions: DavSessions, *, max_request_size: int, max_item_size: int) -> None:
        self.sessions = sessions
        self.max_request_size = max_request_size
        radicale_logger = logging.getLogger("radicale")
        if not any(isinstance(f, _ReasonCatcher) for f in radicale_logger.filters):
            radicale_logger.addFilter(_ReasonCatcher())
        if radicale_logger.level == logging.NOTSET:
            # Radicale logs two lines per request at INFO; ours says what matters.
            radicale_logger.setLevel(logging.WARNING)
        self.radicale = SealmailDav(
            radicale_configuration(sessions, max_request_size=max_request_size, max_item_size=max_item_size)
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > self.max_request_size:
            body = f"Request entity too large: the limit is {self.max_request_size} octets\n".encode()
            start_response(
                "413 Request Entity Too Large",
                [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        # PEP 3333 hands the path over as bytes decoded as latin-1; Radicale (whose own server
        # does the same) expects text: a principal such as /rémi@…/ is UTF-8 on the wire (RFC 3986 §2.5).
        for key in ("PATH_INFO", "SCRIPT_NAME"):
            if key in environ:
                environ[key] = environ[key].encode("latin-1", "replace").decode("utf-8", "replace")
        plugins.set_current(None)
        plugins.take_unavailable()
        held: list[tuple[str, list[tuple[str, str]]]] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
            held.append((status, headers))
            return lambda data: None  # Radicale returns its body; it never writes

        try:
            answers = self.radicale(environ, hold)
            unavailable = plugins.take_unavailable()
            if unavailable is not None:
                # Signing in needed the data host's store, which is away: RFC 9110 §15.6.4.
                status, headers, text, _ = _translate(unavailable)
                body = f"Service unavailable: {text}\n".encode()
                start_response(
                    f"{status} Service Unavailable",
                    [*headers.items(), ("Content-Length", str(len(body)))],
                )
                return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]
            start_response(*held[-1])
            return answers
        finally:
            user = plugins.current()
            plugins.set_current(None)
            if user is not None:
                self.sessions.done(user)
