"""The documentation a newcomer reads: its links lead somewhere, and its map of the code is whole.

Relative links in the README and in ``docs/`` must name files that exist, and a ``#fragment`` must
name a heading of the target (GitHub's anchors). The README keeps its two commands and a layout that
names every package of ``app/sealmail``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "molecule" / "README.md", ROOT / "roles" / "README.md"]
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not ours to check
            continue
        file_part, _, fragment = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors() -> None:
    # The checker itself: it finds links outside code blocks only, and makes GitHub's anchors.
    text = "See [a](x.md#b-c) and ![img](i.png).\n```\n[not](y.md)\n```\n## B: c\n## B: c\n"
    assert LINK.findall(FENCE.sub("", text)) == ["x.md#b-c"]
    assert anchors(text) == {"b-c", "b-c-1"}


def test_readme_keeps_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## The two commands" in readme
    two = readme[readme.index("## The two commands") :]
    two = two[: two.index("\n## ", 1)]
    assert "make dev " in two
    assert "make test " in two


def test_readme_layout_names_every_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    packages = sorted(p.parent.name for p in (ROOT / "app" / "sealmail").glob("*/__init__.py"))
    assert packages, "no packages found under app/sealmail"
    missing = [name for name in packages if not re.search(rf"(?<![\w/]){re.escape(name)}/", layout)]
    assert not missing, f"README's Layout does not name: {', '.join(missing)}"
