"""Import benchmark: ``sifc import parcels`` against ogr2ogr and geopandas, with a ground-truth check."""
