"""Code and tests say why in their own words, never "see issue N".

A ticket number means nothing to a reader without the tracker, and goes stale when the tracker
moves; the reason itself, or a decision record in docs/adr/, stays with the code.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("sifc", "api", "cli", "tests", "scripts", "migrations", ".ci", "bench", "web/src")
SUFFIXES = {".py", ".sh", ".js", ".html", ".css", ".yaml", ".yml", ".toml", ".sql", ".mako", ".env", ""}
SKIPPED_PARTS = {"__pycache__", "node_modules", "artifacts", "results"}
# Written in two pieces so that this file does not match itself.
TICKET = re.compile(r"\bissue" + r"\s+#?\d", re.IGNORECASE)


def _candidates(top: str) -> list[Path]:
    """The files under ``top`` that belong to the project: what git tracks or would track (not what it
    ignores, such as a benchmark's checkout of an older revision); every file when there is no git."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", top],
                                cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return sorted((REPO / top).rglob("*"))
    return sorted(REPO / name for name in listed)


def _files():
    for top in SCANNED:
        for path in _candidates(top):
            if path.is_file() and path.suffix in SUFFIXES and not SKIPPED_PARTS & set(path.parts):
                yield path
    yield REPO / "data" / "policy.yaml"
    yield REPO / "Makefile"


def test_no_ticket_number_stands_in_for_a_reason():
    found = []
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found += [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                  for number, line in enumerate(text.splitlines(), 1) if TICKET.search(line)]
    assert found == []


def test_the_pattern_sees_a_ticket_number():
    word = "Issue"  # split, as above
    assert TICKET.search(f"a rule ({word} 12)") and TICKET.search(f"see {word.lower()} #3")
    assert not TICKET.search("boundary-issues") and not TICKET.search("an issue of the file")
