"""Everything but serving, at two registry sizes: export, dashboards, overlaps, backup and restore."""
