"""One written path to the database (docs/adr/0001-database-access-path.md), checked on the source.

The migrations are the schema's single source; a statement names tables and columns in SQL text,
binds every value, and composes nothing into it but module constants, fragments chosen from a
whitelist written in code, or quoted identifiers; the storage SRID comes from one constant,
:data:`sifc.crs.STORAGE_SRID`; psycopg is used directly only where SQLAlchemy cannot serve. Each
rule is read with ``ast`` from the code under ``sifc/``, ``api/`` and ``cli/``, so no database is needed.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sifc", "api", "cli")
STORAGE_SRID = 32628
# Where the storage SRID is defined: the one place its number may be written in code.
SRID_HOME = "sifc/crs.py"
# Upper-case SQL words and PostGIS calls: what makes a string a statement or a fragment of one.
# Upper case only, so prose ("taken from the file") is not mistaken for SQL.
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|FROM|WHERE|JOIN|RETURNING|VALUES|GROUP BY|ORDER BY"
                 r"|CASE WHEN|COALESCE|EXISTS|AND|OR|NOT|IN|IS|LIKE|ILIKE|BETWEEN|CAST|AS|ON|SET|LIMIT|OFFSET"
                 r"|DISTINCT|NULL|TRUE|FALSE|ASC|DESC)(?=[\s(]|$)|\b(ST_[A-Z]|json_|jsonb_)[A-Za-z0-9_]*\(|::\w+")
# psycopg directly, module -> why SQLAlchemy cannot serve there. An entry that no longer imports it fails the test.
PSYCOPG_MODULES: dict[str, str] = {
    "sifc/db.py": "the read pool (an async psycopg pool) and the COPY of imports on the session's connection",
    "sifc/provision.py": "the provisioning of databases and roles, outside any transaction",
    "sifc/federation/node.py":
        "a peer node reached by the libpq connection string a subscription holds (not a SQLAlchemy URL); "
        "CREATE SUBSCRIPTION and publications take no bound parameters, so their names and values are "
        "composed with psycopg.sql.Identifier and Literal",
    "sifc/federation/status.py": "sifc node status probes each publisher through its subscription's libpq "
                                 "connection string (pg_subscription.subconninfo)",
}
# Schema statements (upper case, as the code writes SQL, so "Revoke a key" is prose).
DDL = re.compile(r"\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|VIEW|FUNCTION|TRIGGER|ROLE|POLICY|PUBLICATION|SCHEMA"
                 r"|DATABASE|EXTENSION|TYPE|SEQUENCE)\b|\b(GRANT|REVOKE)\s")
# Outside migrations/, only provisioning writes them: it creates the database and its extension,
# before any migration can run. A temporary table is a session's scratch space, not schema. The national
# node's schema differs in one step, applied there only (ADR 0004): its personal columns accept NULL.
DDL_HOMES = {"sifc/provision.py", "sifc/federation/registry.py"}
# Statements of the DDL kinds that are operations, not schema: (module, object) -> why. A publication is
# made by `sifc node init` from the node's role, its pole's communes and the registry (ADR 0004); the
# same migrated schema carries different publications at each node. An entry that no longer serves fails.
DDL_OPERATIONS: dict[tuple[str, str], str] = {
    ("sifc/federation/node.py", "PUBLICATION"):
        "a node's publications (sifc node init, sifc node migrate): tables, column lists and row filters "
        "chosen from its role, its pole's communes and the registry",
    ("sifc/federation/node.py", "ROLE"):
        "sifc_replication, the role peers connect as (sifc node init, sifc node migrate): created NOLOGIN, "
        "kept without superuser, LOGIN when the operator says so",
    ("sifc/federation/node.py", "GRANT"):
        "sifc_replication reads exactly the columns the node's publications list and what a peer reads of "
        "sifc_node and alembic_version, remade with the publications",
    ("sifc/federation/node.py", "REVOKE"):
        "sifc_replication loses what it held before its privileges are remade from the publications",
}
TEMPORARY_TABLE = re.compile(r"\bCREATE\s+TEMP(?:ORARY)?\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)")
ON_TABLE = re.compile(r"(?:DROP\s+TABLE|CREATE\s+INDEX\s+ON)\s+(?:IF\s+EXISTS\s+)?(\w+)")

# What a statement may interpolate besides UPPER_CASE module constants: (module, expression) -> why
# the expression cannot carry user text. An entry that no longer serves fails the test.
# A name is an expression as :func:`head` writes it: ``where``, ``spec.table``, ``_geometry()``.
INTERPOLATION_ALLOWED: list[tuple[str, str, str]] = [
    ("*", "geometry_sql() crs_member() to_storage_sql() point_sql()",
     "sifc.geojson and sifc.crs fragment builders: SQL written in code around the caller's fragments, SRIDs via int()"),
    ("sifc/crs.py", "geometry srid lon lat", "parameters documented as SQL fragments; callers write them and bind values"),
    ("sifc/geojson.py", "column simplify_param", "a column expression and a bound parameter's name, written by the caller"),
    ("sifc/auth/scopes.py", "table owner_column", "asserted to be one of two fixed table and column names"),
    ("sifc/versioning.py", "table key", "asserted against VERSIONED, the fixed table -> key map"),
    ("sifc/imports/parcels.py", "where", "each caller writes the condition in code and binds its values"),
    ("sifc/exports.py", "columns selection.where _geometry() _attributes_sql() layer.view layer.key layer.columns",
     "a layer of LAYERS (its view, key and columns, written in code); the selection's condition over checked "
     "queryables (values bound); an SRID via int()"),
    ("sifc/ogc.py", "find_collection() _condition() _geometry() spec.properties_sql()",
     "a collection of COLLECTIONS, its properties looked up in its fields; conditions with bound values"),
    ("sifc/ogc_filter.py", "self.sql() self._bind() self._geometry() self._attribute() self._pair() self.srid",
     "the filter compiler: queryables looked up in the collection's table, every value bound (:cqlN)"),
    ("sifc/ogc_filter.py", "queryables index", "the collection's queryables table, written in code; a counter"),
    ("sifc/parcels/quality.py", "column", "called with two fixed column names (land_use, tenure_regime)"),
    ("sifc/parcels/selection.py", "envelope", "an SQL expression of a tile's envelope, written by the caller"),
    ("sifc/parcels/service.py", "_feature_sql()", "fixed columns, personal ones from PERSONAL_COLUMNS"),
    ("sifc/field/returns_file.py", "names table",
     "a layer of sifc.field.layers and its field names (asserted), read with sqlite3 from a private copy"),
    ("sifc/bornes/service.py", "_feature_sql()", "the fixed public columns of PUBLIC_FIELDS; an SRID via int()"),
    ("sifc/localites/service.py", "_feature_sql()",
     "the fixed public columns of PUBLIC_FIELDS, personal ones from PERSONAL_COLUMNS; an SRID via int()"),
    ("sifc/parcels/spatial.py", "_properties() _point_sql() point where order extra extra_select",
     "fragments the module's own functions write, with bound values (:lon, :wkb, :distance)"),
    ("sifc/territories/loader.py", "geom_changed() old new level",
     "column expressions written in code; a level, one of the fixed names the loader walks"),
    ("sifc/territories/service.py", "_feature_sql() _geometry_sql() _properties_sql() condition table",
     "LEVELS' tables and properties; parent filter columns checked against the level's parent_filters"),
    ("sifc/territories/service.py", "expressions",
     "json_object_sql's names and SQL: a level's property_expressions() or a collection's fields, written in code"),
    ("sifc/federation/migration.py", "prep.quote()",
     "sifc node migrate: subscription names as pg_subscription holds them, quoted as identifiers"),
    ("sifc/federation/node.py", "prep.quote()",
     "sifc node: the registry's table and column names and subscription names, quoted as identifiers"),
    ("sifc/federation/registry.py", "table prep.quote() constraint expression nulls",
     "relax_personal: the registry's own table and column names, quoted; a CHECK as pg_get_constraintdef wrote it"),
    ("sifc/tiles.py", "layer() spec parcel_selection.select() n",
     "a layer of LAYERS; the parcel selection's condition (bound values); a field name checked in spec.fields"),
]


def allowed_interpolations() -> dict[tuple[str, str], str]:
    """``INTERPOLATION_ALLOWED`` by (module, name)."""
    return {(module, name): reason for module, names, reason in INTERPOLATION_ALLOWED for name in names.split()}


@functools.cache
def python_files() -> tuple[tuple[str, ast.Module], ...]:
    """Each module of the packages, by its path from the repository root, parsed (once for all the tests)."""
    return tuple((path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
                 for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py")))


def literal_text(node: ast.AST) -> str | None:
    """The written text of a string literal or of an f-string's constant parts, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value for part in node.values
                       if isinstance(part, ast.Constant) and isinstance(part.value, str))
    return None


