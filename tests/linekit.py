"""What the fixtures of the line-protocol servers' suites share (``tests/pop3``, ``tests/managesieve``).

Each suite's ``conftest.py`` keeps its own names and its own server class; from here it takes the
dev CA's certificates and a client context that trusts them, its settings with those certificates
and its ports at 0 on 127.0.0.1, and ``serving``: the ``serve(**overrides)`` its tests call to start
one more server with changed settings, every one stopped at teardown.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sealmail.tls.devca import DevCertificates, ensure_dev_certificates

R = TypeVar("R")


def dev_certificates(tmp_path: Path) -> DevCertificates:
    """A CA and a server certificate for localhost and 127.0.0.1, made in the test's directory."""
    return ensure_dev_certificates(tmp_path / "tls")


def trusting(certs: DevCertificates) -> ssl.SSLContext:
    """A client's TLS context that checks the server's certificate against the test CA."""
    return ssl.create_default_context(cafile=str(certs.ca_cert))


def served_settings(settings: Any, certs: DevCertificates, *port_settings: str) -> Any:
    """``settings`` with the test certificate, the named port settings at 0 (the kernel picks a free
    port; the server reports it) and listening on 127.0.0.1 only."""
    return settings.model_copy(
        update={
            "tls_cert_file": certs.cert,
            "tls_key_file": certs.key,
            **dict.fromkeys(port_settings, 0),
            "bind_addresses": ["127.0.0.1"],
        }
    )


@contextlib.contextmanager
def serving(start: Callable[[Any], R], settings: Any) -> Iterator[Callable[..., R]]:
    """``serve(**overrides)``: ``start(settings with the overrides)``, for a ``serve`` fixture to yield;
    every server it started is stopped when the block ends (``stop()``), even after a failure."""
    started: list[Any] = []

    def serve(**overrides: Any) -> R:
        running = start(settings.model_copy(update=overrides))
        started.append(running)
        return running

    try:
        yield serve
    finally:
        for running in started:
            running.stop()
