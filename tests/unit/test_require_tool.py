"""One rule for missing external tools (tests/support.py ``require_tool``): under ``CI=true`` a
missing tool fails the test, never skips it; locally it skips, naming the Debian package."""

from __future__ import annotations

import pytest

from support import require_tool


def test_a_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=r"litmus is not installed, and CI=true: install apt package litmus"
    ):
        require_tool("litmus")


def test_a_missing_tool_skips_locally_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"apt-get install isync"):
        require_tool("mbsync")


def test_a_present_tool_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_tool("sh").endswith("/sh")


def test_the_tool_mark_applies_the_same_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """``@pytest.mark.tool(...)`` (tests/conftest.py's setup hook) calls ``require_tool`` for each name."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)

    class Item:
        def iter_markers(self, name: str):
            return [pytest.mark.tool("sh", "no-such-tool-anywhere").mark] if name == "tool" else []

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-anywhere is not installed, and CI=true"):
        root_conftest.pytest_runtest_setup(Item())
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install no-such-tool-anywhere"):
        root_conftest.pytest_runtest_setup(Item())
