"""The ``sifc`` command line: a package of its own beside ``api/``, with every command in place."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib

import typer
from typer.testing import CliRunner

from cli import app
from tests.conftest import REPO

# Every command group and its sub-commands, as operators and scripts call them (scripts/run.sh, the docs).
COMMANDS = {
    "serve": None,
    "worker": None,
    "db": {"provision", "migrate", "backup", "restore"},
    "territories": {"load", "import-communes"},
    "import": {"parcels"},
    "demo": {"load"},
    "export": {"parcels", "bornes"},
    "users": {"create", "list", "disable", "set-role", "enable"},
    "keys": {"create", "list", "revoke", "signing", "rotate", "public"},
    "admin": {"subject"},
    "parcels": {"split", "lotissement", "merge", "correct", "lineage"},
    "field": {"package", "list", "lost", "reassign", "return"},
    "node": {"init", "subscribe", "status", "resync", "resume", "pause", "pieces", "demo", "beat", "migrate"},
    "documents": {"batch", "status", "purge"},
    "localites": {"load", "list", "add", "move", "rename", "retire"},
    "indicators": {"refresh"},
    "dispute": {"open", "step", "close", "show", "list"},
    "session": {"create", "agenda", "add", "remove", "attendee", "close", "deliberate", "show", "list"},
    "campaign": {"create", "add", "display", "close", "show"},
    "claim": {"record", "resolve", "list"},
    "fees": {"schedule", "pay", "cancel", "bordereau"},
    "settings": {"show", "set", "history", "carry-over"},
    "tracking": {"recepisse", "overdue"},
}


def test_every_command_group_and_sub_command_is_there() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, typer.core.TyperGroup)
    found = {name: set(command.commands) if isinstance(command, typer.core.TyperGroup) else None
             for name, command in root.commands.items()}
    assert found == COMMANDS


def test_help_lists_every_command_group() -> None:
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    listed = {line.strip("│ ").split()[0] for line in done.output.splitlines() if line.startswith("│ ")}
    assert set(COMMANDS) <= listed


def test_python_m_cli_runs_the_same_command() -> None:
    done = subprocess.run([sys.executable, "-m", "cli", "--lang", "en", "db", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False, env={"COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "provision" in done.stdout and "restore" in done.stdout


def test_the_sifc_entry_point_is_the_cli_package_and_the_domain_holds_no_cli() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"sifc": "cli:main"}
    assert importlib.util.find_spec("sifc.cli") is None
