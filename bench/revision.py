"""Another revision of our code, run beside the working tree with the same virtual environment.

A refactor must not change how fast we import or serve, so the benchmarks compare the working
tree with the revision the refactor started from, in the same invocation (alternating runs, the
machine's drifts fall on both). ``git worktree add --detach bench/work/rev-<commit> REF`` gives
that revision's files (bench/work is ignored by git); its code runs with this repository's
``.venv``, the worktree first on ``PYTHONPATH`` and as the working directory.

The project is installed editable: a finder appended to ``sys.meta_path`` maps ``sifc``, ``api``
and ``cli`` to the main tree. ``PYTHONPATH`` entries are searched before it, so the worktree's
packages win; a package the revision does not have (``cli/`` came out of ``sifc/cli.py``) would
silently fall back to the main tree, so the command-line module is detected from the files and
every module the revision runs is checked to load from the worktree before anything is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = REPO / ".venv" / "bin" / "python"
# The command line's module at the working tree, as the `sifc` script runs it (`cli:main`).
CURRENT_CLI = "cli"


def _git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass(frozen=True)
class Revision:
    """A source tree of our code at ``commit``, named ``ref`` as the user gave it."""

    ref: str
    commit: str
    tree: Path
    cli_module: str

    @property
    def label(self) -> str:
        """The side or method name in reports: ``sifc@<ref>``."""
        return f"sifc@{self.ref}"

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with the worktree first on ``PYTHONPATH`` (ahead of the editable install's finder)."""
        env = dict(base)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.tree), base.get("PYTHONPATH", "")) if p)
        return env

    def command(self, *args: str) -> list[str]:
        """The ``sifc`` command at this revision (``python -m cli`` or, before the CLI moved, ``sifc.cli``)."""
        return [str(PYTHON), "-m", self.cli_module, *args]

    def migrations(self) -> list[str]:
        """The revision's migration files, to compare with the working tree's."""
        return sorted(p.name for p in (self.tree / "migrations" / "versions").glob("*.py"))


def _cli_module(tree: Path) -> str:
    if (tree / "cli" / "__main__.py").exists():
        return "cli"
    if (tree / "sifc" / "cli.py").exists():
        return "sifc.cli"
    raise SystemExit(f"{tree}: neither cli/__main__.py nor sifc/cli.py, no command line to run")


def verify(revision: Revision) -> dict[str, str]:
    """Where a child process, started as the benchmarks start the revision, loads our packages from.

    Fails loudly unless ``sifc``, ``api`` and the command-line module all come from the worktree.
    """
    modules = ["sifc", "api", revision.cli_module]
    probe = ("import importlib, json, sys; print(json.dumps({m: importlib.import_module(m).__file__ "
             f"for m in {modules!r}}}))")
    done = subprocess.run([str(PYTHON), "-c", probe], cwd=revision.tree, capture_output=True, text=True,
                          env=revision.environment(dict(os.environ)))
    if done.returncode != 0:
        raise SystemExit(f"{revision.label}: importing {modules} failed:\n{done.stderr[-2000:]}")
    found: dict[str, str] = json.loads(done.stdout)
    strays = {m: f for m, f in found.items() if not Path(f).resolve().is_relative_to(revision.tree.resolve())}
    if strays:
        raise SystemExit(f"{revision.label}: modules load from outside {revision.tree}: {strays}")
    return found


def materialise(ref: str, work_dir: Path, log=print) -> Revision:
    """``ref`` checked out under ``work_dir`` (kept and reused), or an existing source tree given by its path.

    A kept worktree is reused only when it still holds ``ref``'s commit with no change to its files.
    """
    given = Path(ref)
    if given.is_dir():
        tree = given.resolve()
        commit = _git("rev-parse", "HEAD", cwd=tree) if (tree / ".git").exists() else "unknown"
        revision = Revision(ref=commit[:7] if commit != "unknown" else tree.name, commit=commit, tree=tree,
                            cli_module=_cli_module(tree))
    else:
        commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
        tree = (work_dir / f"rev-{commit[:12]}").resolve()
        if (tree / ".git").exists():
            held = _git("rev-parse", "HEAD", cwd=tree)
            changed = _git("status", "--porcelain", "--untracked-files=no", cwd=tree)
            if held != commit or changed:
                raise SystemExit(f"{tree} holds {held[:10]}" + (" with changes" if changed else "")
                                 + f", not {commit[:10]}: remove it (git worktree remove --force {tree})")
        else:
            log(f"checking out {ref} ({commit[:10]}) into {tree}")
            tree.parent.mkdir(parents=True, exist_ok=True)
            _git("worktree", "prune")
            _git("worktree", "add", "--detach", str(tree), commit)
        revision = Revision(ref=ref, commit=commit, tree=tree, cli_module=_cli_module(tree))
    modules = verify(revision)
    log(f"{revision.label}: {revision.commit[:10]} from {revision.tree} ("
        + ", ".join(f"{m} → {Path(f).parent.name}/{Path(f).name}" for m, f in modules.items()) + ")")
    return revision


def current_migrations() -> list[str]:
    return sorted(p.name for p in (REPO / "migrations" / "versions").glob("*.py"))


def migration_differences(revision: Revision) -> list[str]:
    """Migration files that differ between the working tree and the revision (added, removed or edited)."""
    differing = set(current_migrations()) ^ set(revision.migrations())
    for name in set(current_migrations()) & set(revision.migrations()):
        ours = (REPO / "migrations" / "versions" / name).read_bytes()
        if ours != (revision.tree / "migrations" / "versions" / name).read_bytes():
            differing.add(name)
    return sorted(differing)


if __name__ == "__main__":  # python -m bench.revision REF: check out and verify only
    print(materialise(sys.argv[1], REPO / "bench" / "work"))


def code_line(git: dict) -> str:
    """A result's "Code:" line: the commit, and the files changed beside it when the tree was not clean."""
    changed = git.get("uncommitted") or []
    return f"Code: {git['commit'][:10]}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def write_results(directory: Path, stem: str, result: dict, markdown: str) -> Path:
    """A benchmark's result as ``STEM.json`` and ``STEM.md`` in ``directory`` (made if missing); the .md's path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    (directory / f"{stem}.md").write_text(markdown)
    return directory / f"{stem}.md"
