"""The ``sifc`` command line.

User errors end with one readable line on stderr and a non-zero exit, never a
traceback; messages follow ``--lang`` (or ``SIFC_LANG``), French by default.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import text as text_sql
from sqlalchemy.exc import OperationalError

from sifc.errors import SifcError
from sifc.i18n import Lang, translate
from sifc.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(help="SIFC — Système d'Information Foncière Communale.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Base de données : provisionnement, migrations, sauvegardes.",
                     no_args_is_help=True)
territories_app = typer.Typer(help="Référentiel territorial (pôles → communes).",
                              no_args_is_help=True)
import_app = typer.Typer(help="Imports de fichiers cadastraux.", no_args_is_help=True)
demo_app = typer.Typer(help="Données de démonstration (synthétiques).", no_args_is_help=True)
export_app = typer.Typer(help="Exports de parcelles (GeoJSON, GeoPackage, Shapefile, CSV, FlatGeobuf).",
                         no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(territories_app, name="territories")
app.add_typer(import_app, name="import")
app.add_typer(demo_app, name="demo")
app.add_typer(export_app, name="export")
users_app = typer.Typer(help="Comptes des utilisateurs (rôles et périmètres).", no_args_is_help=True)
keys_app = typer.Typer(help="Clés d'API des applications municipales ; clés de signature des jetons et des "
                       "sceaux des documents (fichier SIFC_KEY_FILE).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
admin_app = typer.Typer(help="Administration : demandes d'accès (loi 2008-12).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
parcels_app = typer.Typer(help="Mutations de parcelles : morcellement, fusion, lotissement, rectification ; "
                          "filiation.", no_args_is_help=True)
app.add_typer(parcels_app, name="parcels")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class State:
    """Options shared by every command."""

    lang: Lang = "fr"

    @staticmethod
    def settings() -> Settings:
        """Settings from the environment (read per command, never at import)."""
        return Settings()


def _say(fr: str, en: str) -> str:
    return fr if State.lang == "fr" else en


@app.callback()
def _main(
    lang: Annotated[str | None, typer.Option("--lang", help="Langue des messages : fr ou en.")] = None,
) -> None:
    chosen = (lang or os.environ.get("SIFC_LANG") or "fr").lower()
    State.lang = "en" if chosen.startswith("en") else "fr"


# --- db ---------------------------------------------------------------------------------

@db_app.command("provision")
def db_provision() -> None:
    """Crée la base si besoin, active PostGIS et applique les migrations (superutilisateur)."""
    from sifc.provision import describe, provision

    settings = State.settings()
    version = provision(settings)
    out.print(_say(f"Base {describe(settings.db_url)} prête (PostGIS {version}, migrations à jour).",
                   f"Database {describe(settings.db_url)} ready (PostGIS {version}, migrated)."))


@db_app.command("migrate")
def db_migrate(revision: str = "head") -> None:
    """Applique les migrations Alembic jusqu'à REVISION."""
    from sifc.provision import migrate

    migrate(State.settings(), revision)
    out.print(_say("Migrations appliquées.", "Migrations applied."))


@db_app.command("backup")
def db_backup(file: Annotated[Path, typer.Argument(help="Fichier de sauvegarde (format pg_dump custom).")]) -> None:
    """Sauvegarde la base dans FILE (format personnalisé de pg_dump)."""
    from sifc.provision import backup

    backup(State.settings(), file)
    out.print(_say(f"Sauvegarde écrite : {file}", f"Backup written: {file}"))


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="Sauvegarde produite par « sifc db backup ».")],
    database: Annotated[str | None, typer.Option(
        help="Base cible, nouvelle ou vide (par défaut : celle du service).")] = None,
) -> None:
    """Restaure FILE dans une base nouvelle ou vide."""
    from sifc.provision import restore

    settings = State.settings()
    target = database or settings.db_url.database or "sifc"
    restore(settings, file, target)
    out.print(_say(f"Sauvegarde restaurée dans la base « {target} ».",
                   f"Backup restored into database '{target}'."))


# --- territories ------------------------------------------------------------------------

@territories_app.command("load")
def territories_load(
    report: Annotated[Path | None, typer.Option(help="Écrire aussi le rapport JSON dans ce fichier.")] = None,
) -> None:
    """Charge (ou met à jour) le référentiel livré dans data/ ; deux chargements donnent la même base."""
    from sifc.db import make_engine, transaction
    from sifc.territories.loader import load_reference

    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-cli")
    with transaction(engine) as session:
        result = load_reference(session, settings.data_dir)
    engine.dispose()
    _print_load(result)
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=2, default=str),
                          encoding="utf-8")


