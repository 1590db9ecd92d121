"""The layers depend one way: the domain (``sifc``) knows nothing of HTTP, and its wings do not import each other.

``api/`` and the CLI are faces of the domain; ``sifc`` never imports them, nor the web framework.
Parcels and tenure both build on the shared versioning primitives (:mod:`sifc.versioning`), and what
spans both (mutations, a parcel's history) sits above them. Every import is read with ``ast``: at
module level, inside functions, and the string given to ``importlib.import_module`` or ``__import__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "sifc"
PROTOCOL = ("api", "fastapi", "starlette")
WINGS = {"sifc.parcels": "sifc.tenure", "sifc.tenure": "sifc.parcels"}
BELOW_WINGS = ("sifc.versioning",)
ABOVE = ("sifc.parcels", "sifc.tenure", "sifc.mutations", "sifc.history")


def module_name(path: Path) -> str:
    """The dotted name of a module under the repository root."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _dynamic(call: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")``, ``import_module("x")`` or ``__import__("x")``."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not call.args:
        return None
    first = call.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def imports(source: str, module: str, *, package: bool = False) -> set[str]:
    """Every module ``source`` (the module ``module``) imports, wherever the import is written.

    ``from a import b`` counts as importing ``a`` and ``a.b`` (``b`` may be a module); relative
    imports are resolved against the module's package.
    """
    found: set[str] = set()
    base = module.split(".") if package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[:len(base) - node.level + 1] if node.level else []
            target = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            dynamic = _dynamic(node)
            if dynamic is not None:
                found.add(dynamic)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def domain_modules() -> list[tuple[str, set[str]]]:
    """Each module under ``sifc/`` with what it imports."""
    return [(module_name(path), imports(path.read_text(encoding="utf-8"), module_name(path),
                                        package=path.name == "__init__.py"))
            for path in sorted(DOMAIN.rglob("*.py"))]


def test_the_walk_sees_every_kind_of_import():
    source = '''
import fastapi.responses
from . import sibling
from ..tenure import rights
def later():
    from starlette.requests import Request
    import importlib
    importlib.import_module("api.app")
    __import__("api.deps")
'''
    found = imports(source, "sifc.parcels.service")
    assert {"fastapi.responses", "sifc.parcels.sibling", "sifc.tenure.rights", "starlette.requests",
            "api.app", "api.deps"} <= found


def test_the_walk_covers_the_domain():
    names = {name for name, _ in domain_modules()}
    assert {"sifc", "sifc.parcels.service", "sifc.tenure.rights", "sifc.versioning", "sifc.ogc"} <= names


@pytest.mark.parametrize("module,found", [pytest.param(m, f, id=m) for m, f in domain_modules()])
def test_the_domain_imports_no_protocol(module, found):
    assert not sorted(name for name in found if any(_within(name, p) for p in PROTOCOL)), module


def test_parcels_and_tenure_do_not_import_each_other():
    crossing = [(module, sorted(name for name in found if _within(name, WINGS[wing])))
                for module, found in domain_modules() for wing in WINGS if _within(module, wing)]
    assert not [pair for pair in crossing if pair[1]]


def test_the_versioning_primitives_sit_below_the_wings():
    leaks = [(module, sorted(name for name in found if any(_within(name, a) for a in ABOVE)))
             for module, found in domain_modules() if any(_within(module, b) for b in BELOW_WINGS)]
    assert not [pair for pair in leaks if pair[1]]
