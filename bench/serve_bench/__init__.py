"""Serving benchmark (issue 6): SIFC against TiPg and pgbench on 1,000,000 parcels."""
