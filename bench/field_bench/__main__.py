"""``python -m bench.field_bench [run|prepare|profile] …`` (``run`` when no command is given)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parcels", type=int, default=20_000, help="parcels in the package's area (the goal's 20,000)")
    parser.add_argument("--new-parcels", type=int, default=2_000,
                        help="new parcels in the shapefile of the return's anchor, sifc import")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data", help="where the layout is generated")
    parser.add_argument("--regenerate", action="store_true", help="generate the layout and the template again")
    parser.add_argument("--rebuild-template", action="store_true",
                        help="rebuild sifc_bench_template and sifc_bench_field_template (after a migration changed)")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.field_bench", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("run", help="time the package build against ogr2ogr, the return against sifc import")
    _data_options(run)
    run.add_argument("--edits", type=int, default=2_000, help="parcels edited in the returned package")
    run.add_argument("--runs", type=int, default=5, help="timed runs per side, alternating")
    run.add_argument("--parts", default="package,return", help="package, return or both (comma-separated)")
    run.add_argument("--results-dir", type=Path, default=BENCH / "results")
    run.add_argument("--work-dir", type=Path, default=BENCH / "work", help="logs and files of the runs")
    run.add_argument("--keep", action="store_true", help="keep the logs and files of the runs")
    run.add_argument("--enforce-targets", action="store_true", help="exit 3 when a goal is missed")
    prepare = commands.add_parser("prepare", help="generate the layout and build the template database only")
    _data_options(prepare)
    profile = commands.add_parser("profile", help="one build or return in process under cProfile, SQL timed")
    _data_options(profile)
    profile.add_argument("--part", choices=("package", "return"), default="package")
    profile.add_argument("--edits", type=int, default=2_000)
    profile.add_argument("--top", type=int, default=25, help="functions and statements listed")
    profile.add_argument("--results-dir", type=Path, default=BENCH / "results")
    profile.add_argument("--work-dir", type=Path, default=BENCH / "work")
    if not argv or argv[0] not in ("run", "prepare", "profile", "-h", "--help"):
        argv = ["run", *argv]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.command == "prepare":
        from bench.field_bench.data import dataset, ensure_template
        from bench.import_bench.databases import TEMPLATE, Server

        server = Server.from_environment()
        server.ensure_template(rebuild=args.rebuild_template)
        data = dataset(args.data_dir.resolve(), package_parcels=args.parcels, new_parcels=args.new_parcels,
                       seed=args.seed, admin_url=server.url(TEMPLATE), force=args.regenerate)
        print(ensure_template(server, data, rebuild=args.rebuild_template or args.regenerate))
        return 0
    if args.command == "profile":
        from bench.field_bench.profile import main as profile_main

        return profile_main(args)
    from bench.field_bench.runner import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
