"""``sifc campaign`` and ``sifc claim``: systematic campaigns, public display and claims from the console.

The rules are :mod:`sifc.commission.campaigns`', :mod:`~sifc.commission.display`'s and
:mod:`~sifc.commission.claims`'; the operator is an administrator everywhere, each write journaled
in the operator's name, each read of personal data (presumed holders, claimants, grounds) logged.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import orjson
import typer

from cli.common import database, operator, out, say

campaign_app = typer.Typer(help="Campagnes systématiques : zone, parcelles et détenteurs présumés, affichage "
                                "public, clôture (procédures de régularisation).", no_args_is_help=True)
claim_app = typer.Typer(help="Réclamations et oppositions : enregistrement pendant l'affichage, résolution "
                             "(acceptée, rejetée, portée en litige).", no_args_is_help=True)

Day = Annotated[datetime | None, typer.Option("--on", formats=["%Y-%m-%d"], help="Date (AAAA-MM-JJ) ; défaut : "
                                                                                 "aujourd'hui.")]


def _day(value: datetime | None) -> date:
    return value.date() if value else date.today()


def _json(value: object) -> None:
    out.print_json(orjson.dumps(value).decode())


@campaign_app.command("create")
def create_command(
    commune: Annotated[str, typer.Option("--commune", help="Code de la commune.")],
    name: Annotated[str, typer.Option("--name", help="Nom de la campagne.")],
    bbox: Annotated[str | None, typer.Option("--bbox", help="minLon,minLat,maxLon,maxLat (WGS 84).")] = None,
    section: Annotated[str | None, typer.Option("--section", help="Une section cadastrale.")] = None,
    localite: Annotated[str | None, typer.Option("--localite", help="Id d'une localité (avec --radius).")] = None,
    radius: Annotated[float | None, typer.Option("--radius", help="Rayon autour de la localité (m).")] = None,
) -> None:
    """Ouvre une campagne sur une emprise, une section ou les abords d'une localité."""
    from sifc.commission import campaigns
    from sifc.errors import InvalidInput

    if bbox:
        try:
            box = [float(v) for v in bbox.split(",")]
        except ValueError as error:
            raise InvalidInput("campaign.bad_bbox") from error
        area = campaigns.AreaInput("bbox", bbox=box)
    elif section:
        area = campaigns.AreaInput("section", section=section)
    else:
        area = campaigns.AreaInput("localite", localite_id=localite, radius_m=radius)
    by = operator().via("CLI", "sifc campaign create")
    with database(actor=by.name) as session:
        campaign_id = campaigns.create(session, data=campaigns.CampaignInput(commune, name, area), by=by,
                                       author=by.name)
    out.print(say("cli.campaign.created", id=campaign_id), highlight=False)


@campaign_app.command("add")
def add_command(
    campaign_id: Annotated[str, typer.Argument(help="Id de la campagne.")],
    batch: Annotated[str | None, typer.Option("--batch", help="Les parcelles d'un lot d'import.")] = None,
) -> None:
    """Ajoute les parcelles en vigueur de la zone (ou celles d'un lot d'import) à une campagne ouverte."""
    from sifc.commission import campaigns

    by = operator().via("CLI", "sifc campaign add")
    data = campaigns.ParcelsInput(source="batch" if batch else "area", batch_id=batch)
    with database(actor=by.name) as session:
        found = campaigns.add_parcels(session, campaign_id=campaign_id, data=data, by=by, author=by.name)
    out.print(say("cli.campaign.added", **found), highlight=False)


@campaign_app.command("display")
def display_command(
    campaign_id: Annotated[str, typer.Argument(help="Id de la campagne.")],
    on: Day = None,
    localite: Annotated[str | None, typer.Option("--localite", help="L'affichage d'une seule localité.")] = None,
) -> None:
    """Ouvre l'affichage public (durée : réglage display_days de la commune en vigueur ce jour-là)."""
    from sifc.commission import display

    by = operator().via("CLI", "sifc campaign display")
    with database(actor=by.name) as session:
        found = display.open_period(session, campaign_id=campaign_id, starts_on=_day(on), localite_id=localite,
                                    by=by, author=by.name)
    out.print(say("cli.campaign.displayed", id=found["id"], starts=found["starts_on"], ends=found["ends_on"]),
              highlight=False)


