"""The package's layers, read from the source with ``ast``: imports run one way and never in a circle.

Layers, bottom to top (a layer may import those below it, never those above):

1. base: ``errors``, ``settings``, ``addresses``, ``logs``, ``timecodec``, ``walmode``, ``migrations``,
   ``keyfiles``, ``crypto``;
2. parsing and plumbing: ``mime`` (MIME and header parsing, shared by storage, SMTP and mail
   authentication) and ``net`` (listeners, TLS, the shared DNS resolver);
3. storage: ``store``, ``config``, ``queue``; mail authentication: ``mailauth``; the DMARC and TLS
   report parsers ``reports`` (they make config records);
4. ``services`` and ``appcontext``; the deliverability checks ``doctor`` (on top of ``services``);
5. the shared HTTP layer ``http`` (listener, app factory, request state);
6. the protocols and front ends: ``smtp``, ``imap``, ``pop3``, ``managesieve``, ``dav``, ``web``, ``api``; then
   ``jobs``, ``cli``.

The rules below are the parts of that order worth pinning: each names what a package must not
import. Every import counts for them, also one inside a function or under ``if TYPE_CHECKING:`` (a
back door is still a door). Cycles are checked on module-level imports only: a deferred import does
not run at import time, so it cannot make a circle fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
PACKAGE = APP / "sealmail"

PROTOCOLS = {"smtp", "imap", "pop3", "managesieve", "dav", "web", "api"}
ABOVE_STORAGE = PROTOCOLS | {
    "http",
    "services",
    "appcontext",
    "jobs",
    "cli",
    "components",
    "runtime",
    "dev",
    "backup",
    "datahost",
    "doctor",
}

# package (first name under ``sealmail``) -> first names it must not import
FORBIDDEN: dict[str, set[str]] = {
    # Storage knows nothing of the protocols that read it, nor of mail authentication; the
    # config store is a sibling (time codecs come from ``timecodec``, not ``config.codec``).
    "store": ABOVE_STORAGE | {"mailauth", "config", "queue"},
    # Mail authentication reads headers through ``mime``, never through the store.
    "mailauth": ABOVE_STORAGE | {"store", "config", "queue"},
    # The web admin asks DNS through ``net.dns``; it never reaches into the SMTP server (nor the
    # other protocols, nor the packages that are built on top of it).
    "web": {"smtp", "imap", "pop3", "managesieve", "dav", "api", "jobs", "cli", "queue", "mailauth"},
    # The REST API and the web admin are two routers over one HTTP layer and one service layer:
    # neither reaches into the other; what they share lives below them (``http``, ``services``).
    "api": {"smtp", "imap", "pop3", "managesieve", "dav", "web", "jobs", "cli", "queue", "mailauth"},
    # The shared HTTP layer knows none of the front ends built on it.
    "http": PROTOCOLS | {"jobs", "cli", "queue", "mailauth"},
    # The operations the front ends share are written without knowing who calls them.
    "services": PROTOCOLS | {"http", "jobs", "cli", "doctor"},
    # The deliverability checks read what the services, mail authentication and the network layer
    # know (records, keys, SPF, MTA-STS, reverse DNS); they reach no protocol server and store nothing.
    "doctor": PROTOCOLS | {"http", "jobs", "cli", "store", "queue"},
    # Spam filtering speaks rspamd's protocol and decides; it stores nothing and serves no protocol.
    "spam": ABOVE_STORAGE | {"store", "config", "queue", "mailauth"},
    # Sieve compiles and runs scripts on bytes it is handed: it stores, sends and serves nothing.
    "sieve": ABOVE_STORAGE | {"store", "config", "queue", "mailauth", "net", "spam"},
    # The report parsers turn bytes into config records: they store, send and serve nothing, and ask
    # no one (no DNS, no mail authentication).
    "reports": ABOVE_STORAGE | {"store", "queue", "mailauth", "net", "spam", "sieve", "mime"},
    # Plumbing below everything that serves mail.
    "net": ABOVE_STORAGE | {"store", "config", "queue", "mailauth", "mime"},
}
# packages or modules that import nothing else from sealmail
SELF_CONTAINED = {"mime", "timecodec"}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # a sealmail module (or package) it names
    line: int
    module_level: bool  # runs when the importing module is imported (not in a function, not TYPE_CHECKING)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(body: list[ast.stmt], module_level: bool):
    """Import statements with whether each runs at import time."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, module_level
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _walk(node.body, False)
        elif isinstance(node, ast.If):
            yield from _walk(node.body, module_level and not _is_type_checking(node))
            yield from _walk(node.orelse, module_level)
        else:
            # class bodies, try/except, with, loops: run at import time like the module around them
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _walk(inner, module_level)


