"""``sifc node``: this server's place in the federation (ADR 0004, docs/federation.md).

``init`` makes the node a pole or the national node and builds its publications, ``subscribe`` links it
to a peer, ``status`` says how replication is doing, ``resync`` copies a peer's data again, ``resume``
and ``pause`` switch subscriptions, ``pieces`` rebuilds the territory pieces from the replicated
reference, ``demo`` runs a federation of three nodes on this machine. All run as the database's owner
(``SIFC_ADMIN_DATABASE_URL``). The domain is ``sifc.federation.node`` and ``sifc.federation.status``.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.common import State, out, say
from cli.node_migrate import beat, migrate

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sifc.federation.demo import DemoNode
    from sifc.federation.status import NodeStatus

node_app = typer.Typer(help="Fédération : pôles et nœud national (réplication logique PostgreSQL).",
                       no_args_is_help=True)
node_app.command("beat")(beat)
node_app.command("migrate")(migrate)


@contextmanager
def _owner_engine() -> Iterator[Engine]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(State.settings().admin_url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@node_app.command("init")
def node_init(
    role: Annotated[str, typer.Option(help="national ou pole.")],
    url: Annotated[str, typer.Option(help="URL publique de ce nœud (https://sifc.thies.sn).")],
    pole: Annotated[str | None, typer.Option(help="Code du pôle (pour --role pole), ex. THS.")] = None,
    node_id: Annotated[str | None, typer.Option(
        "--node-id", help="Identifiant du nœud (par défaut SIFC_NODE_ID), ex. thies.")] = None,
    personal_policy: Annotated[str, typer.Option("--personal", help=(
        "Données personnelles : pole (restent au pôle, par défaut) ou national (publiées, base légale "
        "requise : --legal-basis)."))] = "pole",
    legal_basis: Annotated[str | None, typer.Option("--legal-basis", help=(
        "Avec --personal national : la référence de la formalité accomplie auprès de la CDP (récépissé de "
        "déclaration, autorisation ou avis ; loi n° 2008-12 du 25 janvier 2008, décret n° 2008-721 du "
        "30 juin 2008)."))] = None,
    replication_password_file: Annotated[Path | None, typer.Option(
        "--replication-password-file", help=(
            "Fichier du mot de passe du rôle sifc_replication (celui que les pairs nomment dans --to) : le rôle "
            "peut alors se connecter. Sans cette option ni --replication-login, il reste tel qu'il était "
            "(NOLOGIN à sa création)."))] = None,
    replication_login: Annotated[bool, typer.Option(
        "--replication-login", help=(
            "Le rôle sifc_replication peut se connecter sans mot de passe fixé ici (pg_hba.conf décide : "
            "grappes d'essai en confiance locale)."))] = False,
) -> None:
    """Fait de ce nœud un pôle ou le nœud national : son identité, ses publications (relancer pour les refaire)."""
    from sifc.errors import InvalidInput
    from sifc.federation import node as nodes
    from sifc.keyring import seal_public_keys

    settings = State.settings()
    chosen = node_id or settings.node_id
    if not chosen:
        raise InvalidInput("cli.node.node_id_missing")
    if settings.node_id and settings.node_id != chosen:
        raise InvalidInput("cli.node.node_id_differs", given=chosen, configured=settings.node_id)
    password = None
    if replication_password_file is not None:
        try:
            password = next(iter(replication_password_file.read_text(encoding="utf-8").splitlines()), "")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput("cli.node.replication_password_unreadable", path=str(replication_password_file),
                               reason=type(error).__name__) from error
        if not password:
            raise InvalidInput("cli.node.replication_password_empty", path=str(replication_password_file))
    keys = seal_public_keys(settings.model_copy(update={"node_id": chosen}))
    with _owner_engine() as engine:
        info, listed = nodes.init(engine, role=role, node_id=chosen, url=url, pole=pole,
                                  personal_policy=personal_policy, legal_basis=legal_basis, seal_keys=keys,
                                  replication_login=replication_login, replication_password=password)
        with engine.connect() as conn:
            can_login = nodes.replication_can_login(conn)
    out.print(say("cli.node.initialised", node=info.node_id, role=info.role, pole=info.pole_code or "—",
                  personal=info.personal), highlight=False)
    if info.legal_basis:
        out.print(say("cli.node.legal_basis", basis=info.legal_basis), highlight=False)
    out.print(say("cli.node.replication_role_login" if can_login else "cli.node.replication_role_nologin"),
              highlight=False)
    for publication, tables in listed.items():
        out.print(say("cli.node.publication", name=publication, count=len(tables), tables=", ".join(tables)),
                  highlight=False)


@node_app.command("subscribe")
def node_subscribe(
    to: Annotated[str, typer.Option(
        "--to", help="Chaîne de connexion libpq du pair (host=… port=… dbname=… user=…), superutilisateur.")],
    wait: Annotated[bool, typer.Option(help="Attendre la fin de la copie initiale.")] = True,
    timeout: Annotated[float, typer.Option(help="Attente au plus (secondes) de la copie initiale.")] = 600,
) -> None:
    """Abonne ce nœud à son pair : le national à un pôle, un pôle au référentiel du national."""
    from sifc.federation import node as nodes

    with _owner_engine() as engine:
        done = nodes.subscribe(engine, to, node_id=State.settings().node_id, wait=wait, timeout=timeout)
    key = "cli.node.subscribed" if done.synced else "cli.node.subscribed_copying"
    out.print(say(key, name=done.name, peer=done.publisher, tables=done.tables), highlight=False)


@node_app.command("status")
def node_status(
    as_json: Annotated[bool, typer.Option("--json", help="L'état en JSON.")] = False,
    probe: Annotated[bool, typer.Option(help="Interroger chaque éditeur (emplacement, retard).")] = True,
) -> None:
    """État de la réplication : abonnements (retard, erreurs, emplacement), emplacements tenus, âge des données."""
    from sqlalchemy.orm import Session

    from sifc.federation.status import node_status as read_status

    with _owner_engine() as engine, engine.connect() as conn:
        status = read_status(Session(bind=conn), probe=probe)
    if as_json:
        out.print_json(json.dumps(status.as_dict(), ensure_ascii=False, default=str))
        return
    _print_status(status)


def _number(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _print_status(status: NodeStatus) -> None:
    out.print(say("cli.node.status_head", node=status.node_id, role=status.role, pole=status.pole_code or "—",
                  personal=status.personal), highlight=False)
    if status.legal_basis:
        out.print(say("cli.node.legal_basis", basis=status.legal_basis), highlight=False)
    if status.role == "single":
        out.print(say("cli.node.single"))
        return
    if status.subscriptions:
        table = Table(title=say("cli.node.subscriptions"))
        for column in ("name", "peer", "state", "tables", "lag_bytes", "lag_seconds", "slot", "errors"):
            table.add_column(say(f"cli.node.column.{column}"), overflow="fold")
        for sub in status.subscriptions:
            tables = " ".join(f"{state}:{count}" for state, count in sorted(sub.tables.items()))
            errors = f"{sub.apply_error_count or 0}/{sub.sync_error_count or 0}"
            table.add_row(sub.name, sub.peer, sub.state, tables, _number(sub.lag_bytes), _number(sub.lag_seconds),
                          sub.slot_wal_status or "—", errors)
        out.print(table)
        for sub in status.subscriptions:
            if sub.last_error and sub.state != "streaming":
                out.print(say("cli.node.last_error", name=sub.name, when=sub.last_error_at or "?",
                              error=sub.last_error), highlight=False)
            if sub.publisher_error:
                out.print(say("cli.node.publisher_unreachable", name=sub.name, error=sub.publisher_error),
                          highlight=False)
            if sub.action:
                out.print(say("cli.node.action", name=sub.name, state=sub.state, command=sub.action),
                          highlight=False)
    else:
        out.print(say("cli.node.no_subscription"))
    for slot in status.slots:
        out.print(say("cli.node.slot", name=slot.name, active=say("cli.node.yes" if slot.active else "cli.node.no"),
                      wal_status=slot.wal_status or "—", lag=_number(slot.lag_bytes)), highlight=False)
    for pole, age in status.data_age.items():
        out.print(say("cli.node.data_age", node=pole, age=_number(age)) if age is not None
                  else say("cli.node.data_age_never", node=pole), highlight=False)
    if status.pieces_stale:
        out.print(say("cli.node.pieces_stale"), highlight=False)


@node_app.command("resync")
def node_resync(
    peer: Annotated[str, typer.Argument(help="Le pôle à recopier (au national), ou « national » (à un pôle).")],
    timeout: Annotated[float, typer.Option(help="Attente au plus (secondes) de la copie.")] = 600,
) -> None:
    """Recopie tout d'un pair (emplacement perdu, abonnement bloqué) : ses lignes ici effacées puis recopiées."""
    from sifc.federation import node as nodes

    with _owner_engine() as engine:
        done, deleted = nodes.resync(engine, peer, timeout=timeout)
    out.print(say("cli.node.resynced", name=done.name, peer=done.publisher, tables=done.tables,
                  deleted=sum(deleted.values())), highlight=False)