@campaign_app.command("close")
def close_command(
    campaign_id: Annotated[str, typer.Argument(help="Id de la campagne.")],
    period: Annotated[str, typer.Option("--period", help="Id de la période d'affichage.")],
    on: Day = None,
) -> None:
    """Clôt un affichage terminé : une procédure de régularisation par parcelle sans réclamation ouverte."""
    from sifc.commission import display

    by = operator().via("CLI", "sifc campaign close")
    with database(actor=by.name) as session:
        found = display.close_period(session, campaign_id=campaign_id, period_id=period, closed_on=_day(on), by=by,
                                     author=by.name)
    out.print(say("cli.campaign.closed", registered=len(found["registered"]), waiting=len(found["waiting"])),
              highlight=False)


@campaign_app.command("show")
def show_command(campaign_id: Annotated[str, typer.Argument(help="Id de la campagne.")]) -> None:
    """Affiche une campagne et ses parcelles (détenteurs présumés) en JSON ; la lecture est journalisée."""
    from sifc.commission import campaigns

    by = operator().via("CLI", "sifc campaign show")
    with database(actor=by.name) as session:
        found = campaigns.get(session, campaign_id=campaign_id, reader=by)
        found["parcels"] = campaigns.parcels(session, campaign_id=campaign_id, reader=by)
    _json(found)


@claim_app.command("record")
def record_command(
    parcel: Annotated[str, typer.Option("--parcel", help="Id de la parcelle.")],
    grounds: Annotated[str, typer.Option("--grounds", help="Les motifs (données personnelles).")],
    claimant: Annotated[str | None, typer.Option("--claimant", help="Nom du réclamant.")] = None,
    party: Annotated[str | None, typer.Option("--party", help="Ou : id de la partie réclamante.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="reclamation ou opposition.")] = "reclamation",
    on: Day = None,
    source: Annotated[list[str] | None, typer.Option("--source", help="Id d'une source ; répétable.")] = None,
) -> None:
    """Enregistre une réclamation (pendant l'affichage public, pour une parcelle de campagne)."""
    from sifc.commission import claims

    by = operator().via("CLI", "sifc claim record")
    data = claims.ClaimInput(parcel_id=parcel, grounds=grounds, received_on=_day(on), kind=kind,
                             claimant_party_id=party, claimant_name=claimant, source_ids=source or [])
    with database(actor=by.name) as session:
        claim_id = claims.record(session, data=data, by=by, author=by.name)
    out.print(say("cli.claim.recorded", id=claim_id), highlight=False)


@claim_app.command("resolve")
def resolve_command(
    claim_id: Annotated[str, typer.Argument(help="Id de la réclamation.")],
    decision: Annotated[str, typer.Option("--decision", help="accepted, rejected ou disputed.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Motif (obligatoire pour un rejet).")] = None,
    dispute_kind: Annotated[str, typer.Option("--dispute-kind", help="Nature du litige (disputed).")] = "autre",
    on: Day = None,
) -> None:
    """Résout une réclamation : acceptée, rejetée (motif) ou portée en litige (la parcelle est gelée)."""
    from sifc.commission import claims

    by = operator().via("CLI", "sifc claim resolve")
    resolution = claims.Resolution(decision=decision, resolved_on=_day(on), reason=reason,
                                   dispute={"kind": dispute_kind})
    with database(actor=by.name) as session:
        found = claims.resolve(session, claim_id=claim_id, resolution=resolution, expected_version=None, by=by,
                               author=by.name)
    out.print(say("cli.claim.resolved", id=found["id"], state=found["state"]), highlight=False)


@claim_app.command("list")
def list_command(
    commune: Annotated[str | None, typer.Option("--commune", help="Code de la commune.")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Id de la campagne.")] = None,
) -> None:
    """Liste les réclamations d'une commune ou d'une campagne en JSON ; chaque lecture est journalisée."""
    from sifc.commission import claims

    by = operator().via("CLI", "sifc claim list")
    with database(actor=by.name) as session:
        found = claims.list_(session, reader=by, commune_code=commune, campaign_id=campaign)
    _json(found)