def _targets(name: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The sealmail modules an import statement names: ``from a.b import c`` names ``a.b`` and,
    when ``c`` is a module, ``a.b.c``."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "sealmail"]
    if node.level:
        base = name.split(".")
        if MODULES[name].name != "__init__.py":
            base.pop()
        base = base[: len(base) - node.level + 1]
        module = ".".join([*base, node.module] if node.module else base)
    else:
        module = node.module or ""
    if module.split(".")[0] != "sealmail":
        return []
    return [module] + [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]


def _imports() -> list[Import]:
    found = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, module_level in _walk(tree.body, True):
            found += [Import(name, t, node.lineno, module_level) for t in _targets(name, node) if t != name]
    return found


IMPORTS = _imports()


def _layer(module: str) -> str:
    """``sealmail.store.mailbox`` -> ``store``; ``sealmail`` itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _wrong_way(imports: list[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        source, target = _layer(imp.source), _layer(imp.target)
        if source == target or not target:
            continue
        if target in FORBIDDEN.get(source, set()) or source in SELF_CONTAINED:
            where = MODULES[imp.source].relative_to(APP) if imp.source in MODULES else imp.source
            wrong.append(f"{where}:{imp.line}: {imp.source} imports {imp.target}")
    return wrong


def _cycle(imports: list[Import]) -> list[str] | None:
    """One circle among module-level imports (depth-first search), or None."""
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for imp in imports:
        if imp.module_level and imp.target in graph:
            graph[imp.source].add(imp.target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_graph_is_read():
    """The parse finds the modules and the edges this file is about (a broken walk would pass anything)."""
    assert len(MODULES) > 100
    edges = {(i.source, i.target) for i in IMPORTS}
    assert ("sealmail.store.sections", "sealmail.mime") in edges  # from sealmail import mime
    assert ("sealmail.mailauth.checks", "sealmail.mime.headers") in edges
    assert ("sealmail.http.dnslookup", "sealmail.net.dns") in edges
    assert ("sealmail.api.routes", "sealmail.services.operations") in edges
    assert ("sealmail.web.pages.aliases", "sealmail.services.operations") in edges
    assert ("sealmail.store.rows", "sealmail.timecodec") in edges
    # function-level and TYPE_CHECKING imports are seen, and known not to run at import time
    deferred = {(i.source, i.target) for i in IMPORTS if not i.module_level}
    assert ("sealmail.http.state", "sealmail.http.dnslookup") in deferred
    assert ("sealmail.web.gate", "sealmail.web.state") in deferred


@pytest.mark.parametrize("package", sorted(FORBIDDEN) + sorted(SELF_CONTAINED))
def test_no_import_runs_the_wrong_way(package: str):
    wrong = _wrong_way([i for i in IMPORTS if _layer(i.source) == package])
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycle_among_modules():
    assert _cycle(IMPORTS) is None, "import cycle: " + " -> ".join(_cycle(IMPORTS) or [])


@pytest.mark.parametrize("package", ["sealmail.mime", "sealmail.smtp", "sealmail.web", "sealmail.api", "sealmail.http"])
def test_no_circle_even_through_deferred_imports(package: str):
    """The circles taken apart here (inside ``mime``, ``smtp.mx`` and ``smtp.mxprocs``, ``web.app`` and
    its pages) stay apart: no circle within these packages even counting imports in functions."""
    inside = [
        replace(i, module_level=True)
        for i in IMPORTS
        if i.source.startswith(package + ".") or i.source == package
        if i.target.startswith(package + ".") or i.target == package
    ]
    assert _cycle(inside) is None, "import cycle: " + " -> ".join(_cycle(inside) or [])


def test_the_checks_catch_what_they_are_for():
    """The rules themselves, on made-up imports: a back door is reported, and so is a circle."""
    back_door = Import("sealmail.store.mailbox", "sealmail.config.codec", 1, module_level=False)
    assert _wrong_way([back_door])
    assert _wrong_way([Import("sealmail.mailauth.checks", "sealmail.store.mime", 1, True)])
    assert _wrong_way([Import("sealmail.web.dnslookup", "sealmail.smtp.mxresolver", 1, True)])
    assert _wrong_way([Import("sealmail.api.routes", "sealmail.web.state", 1, False)])
    assert _wrong_way([Import("sealmail.http.state", "sealmail.web.state", 1, True)])
    assert _wrong_way([Import("sealmail.mime.parser", "sealmail.errors", 1, True)])
    assert not _wrong_way([Import("sealmail.smtp.mx", "sealmail.store.mailbox", 1, True)])
    circle = [
        Import("sealmail.smtp.mx", "sealmail.smtp.mxprocs", 1, True),
        Import("sealmail.smtp.mxprocs", "sealmail.smtp.mx", 1, True),
    ]
    assert _cycle(circle) == ["sealmail.smtp.mx", "sealmail.smtp.mxprocs", "sealmail.smtp.mx"]
    deferred = [circle[0], Import("sealmail.smtp.mxprocs", "sealmail.smtp.mx", 1, False)]
    assert _cycle(deferred) is None


def test_moved_modules_leave_nothing_behind():
    """MIME parsing lives in ``sealmail.mime`` and the resolver in ``sealmail.net.dns``, with no old copies."""
    assert not (PACKAGE / "store" / "mime").exists()
    assert (PACKAGE / "mime" / "__init__.py").exists()
    assert not [i for i in IMPORTS if i.target.startswith("sealmail.store.mime")]
    resolver = ast.parse((PACKAGE / "smtp" / "mxresolver.py").read_text(encoding="utf-8"))
    assert "make_resolver" not in {n.name for n in resolver.body if isinstance(n, ast.FunctionDef)}
