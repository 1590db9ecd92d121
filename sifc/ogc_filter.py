"""OGC API - Features selections turned into SQL: bbox, property equality and CQL2 filters.

CQL2 (Part 3) is parsed by pygeofilter; :func:`feature_condition` joins the three kinds of filter.

Only declared queryables can be named; every literal becomes a bound parameter cast to the
queryable's type, so no user text ever reaches the SQL and a wrong type is a 4xx, not a 500.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import orjson
from pygeofilter import ast, values

from sifc.crs import to_storage_sql
from sifc.errors import InvalidInput
from sifc.personal import refuse as refuse_personal

SQL_TYPES = {"string": "text", "number": "double precision", "integer": "bigint"}
COMPARISONS = {ast.Equal: "=", ast.NotEqual: "<>", ast.LessThan: "<", ast.LessEqual: "<=",
               ast.GreaterThan: ">", ast.GreaterEqual: ">="}
SPATIAL = {ast.GeometryIntersects: "ST_Intersects", ast.GeometryWithin: "ST_Within",
           ast.GeometryContains: "ST_Contains", ast.GeometryDisjoint: "ST_Disjoint",
           ast.GeometryTouches: "ST_Touches", ast.GeometryOverlaps: "ST_Overlaps",
           ast.GeometryCrosses: "ST_Crosses", ast.GeometryEquals: "ST_Equals"}
# Predicates that imply the two boxes meet and that PostGIS plans through ``~``/``@``/``~=``, which it estimates at
# a flat 0.1 % of the rows (10,000 of a national registry: a parallel, JIT-compiled plan for a handful of parcels).
# ``&&`` beside them is estimated from the column's statistics. ST_Intersects already expands to ``&&``.
BOXES_MEET = (ast.GeometryWithin, ast.GeometryContains, ast.GeometryEquals, ast.GeometryTouches,
              ast.GeometryOverlaps, ast.GeometryCrosses)
MAX_FILTER_LENGTH = 20_000
MAX_DWITHIN_M = 10_000
METRES = ("m", "meter", "meters", "metre", "metres")
# CQL2 1.0 has no distance predicate; S_DWITHIN(geometry, geometry, metres) is this service's function
# (listed at /ogc/functions). pygeofilter parses functions only as values, so the predicate is
# rewritten to ``s_dwithin(...) = true`` before parsing and translated back below.
DWITHIN_NAMES = ("s_dwithin", "dwithin")
DWITHIN_CALL = re.compile(r"\b(S_DWITHIN|DWITHIN)\s*\(", re.IGNORECASE)


def _rewrite_text(raw: str) -> str:
    out, position = [], 0
    for match in DWITHIN_CALL.finditer(raw):
        if match.start() < position or raw.count("'", 0, match.start()) % 2:
            continue  # inside a string literal or an already rewritten call
        depth, end = 0, None
        for index in range(match.end() - 1, len(raw)):
            depth += {"(": 1, ")": -1}.get(raw[index], 0)
            if depth == 0:
                end = index + 1
                break
        if end is None:
            break
        out.append(raw[position:match.start()] + "s_dwithin" + raw[match.end() - 1:end] + " = true")
        position = end
    return "".join(out) + raw[position:]


def _rewrite_json(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite_json(item) for item in node]
    if not isinstance(node, dict):
        return node
    if str(node.get("op", "")).lower() in DWITHIN_NAMES:
        call = {"function": {"name": "s_dwithin", "arguments": _rewrite_json(node.get("args", []))}}
        return {"op": "=", "args": [call, True]}
    return {key: _rewrite_json(value) for key, value in node.items()}


def parse(raw: str, lang: str) -> Any:
    """The AST of a CQL2 text or JSON filter; a filter that does not parse is refused.

    Each parser is imported on its first filter: the text ones build their grammar at import (about
    0.2 s), which a process that never reads a filter (a command, the import worker) need not pay.
    """
    if len(raw) > MAX_FILTER_LENGTH:
        raise InvalidInput("ogc.bad_filter", reason=f"plus de {MAX_FILTER_LENGTH} caractères")
    try:
        if lang == "cql2-json":
            from pygeofilter.parsers.cql2_json import parse as parse_json

            return parse_json(_rewrite_json(orjson.loads(raw)))
        if lang == "cql-text":  # the draft's name, which GDAL's OAPIF driver sends: ECQL-like (ILIKE, DWITHIN)
            from pygeofilter.parsers.ecql import parse as parse_ecql

            return parse_ecql(raw)
        from pygeofilter.parsers.cql2_text import parse as parse_text

        return parse_text(_rewrite_text(raw))
    except InvalidInput:
        raise
    except Exception as error:  # the parsers raise several types
        raise InvalidInput("ogc.bad_filter", reason=str(error).splitlines()[0][:200] if str(error) else
                           type(error).__name__) from error


class SqlFilter:
    """Translates one filter to SQL over the collection's alias ``t``; the parameters collect in ``params``."""

    def __init__(self, queryables: dict[str, tuple[str, str]], *, srid: int, latitude_first: bool) -> None:
        self.queryables = queryables  # name → (SQL expression, JSON type); "geometry" → ("t.geom", "geometry")
        self.srid, self.latitude_first = srid, latitude_first
        self.params: dict[str, Any] = {}

    def _bind(self, value: Any) -> str:
        name = f"cql{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def sql(self, node: Any) -> str:
        """The SQL condition of ``node``."""
        kind = type(node)
        if kind in (ast.And, ast.Or):
            return f"({self.sql(node.lhs)} {'AND' if kind is ast.And else 'OR'} {self.sql(node.rhs)})"
        if kind is ast.Not:
            return f"(NOT {self.sql(node.sub_node)})"
        if kind is ast.Equal and isinstance(node.lhs, ast.Function) and node.rhs is True:
            return self._function(node.lhs)
        if kind in COMPARISONS:
            left, right = self._pair(node.lhs, node.rhs)
            return f"({left} {COMPARISONS[kind]} {right})"
        if kind is ast.Like:
            expression, sql_type = self._attribute(node.lhs)
            pattern = node.pattern.replace(node.wildcard, "%").replace(node.singlechar, "_") \
                if node.singlechar != "_" else node.pattern.replace(node.wildcard, "%")
            operator = "ILIKE" if node.nocase else "LIKE"
            return f"({expression}::text {'NOT ' if node.not_ else ''}{operator} {self._bind(pattern)})"
        if kind is ast.In:
            expression, sql_type = self._attribute(node.lhs)
            items = ", ".join(f"CAST({self._bind(self._literal(v))} AS {sql_type})" for v in node.sub_nodes)
            return f"({expression} {'NOT ' if node.not_ else ''}IN ({items}))"
        if kind is ast.Between:
            expression, sql_type = self._attribute(node.lhs)
            low = f"CAST({self._bind(self._literal(node.low))} AS {sql_type})"
            high = f"CAST({self._bind(self._literal(node.high))} AS {sql_type})"
            return f"({expression} {'NOT ' if node.not_ else ''}BETWEEN {low} AND {high})"
        if kind is ast.IsNull:
            expression, _ = self._attribute(node.lhs)
            return f"({expression} IS {'NOT ' if node.not_ else ''}NULL)"
        if kind in SPATIAL:
            a, b = self._geometry(node.lhs), self._geometry(node.rhs)
            if kind in BOXES_MEET:  # see BOXES_MEET
                return f"({a} && {b} AND {SPATIAL[kind]}({a}, {b}))"
            return f"{SPATIAL[kind]}({a}, {b})"
        if kind is ast.DistanceWithin:  # ECQL's DWITHIN(a, b, distance, units)
            units = str(node.units).lower() if node.units is not None else "meters"
            return self._function(ast.Function("s_dwithin", [node.lhs, node.rhs, node.distance, units]))
        if kind is ast.Include:
            return "TRUE"
        if kind is ast.Exclude:
            return "FALSE"
        raise InvalidInput("ogc.bad_filter", reason=f"opération non prise en charge : {kind.__name__}")

    def _function(self, node: Any) -> str:
        if node.name.lower() not in DWITHIN_NAMES:
            raise InvalidInput("ogc.bad_filter", reason=f"fonction inconnue : {node.name[:50]}")
        arguments = list(node.arguments)
        if len(arguments) == 4 and isinstance(arguments[3], ast.Attribute):
            arguments[3] = arguments[3].name  # S_DWITHIN(a, b, 50, meters): the unit, not a property
        if len(arguments) not in (3, 4) or (len(arguments) == 4 and str(arguments[3]).lower() not in METRES):
            raise InvalidInput("ogc.bad_filter", reason="S_DWITHIN(géométrie, géométrie, distance en mètres)")
        distance = self._literal(arguments[2])
        if not isinstance(distance, (int, float)) or not 0 <= distance <= MAX_DWITHIN_M:
            raise InvalidInput("ogc.bad_filter", reason=f"distance entre 0 et {MAX_DWITHIN_M} m")
        return (f"ST_DWithin({self._geometry(arguments[0])}, {self._geometry(arguments[1])}, "
                f"{self._bind(float(distance))})")

    def _attribute(self, node: Any) -> tuple[str, str]:
        if not isinstance(node, ast.Attribute):
            raise InvalidInput("ogc.bad_filter", reason="une propriété est attendue à gauche")
        refuse_personal([node.name])  # before any lookup: the same 400 whatever the data (loi 2008-12)
        if node.name not in self.queryables or self.queryables[node.name][1] == "geometry":
            raise InvalidInput("ogc.bad_filter", reason=f"propriété inconnue ou non interrogeable : {node.name}")
        expression, json_type = self.queryables[node.name]
        return expression, SQL_TYPES[json_type]

    def _pair(self, lhs: Any, rhs: Any) -> tuple[str, str]:
        if isinstance(lhs, ast.Attribute) and isinstance(rhs, ast.Attribute):
            return self._attribute(lhs)[0], self._attribute(rhs)[0]
        if isinstance(rhs, ast.Attribute):
            right, left = self._pair(rhs, lhs)
            return left, right
        expression, sql_type = self._attribute(lhs)
        return expression, f"CAST({self._bind(self._literal(rhs))} AS {sql_type})"

    def _literal(self, value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            raise InvalidInput("ogc.bad_filter", reason="valeur non prise en charge")
        if isinstance(value, (int, float, str)):
            return str(value) if isinstance(value, str) else value
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        raise InvalidInput("ogc.bad_filter", reason=f"valeur non prise en charge : {type(value).__name__}")

    def _geometry(self, node: Any) -> str:
        if isinstance(node, ast.Attribute):
            refuse_personal([node.name])
            if self.queryables.get(node.name, ("", ""))[1] != "geometry":
                raise InvalidInput("ogc.bad_filter", reason=f"{node.name} n'est pas une géométrie")
            return self.queryables[node.name][0]
        if isinstance(node, values.Geometry):
            shape = f"ST_SetSRID(ST_GeomFromGeoJSON({self._bind(orjson.dumps(node.geometry).decode())}), {self.srid})"
        elif isinstance(node, ast.Function) and node.name.lower() == "bbox" and len(node.arguments) == 4 \
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in node.arguments):
            x1, y1, x2, y2 = node.arguments  # CQL2 text BBOX(minx, miny, maxx, maxy)
            shape = (f"ST_MakeEnvelope({self._bind(x1)}, {self._bind(y1)}, {self._bind(x2)}, {self._bind(y2)}, "
                     f"{self.srid})")
        elif isinstance(node, values.Envelope):
            shape = (f"ST_MakeEnvelope({self._bind(node.x1)}, {self._bind(node.y1)}, {self._bind(node.x2)}, "
                     f"{self._bind(node.y2)}, {self.srid})")
        else:
            raise InvalidInput("ogc.bad_filter", reason="une géométrie est attendue")
        if self.latitude_first:
            shape = f"ST_FlipCoordinates({shape})"
        return to_storage_sql(shape, str(self.srid))  # clipped to where UTM 28N holds, then transformed



