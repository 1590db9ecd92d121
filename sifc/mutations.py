"""Parcel mutations: morcellement, fusion, lotissement, boundary correction, with lineage.

A mutation changes parcels and carries (or closes) their rights, so it sits above both wings:
it imports :mod:`sifc.parcels` and :mod:`sifc.tenure`, and neither imports it nor the other.

Each operation is one transaction: it checks everything first (scope, ``If-Match``, litige and
procedures in progress, geometry, NICADs, what becomes of each current right), then retires the
parents, writes the children, records the mutation and its lineage (parent versions → child
versions), carries or closes the rights as the request says, and writes the write audit. A refused
operation changes nothing.

Geometry rules (domain notes, as LADM-COL's and SOLA's quality rules): the children of a split or a
lotissement lie inside the parent (no part outside), do not overlap one another, and together cover
the parent: their union and the parent differ by at most ``COVER_TOLERANCE`` of its area (0.1 %). The
parents of a merge are adjacent (their union is one polygon). A split retires the parent's NICAD, a
merge all of them, a boundary correction marks the parcel's "à réattribuer"; a child's NICAD is the
one given, never one a retired parcel held, else "à réattribuer".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import bounds, journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.crs import STORAGE_SRID
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.federation import directory
from sifc.parcels import nicad as nicad_rules
from sifc.parcels import service as parcels
from sifc.personal import FREE_TEXT_FIELDS, may_reveal
from sifc.tenure import rights as rrr
from sifc.tenure.common import Share, sources_of
from sifc.versioning import check_expected, close_version, parse_id, refuse_if_frozen

COVER_TOLERANCE = 0.001  # union vs parent, relative to the parent's area
OVERLAP_TOLERANCE = 0.001  # between two children, relative to the smaller one's area
ABSOLUTE_TOLERANCE_M2 = 0.05  # rounding of surveyed coordinates
PUBLIC_LAND_USES = ("voirie", "equipement", "espace_vert", "place_publique", "servitude_publique")
PUBLIC_REGIME = "domaine public"
CONTENT = ("section", "local_number", "declared_area_m2", "land_use", "tenure_regime", "source_id")


@dataclass
class Child:
    """One parcel a mutation writes: its geometry (GeoJSON, in the request's CRS) and attributes."""

    geometry: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class MutationInput:
    """What every mutation records: its date, the sources it rests on and why."""

    occurred_on: date
    source_ids: list[str]
    reason: str
    input_crs: int = 4326


@dataclass(frozen=True)
class Parent:
    """A current parcel a mutation retires."""

    parcel_id: uuid.UUID
    version: int
    commune_code: str
    nicad: str | None
    values: dict[str, Any]
    area_m2: float


def _parent(session: Session, parcel_id: str, *, by: Principal | None) -> Parent:
    pid = parcels._parse_id(parcel_id)
    row = session.execute(text(f"""
        SELECT parcel_id, version, commune_code, nicad, area_m2, {", ".join(CONTENT)}
        FROM parcel_version WHERE parcel_id = :id AND valid_to IS NULL"""), {"id": pid}).mappings().first()
    if row is None:
        parcels._missing(session, pid)
    if by is not None:
        require(by, Action.WRITE_PARCELS, communes=[row["commune_code"]])
        require(by, Action.WRITE_TENURE, communes=[row["commune_code"]])
    directory.ensure_owned(session, [row["commune_code"]])
    return Parent(row["parcel_id"], row["version"], row["commune_code"], row["nicad"],
                  {k: row[k] for k in CONTENT}, float(row["area_m2"]))


def _free_to_change(session: Session, parent: Parent) -> None:
    """No operation on a parcel under litige or with a procedure in progress."""
    refuse_if_frozen(session, parent.parcel_id)
    pending = session.execute(text("""
        SELECT p.id FROM tenure_procedure p WHERE p.parcel_id = :id
          AND NOT EXISTS (SELECT 1 FROM procedure_step s
                          WHERE s.procedure_id = p.id AND s.step IN ('notified', 'refused'))
        LIMIT 1"""), {"id": parent.parcel_id}).scalar()
    if pending:
        raise Conflict("mutation.procedure_in_progress", id=str(parent.parcel_id), procedure=str(pending))


def _record_sources(session: Session, data: MutationInput, commune: str, by: Principal | None) -> list[uuid.UUID]:
    if not data.reason or not data.reason.strip():
        raise InvalidInput("mutation.reason_required")
    if not data.source_ids:
        raise InvalidInput("mutation.source_required")
    bounds.check("mutation.occurred_on", data.occurred_on, field="occurred_on")
    return [s["id"] for s in sources_of(session, data.source_ids, commune_code=commune, by=by)]


def _child_geometries(session: Session, children: Sequence[Child], crs: int) -> list[str]:
    """Each child as storage EWKB (hex), valid and polygonal, or a 422 naming it."""
    out = []
    for index, child in enumerate(children, start=1):
        bounds.check("parcel.declared_area_m2", child.values.get("declared_area_m2"), field="declared_area_m2")
        try:
            wkb = parcels._to_storage_wkb(child.geometry, crs)
        except InvalidInput as error:
            raise InvalidInput("mutation.bad_child", index=index, reason=error.message("fr")) from error
        row = session.execute(text(f"""
            SELECT ST_IsValid(g), ST_IsValidReason(g), encode(ST_AsEWKB(ST_Multi(g)), 'hex')
            FROM (SELECT ST_Transform(ST_GeomFromWKB(:wkb, :srid), {STORAGE_SRID}) AS g) t"""),
            {"wkb": wkb, "srid": crs}).one()
        if not row[0]:
            raise InvalidInput("mutation.bad_child", index=index, reason=row[1])
        out.append(row[2])
    return out


def _check_cover(session: Session, parent: Parent, geoms: list[str]) -> None:
    """The children lie inside the parent, do not overlap, and cover it (within the tolerances)."""
    rows = session.execute(text("""
        WITH c AS (SELECT ord, CAST(g AS geometry) AS g
                   FROM unnest(CAST(:geoms AS text[])) WITH ORDINALITY AS t(g, ord)),
             p AS (SELECT geom FROM parcel_version WHERE parcel_id = :id AND version = :version)
        SELECT c.ord, ST_Area(c.g) AS area, ST_Area(ST_Difference(c.g, p.geom)) AS outside FROM c, p ORDER BY c.ord
    """), {"geoms": geoms, "id": parent.parcel_id, "version": parent.version}).all()
    for ordinal, area, outside in rows:
        if outside > max(ABSOLUTE_TOLERANCE_M2, OVERLAP_TOLERANCE * area):
            raise InvalidInput("mutation.child_outside", index=ordinal, m2=round(outside, 2))
    overlaps = session.execute(text("""
        WITH c AS (SELECT ord, CAST(g AS geometry) AS g
                   FROM unnest(CAST(:geoms AS text[])) WITH ORDINALITY AS t(g, ord))
        SELECT a.ord, b.ord, overlap_area(a.g, b.g) AS shared
        FROM c a JOIN c b ON a.ord < b.ord AND a.g && b.g
        WHERE overlap_area(a.g, b.g) > greatest(:abs, :ratio * least(ST_Area(a.g), ST_Area(b.g)))
        ORDER BY a.ord, b.ord LIMIT 1"""), {"geoms": geoms, "abs": ABSOLUTE_TOLERANCE_M2,
                                             "ratio": OVERLAP_TOLERANCE}).first()
    if overlaps:
        raise InvalidInput("mutation.children_overlap", a=overlaps[0], b=overlaps[1], m2=round(overlaps[2], 2))
    gap, union_area = session.execute(text("""
        WITH u AS (SELECT ST_Union(CAST(g AS geometry)) AS g FROM unnest(CAST(:geoms AS text[])) AS t(g)),
             p AS (SELECT geom FROM parcel_version WHERE parcel_id = :id AND version = :version)
        SELECT ST_Area(ST_Difference(p.geom, u.g)), ST_Area(u.g) FROM u, p"""),
        {"geoms": geoms, "id": parent.parcel_id, "version": parent.version}).one()
    allowed = max(ABSOLUTE_TOLERANCE_M2, COVER_TOLERANCE * parent.area_m2)
    if gap > allowed or abs(union_area - parent.area_m2) > allowed:
        raise InvalidInput("mutation.children_do_not_cover", m2=round(gap, 2), percent=round(
            100 * abs(union_area - parent.area_m2) / parent.area_m2, 3), tolerance=100 * COVER_TOLERANCE)


# Whether any version, current or closed, ever held a NICAD: one lookup on each partial index (the current
# NICADs, the closed ones). One condition over the whole history matches neither index's predicate and reads
# every version of the registry: ten million rows for each child of a split at national scale.
EVER_HELD = """
    SELECT EXISTS (SELECT 1 FROM parcel_version WHERE nicad = :n AND valid_to IS NULL)
        OR EXISTS (SELECT 1 FROM parcel_version WHERE nicad = :n AND valid_to IS NOT NULL)"""


def _child_nicad(session: Session, value: Any, taken: set[str]) -> tuple[str | None, str]:
    """The NICAD a child gets: the one given (never held by any parcel before), else "à réattribuer"."""
    cleaned = nicad_rules.clean(value)
    if cleaned is None:
        return None, nicad_rules.STATUS_TO_REASSIGN
    held = session.execute(text(EVER_HELD), {"n": cleaned}).scalar()
    if held or cleaned in taken:
        raise Conflict("mutation.nicad_used", nicad=cleaned)
    taken.add(cleaned)
    return cleaned, nicad_rules.STATUS_ASSIGNED


def _current_rights(session: Session, parcel_id: uuid.UUID) -> list[Any]:
    return list(session.execute(text(rrr.SELECT + """ WHERE parcel_id = :id AND valid_to IS NULL
        AND (end_date IS NULL OR end_date > current_date) ORDER BY start_date, rrr_id"""),
        {"id": parcel_id}).mappings().all())


def _holders_of(session: Session, row: Any) -> list[Share]:
    return [Share(r[0], Fraction(r[1], r[2])) for r in session.execute(text(
        "SELECT party_id, share_numerator, share_denominator FROM rrr_holder WHERE rrr_id = :id AND version = :v"),
        {"id": row["rrr_id"], "v": row["version"]}).all()]


def _end_right(session: Session, row: Any, *, on: date, cause: str, by: Principal | None, author: str) -> None:
    """Close a right because its parcel was retired by a mutation (a new version, ended)."""
    values = {**dict(row), "end_date": on, "end_cause": cause}
    rrr._new_version(session, row, values, _holders_of(session, row), by=by, author=author, operation="end",
                     reason=f"parcelle retirée par {cause}")


def _carry_right(session: Session, row: Any, child: Written, *, on: date, by: Principal | None,
                 author: str) -> str:
    """The same right on a child parcel, from the mutation's date, following the parent's."""
    rid = uuid.uuid4()
    values = {**{k: row[k] for k in ("class", "type", "tf_number", "description", "source_ids", "procedure_id",
                                     "synthetic", "end_date", "end_cause", "notice_date")},
              "parcel_id": child.parcel_id, "commune_code": child.commune_code, "start_date": on,
              "predecessor_id": row["rrr_id"], "reason": f"reporté de la parcelle {row['parcel_id']}"}
    rrr._insert(session, rid, 1, values, _holders_of(session, row), action="mutation:carry", author=author)
    journal.record(session, by, author=author, operation=f"rrr.create.{row['type']}", object_kind="rrr", object_id=rid,
                   parcel_id=child.parcel_id, commune_code=child.commune_code,
                   after=rrr._get(session, str(rid), personal=True))
    return str(rid)


@dataclass(frozen=True)
class Written:
    """A child parcel once written."""

    parcel_id: uuid.UUID
    commune_code: str
    nicad: str | None


def _write_children(session: Session, parent: Parent | None, children: Sequence[Child], geoms: list[str], *,
                    commune: str, defaults: dict[str, Any], action: str, author: str, reason: str,
                    regime: Iterable[str | None] | None = None) -> list[Written]:
    taken: set[str] = set()
    written = []
    regimes = list(regime) if regime is not None else [None] * len(children)
    for child, ewkb, forced_regime in zip(children, geoms, regimes, strict=True):
        nicad, status = _child_nicad(session, child.values.get("nicad"), taken)
        values = {**defaults, **{k: v for k, v in child.values.items() if k in CONTENT and v is not None},
                  "nicad": nicad, "nicad_status": status, "commune_code": commune}
        if forced_regime:
            values["tenure_regime"] = forced_regime
        cid = uuid.uuid4()
        parcels._insert_version(session, cid, 1, values, ewkb, action=action, author=author, reason=reason)
        written.append(Written(cid, commune, nicad))
    return written


def _record(session: Session, operation: str, data: MutationInput, sources: list[uuid.UUID], commune: str, *,
            parents: list[tuple[uuid.UUID, int]], children: list[tuple[uuid.UUID, int]], details: dict[str, Any],
            author: str) -> uuid.UUID:
    mutation_id = uuid.uuid4()
    session.execute(text("""
        INSERT INTO parcel_mutation (id, operation, occurred_on, commune_code, source_ids, reason, details, author)
        VALUES (:id, :op, :on, :commune, CAST(:sources AS uuid[]), :reason, CAST(:details AS jsonb), :author)"""),
        {"id": mutation_id, "op": operation, "on": data.occurred_on, "commune": commune,
         "sources": [str(s) for s in sources], "reason": data.reason, "details": orjson.dumps(details).decode(),
         "author": author})
    session.execute(text("""
        INSERT INTO parcel_lineage (mutation_id, parent_id, parent_version, child_id, child_version)
        SELECT :id, p.id, p.version, c.id, c.version
        FROM unnest(CAST(:pids AS uuid[]), CAST(:pversions AS int[])) AS p(id, version),
             unnest(CAST(:cids AS uuid[]), CAST(:cversions AS int[])) AS c(id, version)"""),
        {"id": mutation_id, "pids": [str(p[0]) for p in parents], "pversions": [p[1] for p in parents],
         "cids": [str(c[0]) for c in children], "cversions": [c[1] for c in children]})
    return mutation_id


def _after_rights(current: Iterable[Any], on: date) -> None:
    """A mutation ends the parcel's rights on its date: not before any of them began."""
    for row in current:
        if on < row["start_date"]:
            raise InvalidInput("mutation.before_right", id=str(row["rrr_id"]), start=row["start_date"].isoformat())


def _decisions(current: list[Any], decisions: dict[str, Any], count: int, *, public: set[int]) -> dict[str, Any]:
    """Each current right's fate: ``{"carry": [child numbers]}`` or ``"close"`` — every one decided."""
    known = {str(r["rrr_id"]) for r in current}
    unknown = sorted(set(decisions) - known)
    if unknown:
        raise InvalidInput("mutation.unknown_rights", ids=", ".join(unknown))
    undecided = sorted(known - set(decisions))
    if undecided:
        raise InvalidInput("mutation.rights_undecided", ids=", ".join(undecided))
    checked: dict[str, Any] = {}
    for rid, decision in decisions.items():
        if decision == "close":
            checked[rid] = "close"
            continue
        targets = decision.get("carry") if isinstance(decision, dict) else None
        if not targets or not all(isinstance(t, int) and 1 <= t <= count for t in targets):
            raise InvalidInput("mutation.bad_decision", id=rid, count=count)
        if set(targets) & public:
            raise InvalidInput("mutation.public_land_inalienable", id=rid)
        checked[rid] = sorted(set(targets))
    return checked


def _apply_decisions(session: Session, current: list[Any], decisions: dict[str, Any],
                     children: list[Written], *, on: date, cause: str, by: Principal | None,
                     author: str) -> dict[str, Any]:
    outcome: dict[str, Any] = {}
    for row in current:
        decision = decisions[str(row["rrr_id"])]
        _end_right(session, row, on=on, cause=cause, by=by, author=author)
        if decision == "close":
            outcome[str(row["rrr_id"])] = "closed"
        else:
            outcome[str(row["rrr_id"])] = [_carry_right(session, row, children[t - 1], on=on, by=by, author=author)
                                           for t in decision]
    return outcome


def _subdivide(session: Session, operation: str, *, parcel_id: str, children: Sequence[Child], public: set[int],
               decisions: dict[str, Any], data: MutationInput, expected_version: int | None, by: Principal | None,
               author: str) -> dict[str, Any]:
    parent = _parent(session, parcel_id, by=by)
    check_expected(expected_version, parent.version)
    _free_to_change(session, parent)
    if len(children) < 2:
        raise InvalidInput("mutation.too_few_children")
    sources = _record_sources(session, data, parent.commune_code, by)
    current = _current_rights(session, parent.parcel_id)
    checked = _decisions(current, decisions, len(children), public=public)
    _after_rights(current, data.occurred_on)
    geoms = _child_geometries(session, children, data.input_crs)
    _check_cover(session, parent, geoms)
    before = parcels._audit_state(session, parent.parcel_id)
    close_version(session, "parcel_version", "parcel_id", parent.parcel_id, parent.version, author=author,
                  reason=f"{'morcelée' if operation == 'split' else 'lotie'} : {data.reason}")
    refuse_if_frozen(session, parent.parcel_id)  # under the row lock the close took
    regimes = [PUBLIC_REGIME if i in public else None for i in range(1, len(children) + 1)]
    written = _write_children(session, parent, children, geoms, commune=parent.commune_code,
                              defaults=dict(parent.values), action=f"mutation:{operation}", author=author,
                              reason=data.reason, regime=regimes)
    details = {"children": len(written), "public_land": sorted(public)} if public else {"children": len(written)}
    mutation_id = _record(session, operation, data, sources, parent.commune_code,
                          parents=[(parent.parcel_id, parent.version)], children=[(c.parcel_id, 1) for c in written],
                          details=details, author=author)
    carried = _apply_decisions(session, current, checked, written, on=data.occurred_on,
                               cause="morcellement" if operation == "split" else "lotissement", by=by, author=author)
    result = {"mutation_id": str(mutation_id), "operation": operation, "parents": [str(parent.parcel_id)],
              "children": [str(c.parcel_id) for c in written], "rights": carried}
    journal.record(session, by, author=author,
                   operation=f"mutation.{operation}", object_kind="mutation", object_id=mutation_id,
                   parcel_id=parent.parcel_id, commune_code=parent.commune_code, before=before, after=result)
    return result


def split(session: Session, *, parcel_id: str, children: Sequence[Child], rights: dict[str, Any],
          data: MutationInput, expected_version: int | None, by: Principal | None, author: str) -> dict[str, Any]:
    """Morcellement: the parent retired with its NICAD, its land in ``children``, each right carried or closed."""
    return _subdivide(session, "split", parcel_id=parcel_id, children=children, public=set(), decisions=rights,
                      data=data, expected_version=expected_version, by=by, author=author)


def lotissement(session: Session, *, parcel_id: str, lots: Sequence[Child], public_land: Sequence[Child],
                rights: dict[str, Any], data: MutationInput, expected_version: int | None, by: Principal | None,
                author: str) -> dict[str, Any]:
    """A commune's lotissement: lots plus public land (domaine public: streets, equipment) covering the parent.

    Children are numbered lots first, then public land; a right may be carried to lots only.
    """
    if not lots:
        raise InvalidInput("mutation.lots_required")
    for piece in public_land:
        use = piece.values.get("land_use")
        if use not in PUBLIC_LAND_USES:
            raise InvalidInput("mutation.bad_public_use", use=str(use), uses=", ".join(PUBLIC_LAND_USES))
    children = [*lots, *public_land]
    public = set(range(len(lots) + 1, len(children) + 1))
    return _subdivide(session, "lotissement", parcel_id=parcel_id, children=children, public=public, decisions=rights,
                      data=data, expected_version=expected_version, by=by, author=author)


def _signature(session: Session, row: Any) -> tuple[Any, ...]:
    holders = tuple(sorted((str(h.party_id), h.share) for h in _holders_of(session, row)))
    return (row["class"], row["type"], row["tf_number"], holders)


def merge(session: Session, *, parcel_ids: Sequence[str], child: Child, end_rights: Sequence[str], data: MutationInput,
          expected_versions: dict[str, int], by: Principal | None, author: str) -> dict[str, Any]:
    """Fusion: adjacent parcels into one; every NICAD retired; compatible rights carried, the others ended.

    The parents' current rights must be the same on each (type, holders and shares) and their tenure
    regime the same, unless the request ends the rights that differ (``end_rights``).
    """
    unique = list(dict.fromkeys(parcels._parse_id(pid) for pid in parcel_ids))  # one parcel spelt two ways is one
    if len(unique) < 2:
        raise InvalidInput("mutation.merge_needs_two")
    parents = [_parent(session, str(pid), by=by) for pid in unique]
    for parent in parents:
        check_expected(expected_versions.get(str(parent.parcel_id), -1), parent.version)
    communes = {p.commune_code for p in parents}
    if len(communes) > 1:
        raise InvalidInput("mutation.merge_across_communes", communes=", ".join(sorted(communes)))
    commune = parents[0].commune_code
    for parent in parents:
        _free_to_change(session, parent)
    sources = _record_sources(session, data, commune, by)
    bounds.check("parcel.declared_area_m2", child.values.get("declared_area_m2"), field="declared_area_m2")
    ids = [p.parcel_id for p in parents]
    pieces, ewkb = session.execute(text("""
        SELECT ST_NumGeometries(u), encode(ST_AsEWKB(ST_Multi(u)), 'hex')
        FROM (SELECT ST_UnaryUnion(ST_Collect(geom), 0.001) AS u FROM parcel_version
              WHERE parcel_id = ANY(:ids) AND valid_to IS NULL) t"""), {"ids": ids}).one()
    if pieces != 1:
        raise InvalidInput("mutation.not_adjacent")
    rights_of = {p.parcel_id: _current_rights(session, p.parcel_id) for p in parents}
    _after_rights((r for rows in rights_of.values() for r in rows), data.occurred_on)
    all_ids = {str(r["rrr_id"]) for rows in rights_of.values() for r in rows}
    ending = {parse_id(r, key="rrr.not_found", kind="droit") for r in end_rights}
    unknown = sorted(str(r) for r in ending if str(r) not in all_ids)
    if unknown:
        raise InvalidInput("mutation.unknown_rights", ids=", ".join(unknown))
    kept = {pid: [r for r in rows if r["rrr_id"] not in ending] for pid, rows in rights_of.items()}
    signatures = {pid: sorted(_signature(session, r) for r in rows) for pid, rows in kept.items()}
    first = signatures[ids[0]]
    if any(signatures[pid] != first for pid in ids):
        differing = sorted(str(r["rrr_id"]) for rows in kept.values() for r in rows
                           if not all(_signature(session, r) in signatures[pid] for pid in ids))
        raise Conflict("mutation.rights_incompatible", ids=", ".join(differing) or "—")
    regimes = {p.values["tenure_regime"] for p in parents}
    if len(regimes) > 1 and not child.values.get("tenure_regime"):
        raise Conflict("mutation.regimes_differ", regimes=", ".join(sorted(str(r) for r in regimes)))
    before = [orjson.loads(parcels._audit_state(session, p.parcel_id)) for p in parents]
    for parent in sorted(parents, key=lambda p: p.parcel_id):  # one lock order: two merges never deadlock
        close_version(session, "parcel_version", "parcel_id", parent.parcel_id, parent.version, author=author,
                      reason=f"fusionnée : {data.reason}")
        refuse_if_frozen(session, parent.parcel_id)
    defaults = dict(parents[0].values)
    if len(regimes) > 1:
        defaults["tenure_regime"] = None
    written = _write_children(session, None, [child], [ewkb], commune=commune, defaults=defaults,
                              action="mutation:merge", author=author, reason=data.reason)
    mutation_id = _record(session, "merge", data, sources, commune, parents=[(p.parcel_id, p.version) for p in parents],
                          children=[(written[0].parcel_id, 1)], details={"parents": len(parents)}, author=author)
    outcome: dict[str, Any] = {}
    for pid in ids:
        for row in rights_of[pid]:
            _end_right(session, row, on=data.occurred_on, cause="fusion", by=by, author=author)
            outcome[str(row["rrr_id"])] = "closed" if row["rrr_id"] in ending else None
    for row in kept[ids[0]]:  # one right on the child per right the parents share
        carried = _carry_right(session, row, written[0], on=data.occurred_on, by=by, author=author)
        signature = _signature(session, row)
        for pid in ids:
            for other in kept[pid]:
                if outcome.get(str(other["rrr_id"])) is None and _signature(session, other) == signature:
                    outcome[str(other["rrr_id"])] = [carried]
    result = {"mutation_id": str(mutation_id), "operation": "merge", "parents": [str(i) for i in ids],
              "children": [str(written[0].parcel_id)], "rights": outcome}
    journal.record(session, by, author=author,
                   operation="mutation.merge", object_kind="mutation", object_id=mutation_id,
                   parcel_id=written[0].parcel_id, commune_code=commune, before=before, after=result)
    return result


def correct_boundary(session: Session, *, parcel_id: str, geometry: dict[str, Any], data: MutationInput,
                     expected_version: int | None, by: Principal | None, author: str) -> dict[str, Any]:
    """A new geometry as a new version: neighbours checked for new overlaps, the NICAD "à réattribuer"."""
    parent = _parent(session, parcel_id, by=by)
    check_expected(expected_version, parent.version)
    _free_to_change(session, parent)
    sources = _record_sources(session, data, parent.commune_code, by)
    version = parcels.update(session, parcel_id=str(parent.parcel_id), author=author, expected_version=None, by=by,
                             data=parcels.ParcelInput(geometry=geometry, input_crs=data.input_crs,
                                                      values={"commune_code": parent.commune_code},
                                                      reason=data.reason))
    mutation_id = _record(session, "boundary_correction", data, sources, parent.commune_code,
                          parents=[(parent.parcel_id, parent.version)], children=[(parent.parcel_id, version)],
                          details={}, author=author)
    result = {"mutation_id": str(mutation_id), "operation": "boundary_correction",
              "parents": [str(parent.parcel_id)], "children": [str(parent.parcel_id)], "version": version}
    journal.record(session, by, author=author, operation="mutation.boundary_correction", object_kind="mutation",
                   object_id=mutation_id, parcel_id=parent.parcel_id, commune_code=parent.commune_code, after=result)
    return result


def _mutations_json(session: Session, ids: list[uuid.UUID], *, personal: bool) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = session.execute(text("""
        SELECT m.id, m.operation, m.occurred_on, m.recorded_at, m.source_ids, m.reason, m.author, m.details,
               (SELECT json_agg(DISTINCT jsonb_build_object('id', l.parent_id, 'version', l.parent_version,
                                                   'nicad', p.nicad))
                FROM parcel_lineage l
                JOIN parcel_version p ON p.parcel_id = l.parent_id AND p.version = l.parent_version
                WHERE l.mutation_id = m.id) AS parents,
               (SELECT json_agg(DISTINCT jsonb_build_object('id', l.child_id, 'version', l.child_version,
                                                   'nicad', c.nicad))
                FROM parcel_lineage l
                JOIN parcel_version c ON c.parcel_id = l.child_id AND c.version = l.child_version
                WHERE l.mutation_id = m.id) AS children
        FROM parcel_mutation m WHERE m.id = ANY(:ids) ORDER BY m.recorded_at, m.id"""), {"ids": ids}).mappings().all()
    out = []
    for row in rows:
        body = {"id": str(row["id"]), "operation": row["operation"], "occurred_on": row["occurred_on"].isoformat(),
                "recorded_at": row["recorded_at"].isoformat(), "source_ids": [str(s) for s in row["source_ids"]],
                "details": row["details"], "parents": sorted(row["parents"], key=lambda p: (p["id"], p["version"])),
                "children": sorted(row["children"], key=lambda c: (c["id"], c["version"]))}
        if personal:
            body.update(author=row["author"], **{name: row[name] for name in sorted(FREE_TEXT_FIELDS["mutations"])})
        out.append(body)
    return out


def lineage(session: Session, *, parcel_id: str, reader: Principal) -> dict[str, Any]:
    """The mutations a parcel comes from (ancestors) and those it went into (descendants), transitively.

    Authors and motives only if ``reader`` may read personal data in every commune of the parcel;
    such a read is logged, the parcel as its subject.
    """
    communes = parcels.communes_of(session, parcel_id=parcel_id)
    personal = may_reveal(reader, communes)
    pid = parcels._parse_id(parcel_id)
    if not session.execute(text("SELECT 1 FROM parcel_version WHERE parcel_id = :id LIMIT 1"), {"id": pid}).scalar():
        raise NotFound("parcel.not_found", id=str(pid))
    walk = """
        WITH RECURSIVE walk(parcel_id, mutation_id) AS (
            SELECT l.{near}, l.mutation_id FROM parcel_lineage l WHERE l.{far} = :id AND l.{near} <> l.{far}
            UNION
            SELECT l.{near}, l.mutation_id FROM parcel_lineage l JOIN walk w ON l.{far} = w.parcel_id
            WHERE l.{near} <> l.{far}
        )
        SELECT DISTINCT mutation_id FROM walk"""
    ancestors = list(session.execute(text(walk.format(near="parent_id", far="child_id")), {"id": pid}).scalars())
    descendants = list(session.execute(text(walk.format(near="child_id", far="parent_id")), {"id": pid}).scalars())
    own = list(session.execute(text("""
        SELECT mutation_id FROM parcel_lineage WHERE parent_id = :id AND child_id = :id"""), {"id": pid}).scalars())
    found = {"parcel_id": str(pid), "ancestors": _mutations_json(session, ancestors, personal=personal),
             "descendants": _mutations_json(session, descendants, personal=personal),
             "corrections": _mutations_json(session, own, personal=personal)}
    if personal:
        audit.record(session, reader, service=f"{__name__}.lineage", subject_kind="parcel", subject_id=str(pid),
                     commune_code=min(communes))
    return found


def communes_of_lineage(session: Session, *, parcel_id: str) -> set[str]:
    """The communes of the parcels a lineage names (for the personal fields' scope)."""
    return parcels.communes_of(session, parcel_id=parcel_id)