def _print_load(result) -> None:
    table = Table(title=_say("Référentiel territorial", "Territorial reference"))
    for column in (_say("niveau", "level"), _say("lus", "read"), _say("ajoutés", "inserted"),
                   _say("modifiés", "updated"), _say("inchangés", "unchanged")):
        table.add_column(column)
    for level, counts in result.levels.items():
        table.add_row(level, str(counts.read), str(counts.inserted), str(counts.updated),
                      str(counts.unchanged))
    out.print(table)
    for repair in result.repairs:
        out.print(_say(
            f"Réparé : {repair['level']} {repair['code']} ({repair['name']}) — "
            f"{repair['invalid_reason']} → ST_MakeValid, {repair['area_after_km2']} km²",
            f"Repaired: {repair['level']} {repair['code']} ({repair['name']}) — "
            f"{repair['invalid_reason']} → ST_MakeValid, {repair['area_after_km2']} km²"))
    for defect in result.defects:
        out.print(_say("Défaut de la source : ", "Source defect: ")
                  + f"{defect['level']} {defect['code']} — {defect['defect']}")
    if not result.changed:
        out.print(_say("Aucun changement : la base était déjà à jour.",
                       "No change: the database was already up to date."))


@territories_app.command("import-communes")
def territories_import_communes(
    file: Annotated[Path, typer.Argument(help="Limites officielles (shapefile, GeoPackage, GeoJSON).")],
    crs: Annotated[str | None, typer.Option(help="CRS du fichier s'il n'en déclare pas (ex. EPSG:32628).")] = None,
    name_field: Annotated[str | None, typer.Option(help="Champ du nom de commune (deviné sinon).")] = None,
    code_field: Annotated[str | None, typer.Option(help="Champ du code national (ex. COD_ENTITE).")] = None,
    department_field: Annotated[str | None, typer.Option(help="Champ du nom de département (deviné sinon).")] = None,
    layer: Annotated[str | None, typer.Option(help="Couche (GeoPackage).")] = None,
    aliases: Annotated[Path | None, typer.Option(help="CSV d'alias : alias,commune (nom ou code).")] = None,
    strict: Annotated[bool, typer.Option(
        help="Refuser tout le fichier si une entité ne correspond à aucune commune.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier et rapporter sans rien enregistrer.")] = False,
    report: Annotated[Path | None, typer.Option(help="Écrire aussi le rapport JSON dans ce fichier.")] = None,
) -> None:
    """Remplace des limites provisoires par des limites officielles, appariées par code ou par nom."""
    from sifc.db import make_engine, make_sessionmaker
    from sifc.territories.communes_import import ImportOptions, import_communes, read_alias_file

    settings = State.settings()
    options = ImportOptions(crs=crs, name_field=name_field, code_field=code_field,
                            department_field=department_field, layer=layer, strict=strict,
                            aliases=read_alias_file(aliases) if aliases else [])
    engine = make_engine(settings.db_url, application_name="sifc-cli")
    with make_sessionmaker(engine)() as session:
        result = import_communes(session, file, options)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    engine.dispose()
    from sifc.territories.communes_import import print_report

    print_report(out, result, State.lang, dry_run=dry_run)
    if report:
        report.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=2, default=str),
                          encoding="utf-8")


# --- import -----------------------------------------------------------------------------