def _switch(peers: list[str] | None, enabled: bool) -> None:
    from sifc.federation import node as nodes

    with _owner_engine() as engine:
        with engine.connect() as conn:
            me = nodes.current(conn)
        names = None if not peers else [nodes.subscription_for(me, p) for p in peers]
        changed = nodes.set_enabled(engine, names, enabled)
    out.print(say("cli.node.resumed" if enabled else "cli.node.paused", names=", ".join(changed) or "—"),
              highlight=False)


@node_app.command("resume")
def node_resume(
    peers: Annotated[list[str] | None, typer.Argument(help="Pairs (tous si aucun).")] = None,
) -> None:
    """Réactive des abonnements désactivés (tous si aucun pair n'est nommé)."""
    _switch(peers, True)


@node_app.command("pause")
def node_pause(
    peers: Annotated[list[str] | None, typer.Argument(help="Pairs (tous si aucun).")] = None,
) -> None:
    """Met des abonnements en pause ; l'éditeur garde les changements dans son emplacement."""
    _switch(peers, False)


@node_app.command("pieces")
def node_pieces() -> None:
    """Refait les morceaux des régions et communes (territory_piece) depuis le référentiel répliqué."""
    from sifc.federation import node as nodes

    with _owner_engine() as engine:
        nodes.rebuild_pieces(engine)
    out.print(say("cli.node.pieces_rebuilt"))


