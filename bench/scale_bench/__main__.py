"""``python -m bench.scale_bench``: a commune's export, a pole's dashboards, a commune's overlaps, backup and
restore, timed on the databases of two registry sizes, with how each time grows against the data it touches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def parse(argv: list[str]) -> argparse.Namespace:
    from bench.scale_bench.runner import OPERATIONS

    parser = argparse.ArgumentParser(prog="python -m bench.scale_bench", description=__doc__)
    parser.add_argument("--scales", default="1000000,10000000",
                        help="registry sizes, the databases of bench.serve_bench --scales (sifc_bench_serve_<N>)")
    parser.add_argument("--per-commune", type=int, default=200_000, help="parcels per commune in those databases")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--operations", default=",".join(OPERATIONS),
                        help=f"comma-separated subset of {','.join(OPERATIONS)}")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each cheap operation (medians)")
    parser.add_argument("--dump-runs", type=int, default=1, help="timed runs of backup and restore")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs of each cheap operation per scale first (a service's first answers)")
    parser.add_argument("--commune", help="commune exported and searched for overlaps (default: the first loaded, "
                                          "Dialacoto)")
    parser.add_argument("--pole", help="pole of the dashboards (default: the commune's pole)")
    parser.add_argument("--pool-size", type=int, default=4, help="database pool of each sifc serve")
    parser.add_argument("--data-dir", type=Path, default=BENCH / "data")
    parser.add_argument("--work-dir", type=Path, default=BENCH / "work")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--rebuild", action="store_true", help="drop and reload the databases")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from bench.scale_bench.runner import main as run_main

    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
