"""No public function of the domain takes a flag that says whether to reveal personal data.

Who may see personal data is decided by the service that returns it, from the principal it is
given as ``reader`` (``sifc.personal.may_reveal``), and the same service writes the access log.
A ``personal=True`` parameter would let any caller (a command, a job, the next router) skip both;
only private helpers, called once the decision is made, may take one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "sifc"
FLAGS = frozenset({"personal", "reveal", "reveals", "include_personal", "show_personal"})


def _is_flag(name: str) -> bool:
    return name in FLAGS or name.startswith("reveal_")


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return [a.arg for a in every]


def reveal_flags(source: str, path: str) -> list[str]:
    """``path:line function(flag)`` for every public function of ``source`` that takes a reveal flag."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            found += [f"{path}:{node.lineno} {node.name}({name})" for name in _parameters(node) if _is_flag(name)]
    return found


def test_no_public_domain_function_takes_a_reveal_flag():
    found = []
    for path in sorted(DOMAIN.rglob("*.py")):
        found += reveal_flags(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == [], "take the principal as `reader` and decide in the service:\n" + "\n".join(found)


def test_the_check_sees_each_kind_of_flag_and_spares_private_helpers():
    source = """
def get(session, *, parcel_id, personal=False): ...
async def listed(session, reveal): ...
def lineage(session, *, reveal_authors): ...
def build(session, include_personal, /): ...
def page(session, **show_personal): ...
def _json(row, *, personal): ...
def get_fine(session, *, parcel_id, reader): ...
class Service:
    def read(self, personal): ...
"""
    assert [entry.split(" ")[1] for entry in reveal_flags(source, "x.py")] == [
        "get(personal)", "listed(reveal)", "lineage(reveal_authors)", "build(include_personal)",
        "page(show_personal)", "read(personal)"]