@import_app.command("parcels")
def import_parcels_command(
    path: Annotated[Path, typer.Argument(help="Shapefile (dossier, .shp ou .zip), GeoPackage, GeoJSON, GML, DXF "
                                              "ou tableau de bornes .csv (DXF et .csv : --crs obligatoire).")],
    commune: Annotated[str | None, typer.Option(help="Commune (code, code national ou nom) ; sinon déduite.")] = None,
    crs: Annotated[str | None, typer.Option(help="SCR du fichier s'il n'a pas de .prj (ex. EPSG:32628).")] = None,
    layer: Annotated[str | None, typer.Option(help="Couche (GeoPackage).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Correspondance YAML champ de parcelle → colonne.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Encodage des attributs (sinon .cpg, .dbf, Latin-1).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Tout vérifier sans rien enregistrer.")] = False,
    on_invalid: Annotated[str, typer.Option(help="Géométries invalides : repair ou reject.")] = "repair",
    overlap_tolerance_m2: Annotated[float, typer.Option(help="Chevauchement toléré (m²).")] = 1.0,
    overlap_tolerance_ratio: Annotated[float, typer.Option(
        help="Chevauchement toléré (part de la plus petite).")] = 0.01,
    area_tolerance: Annotated[float, typer.Option(help="Écart toléré superficie déclarée / calculée.")] = 0.10,
    report: Annotated[Path | None, typer.Option(help="Écrire le rapport JSON dans ce fichier.")] = None,
    rejects: Annotated[Path | None, typer.Option(
        help="GeoPackage des entités rejetées (défaut : NOM_rejets.gpkg).")] = None,
    user: Annotated[str | None, typer.Option(help="Auteur enregistré du lot.")] = None,
) -> None:
    """Importe les parcelles d'un fichier : tout ou rien, avec rapport et entités rejetées."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from sifc.db import make_engine, make_sessionmaker
    from sifc.errors import InvalidInput
    from sifc.imports.mapping import read_mapping_file
    from sifc.imports.parcels import ParcelImportOptions, import_parcels, spool_issues, write_rejects, write_report
    from sifc.imports.summary import print_summary

    if on_invalid not in ("repair", "reject"):
        raise InvalidInput("import.on_invalid", value=on_invalid)
    options = ParcelImportOptions(
        commune=commune, crs=crs, layer=layer, mapping=read_mapping_file(mapping) if mapping else None,
        encoding=encoding, dry_run=dry_run, on_invalid=on_invalid,  # type: ignore[arg-type]
        overlap_tolerance_m2=overlap_tolerance_m2, overlap_tolerance_ratio=overlap_tolerance_ratio,
        area_tolerance_ratio=area_tolerance)
    if user:
        options.author = user
    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-import")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar, \
            make_sessionmaker(engine)() as session:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            label = {"staging": _say("lecture", "reading"), "validating": _say("contrôles", "checks")}.get(stage)
            if label is None:
                return
            if stage not in tasks:
                tasks[stage] = bar.add_task(label, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)  # type: ignore[arg-type]

        result = import_parcels(session, path, options, progress=progress)
        spool = None
        if report and not result.already_imported:  # every issue, read before the transaction ends
            spool = Path(tempfile.mkstemp(prefix="sifc-issues-", suffix=".jsonl")[1])
            spool_issues(session, spool)
        if (result.rejected or result.duplicates) and not result.already_imported:
            target = rejects or Path(f"{path.stem}_rejets.gpkg")
            write_rejects(session, target, State.lang)
            result_rejects = str(target)
        else:
            result_rejects = None
        if dry_run:
            session.rollback()
        else:
            started = time.perf_counter()
            session.commit()
            result.timings["commit"] += time.perf_counter() - started
    engine.dispose()
    print_summary(out, result, State.lang)
    if result_rejects:
        out.print(_say(f"Entités rejetées et motifs : {result_rejects}",
                       f"Rejected features and reasons: {result_rejects}"))
    if report:
        write_report(result, report, spool)
    if spool:
        spool.unlink(missing_ok=True)


# --- export -----------------------------------------------------------------------------

@export_app.command("parcels")
def export_parcels_command(
    output: Annotated[Path, typer.Argument(help="Fichier à écrire : .geojson, .gpkg, .zip (shapefile), .csv, .fgb.")],
    format: Annotated[str | None, typer.Option(
        "--format", help="geojson, gpkg, shp, csv ou fgb (sinon d'après l'extension).")] = None,
    commune: Annotated[str | None, typer.Option(help="Commune (code, code national ou nom).")] = None,
    bbox: Annotated[str | None, typer.Option(help="Emprise minx,miny,maxx,maxy (dans --bbox-crs).")] = None,
    bbox_crs: Annotated[str, typer.Option(help="SCR de l'emprise : EPSG:4326 (longitude d'abord) ou EPSG:32628.")]
    = "EPSG:4326",
    filter: Annotated[str | None, typer.Option(
        "--filter", help="Filtre CQL2 (ex. \"land_use = 'habitation' AND area_m2 > 400\").")] = None,
    filter_lang: Annotated[str, typer.Option(help="cql2-text ou cql2-json.")] = "cql2-text",
    filter_crs: Annotated[str, typer.Option(help="SCR des géométries du filtre.")] = "EPSG:4326",
    crs: Annotated[str | None, typer.Option(
        help="SCR du fichier : EPSG:4326 ou EPSG:32628 (défaut : 4326 pour GeoJSON, 32628 sinon).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Remplacer le fichier s'il existe.")] = False,
) -> None:
    """Exporte les parcelles en vigueur d'une commune ou d'une sélection (emprise, filtre CQL2)."""
    from sifc import exports
    from sifc.db import make_engine, make_sessionmaker
    from sifc.errors import InvalidInput

    fmt = exports.get_format(format) if format else exports.format_for_path(output)
    srid = exports.output_srid(fmt, crs)
    if output.exists() and not overwrite:
        raise InvalidInput("export.target_exists", path=str(output))
    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-export")
    try:
        with make_sessionmaker(engine)() as session:
            selection = exports.select(session, commune=commune, bbox=bbox, bbox_crs=bbox_crs, cql=filter,
                                       filter_lang=filter_lang, filter_crs=filter_crs)
            stats = exports.export(session, selection, fmt, output, srid=srid)
            session.rollback()
    finally:
        engine.dispose()
    out.print(_say(f"{stats.features} parcelle(s) exportée(s) en {fmt.title} (EPSG:{srid}) : {output}",
                   f"{stats.features} parcel(s) exported as {fmt.title} (EPSG:{srid}): {output}"))


# --- demo -------------------------------------------------------------------------------

@demo_app.command("load")
def demo_load() -> None:
    """Génère et importe des parcelles synthétiques dans Bargny, Mont-Rolland et Sandiara."""
    from sifc.db import make_engine, transaction
    from sifc.demo import load_demo

    settings = State.settings()
    engine = make_engine(settings.db_url, application_name="sifc-demo")
    with transaction(engine) as session:
        outcome = load_demo(session)
    engine.dispose()
    if outcome is None:
        out.print(_say("Démonstration déjà chargée : rien à faire.", "Demo already loaded: nothing to do."))
    else:
        out.print(_say(f"Démonstration chargée : {outcome.accepted} parcelles synthétiques ({outcome.communes}), "
                       f"{outcome.parties} parties, {outcome.sources} sources, {outcome.rights} droits et "
                       f"restrictions, {outcome.procedures} procédures d'affectation.",
                       f"Demo loaded: {outcome.accepted} synthetic parcels ({outcome.communes}), {outcome.parties} "
                       f"parties, {outcome.sources} sources, {outcome.rights} rights and restrictions, "
                       f"{outcome.procedures} affectation procedures."))


# --- users and API keys -----------------------------------------------------------------

ScopeOption = Annotated[list[str] | None, typer.Option(
    "--scope", help="Périmètre niveau:code, répétable : commune:SN0104-bargny, department:SN0104, region:SN01, "
                    "pole:DKR, pays:SN (administrateur : tout le pays par défaut).")]
RoleOption = Annotated[str, typer.Option(help="lecteur, agent_foncier, analyste_sig ou administrateur.")]


def _read_password(from_stdin: bool) -> str:
    from sifc.errors import InvalidInput

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt(_say("Mot de passe", "Password"), hide_input=True)
    second = typer.prompt(_say("Confirmation", "Confirm"), hide_input=True)
    if first != second:
        raise InvalidInput("auth.password_mismatch")
    return first


def _scope_text(scope) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(str(entry) for entry in scope) or "—"


def _when(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


@contextmanager
def _database(*, owner: bool = False, actor: str | None = None) -> Iterator[Session]:
    """One transaction on the configured database (committed when the block ends), then the engine closed.

    ``owner``: on the owner's URL (``SIFC_ADMIN_DATABASE_URL``), the only one the database lets
    change accounts and API keys; the service's role cannot. ``actor``: the name the transaction's
    writes carry (a version is closed only in the name of the declared actor).
    """
    from sifc.db import act_as, make_engine, transaction

    settings = State.settings()
    engine = make_engine(settings.admin_url if owner else settings.db_url, application_name="sifc-cli")
    try:
        with transaction(engine) as session:
            if actor is not None:
                act_as(session, actor)
            yield session
    finally:
        engine.dispose()


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="Identifiant (a-z, 0-9, . _ - @).")],
    role: RoleOption,
    scope: ScopeOption = None,
    password_stdin: Annotated[bool, typer.Option(
        help="Lire le mot de passe sur l'entrée standard (scripts) plutôt que le demander.")] = False,
) -> None:
    """Crée un compte ; le mot de passe est demandé deux fois (ou lu sur l'entrée standard)."""
    from sifc.auth import scopes, users

    entries = scopes.parse(scope or [])
    password = _read_password(password_stdin)
    with _database(owner=True) as session:
        user_id = users.create(session, username=username, password=password, role=role, scope=entries,
                               created_by="cli")
        user = users.get(session, user_id=user_id)
    out.print(_say(f"Compte « {user.username} » créé : {user.role}, périmètre {_scope_text(user.scope)}.",
                   f"Account '{user.username}' created: {user.role}, scope {_scope_text(user.scope)}."))


@users_app.command("list")
def users_list() -> None:
    """Liste les comptes : rôle, périmètre, état, dernière connexion."""
    from sifc.auth import users

    with _database() as session:
        accounts = users.list_users(session)
    table = Table(title=_say("Comptes", "Accounts"))
    for column in (_say("identifiant", "username"), _say("rôle", "role"), _say("périmètre", "scope"),
                   _say("état", "status"), _say("dernière connexion", "last sign-in")):
        table.add_column(column)
    for user in accounts:
        status = _say("actif", "active") if user.active else _say("désactivé", "disabled")
        table.add_row(user.username, user.role, _scope_text(user.scope), status, _when(user.last_login_at))
    out.print(table)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Identifiant du compte.")]) -> None:
    """Désactive un compte (jamais supprimé) et révoque ses sessions."""
    from sifc.auth import users

    with _database(owner=True) as session:
        user = users.disable(session, username=username)
    out.print(_say(f"Compte « {user.username} » désactivé ; ses sessions sont révoquées.",
                   f"Account '{user.username}' disabled; its sessions are revoked."))


@users_app.command("set-role")
def users_set_role(
    username: Annotated[str, typer.Argument(help="Identifiant du compte.")],
    role: Annotated[str, typer.Argument(help="lecteur, agent_foncier, analyste_sig ou administrateur.")],
    scope: ScopeOption = None,
) -> None:
    """Change le rôle d'un compte (et son périmètre avec --scope) : effet dès sa requête suivante, au journal."""
    from sifc.auth import scopes, users

    entries = scopes.parse(scope or [])
    with _database(owner=True) as session:
        user = users.set_role(session, username=username, role=role, scope=entries or None)
    out.print(_say(f"Compte « {user.username} » : {user.role}, périmètre {_scope_text(user.scope)}.",
                   f"Account '{user.username}': {user.role}, scope {_scope_text(user.scope)}."))


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Identifiant du compte.")]) -> None:
    """Réactive un compte et lève son verrouillage."""
    from sifc.auth import users

    with _database(owner=True) as session:
        user = users.enable(session, username=username)
    out.print(_say(f"Compte « {user.username} » actif.", f"Account '{user.username}' active."))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Nom de l'application (ex. « carte-bargny »).")],
    role: RoleOption = "lecteur",
    scope: ScopeOption = None,
    expires: Annotated[str | None, typer.Option(help="Date d'expiration AAAA-MM-JJ (sinon : aucune).")] = None,
) -> None:
    """Crée une clé d'API et l'affiche une seule fois."""
    from datetime import UTC, datetime

    from sifc.auth import keys, scopes
    from sifc.errors import InvalidInput

    entries = scopes.parse(scope or [])
    expires_at = None
    if expires:
        try:
            expires_at = datetime.fromisoformat(expires)
        except ValueError as error:
            raise InvalidInput("auth.bad_expiry", value=expires) from error
        expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
    with _database(owner=True) as session:
        _key_id, key = keys.create(session, name=name, role=role, scope=entries, expires_at=expires_at,
                                   created_by="cli")
    err.print(_say("Clé créée ; copiez-la maintenant, elle ne sera plus jamais affichée :",
                   "Key created; copy it now, it will never be shown again:"))
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Liste les clés (jamais leur secret) : préfixe, application, rôle, périmètre, état."""
    from sifc.auth import keys

    with _database() as session:
        found = keys.list_keys(session)
    table = Table(title=_say("Clés d'API", "API keys"))
    for column in (_say("préfixe", "prefix"), _say("application", "app"), _say("rôle", "role"),
                   _say("périmètre", "scope"), _say("état", "status"), _say("expire", "expires"),
                   _say("dernier usage", "last used")):
        table.add_column(column)
    labels = {"active": _say("active", "active"), "revoked": _say("révoquée", "revoked"),
              "expired": _say("expirée", "expired")}
    for key in found:
        table.add_row(key.prefix, key.name, key.role, _scope_text(key.scope), labels[key.status()],
                      _when(key.expires_at), _when(key.last_used_at))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="Préfixe de la clé (ou la clé entière).")]) -> None:
    """Révoque une clé d'API : elle est refusée dès la requête suivante."""
    from sifc.auth import keys

    with _database(owner=True) as session:
        key = keys.revoke(session, prefix=prefix)
    out.print(_say(f"Clé {key.prefix} ({key.name}) révoquée.", f"Key {key.prefix} ({key.name}) revoked."))


