"""The communal cadastre: parcels (LADM spatial units), versioned from the start."""