@node_app.command("demo")
def node_demo(
    down: Annotated[bool, typer.Option("--down", help="Arrêter et supprimer les trois grappes de la démo.")] = False,
    cut: Annotated[str | None, typer.Option(
        "--cut", help="Couper la liaison entre ce pôle (dakar, thies) et le national ; chaque nœud continue.")] = None,
    restore: Annotated[str | None, typer.Option(
        "--restore", help="Rétablir la liaison entre ce pôle et le national ; le retard se rattrape.")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Dossier des clés et environnements des nœuds (par défaut ~/.local/share/sifc/federation-demo).")
    ] = None,
    port: Annotated[int, typer.Option(
        min=1024, max=62000, help="Port PostgreSQL du national ; les pôles : les deux suivants ; HTTP : port + 3000.")
    ] = 5461,
    label: Annotated[str, typer.Option(
        help="Les grappes s'appellent sifc_<label>_<nœud> (une autre démo à côté : autre label, autre port).")
    ] = "demo",
) -> None:
    """Une fédération sur cette machine : le national et deux pôles (Dakar, Thiès), grappes PostgreSQL 15 locales."""
    from sifc.federation import demo

    members = demo.members(directory or demo.DEFAULT_DIR, ports=(port, port + 1, port + 2), label=label)
    if down:
        dropped = demo.down(members)
        out.print(say("cli.node.demo_down", clusters=", ".join(dropped) or "—"), highlight=False)
        return
    if cut or restore:
        pole = str(cut or restore)
        (demo.cut if cut else demo.restore)(pole, members)
        out.print(say("cli.node.demo_cut" if cut else "cli.node.demo_restored", node=pole), highlight=False)
        return
    made = demo.up(directory or demo.DEFAULT_DIR, nodes=members,
                   progress=lambda step: out.print(f"· {step}", highlight=False))
    _print_walk_through(made, "" if (port, label) == (5461, "demo") else f" --port {port} --label {label}")


def _program() -> str:
    """How the user called ``sifc`` (``.venv/bin/sifc``), to print commands they can paste."""
    called = Path(sys.argv[0])
    return shlex.quote(str(called)) if called.name == "sifc" else "sifc"


def _print_walk_through(made: list[DemoNode], options: str) -> None:
    """What to do next with the demo's federation, command by command."""
    from sifc.federation.demo import SAMPLES

    sifc = _program()
    national, thies = made[0], made[-1]
    samples = [thies.env_file.parent / name for name in SAMPLES]

    def _word(path: Path) -> str:
        return shlex.quote(str(path))

    def at(member: DemoNode, command: str, *, background: bool = False) -> str:
        if background:  # exec: the job is the server itself, which kill %N stops
            return f"  (. {_word(member.env_file)} && exec {sifc} {command}) &"
        return f"  (. {_word(member.env_file)} && {sifc} {command})"

    out.print(say("cli.node.demo_up", directory=national.env_file.parent), highlight=False)
    out.print("\n" + say("cli.node.demo_step_serve", url=national.url), highlight=False)
    for member in made:
        out.print(at(member, f"serve --port {member.http_port}", background=True), highlight=False, soft_wrap=True)
    out.print("\n" + say("cli.node.demo_step_import", url=national.url), highlight=False)
    out.print(at(thies, f"import parcels {_word(samples[0])}"), highlight=False, soft_wrap=True)
    out.print(f"  curl '{national.url}/ogc/collections/parcels/items?commune_code=SN1301-sandiara&limit=1'",
              highlight=False, soft_wrap=True)
    out.print("\n" + say("cli.node.demo_step_status"), highlight=False)
    out.print(at(national, "node status"), highlight=False, soft_wrap=True)
    out.print("\n" + say("cli.node.demo_step_cut", pole=thies.node_id), highlight=False)
    out.print(f"  {sifc} node demo --cut {thies.node_id}{options}", highlight=False, soft_wrap=True)
    out.print(at(thies, f"import parcels {_word(samples[1])}"), highlight=False, soft_wrap=True)
    out.print(at(national, "node status"), highlight=False, soft_wrap=True)
    out.print(f"  {sifc} node demo --restore {thies.node_id}{options}", highlight=False, soft_wrap=True)
    out.print("\n" + say("cli.node.demo_next", command=f"{sifc} node demo --down{options}"), highlight=False)