def feature_condition(queryables: dict[str, tuple[str, str]], *,
                      bbox: tuple[float, float, float, float, int] | None = None, equals: dict[str, str] | None = None,
                      cql: Any = None, filter_srid: int = 4326, latitude_first: bool = False
                      ) -> tuple[str, dict[str, Any]]:
    """The condition over ``t`` that selects features (``TRUE``: all of them), and its bound parameters.

    The territorial collections select with it directly, the current parcels through
    :func:`sifc.parcels.selection.select`; the filters are those of :func:`feature_conditions`.
    """
    conditions, params = feature_conditions(queryables, bbox=bbox, equals=equals, cql=cql, filter_srid=filter_srid,
                                            latitude_first=latitude_first)
    return " AND ".join(conditions) or "TRUE", params


def feature_conditions(queryables: dict[str, tuple[str, str]], *,
                       bbox: tuple[float, float, float, float, int] | None = None,
                       equals: dict[str, str] | None = None, cql: Any = None, filter_srid: int = 4326,
                       latitude_first: bool = False) -> tuple[list[str], dict[str, Any]]:
    """The conditions over ``t`` (all to hold) of an OGC API - Features selection, and their bound parameters.

    A bbox (Part 1, /req/core/fc-bbox-response: the features whose geometry intersects it) given
    as ``(x0, y0, x1, y1, srid)``, equality on queryables (``equals``: names already checked) and
    a parsed CQL2 filter (Part 3) whose geometries are in ``filter_srid``. Every value is bound.
    """
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if bbox is not None:
        bbox_srid = "CAST(:bbox_srid AS integer)"
        box = to_storage_sql(f"ST_MakeEnvelope(:x0, :y0, :x1, :y1, {bbox_srid})", bbox_srid)
        conditions.append(f"t.geom && {box} AND ST_Intersects(t.geom, {box})")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3], bbox_srid=bbox[4])
    for index, (name, value) in enumerate((equals or {}).items()):
        expression, json_type = queryables[name]
        conditions.append(f"{expression} = CAST(:eq{index} AS {SQL_TYPES[json_type]})")
        params[f"eq{index}"] = value
    if cql is not None:
        translator = SqlFilter(queryables, srid=filter_srid, latitude_first=latitude_first)
        conditions.append(translator.sql(cql))
        params.update(translator.params)
    return conditions, params
