"""``python -m bench.serve_bench``: SIFC, TiPg and pgbench on the same parcels, alternating rounds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
DEFAULT_TILE_PROPERTIES = ("parcel_id,version,nicad,nicad_status,commune_code,section,local_number,area_m2,"
                           "declared_area_m2,land_use,tenure_regime,valid_from")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_bench", description=__doc__)
    parser.add_argument("--parcels", type=int, default=1_000_000, help="generated parcels loaded with sifc import")
    parser.add_argument("--scales", metavar="N,N",
                        help="serve several registry sizes in one run, alternating (e.g. 1000000,10000000): one "
                             "database sifc_bench_serve_<N> each, loaded one commune file at a time; "
                             "replaces --parcels")
    parser.add_argument("--per-commune", type=int, default=200_000,
                        help="with --scales: parcels per commune (one generated file and one import each)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cases", default="items,at,tiles", help="comma-separated subset of items,at,tiles")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side, alternating")
    parser.add_argument("--duration", type=int, default=20, help="seconds per timed load")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of untimed load per side and case first")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients (wrk -c, pgbench -c)")
    parser.add_argument("--threads", type=int, default=2, help="client threads (wrk -t, pgbench -j)")
    parser.add_argument("--pool-size", type=int, default=16,
                        help="database pool of each service (SIFC_POOL_SIZE; TiPg min = max)")
    parser.add_argument("--inputs", type=int, default=1000, help="random bboxes and points drawn (≤ 1280)")
    parser.add_argument("--tile-properties", default=DEFAULT_TILE_PROPERTIES,
                        help="attributes TiPg puts in tiles (`properties`): the set our tiles carry")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--work-dir", type=Path, default=BENCH / "work")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--rebuild", action="store_true", help="drop and reload sifc_bench_serve")
    parser.add_argument("--database-url", metavar="URL",
                        help="serve an existing database as it is (postgresql://…; the service and the checks "
                             "connect with it) instead of loading sifc_bench_serve; --parcels is then ignored")
    parser.add_argument("--enforce-targets", action="store_true", help="exit 3 when a target of the issue is missed")
    parser.add_argument("--servers", help="comma-separated sides among sifc,tipg,pgbench (the default) and "
                                          "sifc@REF: our service at git revision REF; sifc is required")
    parser.add_argument("--against", metavar="REF",
                        help="also serve our API as git revision REF (or an existing source tree's path) has it, "
                             "side sifc@REF in the same rounds, e.g. the commit a refactor started from; "
                             "alone: sides sifc,sifc@REF")
    parser.add_argument("--sifc-workers", type=int, default=1, metavar="N",
                        help="also serve our API with N HTTP processes (sifc serve --workers N), side sifc-wN, "
                             "in the same rounds as sifc (one process)")
    parser.add_argument("--profile", choices=("items", "at", "tiles"),
                        help="instead of the benchmark: sample our service with py-spy under this case's load")
    parser.add_argument("--top", type=int, default=30, help="functions listed by --profile")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.profile:
        from bench.serve_bench.profile import main as profile_main

        args.case = args.profile
        return profile_main(args)
    if args.scales:
        from bench.serve_bench.scales import main as scales_main

        return scales_main(args)
    from bench.serve_bench.runner import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
