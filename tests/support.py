"""Small helpers shared by tests (importable: tests/ is on the path)."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComponentThread:
    """A component (``sealmail.components``) started on its own event-loop thread, as ``sealmail serve``
    runs it, but inside the test process so the test can also use the services directly."""

    def __init__(self, name: str, settings: object) -> None:
        import asyncio
        import threading

        from sealmail import components

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"{name}-test-loop", daemon=True)
        self.thread.start()
        self.component = components.load(name, settings)  # type: ignore[arg-type]
        self.ports: dict[str, int] = self.call(self.component.start())

    def call(self, coro: object, timeout: float = 30) -> object:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        try:
            self.call(self.component.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str | None = None):
    """Poll ``condition()`` until it returns something truthy and return that; fail after ``timeout`` s.

    For a state another thread or process reaches on its own: the test waits exactly as long as it
    takes, never a guessed sleep, and fails with ``what`` (or the condition's name) if it never comes.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or getattr(condition, '__name__', condition)}")
        time.sleep(interval)


async def async_wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str | None = None):
    """``wait_for`` for the event loop: ``condition`` may be a plain or an async function."""
    import asyncio
    import inspect
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or getattr(condition, '__name__', condition)}")
        await asyncio.sleep(interval)
