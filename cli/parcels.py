"""``sifc parcels``: parcel mutations (split, lotissement, merge, boundary correction) and lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import text as text_sql

from cli.common import database, operator, out, say
from sifc.crs import STORAGE_SRID

parcels_app = typer.Typer(help="Mutations de parcelles : morcellement, fusion, lotissement, rectification ; "
                          "filiation.", no_args_is_help=True)

MUTATION_FIELDS = ("nicad", "section", "local_number", "declared_area_m2", "land_use", "tenure_regime", "source_id")


def _children_file(path: Path, crs: str | None) -> list:  # type: ignore[type-arg]
    """The parcels of a GIS file (GeoJSON, GeoPackage, shapefile…) in EPSG:32628, with their attributes."""
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import mapping

    from sifc.errors import ImportRejected
    from sifc.mutations import Child

    if not path.exists():
        raise ImportRejected("import.file_missing", path=str(path))
    try:
        frame = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as error:
        raise ImportRejected("mutation.bad_file", path=str(path), reason=str(error).splitlines()[0][:200]) from error
    if frame.crs is None:
        if crs is None:
            raise ImportRejected("mutation.file_without_crs", path=str(path))
        frame = frame.set_crs(crs)
    frame = frame.to_crs(STORAGE_SRID)
    columns = {c.lower(): c for c in frame.columns if c != frame.geometry.name}
    children = []
    for _, row in frame.iterrows():
        values = {name: row[columns[name]] for name in MUTATION_FIELDS if name in columns
                  and row[columns[name]] is not None and row[columns[name]] == row[columns[name]]}
        children.append(Child(geometry=mapping(row.geometry), values=values))
    return children


def _mutation_data(date_: str | None, sources: list[str], reason: str):  # type: ignore[no-untyped-def]
    from datetime import date

    from sifc.errors import InvalidInput
    from sifc.mutations import MutationInput

    try:
        occurred = date.fromisoformat(date_) if date_ else date.today()
    except ValueError as error:
        raise InvalidInput("mutation.bad_date", date=date_) from error
    return MutationInput(occurred_on=occurred, source_ids=sources, reason=reason, input_crs=STORAGE_SRID)


def _rights_decisions(carry: list[str] | None, close: list[str] | None) -> dict:  # type: ignore[type-arg]
    from sifc.errors import InvalidInput

    decisions: dict = {right: "close" for right in close or []}  # type: ignore[type-arg]
    for item in carry or []:
        right, _, targets = item.partition(":")
        try:
            decisions[right] = {"carry": [int(t) for t in targets.split(",") if t.strip()]}
        except ValueError as error:
            raise InvalidInput("mutation.bad_carry", value=item) from error
    return decisions


def _print_mutation(result: dict) -> None:  # type: ignore[type-arg]
    operation = say(f"cli.parcels.operation.{result['operation']}")
    out.print(say("cli.parcels.recorded_mutation", operation=operation, mutation_id=result["mutation_id"],
                   parents=", ".join(result["parents"]), children=", ".join(result["children"])), highlight=False)
    for right, outcome in result.get("rights", {}).items():
        fate = (say("cli.parcels.right_closed") if outcome == "closed"
                else say("cli.parcels.right_carried", parcels=", ".join(outcome)))
        out.print(say("cli.parcels.right", right=right, fate=fate), highlight=False)


SourceOpt = Annotated[list[str], typer.Option("--source", help="Document de la mutation (identifiant de source).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Motif.")]
DateOpt = Annotated[str | None, typer.Option("--date", help="Date de la mutation (AAAA-MM-JJ ; défaut : aujourd'hui).")]
CrsOpt = Annotated[str | None, typer.Option("--crs", help="SCR du fichier s'il n'en déclare pas (ex. EPSG:32628).")]
CarryOpt = Annotated[list[str] | None, typer.Option(
    "--carry", help="DROIT:1,2 — reporter un droit sur des parcelles issues.")]
CloseOpt = Annotated[list[str] | None, typer.Option("--close", help="DROIT — clore un droit.")]


@parcels_app.command("split")
def parcels_split(parcel_id: Annotated[str, typer.Argument(help="La parcelle à morceler.")],
                  children: Annotated[Path, typer.Argument(help="Fichier des parcelles issues (SIG).")],
                  source: SourceOpt, reason: ReasonOpt, date_: DateOpt = None, crs: CrsOpt = None,
                  carry: CarryOpt = None, close: CloseOpt = None) -> None:
    """Morceler une parcelle : les parcelles issues recouvrent la mère ; chaque droit reporté ou clos."""
    from sifc import mutations

    by = operator()
    with database(actor=by.name) as session:
        result = mutations.split(session, parcel_id=parcel_id, children=_children_file(children, crs),
                                 rights=_rights_decisions(carry, close), data=_mutation_data(date_, source, reason),
                                 expected_version=None, by=by, author=by.name)
    _print_mutation(result)


@parcels_app.command("lotissement")
def parcels_lotissement(parcel_id: Annotated[str, typer.Argument(help="La parcelle à lotir.")],
                        lots: Annotated[Path, typer.Argument(help="Fichier des lots (SIG).")],
                        source: SourceOpt, reason: ReasonOpt,
                        public_land: Annotated[Path | None, typer.Option(
                            "--public-land", help="Fichier du domaine public (voies, équipements ; champ land_use).")]
                        = None, date_: DateOpt = None, crs: CrsOpt = None, carry: CarryOpt = None,
                        close: CloseOpt = None) -> None:
    """Lotir une parcelle : lots et domaine public recouvrent la mère."""
    from sifc import mutations

    by = operator()
    with database(actor=by.name) as session:
        result = mutations.lotissement(
            session, parcel_id=parcel_id, lots=_children_file(lots, crs),
            public_land=_children_file(public_land, crs) if public_land else [],
            rights=_rights_decisions(carry, close), data=_mutation_data(date_, source, reason),
            expected_version=None, by=by, author=by.name)
    _print_mutation(result)


@parcels_app.command("merge")
def parcels_merge(parcel_ids: Annotated[list[str], typer.Argument(help="Les parcelles contiguës à fusionner.")],
                  source: SourceOpt, reason: ReasonOpt, date_: DateOpt = None,
                  nicad: Annotated[str | None, typer.Option("--nicad", help="NICAD de la parcelle issue.")] = None,
                  end_right: Annotated[list[str] | None, typer.Option("--end-right", help="Droit qui prend fin.")]
                  = None) -> None:
    """Fusionner des parcelles contiguës ; tous leurs NICAD sont retirés."""
    from sifc import mutations

    by = operator()
    with database(actor=by.name) as session:
        versions = {str(p): v for p, v in session.execute(text_sql(
            "SELECT parcel_id, version FROM parcel WHERE parcel_id::text = ANY(:ids)"), {"ids": parcel_ids}).all()}
        result = mutations.merge(session, parcel_ids=parcel_ids, child=mutations.Child(
            geometry={}, values={"nicad": nicad} if nicad else {}), end_rights=end_right or [],
            data=_mutation_data(date_, source, reason), expected_versions=versions, by=by,
            author=by.name)
    _print_mutation(result)


@parcels_app.command("correct")
def parcels_correct(parcel_id: Annotated[str, typer.Argument(help="La parcelle à rectifier.")],
                    geometry: Annotated[Path, typer.Argument(help="Fichier SIG de la nouvelle limite (une entité).")],
                    source: SourceOpt, reason: ReasonOpt, date_: DateOpt = None, crs: CrsOpt = None) -> None:
    """Rectifier une limite : nouvelle version, voisins vérifiés, NICAD à réattribuer."""
    from sifc import mutations
    from sifc.errors import InvalidInput

    shapes = _children_file(geometry, crs)
    if len(shapes) != 1:
        raise InvalidInput("mutation.one_geometry", count=len(shapes))
    by = operator()
    with database(actor=by.name) as session:
        result = mutations.correct_boundary(session, parcel_id=parcel_id, geometry=shapes[0].geometry,
                                            data=_mutation_data(date_, source, reason), expected_version=None,
                                            by=by, author=by.name)
    _print_mutation(result)


@parcels_app.command("lineage")
def parcels_lineage(parcel_id: Annotated[str, typer.Argument(help="La parcelle.")],
                    as_json: Annotated[bool, typer.Option("--json", help="En JSON.")] = False) -> None:
    """La filiation d'une parcelle : les mutations dont elle vient et celles qu'elle a subies."""
    from sifc import mutations

    reader = operator().via("CLI", "sifc parcels lineage")  # checked and logged as any reader
    with database() as session:
        found = mutations.lineage(session, parcel_id=parcel_id, reader=reader)
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False))
        return
    table = Table(title=say("cli.parcels.lineage", parcel_id=parcel_id))
    for column in (say("cli.parcels.way"), say("cli.parcels.date"), "mutation", say("cli.parcels.parents"),
                   say("cli.parcels.children")):
        table.add_column(column)
    ways = ((say("cli.parcels.ancestors"), "ancestors"), (say("cli.parcels.descendants"), "descendants"),
            (say("cli.parcels.correction"), "corrections"))
    for way, key in ways:
        for m in found[key]:
            table.add_row(way, m["occurred_on"], m["operation"], ", ".join(p["id"][:8] for p in m["parents"]),
                          ", ".join(c["id"][:8] for c in m["children"]))
    out.print(table)
