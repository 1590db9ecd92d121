"""``sifc users`` and ``sifc keys``: accounts, API keys, and the keys that sign tokens and seals."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from cli.common import State, database, err, out, say, when

users_app = typer.Typer(help="Comptes des utilisateurs (rôles et périmètres).", no_args_is_help=True)
keys_app = typer.Typer(help="Clés d'API des applications municipales ; clés de signature des jetons et des "
                       "sceaux des documents (fichier SIFC_KEY_FILE).", no_args_is_help=True)


ScopeOption = Annotated[list[str] | None, typer.Option(
    "--scope", help="Périmètre niveau:code, répétable : commune:SN0104-bargny, department:SN0104, region:SN01, "
                    "pole:DKR, pays:SN (administrateur : tout le pays par défaut).")]
RoleOption = Annotated[str, typer.Option(help="lecteur, agent_foncier, analyste_sig, administrateur ou regisseur.")]


def _read_password(from_stdin: bool) -> str:
    from sifc.errors import InvalidInput

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first: str = typer.prompt(say("cli.accounts.password"), hide_input=True)
    second = typer.prompt(say("cli.accounts.confirm"), hide_input=True)
    if first != second:
        raise InvalidInput("auth.password_mismatch")
    return first


def _scope_text(scope) -> str:  # type: ignore[no-untyped-def]
    return ", ".join(str(entry) for entry in scope) or "—"


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
    with database(owner=True) as session:
        user_id = users.create(session, username=username, password=password, role=role, scope=entries,
                               created_by="cli")
        user = users.get(session, user_id=user_id)
    out.print(say("cli.accounts.account_created_scope", username=user.username, role=user.role,
                  scope_text=_scope_text(user.scope)))


@users_app.command("list")
def users_list() -> None:
    """Liste les comptes : rôle, périmètre, état, dernière connexion."""
    from sifc.auth import users

    with database() as session:
        accounts = users.list_users(session)
    table = Table(title=say("cli.accounts.accounts"))
    for column in (say("cli.accounts.username"), say("cli.accounts.role"), say("cli.accounts.scope"),
                   say("cli.accounts.status"), say("cli.accounts.last_sign")):
        table.add_column(column)
    for user in accounts:
        status = say("cli.accounts.active_2") if user.active else say("cli.accounts.disabled")
        table.add_row(user.username, user.role, _scope_text(user.scope), status, when(user.last_login_at))
    out.print(table)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="Identifiant du compte.")]) -> None:
    """Désactive un compte (jamais supprimé) et révoque ses sessions."""
    from sifc.auth import users

    with database(owner=True) as session:
        user = users.disable(session, username=username)
    out.print(say("cli.accounts.account_disabled_sessions_are", username=user.username))


@users_app.command("set-role")
def users_set_role(
    username: Annotated[str, typer.Argument(help="Identifiant du compte.")],
    role: Annotated[str, typer.Argument(help="lecteur, agent_foncier, analyste_sig, administrateur ou regisseur.")],
    scope: ScopeOption = None,
) -> None:
    """Change le rôle d'un compte (et son périmètre avec --scope) : effet dès sa requête suivante, au journal."""
    from sifc.auth import scopes, users

    entries = scopes.parse(scope or [])
    with database(owner=True) as session:
        user = users.set_role(session, username=username, role=role, scope=entries or None)
    out.print(say("cli.accounts.account_scope", username=user.username, role=user.role,
                  scope_text=_scope_text(user.scope)))


@users_app.command("enable")
def users_enable(username: Annotated[str, typer.Argument(help="Identifiant du compte.")]) -> None:
    """Réactive un compte et lève son verrouillage."""
    from sifc.auth import users

    with database(owner=True) as session:
        user = users.enable(session, username=username)
    out.print(say("cli.accounts.account_active", username=user.username))


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
    with database(owner=True) as session:
        _key_id, key = keys.create(session, name=name, role=role, scope=entries, expires_at=expires_at,
                                   created_by="cli")
    err.print(say("cli.accounts.key_created_copy_now"))
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """Liste les clés (jamais leur secret) : préfixe, application, rôle, périmètre, état."""
    from sifc.auth import keys

    with database() as session:
        found = keys.list_keys(session)
    table = Table(title=say("cli.accounts.api_keys"))
    for column in (say("cli.accounts.prefix"), say("cli.accounts.app"), say("cli.accounts.role"),
                   say("cli.accounts.scope"), say("cli.accounts.status"), say("cli.accounts.expires"),
                   say("cli.accounts.last_used")):
        table.add_column(column)
    labels = {"active": say("cli.accounts.active"), "revoked": say("cli.accounts.revoked"),
              "expired": say("cli.accounts.expired")}
    for key in found:
        table.add_row(key.prefix, key.name, key.role, _scope_text(key.scope), labels[key.status()],
                      when(key.expires_at), when(key.last_used_at))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="Préfixe de la clé (ou la clé entière).")]) -> None:
    """Révoque une clé d'API : elle est refusée dès la requête suivante."""
    from sifc.auth import keys

    with database(owner=True) as session:
        key = keys.revoke(session, prefix=prefix)
    out.print(say("cli.accounts.key_revoked", prefix=key.prefix, name=key.name))


@keys_app.command("signing")
def keys_signing() -> None:
    """Liste les clés de signature (jamais leur valeur) et le fichier qui les garde ; le crée s'il manque."""
    from sifc import keyring

    ring = keyring.for_settings(State.settings())
    path = ring.ensure()
    out.print(say("cli.accounts.signing_keys", path=path), highlight=False)
    uses = {"token": say("cli.accounts.tokens"), "seal": say("cli.accounts.seals")}
    current = say("cli.accounts.current")
    for kind in keyring.KINDS:  # one line per key, ids whole (they are copied, never cut to the terminal)
        signing = ring.current(kind)
        if signing.kid not in {key.kid for key in ring.keys(kind)}:  # the token key of SIFC_SECRET_KEY
            out.print(f"{uses[kind]}  {signing.kid}  SIFC_SECRET_KEY  {current}", highlight=False)
        for key in ring.keys(kind):
            retired = say("cli.accounts.retired", retired_at=key.retired_at) if key.retired_at else current
            out.print(f"{uses[kind]}  {key.kid}  {key.created_at}  {retired}", highlight=False)


@keys_app.command("public")
def keys_public() -> None:
    """Affiche en JSON les clés publiques des sceaux de ce nœud (Ed25519), pour les autres nœuds de la fédération.

    Chacune : kid, alg, public_key (base64url), created_at, retired_at. Les clés HMAC d'avant n'ont pas de
    clé publique : les documents qu'elles ont scellés se vérifient au nœud qui les a délivrés.
    """
    import json

    from sifc import keyring

    typer.echo(json.dumps(keyring.seal_public_keys(State.settings()), indent=1))


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
    key = ring.rotate(kind)
    out.print(say("cli.accounts.new_key_previous_ones", kid=key.kid, kind=kind, path=ring.path))