@keys_app.command("signing")
def keys_signing() -> None:
    """Liste les clés de signature (jamais leur valeur) et le fichier qui les garde ; le crée s'il manque."""
    from sifc import keyring

    ring = keyring.for_settings(State.settings())
    path = ring.ensure()
    out.print(_say(f"Clés de signature : {path}", f"Signing keys: {path}"), highlight=False)
    uses = {"token": _say("jetons", "tokens"), "seal": _say("sceaux", "seals")}
    current = _say("en service", "current")
    for kind in keyring.KINDS:  # one line per key, ids whole (they are copied, never cut to the terminal)
        signing = ring.current(kind)
        if signing.kid not in {key.kid for key in ring.keys(kind)}:  # the token key of SIFC_SECRET_KEY
            out.print(f"{uses[kind]}  {signing.kid}  SIFC_SECRET_KEY  {current}", highlight=False)
        for key in ring.keys(kind):
            retired = _say(f"retirée le {key.retired_at}", f"retired {key.retired_at}") if key.retired_at else current
            out.print(f"{uses[kind]}  {key.kid}  {key.created_at}  {retired}", highlight=False)


@keys_app.command("rotate")
def keys_rotate(
    kind: Annotated[str, typer.Option("--kind", help="token (jetons d'accès) ou seal (sceaux des documents).")],
) -> None:
    """Crée une nouvelle clé de signature ; l'ancienne est retirée mais gardée.

    Sceaux : les documents déjà délivrés restent vérifiables avec leur clé. Jetons : les jetons d'accès
    signés par l'ancienne clé sont refusés (401) ; les clients les renouvellent (POST /auth/refresh).
    """
    from sifc import keyring
    from sifc.errors import InvalidInput

    if kind not in keyring.KINDS:
        raise InvalidInput("keys.bad_kind", kind=kind, kinds=", ".join(keyring.KINDS))
    ring = keyring.for_settings(State.settings())
    ring.ensure()
    key = ring.rotate(kind)  # type: ignore[arg-type]
    out.print(_say(f"Nouvelle clé « {key.kid} » ({kind}) dans {ring.path} ; les anciennes sont gardées, retirées.",
                   f"New key '{key.kid}' ({kind}) in {ring.path}; the previous ones are kept, retired."))


