"""The geopandas reference load: ``read_file`` then ``to_postgis``, nothing checked, no index.

Run as its own process so that its wall time and peak memory are measured like the others':
``python -m bench.import_bench.gpd_load FILE SQLALCHEMY_URL TABLE``.
"""

from __future__ import annotations

import sys

import geopandas
from sqlalchemy import create_engine


def main(path: str, url: str, table: str) -> None:
    frame = geopandas.read_file(path)
    engine = create_engine(url)
    frame.to_postgis(table, engine, if_exists="replace", index=False)
    engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:4])
