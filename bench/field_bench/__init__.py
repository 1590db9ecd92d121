"""Field benchmark: building a field package against ``ogr2ogr -f GPKG``, applying a return against ``sifc import``."""
