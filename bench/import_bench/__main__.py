"""``python -m bench.import_bench [run|generate|profile|big] …`` (``run`` when no command is given).

``big`` is ``make bench-10m``: ten million parcels, one run of ogr2ogr and one of sifc import (``big.py``).
``registry`` is ``make bench-registry``: the registry's share of a first load, and a partitioned registry's
floor (``registry.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def _dataset_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parcels", type=int, default=200_000,
                        help="parcels in the grid (extra features are added for copies and slivers); "
                             "200000 and 1000000 are the targets, 20000 a quick try")
    parser.add_argument("--defect-rate", type=float, default=0.005,
                        help="injected defects per parcel, split evenly among the four kinds (≤ 0.02)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data", help="where datasets are generated")
    parser.add_argument("--regenerate", action="store_true", help="write the dataset again even if it exists")
    parser.add_argument("--per-commune", type=int, metavar="K",
                        help="at most K parcels per commune, Dialacoto first, then the communes of its region, pole "
                             "and country by area (beyond the two million Dialacoto holds); read from the template")
    parser.add_argument("--format", choices=("shp", "gpkg"), default="shp",
                        help="shapefile (default) or GeoPackage (beyond a shapefile's 2 GB)")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("run", help="generate if needed, then time ogr2ogr, sifc import and geopandas")
    _dataset_options(run)
    run.add_argument("--runs", type=int, default=3, help="timed runs per method, alternating")
    run.add_argument("--methods", help="comma-separated, in run order, among ogr2ogr,sifc,geopandas (the default) "
                                       "and sifc@REF: sifc import at git revision REF")
    run.add_argument("--against", metavar="REF",
                     help="also time sifc import at git revision REF (method sifc@REF, its own template), "
                          "e.g. the commit a refactor started from; alone: methods ogr2ogr,sifc,sifc@REF")
    run.add_argument("--results-dir", type=Path, default=BENCH / "results")
    run.add_argument("--work-dir", type=Path, default=BENCH / "work", help="logs and reports of the runs")
    run.add_argument("--keep", action="store_true", help="keep the reports and logs of the runs")
    run.add_argument("--rebuild-template", action="store_true",
                     help="drop and rebuild sifc_bench_template (after a migration was edited in place)")
    run.add_argument("--enforce-targets", action="store_true",
                     help="exit 3 when a performance target of the issue is missed")
    run.add_argument("--sample-memory", action="store_true",
                     help="every 0.2 s, sample the memory of each run's whole process tree and of the PostgreSQL "
                          "backends serving it (RSS and PSS); an extra column")

    generate = commands.add_parser("generate", help="write the shapefile and its ground truth only")
    _dataset_options(generate)

    profile = commands.add_parser("profile", help="one sifc import in-process, every SQL statement timed")
    _dataset_options(profile)
    profile.add_argument("--explain", action="store_true",
                         help="also run the heaviest statements under EXPLAIN ANALYZE (a second import)")
    profile.add_argument("--top", type=int, default=15, help="statements listed")
    profile.add_argument("--results-dir", type=Path, default=BENCH / "results")

    if not argv or argv[0] not in ("run", "generate", "profile", "-h", "--help"):
        argv = ["run", *argv]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["big"]:
        from bench.import_bench.big import main as big_main

        return big_main(argv[1:])
    if argv[:1] == ["registry"]:
        from bench.import_bench.registry import main as registry_main

        return registry_main(argv[1:])
    args = parse(argv)
    if args.command == "generate":
        from bench.import_bench.databases import TEMPLATE, Server
        from bench.import_bench.generate import generate

        server = Server.from_environment()
        try:
            url = server.url(TEMPLATE) if server.exists(TEMPLATE) else None
        except Exception:  # no server: the generator falls back to a circle inside the commune
            url = None
        dataset = generate(args.data_dir, parcels=args.parcels, defect_rate=args.defect_rate, seed=args.seed,
                           admin_url=url, force=args.regenerate, per_commune=args.per_commune, fmt=args.format)
        print(dataset.shapefile)
        return 0
    if args.command == "profile":
        from bench.import_bench.profile import main as profile_main

        return profile_main(args)
    from bench.import_bench.runner import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