class Trust:
    """What may be put into SQL text in one scope: constants, trusted locals, allowlisted fragments.

    ``trusted`` holds the local names every assignment of which is itself trustworthy (inferred);
    ``allowed`` the heads (see :func:`head`) the module's allowlist entries name.
    """

    def __init__(self, trusted: frozenset[str], allowed: frozenset[str], used: set[str] | None = None) -> None:
        self.trusted, self.allowed = trusted, allowed
        self.used = set() if used is None else used

    def __call__(self, expression: ast.expr) -> bool:
        """Whether ``expression`` can only produce text written in the code, whatever the input.

        An UPPER_CASE name (a module constant), a literal, a trusted local, an allowlisted
        fragment, a lookup in or attribute of any of those (a whitelist lookup), ``int(...)``
        (digits only), and conditionals, joins, formats, f-strings and collections of those.
        """
        if head(expression) in self.allowed:
            self.used.add(head(expression))
            return True
        match expression:
            case ast.Name(id=name):
                return name.isupper() or name in self.trusted
            case ast.Constant():
                return True
            case ast.Attribute(value=ast.Name(), attr=name) if name.isupper():
                return True  # a constant of another module
            case ast.Subscript(value=table) | ast.Attribute(value=table):
                return self(table)
            case ast.Call(func=ast.Name(id="int")):
                return True
            case ast.Call(func=ast.Name(id="str" | "enumerate" | "sorted" | "list" | "tuple" | "reversed"),
                          args=arguments):
                return all(map(self, arguments))
            case ast.Call(func=ast.Attribute(value=mapping, attr="items" | "keys" | "values"), args=[]):
                return self(mapping)
            case ast.Call(func=ast.Attribute(value=template, attr="join" | "format"), args=arguments,
                          keywords=keywords):
                return self(template) and all(map(self, [*arguments, *(k.value for k in keywords)]))
            case ast.IfExp(body=body, orelse=orelse):
                return self(body) and self(orelse)
            case ast.BinOp(left=left, right=right):
                return self(left) and self(right)
            case ast.JoinedStr(values=parts):
                return all(self(part.value) for part in parts if isinstance(part, ast.FormattedValue))
            case ast.List(elts=items) | ast.Tuple(elts=items) | ast.Set(elts=items):
                return all(map(self, items))
            case ast.Dict(values=items):
                return all(map(self, items))
            case ast.Starred(value=items):
                return self(items)
            case ast.ListComp(elt=item, generators=loops) | ast.GeneratorExp(elt=item, generators=loops):
                # The loop's names are trusted only when what it walks is.
                inner = Trust(self.trusted | {n.id for loop in loops if self(loop.iter) for n in ast.walk(loop.target)
                                              if isinstance(n, ast.Name)}, self.allowed, self.used)
                return inner(item)
        return False


