"""``python -m bench.federation_bench``: replication lag of an import at a pole, and serving at the national node.

The federation of ``sifc node demo`` (national node, Dakar and Thiès poles) on throwaway clusters of its
own (ports 5471-5473), plus a single node (5474) holding the same parcels by plain ``sifc import``.
``--down`` drops the four clusters and does nothing else.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.federation_bench", description=__doc__)
    parser.add_argument("--parcels", type=int, default=200_000, help="parcels of each import at the Thiès pole")
    parser.add_argument("--dakar-parcels", type=int, default=10_000,
                        help="parcels imported once at the Dakar pole, in Bargny (served, not timed)")
    parser.add_argument("--runs", type=int, default=3,
                        help="timed imports at Thiès, each into a commune of its own (the last in Sandiara)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lag-timeout", type=float, default=1800, help="seconds to wait for the national node")
    parser.add_argument("--slot-keep", default="1GB",
                        help="max_slot_wal_keep_size of the clusters (the demo's 64MB would lose the national "
                             "node's slot during one large import)")
    parser.add_argument("--no-serve", action="store_true", help="the replication lag only")
    parser.add_argument("--cases", default="items,at,tiles", help="serving cases, among items,at,tiles")
    parser.add_argument("--rounds", type=int, default=3, help="timed serving rounds, national and single alternating")
    parser.add_argument("--duration", type=int, default=10, help="seconds per side, case and round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed seconds per side and case first")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients (wrk -c)")
    parser.add_argument("--threads", type=int, default=2, help="client threads (wrk -t)")
    parser.add_argument("--pool-size", type=int, default=16, help="database pool of each service (SIFC_POOL_SIZE)")
    parser.add_argument("--inputs", type=int, default=1000, help="random bboxes and points drawn")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--work-dir", type=Path, default=BENCH / "work")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--keep", action="store_true", help="leave the clusters up at the end (--down drops them)")
    parser.add_argument("--down", action="store_true", help="drop the benchmark's clusters and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from bench.federation_bench import runner

    if args.down:
        for name in runner.drop_clusters():
            print(f"dropped {name}")
        return 0
    return runner.main(args)


if __name__ == "__main__":
    sys.exit(main())
