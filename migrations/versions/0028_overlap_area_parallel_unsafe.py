"""``overlap_area`` is PARALLEL UNSAFE: its EXCEPTION block opens a subtransaction

``overlap_area(a, b)`` (0002) catches a GEOS error of ``ST_Intersection`` in an ``EXCEPTION`` block,
which opens a subtransaction for each call. 0004 marked it ``PARALLEL RESTRICTED``: it runs only in the
leader of a parallel plan. But the leader is in parallel mode too, and no subtransaction may start
there. At 10,000,000 parcels the planner chose a parallel plan for a commune dashboard's conflicts (a
self-join of 200,000 parcels, costed far above ``parallel_setup_cost``), and the request failed with
« cannot start subtransactions during a parallel operation » (a 500; ``bench/scale_bench``, 2026-12-06).
PostgreSQL's rule is that a function changing the transaction state even for a moment must be
``PARALLEL UNSAFE``: a query that calls it is then planned without workers.

Federation order: additive (a function's attribute; nothing published changes).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

FEDERATION_ORDER = "additive"


def upgrade() -> None:
    op.execute("ALTER FUNCTION overlap_area(geometry, geometry) PARALLEL UNSAFE")


def downgrade() -> None:
    op.execute("ALTER FUNCTION overlap_area(geometry, geometry) PARALLEL RESTRICTED")
