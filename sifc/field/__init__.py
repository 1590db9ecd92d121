"""Field packages: parcels checked out to QGIS/QField for work without a network, and their return.

- :mod:`sifc.field.layers`: the layers and fields of a package (the one table every writer reads);
- :mod:`sifc.field.fingerprint`: what makes two states of a parcel the same;
- :mod:`sifc.field.mac`: the package id's authentication (a key derived from the seal key);
- :mod:`sifc.field.packages`: building, listing, declaring lost and reassigning packages;
- :mod:`sifc.field.project`: the QGIS project written beside the GeoPackage;
- :mod:`sifc.field.returns`: the check-in, judged against the server's record of the package.
"""
