"""The documentation a newcomer walks: a short README, and every page of docs/ reachable from it.

The README is the front door (what SIFC is, the two commands, where the database is, the layout,
where to read next); everything else lives in one page per concern under docs/. A page nobody links
to is never read, and a link to a moved file is a dead end: both fail here.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 200
# [text](target) — the target up to a space or the closing parenthesis; images alike.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:")


def _prose(path: Path) -> str:
    """The text of a Markdown file outside fenced code blocks (a link in an example is not a link)."""
    kept, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def _relative_links(path: Path) -> list[tuple[str, Path]]:
    """Each relative link of ``path``: its text as written and the file it designates."""
    links = []
    for target in LINK.findall(_prose(path)):
        if target.startswith(EXTERNAL) or target.startswith("#"):
            continue
        links.append((target, (path.parent / target.split("#", 1)[0]).resolve()))
    return links


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move detail to docs/"


def test_every_relative_link_leads_to_a_file():
    dead = [f"{path.relative_to(REPO)}: {target}"
            for path in [README, *_pages()] for target, resolved in _relative_links(path)
            if not resolved.exists()]
    assert dead == []


def test_every_docs_page_is_reachable_from_the_readme():
    reached, frontier = {README.resolve()}, [README.resolve()]
    while frontier:
        page = frontier.pop()
        for _, resolved in _relative_links(page):
            if resolved.suffix == ".md" and resolved.is_file() and resolved not in reached:
                reached.add(resolved)
                frontier.append(resolved)
    orphans = [str(page.relative_to(REPO)) for page in _pages() if page.resolve() not in reached]
    assert orphans == []


def test_the_link_reader_sees_links_and_skips_examples(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("See [a](a.md#part) and ![b](img/b.png), [web](https://example.org), [here](#top).\n"
                    "```\n[not a link](c.md)\n```\n", encoding="utf-8")
    assert [target for target, _ in _relative_links(page)] == ["a.md#part", "img/b.png"]
