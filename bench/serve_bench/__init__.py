"""Serving benchmark: SIFC against TiPg and pgbench on 1,000,000 parcels."""