# --- admin ------------------------------------------------------------------------------

@admin_app.command("subject")
def admin_subject(
    subject: Annotated[str, typer.Argument(
        help="Identifiant ou numéro de compte, ou nom tel qu'écrit dans les données.")],
    as_json: Annotated[bool, typer.Option("--json", help="Le rapport en JSON, lignes comprises.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Lignes au plus par source.")] = 10_000,
) -> None:
    """Demande d'accès : tout ce qui est détenu sur une personne, et qui l'a lu (inscrit au journal d'accès)."""
    import getpass

    from sifc.auth import subjects
    from sifc.auth.principal import Principal

    operator = Principal(kind="cli", role="administrateur", name=f"cli:{getpass.getuser()}", everywhere=True)
    with _database() as session:
        report = subjects.access_request(session, operator, query=subject, limit=limit, method="CLI",
                                         endpoint="sifc admin subject")
    data = subjects.as_dict(report)
    if as_json:
        out.print_json(json.dumps(data, default=str, ensure_ascii=False))
        return
    who = report.subject
    account = _say(f"compte n° {who.user_id}", f"account #{who.user_id}") if who.user_id else _say(
        "sans compte", "no account")
    out.print(_say(f"Personne : {who.name} ({account}) — rapport du {_when(report.generated_at)}",
                   f"Person: {who.name} ({account}) — report of {_when(report.generated_at)}"), highlight=False)
    table = Table(title=_say("Données détenues", "Data held"))
    for column in (_say("source", "source"), _say("lignes", "rows"), "description"):
        table.add_column(column)
    for source, found in report.sources:
        table.add_row(source.name, str(found.count), source.description)
    out.print(table)
    reads = Table(title=_say("Qui a lu ses données", "Who read their data"))
    for column in (_say("quand", "when"), _say("qui", "who"), _say("rôle", "role"), _say("accès", "access"),
                   _say("objet", "subject")):
        reads.add_column(column)
    for row in report.reads.rows:
        reads.add_row(_when(row["occurred_at"]), row["actor"], row["role"], f"{row['method']} {row['endpoint']}",
                      f"{row['subject_kind']}:{row['subject_id']}")
    out.print(reads)
    if any(found.truncated for _, found in report.sources) or report.reads.truncated:
        out.print(_say("Certaines sources ont plus de lignes que --limit : relancez avec un --limit plus grand.",
                       "Some sources have more rows than --limit: run again with a larger --limit."))