def head(expression: ast.expr) -> str:
    """How an allowlist names an interpolated expression: a call by its function, a lookup by its table."""
    if isinstance(expression, ast.Call):
        return f"{ast.unparse(expression.func)}()"
    if isinstance(expression, ast.Subscript):
        return f"{ast.unparse(expression.value)}[]"
    return ast.unparse(expression)


UNKNOWN = ast.Name(id="?")  # the value of a parameter, a with-target, an exception: never trusted


def _bind(sources: dict[str, list[ast.expr]], target: ast.expr, value: ast.expr) -> None:
    """Record that ``target`` receives ``value`` (each name of an unpacking receives an element)."""
    if isinstance(target, ast.Name):
        sources.setdefault(target.id, []).append(value)
    elif isinstance(target, ast.Tuple | ast.List):
        for item in target.elts:
            _bind(sources, item, ast.Subscript(value=value, slice=ast.Constant(0)))
    elif isinstance(target, ast.Starred):
        _bind(sources, target.value, value)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module or function body, not descending into nested functions and classes."""
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))


def assignments(scope: ast.AST) -> dict[str, list[ast.expr]]:
    """Every value each local name of ``scope`` receives: assignments, loops, ``append``/``extend``."""
    sources: dict[str, list[ast.expr]] = {}
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
        arguments = scope.args
        for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                         *filter(None, [arguments.vararg, arguments.kwarg])]:
            sources.setdefault(argument.arg, []).append(UNKNOWN)
    for node in _own_nodes(scope):
        match node:
            case ast.Assign(targets=targets, value=value):
                for target in targets:
                    _bind(sources, target, value)
            case ast.AnnAssign(target=target, value=value) if value is not None:
                _bind(sources, target, value)
            case ast.AugAssign(target=target, value=value) | ast.NamedExpr(target=target, value=value):
                _bind(sources, target, value)
            case ast.For(target=target, iter=iterable) | ast.AsyncFor(target=target, iter=iterable):
                _bind(sources, target, ast.Subscript(value=iterable, slice=ast.Constant(0)))
            case ast.comprehension(target=target, iter=iterable):
                _bind(sources, target, ast.Subscript(value=iterable, slice=ast.Constant(0)))
            case ast.withitem(optional_vars=target) if target is not None:
                _bind(sources, target, UNKNOWN)
            case ast.ExceptHandler(name=name) if name:
                sources.setdefault(name, []).append(UNKNOWN)
            case ast.Call(func=ast.Attribute(value=ast.Name(id=name), attr="append" | "add"), args=[item]):
                sources.setdefault(name, []).append(ast.List(elts=[item]))
            case ast.Call(func=ast.Attribute(value=ast.Name(id=name), attr="extend" | "update"), args=[items]):
                sources.setdefault(name, []).append(items)
            case ast.Call(func=ast.Attribute(value=ast.Name(id=name), attr="insert"), args=[_, item]):
                sources.setdefault(name, []).append(ast.List(elts=[item]))
    return sources


def trust(scope: ast.AST, outer: frozenset[str], allowed: frozenset[str], used: set[str]) -> Trust:
    """The names of ``scope`` that only ever hold trustworthy text (the greatest such set).

    Start by trusting every local name, then drop any that receives an untrusted value, until
    nothing changes; names of the enclosing module that are not rebound keep the module's trust.
    """
    sources = assignments(scope)
    trusted = set(outer) | set(sources)
    while True:
        check = Trust(frozenset(trusted), allowed, used)
        dropped = {name for name, values in sources.items() if name in trusted
                   and any(value is UNKNOWN or not check(value) for value in values)}
        if not dropped:
            return check
        trusted -= dropped


def scopes(scope: ast.AST, outer: frozenset[str], allowed: frozenset[str],
           used: set[str]) -> Iterator[tuple[ast.AST, Trust]]:
    """``scope`` and each function, class or lambda nested in it, with what each may trust.

    A nested scope trusts what its enclosing scope trusts, unless it rebinds the name.
    """
    check = trust(scope, outer, allowed, used)
    yield scope, check
    for node in _own_nodes(scope):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            yield from scopes(node, check.trusted, allowed, used)


def module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "..."`` assignments, so ``NAME.format(...)`` is read as the SQL it is."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            text = literal_text(node.value)
            if text is not None:
                found[node.targets[0].id] = text
    return found


def interpolations(scope: ast.AST, named: dict[str, str]) -> Iterator[tuple[int, str, list[ast.expr]]]:
    """Each composed string of ``scope``: its line, its text, and the expressions put into it.

    An f-string, ``"...".format(...)`` / ``NAME.format(...)`` on a module string (``named``),
    ``"..." % x`` and ``"..." + x``.
    """
    for node in _own_nodes(scope):
        if isinstance(node, ast.JoinedStr):
            text = literal_text(node) or ""
            values = [part.value for part in node.values if isinstance(part, ast.FormattedValue)]
            yield node.lineno, text, values
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"):
            receiver = node.func.value
            text = literal_text(receiver)
            if text is None and isinstance(receiver, ast.Name):
                text = named.get(receiver.id)
            if text is not None:
                yield node.lineno, text, [*node.args, *(keyword.value for keyword in node.keywords)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            text = literal_text(node.left)
            if text is not None:
                right = node.right
                yield node.lineno, text, list(right.elts) if isinstance(right, ast.Tuple) else [right]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            parts = [node.left, node.right]
            texts = [text for part in parts if (text := literal_text(part)) is not None]
            if texts:
                yield node.lineno, " ".join(texts), [part for part in parts if literal_text(part) is None]


def test_the_storage_srid_is_written_once():
    """The number is written only in sifc/crs.py: no int literal elsewhere, and none inside SQL text.

    Strings meant for users ("EPSG:32628" in a message, a parameter's allowed values, a docstring)
    may name it; SQL must take it from the constant (interpolated or bound).
    """
    offenders = set()
    for module, tree in python_files():
        if module == SRID_HOME:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value == STORAGE_SRID:
                offenders.add(f"{module}:{node.lineno}: the number {STORAGE_SRID}")
            text = literal_text(node)
            if text is not None and str(STORAGE_SRID) in text and SQL.search(text):
                offenders.add(f"{module}:{node.lineno}: {STORAGE_SRID} inside SQL")
    assert not offenders, "use sifc.crs.STORAGE_SRID:\n" + "\n".join(sorted(offenders))


def test_there_is_one_definition_of_the_storage_srid():
    homes = [f"{module}:{node.lineno}" for module, tree in python_files() for node in ast.walk(tree)
             if isinstance(node, ast.Name) and node.id == "STORAGE_SRID" and isinstance(node.ctx, ast.Store)]
    assert [home.split(":")[0] for home in homes] == [SRID_HOME], homes


def composed_sql_offenders(module: str, tree: ast.Module, allowed: frozenset[str], seen: set[str]) -> list[str]:
    """The expressions SQL-looking composed strings of ``tree`` put into their text and should not.

    ``allowed`` holds the module's allowlisted names; those that serve are added to ``seen``.
    """
    offenders, named = [], module_strings(tree)
    for scope, check in scopes(tree, frozenset(), allowed, seen):
        for line, text, values in interpolations(scope, named):
            if SQL.search(text):
                offenders += [f"{module}:{line}: {{{ast.unparse(value)}}}" for value in values if not check(value)]
    return offenders


def test_the_check_tells_values_from_fragments():
    source = '''
LIMIT_SQL = "LIMIT 10"
COLUMNS = {"a": "t.a", "b": "t.b"}

def read(name, value, order, fragment):
    column = COLUMNS[name]
    parts = []
    parts.append(f"{column} IS NOT NULL")
    where = " AND ".join(parts)
    sort = "DESC" if order else "ASC"
    return [
        f"SELECT {column} FROM t WHERE {where} ORDER BY 1 {sort} {LIMIT_SQL}",
        f"SELECT a FROM t WHERE b = '{value}'",
        "SELECT a FROM t WHERE b = %s" % value,
        "SELECT a FROM t WHERE {}".format(fragment),
        f"SELECT a FROM t WHERE {fragment}",
        "SELECT a FROM t WHERE b = '" + value + "'",
        f"the value {value} is not SQL",
    ]
'''
    seen: set[str] = set()
    found = composed_sql_offenders("m.py", ast.parse(source), frozenset({"fragment"}), seen)
    assert sorted(found) == ["m.py:13: {value}", "m.py:14: {value}", "m.py:17: {value}"]
    assert seen == {"fragment"}


def test_sql_interpolates_only_constants_and_whitelisted_fragments():
    """A composed statement puts into its text only what cannot come from a user.

    UPPER_CASE names are module constants; anything else must be listed in
    ``INTERPOLATION_ALLOWED`` with the reason it is safe (a whitelist lookup, a quoted identifier).
    Values are bound (``:name``), never interpolated.
    """
    offenders: list[str] = []
    allowlist = allowed_interpolations()
    used = set()
    for module, tree in python_files():
        seen: set[str] = set()
        offenders += composed_sql_offenders(
            module, tree, frozenset(name for where, name in allowlist if where in (module, "*")), seen)
        used |= {(where, name) for name in seen for where in (module, "*")}
    assert offenders == [], "bind the value, or whitelist the fragment with a reason:\n" + "\n".join(sorted(offenders))
    stale = sorted(set(allowlist) - used)
    assert stale == [], f"entries of INTERPOLATION_ALLOWED that serve nothing any more: {stale}"


def test_the_allowlist_says_why():
    assert all(reason.strip() and "\n" not in reason for reason in allowed_interpolations().values())


def test_psycopg_is_imported_only_where_sqlalchemy_cannot_serve():
    offenders, used = [], set()
    for module, tree in python_files():
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "psycopg" or name.startswith("psycopg.") for name in names):
                if module in PSYCOPG_MODULES:
                    used.add(module)
                else:
                    offenders.append(f"{module}:{node.lineno}")
    assert offenders == [], "psycopg outside the modules of PSYCOPG_MODULES (say why SQLAlchemy cannot serve):\n" \
        + "\n".join(offenders)
    assert sorted(set(PSYCOPG_MODULES) - used) == [], "entries of PSYCOPG_MODULES that serve nothing any more"
    assert all(reason.strip() for reason in PSYCOPG_MODULES.values())


def test_the_schema_is_written_only_in_migrations():
    """No table, index, role or grant is created or altered outside migrations/ (the schema's source).

    Provisioning creates the database and its extension (it runs before any migration can); a
    temporary table, its index and its DROP are a session's scratch space, not schema; the kinds of
    ``DDL_OPERATIONS`` are operations of the module each entry names, with its reason.
    """
    offenders, used = [], set()
    for module, tree in python_files():
        if module in DDL_HOMES:
            continue
        texts = [(node.lineno, text) for node in ast.walk(tree) if (text := literal_text(node)) is not None]
        temporary = {name for _, text in texts for name in TEMPORARY_TABLE.findall(text)}
        for line, text in texts:
            for match in DDL.finditer(text):
                kind = match.group(2) or match.group(3)  # an object kind, or GRANT / REVOKE
                if (module, kind) in DDL_OPERATIONS:
                    used.add((module, kind))
                    continue
                target = ON_TABLE.match(text, match.start())
                if not (target and target.group(1) in temporary):
                    offenders.append(f"{module}:{line}: {text[match.start():][:40]!r}")
    assert offenders == [], "schema statements belong in a migration:\n" + "\n".join(offenders)
    assert sorted(set(DDL_OPERATIONS) - used) == [], "entries of DDL_OPERATIONS that serve nothing any more"
    assert all(reason.strip() and "\n" not in reason for reason in DDL_OPERATIONS.values())
