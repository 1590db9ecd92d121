"""The ``sifc`` command line: a face of the domain beside the HTTP API (``api/``).

One module per command group (``cli/db.py``, ``cli/parcels.py`` …); this one assembles them into
the ``sifc`` application. User errors end with one readable line on stderr and a non-zero exit,
never a traceback; messages follow ``--lang`` (or ``SIFC_LANG``), French by default.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from cli.accounts import keys_app, users_app
from cli.admin import admin_app
from cli.campaigns import campaign_app, claim_app
from cli.common import State, err, refusal, say
from cli.db import db_app
from cli.demo import demo_app
from cli.disputes import dispute_app
from cli.documents import documents_app
from cli.exports import export_app
from cli.fees import fees_app
from cli.field import field_app
from cli.imports import import_app
from cli.localites import indicators_app, localites_app
from cli.node import node_app
from cli.parcels import parcels_app
from cli.serve import serve, worker
from cli.sessions import session_app
from cli.settings_cmd import settings_app
from cli.territories import territories_app
from cli.tracking import tracking_app
from sifc.errors import SifcError
from sifc.i18n import translate

app = typer.Typer(help="SIFC — Système d'Information Foncière Communale.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.command("serve")(serve)
app.command("worker")(worker)
app.add_typer(db_app, name="db")
app.add_typer(territories_app, name="territories")
app.add_typer(import_app, name="import")
app.add_typer(demo_app, name="demo")
app.add_typer(export_app, name="export")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(admin_app, name="admin")
app.add_typer(parcels_app, name="parcels")
app.add_typer(field_app, name="field")
app.add_typer(node_app, name="node")
app.add_typer(documents_app, name="documents")
app.add_typer(localites_app, name="localites")
app.add_typer(indicators_app, name="indicators")
app.add_typer(dispute_app, name="dispute")
app.add_typer(session_app, name="session")
app.add_typer(campaign_app, name="campaign")
app.add_typer(claim_app, name="claim")
app.add_typer(fees_app, name="fees")
app.add_typer(settings_app, name="settings")
app.add_typer(tracking_app, name="tracking")


@app.callback()
def _main(
    lang: Annotated[str | None, typer.Option("--lang", help="Langue des messages : fr ou en.")] = None,
) -> None:
    chosen = (lang or os.environ.get("SIFC_LANG") or "fr").lower()
    State.lang = "en" if chosen.startswith("en") else "fr"


def main() -> None:
    """Entry point: run the CLI, turning user errors into one line and exit code 2."""
    try:
        app()
    except SifcError as error:
        err.print(f"[bold red]{say('cli.main.error')}[/] {error.message(State.lang)}", highlight=False)
        sys.exit(2)
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        err.print(translate("db.unreachable", State.lang, target="", reason=reason),
                  highlight=False)
        sys.exit(3)
    except DBAPIError as error:  # the ownership guard's refusal is a user's error; any other, a bug
        refused = refusal(error)
        if refused is None:
            raise
        err.print(f"[bold red]{say('cli.main.error')}[/] {refused.message(State.lang)}", highlight=False)
        sys.exit(2)
    except ValidationError as error:  # settings refused (e.g. default secret in production)
        reasons = []
        for item in error.errors():
            cause = (item.get("ctx") or {}).get("error")
            if isinstance(cause, SifcError):
                reasons.append(cause.message(State.lang))
            else:
                field = ".".join(str(part) for part in item.get("loc", ()))
                reasons.append(f"SIFC_{field.upper()} : {item.get('msg')}" if field else str(item.get("msg")))
        err.print(say("cli.main.invalid_configuration") + "; ".join(reasons), highlight=False)
        sys.exit(2)