# --- serve ------------------------------------------------------------------------------

@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Adresse d'écoute.")] = None,
    port: Annotated[int | None, typer.Option(help="Port d'écoute.")] = None,
    import_workers: Annotated[int | None, typer.Option(
        help="Processus d'import à lancer avec le service (0 : aucun).")] = None,
) -> None:
    """Sert l'API (documentation OpenAPI sur /docs) et lance le(s) processus d'import."""
    import gc

    import uvicorn

    from api.app import create_app
    from sifc import keyring
    from sifc.imports.supervisor import WorkerSupervisor

    # The address it listens on is the public base URL's default (SIFC_PUBLIC_URL): the same --host/--port.
    configured = State.settings()
    settings = configured.model_copy(update={"host": host or configured.host, "port": port or configured.port})
    # The signing keys exist before the first request (made on the first start, never typed by anyone).
    err.print(_say("Clés de signature : ", "Signing keys: ") + str(keyring.for_settings(settings).ensure()),
              highlight=False)
    supervisor = WorkerSupervisor(settings.import_workers if import_workers is None else import_workers)
    supervisor.start()
    application = create_app(settings)
    # Everything imported so far (pandas, pyproj, shapely…) lives as long as the process: frozen, it is
    # no longer walked by each full garbage collection, whose pauses were the long tail of fast requests.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(application, host=settings.host, port=settings.port,
                    log_level="info", proxy_headers=settings.forwarded_allow_ips is not None,
                    forwarded_allow_ips=settings.forwarded_allow_ips)
    finally:
        supervisor.stop()


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option(help="S'arrêter quand la file est vide.")] = False,
    parent: Annotated[int | None, typer.Option(help="S'arrêter quand ce processus (le service) disparaît.",
                                               hidden=True)] = None,
) -> None:
    """Exécute les tâches d'import en file (un processus séparé du service web)."""
    import logging

    from sifc.imports.worker import serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    count = serve_forever(State.settings(), once=once, parent=parent)
    if once:
        out.print(_say(f"{count} tâche(s) d'import exécutée(s).", f"{count} import job(s) run."))



