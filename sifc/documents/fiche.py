"""The fiche parcellaire: one parcel, its map and neighbours, its vertices, areas, rights and sources.

Holders are printed only for a reader who may read personal data in the parcel's commune
(:func:`build` decides and logs the read); the sheet then says so in its content, which the code signs.
"""

from __future__ import annotations

import uuid
from typing import Any

from shapely import wkb
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth import audit
from sifc.auth.principal import ANONYMOUS, Principal
from sifc.documents import layout, maps, records, verification
from sifc.documents.layout import label
from sifc.documents.verification import Issue, Sealed
from sifc.errors import NotFound
from sifc.keyring import SigningKey
from sifc.parcels import service as parcel_service
from sifc.personal import may_reveal
from sifc.tenure import rights as rights_service


def _neighbours(session: Session, parcel_id: uuid.UUID) -> list[tuple[str, Any]]:
    rows = session.execute(text("""
        SELECT coalesce(n.nicad, '?') AS nicad, ST_AsBinary(n.geom) AS wkb
        FROM parcel p JOIN parcel n ON n.parcel_id <> p.parcel_id AND ST_DWithin(n.geom, p.geom, :distance)
        WHERE p.parcel_id = :id ORDER BY n.nicad NULLS LAST, n.parcel_id"""),
        {"id": parcel_id, "distance": maps.NEIGHBOUR_DISTANCE_M}).all()
    return [(row[0], wkb.loads(bytes(row[1]))) for row in rows]


def _content(session: Session, parcel_id: str, *, personal: bool, lang: str) -> tuple[dict[str, Any], Any, list[Any]]:
    """The sheet's canonical facts, the parcel's geometry and its neighbours (for the map)."""
    parcel_service.get(session, parcel_id=parcel_id, reader=ANONYMOUS)  # 404 unknown, 410 retired
    pid = uuid.UUID(parcel_id)
    row = records.current_parcel(session, pid)
    if row is None:
        raise NotFound("parcel.not_found", id=parcel_id)
    geometry = wkb.loads(bytes(row["wkb"]))
    neighbours = _neighbours(session, pid)
    rights = records.right_facts(session, read=rights_service._for_parcel(session, parcel_id, personal=personal))
    sources = {(s["kind"], s["reference"], s["date"]): s for r in rights for s in r["sources"]}
    facts = {**verification.new_header("fiche_parcellaire", lang), "parcel": records.parcel_facts(row),
             "crs": "EPSG:32628", "vertices": maps.vertices(geometry), "neighbours": [n for n, _ in neighbours],
             "rights": rights, "sources": [sources[k] for k in sorted(sources, key=str)], "holders_shown": personal}
    return facts, geometry, neighbours


def summary(facts: dict[str, Any]) -> dict[str, Any]:
    """What ``GET /documents/verify/{code}`` tells anyone of a sheet (no personal data)."""
    parcel = facts["parcel"]
    return {"document": facts["document"], "number": facts["number"], "issued_at": facts["issued_at"],
            "parcel_id": parcel["id"], "nicad": parcel["nicad"], "commune_code": parcel["commune_code"],
            "area_m2": parcel["area_m2"], "declared_area_m2": parcel["declared_area_m2"],
            "rights": [{"type": r["type"], "start_date": r["start_date"]} for r in facts["rights"]]}


def _rights_story(facts: dict[str, Any], lang: str, style: dict[str, Any]) -> list[Any]:
    from reportlab.platypus import Paragraph

    story: list[Any] = [Paragraph(label("rights", lang), style["head"])]
    if not facts["rights"]:
        return [*story, Paragraph(label("none", lang), style["body"])]
    head = [label("type", lang), label("start", lang), label("end", lang), label("sources", lang)]
    if facts["holders_shown"]:
        head.append(label("holders", lang))
    rows: list[list[Any]] = [head]
    for r in facts["rights"]:
        refs = ", ".join(f"{s['kind']} {s['reference'] or ''} ({s['date']})".strip() for s in r["sources"])
        row = [r["type"] + (f" TF {r['tf_number']}" if r["tf_number"] else ""), r["start_date"], r["end_date"] or "—",
               Paragraph(layout.escape(refs), style["small"])]
        if facts["holders_shown"]:
            names = "<br/>".join(layout.escape(f"{h['name']} ({records.share_text(h['share'])})")
                                 for h in r.get("holders", []))
            row.append(Paragraph(names or "—", style["small"]))
        rows.append(row)
    story.append(layout.table(rows, [80, 60, 60, 150, 130] if facts["holders_shown"] else [100, 70, 70, 240]))
    if not facts["holders_shown"]:
        story.append(Paragraph(label("holders_withheld", lang), style["small"]))
    return story


def _story(facts: dict[str, Any], png: bytes, frame: layout.Frame) -> list[Any]:
    import io

    from reportlab.platypus import Image, Paragraph, Spacer

    lang, style, parcel = frame.lang, layout.styles(), facts["parcel"]
    story: list[Any] = [
        Paragraph(layout.escape(label("republic", lang, commune=parcel["commune"])), style["small"]),
        Paragraph(label("fiche", lang), style["title"]),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("number", lang, number=facts["number"])), style["small"]),
        Spacer(1, 6),
        layout.facts([(label("nicad", lang), parcel["nicad"]), (label("nicad_status", lang), parcel["nicad_status"]),
                      (label("status", lang), label("in_force", lang)),
                      (label("commune", lang), f"{parcel['commune']} ({parcel['commune_code']})"),
                      (label("section", lang), parcel["section"]),
                      (label("local_number", lang), parcel["local_number"]),
                      (label("area", lang), layout.area(parcel["area_m2"], lang)),
                      (label("declared_area", lang), layout.area(parcel["declared_area_m2"], lang)),
                      (label("land_use", lang), parcel["land_use"]), (label("regime", lang), parcel["tenure_regime"])]),
        Paragraph(label("map", lang), style["head"]),
        Image(io.BytesIO(png), width=372, height=276),
        Paragraph(label("vertices", lang), style["head"]),
        layout.table([[label("point", lang), "X (m)", "Y (m)"]]
                     + [[str(n), f"{x:.2f}", f"{y:.2f}"] for n, x, y in facts["vertices"]], [50, 110, 110]),
        *_rights_story(facts, lang, style),
    ]
    return [*story, *layout.code_block(frame)]


def build(session: Session, *, parcel_id: str, reader: Principal, lang: str, seal_key: SigningKey, verify_url: str,
          issued_by: str) -> bytes:
    """The sheet's PDF, sealed and kept in the register of issued documents.

    The holders are printed only if ``reader`` may read personal data in every commune of the
    parcel; such a sheet is logged as a read of the parcel.
    """
    communes = parcel_service.communes_of(session, parcel_id=parcel_id)
    personal = may_reveal(reader, communes)
    facts, geometry, neighbours = _content(session, parcel_id, personal=personal, lang=lang)
    parcel = facts["parcel"]
    title = f"{label('fiche', lang)} {parcel['nicad'] or parcel['id']}"
    png = maps.parcel_map(geometry, neighbours, title=parcel["nicad"] or "")

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, verify_url, lang, title)
        return layout.render(_story(facts, png, frame), frame)

    issued = Issue("fiche_parcellaire", "parcel", parcel["id"], parcel["commune_code"], summary(facts), personal,
                   issued_by)
    sheet = layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf, title=title)
    if personal:
        audit.record(session, reader, service=f"{__name__}.build", subject_kind="parcel", subject_id=parcel_id,
                     commune_code=min(communes))
    return sheet