# --- parcel mutations (issue 9) --------------------------------------------------------------

def _operator():  # type: ignore[no-untyped-def]
    import getpass

    from sifc.auth.principal import Principal

    return Principal(kind="cli", role="administrateur", name=f"cli:{getpass.getuser()}", everywhere=True)


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
    frame = frame.to_crs(32628)
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
    return MutationInput(occurred_on=occurred, source_ids=sources, reason=reason, input_crs=32628)


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
    names = {"split": ("Morcellement", "Split"), "lotissement": ("Lotissement", "Lotissement"),
             "merge": ("Fusion", "Merge"), "boundary_correction": ("Rectification", "Boundary correction")}
    fr, en = names[result["operation"]]
    out.print(_say(f"{fr} inscrit(e) (mutation {result['mutation_id']}) : {', '.join(result['parents'])} → "
                   f"{', '.join(result['children'])}",
                   f"{en} recorded (mutation {result['mutation_id']}): {', '.join(result['parents'])} → "
                   f"{', '.join(result['children'])}"), highlight=False)
    for right, outcome in result.get("rights", {}).items():
        out.print(_say(f"  droit {right} : {'clos' if outcome == 'closed' else 'reporté sur ' + ', '.join(outcome)}",
                       f"  right {right}: {'closed' if outcome == 'closed' else 'carried to ' + ', '.join(outcome)}"),
                  highlight=False)


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

    operator = _operator()
    with _database(actor=operator.name) as session:
        result = mutations.split(session, parcel_id=parcel_id, children=_children_file(children, crs),
                                 rights=_rights_decisions(carry, close), data=_mutation_data(date_, source, reason),
                                 expected_version=None, by=operator, author=operator.name)
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

    operator = _operator()
    with _database(actor=operator.name) as session:
        result = mutations.lotissement(
            session, parcel_id=parcel_id, lots=_children_file(lots, crs),
            public_land=_children_file(public_land, crs) if public_land else [],
            rights=_rights_decisions(carry, close), data=_mutation_data(date_, source, reason),
            expected_version=None, by=operator, author=operator.name)
    _print_mutation(result)


@parcels_app.command("merge")
def parcels_merge(parcel_ids: Annotated[list[str], typer.Argument(help="Les parcelles contiguës à fusionner.")],
                  source: SourceOpt, reason: ReasonOpt, date_: DateOpt = None,
                  nicad: Annotated[str | None, typer.Option("--nicad", help="NICAD de la parcelle issue.")] = None,
                  end_right: Annotated[list[str] | None, typer.Option("--end-right", help="Droit qui prend fin.")]
                  = None) -> None:
    """Fusionner des parcelles contiguës ; tous leurs NICAD sont retirés."""
    from sifc import mutations

    operator = _operator()
    with _database(actor=operator.name) as session:
        versions = {str(p): v for p, v in session.execute(text_sql(
            "SELECT parcel_id, version FROM parcel WHERE parcel_id::text = ANY(:ids)"), {"ids": parcel_ids}).all()}
        result = mutations.merge(session, parcel_ids=parcel_ids, child=mutations.Child(
            geometry={}, values={"nicad": nicad} if nicad else {}), end_rights=end_right or [],
            data=_mutation_data(date_, source, reason), expected_versions=versions, by=operator,
            author=operator.name)
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
    operator = _operator()
    with _database(actor=operator.name) as session:
        result = mutations.correct_boundary(session, parcel_id=parcel_id, geometry=shapes[0].geometry,
                                            data=_mutation_data(date_, source, reason), expected_version=None,
                                            by=operator, author=operator.name)
    _print_mutation(result)


@parcels_app.command("lineage")
def parcels_lineage(parcel_id: Annotated[str, typer.Argument(help="La parcelle.")],
                    as_json: Annotated[bool, typer.Option("--json", help="En JSON.")] = False) -> None:
    """La filiation d'une parcelle : les mutations dont elle vient et celles qu'elle a subies."""
    from sifc import mutations

    with _database() as session:
        found = mutations.lineage(session, parcel_id=parcel_id, personal=True)
    if as_json:
        out.print_json(json.dumps(found, ensure_ascii=False))
        return
    table = Table(title=_say(f"Filiation de {parcel_id}", f"Lineage of {parcel_id}"))
    for column in (_say("sens", "way"), _say("date", "date"), "mutation", _say("mères", "parents"),
                   _say("issues", "children")):
        table.add_column(column)
    ways = ((_say("ascendance", "ancestors"), "ancestors"), (_say("descendance", "descendants"), "descendants"),
            (_say("rectification", "correction"), "corrections"))
    for way, key in ways:
        for m in found[key]:
            table.add_row(way, m["occurred_on"], m["operation"], ", ".join(p["id"][:8] for p in m["parents"]),
                          ", ".join(c["id"][:8] for c in m["children"]))
    out.print(table)


def main() -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    try:
        app()
    except SifcError as error:
        err.print(f"[bold red]{_say('Erreur', 'Error')} :[/] {error.message(State.lang)}"
                  if State.lang == "fr" else f"[bold red]Error:[/] {error.message('en')}",
                  highlight=False)
        sys.exit(2)
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        err.print(translate("db.unreachable", State.lang, target="", reason=reason),
                  highlight=False)
        sys.exit(3)
    except ValidationError as error:  # settings refused (e.g. default secret in production)
        reasons = []
        for item in error.errors():
            cause = (item.get("ctx") or {}).get("error")
            if isinstance(cause, SifcError):
                reasons.append(cause.message(State.lang))
            else:
                field = ".".join(str(part) for part in item.get("loc", ()))
                reasons.append(f"SIFC_{field.upper()} : {item.get('msg')}" if field else str(item.get("msg")))
        err.print(_say("Configuration invalide : ", "Invalid configuration: ") + "; ".join(reasons), highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
