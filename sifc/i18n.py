"""User-facing messages in French (default) and English.

Every message a user can see goes through :func:`translate`, keyed by a stable
identifier, so the API (``Accept-Language``) and the CLI (``--lang``) speak
the same words.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["fr", "en"]

MESSAGES: dict[str, dict[str, str]] = {
    # Generic HTTP problems
    "http.not_found": {"fr": "Ressource introuvable.", "en": "Resource not found."},
    "http.method_not_allowed": {"fr": "Méthode non autorisée.", "en": "Method not allowed."},
    "http.validation": {
        "fr": "La requête contient des paramètres invalides.",
        "en": "The request has invalid parameters.",
    },
    "http.internal": {
        "fr": "Erreur interne du service ; elle a été journalisée.",
        "en": "Internal service error; it has been logged.",
    },
    "http.database_unavailable": {
        "fr": "La base de données est injoignable.",
        "en": "The database cannot be reached.",
    },
    # Territories
    "territory.not_found": {
        "fr": "Aucun(e) {level} avec le code « {code} ».",
        "en": "No {level} with code '{code}'.",
    },
    "territory.no_children": {
        "fr": "Le niveau « {level} » n'a pas de subdivisions.",
        "en": "Level '{level}' has no subdivisions.",
    },
    "locate.outside_senegal": {
        "fr": "Le point ({lon}, {lat}) est hors du Sénégal.",
        "en": "The point ({lon}, {lat}) lies outside Senegal.",
    },
    "locate.no_commune": {
        "fr": "Le point n'est dans aucune commune connue : ce territoire n'est rattaché à "
        "aucune commune depuis l'import de limites officielles.",
        "en": "The point lies in no known commune: this land has belonged to no commune "
        "since official boundaries were imported.",
    },
    "locate.no_arrondissement": {
        "fr": "Le point n'est dans aucun arrondissement connu.",
        "en": "The point lies in no known arrondissement.",
    },
    "locate.reference_missing": {
        "fr": "Le référentiel territorial n'est pas chargé (lancez « sifc territories load »).",
        "en": "The territorial reference is not loaded (run 'sifc territories load').",
    },
    # Parcels
    "parcel.not_found": {"fr": "Aucune parcelle d'identifiant « {id} ».", "en": "No parcel with id '{id}'."},
    "parcel.retired": {
        "fr": "La parcelle « {id} » a été retirée le {date} ; son historique reste consultable (/versions).",
        "en": "Parcel '{id}' was retired on {date}; its history remains readable (/versions).",
    },
    "parcel.nicad_not_found": {
        "fr": "Aucune parcelle en vigueur ne porte le NICAD « {nicad} ».",
        "en": "No current parcel holds NICAD '{nicad}'.",
    },
    "parcel.bad_geometry": {
        "fr": "Géométrie GeoJSON illisible : {reason}.",
        "en": "Unreadable GeoJSON geometry: {reason}.",
    },
    "parcel.not_polygon": {
        "fr": "Une parcelle est un polygone ou un multipolygone non vide (reçu : {found}).",
        "en": "A parcel is a non-empty polygon or multipolygon (got {found}).",
    },
    "parcel.bad_coordinates": {
        "fr": "Coordonnées impossibles en {crs} : vérifiez le SCR déclaré (paramètre crs) et l'ordre x, y.",
        "en": "Impossible coordinates in {crs}: check the declared CRS (crs parameter) and the x, y order.",
    },
    "http.bad_value": {
        "fr": "Une valeur de la requête ne peut pas être enregistrée telle quelle (caractère ou nombre hors limites).",
        "en": "A value of the request cannot be stored as it is (character or number out of range).",
    },
    "http.nul_character": {
        "fr": "La requête contient un caractère NUL, interdit.",
        "en": "The request contains a NUL character, which is not allowed.",
    },
    "http.host_not_allowed": {
        "fr": "Hôte (en-tête Host) inconnu de ce service : adressez-vous à {public}.",
        "en": "This service does not answer for that host (Host header): use {public}.",
    },
    "http.body_too_large": {
        "fr": "Corps de requête trop volumineux : au plus {limit} octets pour cette opération.",
        "en": "Request body too large: at most {limit} bytes for this operation.",
    },
    "analysis.rate_limited": {
        "fr": "Trop de requêtes d'analyse spatiale depuis votre adresse : réessayez dans {seconds} s.",
        "en": "Too many spatial analysis requests from your address: try again in {seconds} s.",
    },
    "parcel.geometry_required": {
        "fr": "La géométrie de la parcelle est obligatoire.",
        "en": "The parcel's geometry is required.",
    },
    "parcel.invalid_geometry": {
        "fr": "Géométrie invalide : {reason}. Corrigez-la avant de l'enregistrer.",
        "en": "Invalid geometry: {reason}. Fix it before saving.",
    },
    "parcel.outside_senegal": {"fr": "La parcelle est hors du Sénégal.", "en": "The parcel lies outside Senegal."},
    "parcel.no_commune": {
        "fr": "La parcelle n'est dans aucune commune connue.",
        "en": "The parcel lies in no known commune.",
    },
    "parcel.unknown_commune": {"fr": "Commune inconnue : « {commune} ».", "en": "Unknown commune: '{commune}'."},
    "parcel.outside_commune": {
        "fr": "La parcelle déborde de la commune « {commune} » de {m2} m², au-delà de la tolérance.",
        "en": "The parcel extends {m2} m² outside commune '{commune}', beyond the tolerance.",
    },
    "parcel.overlap": {
        "fr": "La parcelle chevauche des parcelles en vigueur au-delà de la tolérance : {ids}.",
        "en": "The parcel overlaps current parcels beyond the tolerance: {ids}.",
    },
    "parcel.nicad_taken": {
        "fr": "Le NICAD « {nicad} » est déjà porté par la parcelle en vigueur {id}.",
        "en": "NICAD '{nicad}' is already held by current parcel {id}.",
    },
    "parcel.reason_required": {
        "fr": "Indiquez le motif de la modification (reason).",
        "en": "Give the reason for the change (reason).",
    },
    "parcel.version_mismatch": {
        "fr": "La parcelle a changé entre-temps : version attendue {expected}, version actuelle {current}.",
        "en": "The parcel changed meanwhile: expected version {expected}, current version {current}.",
    },
    "parcel.no_change": {
        "fr": "Aucun changement : la nouvelle version serait identique à l'actuelle.",
        "en": "No change: the new version would equal the current one.",
    },
    # Reference loading and commune import
    "load.file_missing": {
        "fr": "Fichier de référence introuvable : {path}.",
        "en": "Reference file not found: {path}.",
    },
    "import.file_missing": {"fr": "Fichier introuvable : {path}.", "en": "File not found: {path}."},
    "import.unreadable": {
        "fr": "Impossible de lire « {path} » : {reason}.",
        "en": "Cannot read '{path}': {reason}.",
    },
    "import.no_crs": {
        "fr": "Le fichier « {path} » n'a pas de système de coordonnées (no CRS : .prj absent) : "
        "indiquez-le avec --crs (par ex. --crs EPSG:32628). Rien n'a été modifié.",
        "en": "File '{path}' has no coordinate reference system (no .prj): give it with "
        "--crs (e.g. --crs EPSG:32628). Nothing was changed.",
    },
    "import.bad_crs": {
        "fr": "Système de coordonnées inconnu : « {crs} ».",
        "en": "Unknown coordinate reference system: '{crs}'.",
    },
    "import.not_polygons": {
        "fr": "La couche contient des géométries non polygonales ({found}) : parcelles et limites "
        "doivent être des polygones. Rien n'a été modifié.",
        "en": "The layer holds non-polygon geometries ({found}): parcels and boundaries must be "
        "polygons. Nothing was changed.",
    },
    "quality.bad_width": {
        "fr": "Largeur {width} m invalide : strictement positive, au plus {limit} m.",
        "en": "Invalid width {width} m: positive, at most {limit} m.",
    },
    "quality.too_many_parcels": {
        "fr": "Trop de parcelles ({count}) pour chercher les interstices en une fois : au plus {limit}.",
        "en": "Too many parcels ({count}) to look for gaps at once: at most {limit}.",
    },
    "ogc.bad_crs": {
        "fr": "SCR « {crs} » non pris en charge ; SCR disponibles : {supported}.",
        "en": "CRS \"{crs}\" is not supported; available: {supported}.",
    },
    "ogc.bad_filter": {
        "fr": "Filtre CQL2 refusé : {reason}.",
        "en": "CQL2 filter refused: {reason}.",
    },
    "ogc.bad_properties": {
        "fr": "Propriétés inconnues : {names} ; propriétés disponibles : {available}.",
        "en": "Unknown properties: {names}; available: {available}.",
    },
    "ogc.bad_sortby": {
        "fr": "Tri impossible sur « {name} » ; propriétés triables : {available}.",
        "en": "Cannot sort by \"{name}\"; sortable properties: {available}.",
    },
    "ogc.unknown_parameter": {
        "fr": "Paramètre « {name} » inconnu ; paramètres acceptés : {available}.",
        "en": "Unknown parameter \"{name}\"; accepted parameters: {available}.",
    },
    "ogc.no_collection": {
        "fr": "Aucune collection « {id} ».",
        "en": "No collection \"{id}\".",
    },
    "ogc.no_feature": {
        "fr": "Aucune entité « {id} » dans la collection {collection}.",
        "en": "No feature \"{id}\" in collection {collection}.",
    },
    "spatial.bad_point": {
        "fr": "Point invalide (lon {lon}, lat {lat}) : longitude entre -180 et 180, latitude entre -90 et 90.",
        "en": "Invalid point (lon {lon}, lat {lat}): longitude within -180..180, latitude within -90..90.",
    },
    "spatial.bad_bbox": {
        "fr": "Emprise « {bbox} » invalide : attendu minx,miny,maxx,maxy (min < max) dans les limites du SCR.",
        "en": "Invalid bbox \"{bbox}\": expected minx,miny,maxx,maxy (min < max) within the CRS's range.",
    },
    "spatial.area_too_large": {
        "fr": "Zone trop grande ({area} km²) : au plus {limit} km² par question.",
        "en": "Area too large ({area} km²): at most {limit} km² per question.",
    },
    "spatial.bad_geometry": {
        "fr": "Géométrie GeoJSON invalide : {reason}.",
        "en": "Invalid GeoJSON geometry: {reason}.",
    },
    "spatial.too_many_vertices": {
        "fr": "Géométrie trop détaillée : au plus {limit} sommets.",
        "en": "Geometry too detailed: at most {limit} vertices.",
    },
    "spatial.bad_distance": {
        "fr": "Distance {distance} m invalide : entre 0 et {limit} m.",
        "en": "Invalid distance {distance} m: between 0 and {limit} m.",
    },
    "spatial.bad_k": {
        "fr": "Nombre de parcelles demandé ({k}) invalide : entre 1 et {limit}.",
        "en": "Invalid number of parcels ({k}): between 1 and {limit}.",
    },
    # Vector tiles
    "tiles.no_collection": {
        "fr": "Aucune couche tuilée « {id} » ; couches disponibles : {known}.",
        "en": "No tiled layer \"{id}\"; available layers: {known}.",
    },
    "tiles.out_of_matrix": {
        "fr": "La tuile {z}/{x}/{y} n'existe pas dans la grille WebMercatorQuad : zoom de 0 à {max_zoom}, "
        "x et y de 0 à {max_index} à ce zoom.",
        "en": "Tile {z}/{x}/{y} does not exist in the WebMercatorQuad grid: zoom 0 to {max_zoom}, "
        "x and y 0 to {max_index} at this zoom.",
    },
    "tiles.bad_properties": {
        "fr": "Attributs inconnus pour la couche {collection} : {names} ; attributs disponibles : {known}.",
        "en": "Unknown attributes for layer {collection}: {names}; available attributes: {known}.",
    },
    "import_job.not_found": {
        "fr": "Aucune tâche d'import « {id} ».",
        "en": "No import job \"{id}\".",
    },
    "import_job.unknown_option": {
        "fr": "Option(s) d'import inconnue(s) : {names}.",
        "en": "Unknown import option(s): {names}.",
    },
    "import_job.bad_number": {
        "fr": "L'option {name} attend un nombre positif (reçu : « {value} »).",
        "en": "Option {name} expects a positive number (got \"{value}\").",
    },
    "import_job.bad_mapping": {
        "fr": "La correspondance doit être un objet JSON « champ de parcelle : colonne du fichier ».",
        "en": "The mapping must be a JSON object \"parcel field: file column\".",
    },
    "import_job.bad_text": {
        "fr": "L'option {name} doit être un texte court.",
        "en": "Option {name} must be a short text.",
    },
    "import_job.not_failed": {
        "fr": "La tâche {id} est « {status} » : seule une tâche en échec peut être relancée.",
        "en": "Job {id} is \"{status}\": only a failed job can be retried.",
    },
    "import_job.no_report": {
        "fr": "La tâche {id} n'a pas encore de rapport (statut « {status} »).",
        "en": "Job {id} has no report yet (status \"{status}\").",
    },
    "import_job.no_rejects": {
        "fr": "La tâche {id} n'a aucune entité rejetée.",
        "en": "Job {id} has no rejected feature.",
    },
    "import_job.worker_lost": {
        "fr": "Le processus d'import s'est arrêté pendant l'étape « {stage} » : rien n'a été enregistré. "
              "Relancez la tâche.",
        "en": "The import process stopped during stage \"{stage}\": nothing was saved. Retry the job.",
    },
    "import_job.internal_error": {
        "fr": "Erreur interne pendant l'import : rien n'a été enregistré. L'incident est journalisé.",
        "en": "Internal error during the import: nothing was saved. The incident is logged.",
    },
    "upload.too_large": {
        "fr": "Fichier trop volumineux : au plus {limit_mb} Mo.",
        "en": "File too large: at most {limit_mb} MB.",
    },
    "upload.unsupported": {
        "fr": "Fichier « {name} » non pris en charge : formats acceptés {suffixes} "
              "(un shapefile s'envoie zippé).",
        "en": "File \"{name}\" is not supported: accepted formats {suffixes} (send a shapefile zipped).",
    },
    "upload.no_file": {
        "fr": "Aucun fichier reçu : envoyez-le dans le champ « file » du formulaire.",
        "en": "No file received: send it in the form field \"file\".",
    },
    "upload.empty": {
        "fr": "Le fichier reçu est vide.",
        "en": "The file received is empty.",
    },
    "import.concurrent_change": {
        "fr": "Des parcelles du fichier ont été modifiées par ailleurs pendant l'import : relancez-le. "
              "Rien n'a été modifié.",
        "en": "Parcels of the file were changed elsewhere during the import: run it again. Nothing was changed.",
    },
    "import.empty": {
        "fr": "Le fichier ne contient aucune entité (no features). Rien n'a été modifié.",
        "en": "The file holds no features. Nothing was changed.",
    },
    "import.zip_bomb": {
        "fr": "L'archive « {path} » est refusée : sa taille décompressée est démesurée.",
        "en": "Archive '{path}' is refused: its uncompressed size is out of proportion.",
    },
    "import.zip_unsafe": {
        "fr": "L'archive « {path} » est refusée : le membre « {member} » sort du dossier d'extraction.",
        "en": "Archive '{path}' is refused: member '{member}' escapes the extraction folder.",
    },
    "import.no_dataset": {
        "fr": "Aucun fichier géographique lisible dans « {path} » (.shp, .gpkg, .geojson, .gml, .fgb, .dxf, .csv).",
        "en": "No readable geographic file in '{path}' (.shp, .gpkg, .geojson, .gml, .fgb, .dxf, .csv).",
    },
    "import.several_datasets": {
        "fr": "« {path} » contient plusieurs jeux de données ({names}) : indiquez le fichier voulu.",
        "en": "'{path}' holds several data sets ({names}): give the one you want.",
    },
    "import.unsupported_format": {
        "fr": "Format non pris en charge pour « {path} » ({suffix}) : shapefile, GeoPackage, GeoJSON, GML, "
        "DXF ou tableau de bornes (.csv).",
        "en": "Unsupported format for '{path}' ({suffix}): shapefile, GeoPackage, GeoJSON, GML, DXF or "
        "table of boundary markers (.csv).",
    },
    "import.choose_layer": {
        "fr": "« {path} » contient plusieurs couches ({layers}) : choisissez-en une avec --layer.",
        "en": "'{path}' holds several layers ({layers}): choose one with --layer.",
    },
    "import.dxf_needs_crs": {
        "fr": "Un fichier DXF ne déclare pas son système de coordonnées : indiquez celui du dessin de "
        "« {path} » avec --crs (par ex. --crs EPSG:32628). Rien n'a été modifié.",
        "en": "A DXF file does not declare its coordinate reference system: give the one of drawing "
        "'{path}' with --crs (e.g. --crs EPSG:32628). Nothing was changed.",
    },
    "import.dxf_no_parcels": {
        "fr": "Aucune polyligne fermée dans l'espace objet de « {path} » (ou dans la couche demandée) : "
        "les parcelles d'un DXF sont des LWPOLYLINE ou POLYLINE fermées. Rien n'a été modifié.",
        "en": "No closed polyline in the model space of '{path}' (or in the requested layer): the "
        "parcels of a DXF are closed LWPOLYLINE or POLYLINE entities. Nothing was changed.",
    },
    "import.bornes_needs_crs": {
        "fr": "Un tableau de bornes ne déclare pas son système de coordonnées : indiquez celui des "
        "coordonnées de « {path} » avec --crs (par ex. --crs EPSG:20138 pour Adindan / UTM 28N, "
        "--crs EPSG:32628 pour WGS 84 / UTM 28N). Rien n'a été modifié.",
        "en": "A table of boundary markers does not declare its coordinate reference system: give the "
        "one of the coordinates of '{path}' with --crs (e.g. --crs EPSG:20138 for Adindan / UTM 28N, "
        "--crs EPSG:32628 for WGS 84 / UTM 28N). Nothing was changed.",
    },
    "import.bornes_headers": {
        "fr": "Colonnes du tableau de bornes non reconnues. Attendu — {expected}. Colonnes trouvées : "
        "{found}. Rien n'a été modifié.",
        "en": "Columns of the table of boundary markers not recognised. Expected — {expected}. Columns "
        "found: {found}. Nothing was changed.",
    },
    "import.bornes_bad_value": {
        "fr": "Tableau de bornes, ligne {line} : « {value} » n'est pas une valeur valable pour la colonne "
        "« {column} » (nombre attendu ; numéro de parcelle obligatoire). Rien n'a été modifié.",
        "en": "Table of boundary markers, line {line}: '{value}' is not a valid value for column "
        "'{column}' (a number is expected; the parcel number is required). Nothing was changed.",
    },
    "import.unknown_commune": {
        "fr": "Commune inconnue : « {commune} ».",
        "en": "Unknown commune: '{commune}'.",
    },
    "import.ambiguous_commune": {
        "fr": "« {commune} » désigne plusieurs communes ({codes}) : donnez son code.",
        "en": "'{commune}' names several communes ({codes}): give its code.",
    },
    "import.bad_encoding": {
        "fr": "Encodage inconnu : « {encoding} » (exemples : UTF-8, ISO-8859-1, CP1252).",
        "en": "Unknown encoding: '{encoding}' (for example UTF-8, ISO-8859-1, CP1252).",
    },
    "import.on_invalid": {
        "fr": "--on-invalid vaut repair ou reject (reçu : « {value} »).",
        "en": "--on-invalid is repair or reject (got '{value}').",
    },
    "mapping.bad_file": {
        "fr": "Correspondance de champs illisible « {path} » : {reason}.",
        "en": "Unreadable field mapping '{path}': {reason}.",
    },
    "mapping.unknown_target": {
        "fr": "Champs de parcelle inconnus dans la correspondance : {fields} (champs possibles : {targets}).",
        "en": "Unknown parcel fields in the mapping: {fields} (possible fields: {targets}).",
    },
    "mapping.missing_column": {
        "fr": "Colonnes absentes du fichier : {columns} (colonnes présentes : {fields}).",
        "en": "Columns missing from the file: {columns} (columns present: {fields}).",
    },
    "import.field_missing": {
        "fr": "Le champ « {field} » n'existe pas dans le fichier (champs présents : {fields}).",
        "en": "Field '{field}' is not in the file (fields present: {fields}).",
    },
    "import.name_field_unknown": {
        "fr": "Impossible de deviner le champ du nom de commune (champs présents : {fields}) : "
        "indiquez-le avec --name-field.",
        "en": "Cannot guess the commune name field (fields present: {fields}): give it with "
        "--name-field.",
    },
    "import.strict_unmatched": {
        "fr": "{count} entité(s) ne correspondent à aucune commune ({names}) ; avec --strict "
        "le fichier entier est refusé. Rien n'a été modifié.",
        "en": "{count} feature(s) match no commune ({names}); with --strict the whole file is "
        "refused. Nothing was changed.",
    },
    "import.null_geometry": {
        "fr": "Entité sans géométrie : « {name} ».",
        "en": "Feature without geometry: '{name}'.",
    },
    "aliases.bad_file": {
        "fr": "Fichier d'alias illisible « {path} » : {reason}.",
        "en": "Unreadable alias file '{path}': {reason}.",
    },
    "aliases.unknown_commune": {
        "fr": "Alias « {alias} » : aucune commune « {commune} ».",
        "en": "Alias '{alias}': no commune '{commune}'.",
    },
    "aliases.ambiguous_commune": {
        "fr": "Alias « {alias} » : « {commune} » désigne plusieurs communes ({codes}) ; "
        "utilisez le code de la commune.",
        "en": "Alias '{alias}': '{commune}' names several communes ({codes}); use the "
        "commune's code.",
    },
    "import.wkt_needs_crs": {
        "fr": "Un tableau CSV avec une colonne WKT ne déclare pas son système de coordonnées : indiquez "
        "celui de « {path} » avec --crs (les exports CSV de SIFC sont en EPSG:32628 sauf demande contraire). "
        "Rien n'a été modifié.",
        "en": "A CSV table with a WKT column does not declare its coordinate reference system: give the "
        "one of '{path}' with --crs (SIFC's CSV exports are in EPSG:32628 unless asked otherwise). "
        "Nothing was changed.",
    },
    # Exports
    "export.bad_format": {
        "fr": "Format d'export « {format} » inconnu ; formats disponibles : {supported}.",
        "en": "Unknown export format '{format}'; available formats: {supported}.",
    },
    "export.bad_suffix": {
        "fr": "Impossible de déduire le format de « {path} » : donnez --format ou l'une des extensions {suffixes}.",
        "en": "Cannot tell the format of '{path}': give --format or one of the suffixes {suffixes}.",
    },
    "export.bad_crs": {
        "fr": "SCR « {crs} » non pris en charge pour un export ; SCR disponibles : {supported}.",
        "en": "CRS '{crs}' is not supported for an export; available: {supported}.",
    },
    "export.target_exists": {
        "fr": "Le fichier « {path} » existe déjà : choisissez un autre nom ou ajoutez --overwrite.",
        "en": "File '{path}' already exists: choose another name or add --overwrite.",
    },
    # Database operations
    "db.unreachable": {
        "fr": "Base de données injoignable ({target}) : {reason}.",
        "en": "Database unreachable ({target}): {reason}.",
    },
    "db.postgis_missing": {
        "fr": "L'extension PostGIS n'est pas disponible sur le serveur {target}.",
        "en": "The PostGIS extension is not available on server {target}.",
    },
    "db.tool_failed": {
        "fr": "{tool} a échoué : {reason}.",
        "en": "{tool} failed: {reason}.",
    },
    "db.restore_target_not_empty": {
        "fr": "La base « {database} » existe déjà et n'est pas vide : choisissez une "
        "nouvelle base (--database) pour restaurer.",
        "en": "Database '{database}' already exists and is not empty: choose a new database "
        "(--database) to restore into.",
    },
    "db.backup_missing": {
        "fr": "Sauvegarde introuvable : {path}.",
        "en": "Backup not found: {path}.",
    },
    # Accounts, authentication and permissions
    "config.weak_secret": {
        "fr": "SIFC_SECRET_KEY doit être un secret aléatoire d'au moins {length} caractères "
        "(par exemple : python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), ou ne pas être défini "
        "(le service crée alors sa clé dans SIFC_KEY_FILE) ; le service ne démarre pas.",
        "en": "SIFC_SECRET_KEY must be a random secret of at least {length} characters "
        "(for example: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), or be unset "
        "(the service then makes its key in SIFC_KEY_FILE); the service will not start.",
    },
    "config.published_secret": {
        "fr": "SIFC_SECRET_KEY figure dans un fichier publié du code source : n'importe qui pourrait signer des "
        "jetons. Choisissez un secret aléatoire, ou ne le définissez pas ; le service ne démarre pas.",
        "en": "SIFC_SECRET_KEY appears in a published file of the source code: anyone could sign tokens. "
        "Choose a random secret, or leave it unset; the service will not start.",
    },
    "config.key_file_mode": {
        "fr": "Le fichier de clés {path} est lisible par d'autres que le service : chmod 600 {path} ; "
        "le service ne démarre pas.",
        "en": "Key file {path} can be read by others than the service: chmod 600 {path}; "
        "the service will not start.",
    },
    "config.key_file_invalid": {
        "fr": "Fichier de clés illisible ou incomplet : {path} (restaurez-le depuis sa sauvegarde) ; "
        "le service ne démarre pas.",
        "en": "Key file unreadable or incomplete: {path} (restore it from its backup); the service will not start.",
    },
    "keys.bad_kind": {
        "fr": "Sorte de clé inconnue « {kind} » : choisissez parmi {kinds}.",
        "en": "Unknown kind of key '{kind}': choose among {kinds}.",
    },
    "keys.token_from_environment": {
        "fr": "La clé des jetons vient de SIFC_SECRET_KEY : pour la changer, changez cette variable et "
        "redémarrez le service.",
        "en": "The token key comes from SIFC_SECRET_KEY: to change it, change that variable and restart the service.",
    },
    "config.basemap_url": {
        "fr": "SIFC_BASEMAP_URL doit être une adresse http(s) de tuiles XYZ contenant {{z}}, {{x}} et {{y}} "
        "(par exemple https://tuiles.example.sn/{{z}}/{{x}}/{{y}}.png) ; le service ne démarre pas.",
        "en": "SIFC_BASEMAP_URL must be an http(s) XYZ tile URL containing {{z}}, {{x}} and {{y}} "
        "(for example https://tiles.example.sn/{{z}}/{{x}}/{{y}}.png); the service will not start.",
    },
    "config.public_url": {
        "fr": "SIFC_PUBLIC_URL doit être une origine http(s) sans chemin (par exemple https://sifc.bargny.sn), "
        "et non « {url} » ; le service ne démarre pas.",
        "en": "SIFC_PUBLIC_URL must be an http(s) origin without a path (for example https://sifc.bargny.sn), "
        "not \"{url}\"; the service will not start.",
    },
    "admin.bad_subject": {
        "fr": "Personne à rechercher invalide : donnez un identifiant de compte, un numéro de compte ou un nom "
              "(au plus {limit} caractères).",
        "en": "Invalid person to look up: give an account name, an account number or a name "
              "(at most {limit} characters).",
    },
    "auth.required": {
        "fr": "Authentification requise : envoyez un jeton (Authorization: Bearer …) ou une clé d'API (X-API-Key).",
        "en": "Authentication required: send a token (Authorization: Bearer …) or an API key (X-API-Key).",
    },
    "auth.bad_credentials": {
        "fr": "Identifiant ou mot de passe incorrect.",
        "en": "Wrong username or password.",
    },
    "auth.locked": {
        "fr": "Compte verrouillé après trop d'échecs d'authentification : réessayez dans {minutes} min.",
        "en": "Account locked after too many failed sign-ins: try again in {minutes} min.",
    },
    "auth.rate_limited": {
        "fr": "Trop de tentatives : réessayez dans {seconds} s.",
        "en": "Too many attempts: try again in {seconds} s.",
    },
    "auth.token_expired": {
        "fr": "Le jeton d'accès a expiré : demandez-en un nouveau (POST /auth/refresh).",
        "en": "The access token has expired: get a new one (POST /auth/refresh).",
    },
    "auth.token_invalid": {
        "fr": "Jeton d'accès invalide (signature, format ou contenu refusé).",
        "en": "Invalid access token (signature, format or content refused).",
    },
    "auth.session_ended": {
        "fr": "Session terminée (déconnexion, session révoquée ou compte désactivé) : reconnectez-vous.",
        "en": "Session ended (signed out, session revoked or account disabled): sign in again.",
    },
    "auth.bad_scheme": {
        "fr": "Schéma d'authentification non pris en charge : utilisez « Bearer <jeton> » ou « ApiKey <clé> ».",
        "en": "Unsupported authentication scheme: use 'Bearer <token>' or 'ApiKey <key>'.",
    },
    "auth.refresh_invalid": {
        "fr": "Jeton de rafraîchissement inconnu, expiré ou révoqué : reconnectez-vous.",
        "en": "Unknown, expired or revoked refresh token: sign in again.",
    },
    "auth.refresh_reused": {
        "fr": "Ce jeton de rafraîchissement a déjà servi : par sécurité, la session est révoquée ; reconnectez-vous.",
        "en": "This refresh token was already used: for safety the session is revoked; sign in again.",
    },
    "auth.key_invalid": {
        "fr": "Clé d'API inconnue, révoquée ou expirée.",
        "en": "Unknown, revoked or expired API key.",
    },
    "auth.account_disabled": {
        "fr": "Ce compte est désactivé.",
        "en": "This account is disabled.",
    },
    "auth.forbidden": {
        "fr": "Le rôle « {role} » ne permet pas cette action ({action}).",
        "en": "Role '{role}' does not allow this action ({action}).",
    },
    "auth.out_of_scope": {
        "fr": "Hors de votre périmètre : commune(s) {communes}.",
        "en": "Outside your scope: commune(s) {communes}.",
    },
    "auth.bad_username": {
        "fr": "Identifiant « {username} » invalide : 2 à 64 caractères parmi a-z, 0-9, « . », « _ », « - », « @ ».",
        "en": "Invalid username '{username}': 2 to 64 characters among a-z, 0-9, '.', '_', '-', '@'.",
    },
    "auth.username_taken": {
        "fr": "L'identifiant « {username} » existe déjà.",
        "en": "Username '{username}' already exists.",
    },
    "auth.unknown_user": {
        "fr": "Aucun compte « {username} ».",
        "en": "No account '{username}'.",
    },
    "auth.weak_password": {
        "fr": "Mot de passe trop court : au moins {length} caractères.",
        "en": "Password too short: at least {length} characters.",
    },
    "auth.password_mismatch": {
        "fr": "Les deux mots de passe saisis diffèrent.",
        "en": "The two passwords differ.",
    },
    "auth.bad_role": {
        "fr": "Rôle « {role} » inconnu ; rôles possibles : {roles}.",
        "en": "Unknown role '{role}'; possible roles: {roles}.",
    },
    "auth.bad_scope": {
        "fr": "Périmètre « {scope} » invalide : niveau:code, niveau parmi {levels} (ex. commune:SN0104-bargny, "
        "department:SN0104, pays:SN).",
        "en": "Invalid scope '{scope}': level:code, level among {levels} (e.g. commune:SN0104-bargny, "
        "department:SN0104, country:SN).",
    },
    "auth.unknown_scope": {
        "fr": "Périmètre inconnu : aucun(e) {level} de code « {code} ».",
        "en": "Unknown scope: no {level} with code '{code}'.",
    },
    "auth.scope_required": {
        "fr": "Le rôle « {role} » demande un périmètre (--scope commune:CODE, department:CODE, region:CODE, "
        "pole:CODE ou pays:SN).",
        "en": "Role '{role}' needs a scope (--scope commune:CODE, department:CODE, region:CODE, pole:CODE "
        "or country:SN).",
    },
    "auth.account_change_refused": {
        "fr": "Modification de compte refusée : seul un administrateur actif dont le périmètre couvre le compte "
        "(ou la ligne de commande du propriétaire de la base) modifie les comptes et les clés.",
        "en": "Account change refused: only an active administrator whose scope covers the account (or the "
        "database owner's command line) changes accounts and keys.",
    },
    "auth.unknown_key": {
        "fr": "Aucune clé d'API de préfixe « {prefix} ».",
        "en": "No API key with prefix '{prefix}'.",
    },
    "auth.bad_expiry": {
        "fr": "Date d'expiration « {value} » invalide ou passée (format AAAA-MM-JJ).",
        "en": "Invalid or past expiry date '{value}' (format YYYY-MM-DD).",
    },
    "personal.refused": {
        "fr": "« {name} » n'est pas une propriété publique : les données personnelles (loi 2008-12) ne peuvent "
        "servir ni de filtre, ni de tri, ni d'attribut demandé.",
        "en": "'{name}' is not a public property: personal data (law 2008-12) can be used neither as a filter, "
        "nor for sorting, nor as a requested attribute.",
    },
    "import_job.rate_limited": {
        "fr": "Trop d'envois de fichiers à importer : réessayez dans {seconds} s.",
        "en": "Too many import uploads: try again in {seconds} s.",
    },
    "export.rate_limited": {
        "fr": "Trop d'exports depuis votre adresse : réessayez dans {seconds} s.",
        "en": "Too many exports from your address: try again in {seconds} s.",
    },
    "import_job.commune_required": {
        "fr": "Votre périmètre est limité à certaines communes : indiquez l'option « commune » de l'import.",
        "en": "Your scope is limited to some communes: give the import's 'commune' option.",
    },
    # Concurrency (issue 8): RFC 9110 §13.1.1 and RFC 6585 §3
    "http.precondition_failed": {
        "fr": "Cet enregistrement a changé depuis votre lecture (If-Match périmé) : relisez-le, puis refaites "
        "votre modification.",
        "en": "This record changed since you read it (stale If-Match): read it again, then redo your change.",
    },
    "http.precondition_required": {
        "fr": "Modification refusée sans en-tête If-Match : envoyez l'ETag reçu à la lecture de l'enregistrement.",
        "en": "Change refused without an If-Match header: send the ETag you received when reading the record.",
    },
    "parcel.not_at_date": {
        "fr": "La parcelle « {id} » n'existait pas au registre à la date {at}.",
        "en": "Parcel '{id}' was not in the register at {at}.",
    },
    # Plausible bounds of the values a client sends (sifc/bounds.py, docs/bounds.md)
    "bounds.out_of_range": {
        "fr": "« {field} » : la valeur {value} est hors des bornes admises {bounds} ({why}).",
        "en": "'{field}': value {value} is outside the accepted bounds {bounds_en} (docs/bounds.md).",
    },
    "bounds.json_too_deep": {
        "fr": "« {field} » : JSON trop imbriqué (au plus 10 niveaux).",
        "en": "'{field}': JSON nested too deeply (at most 10 levels).",
    },
    # Tenure (issue 8)
    "tenure.not_found": {"fr": "Aucun(e) {kind} d'identifiant « {id} ».", "en": "No {kind} with id '{id}'."},
    "tenure.date_in_future": {
        "fr": "La date {field} ({date}) est dans le futur.", "en": "Date {field} ({date}) lies in the future."},
    "tenure.parcel_retired": {
        "fr": "La parcelle « {id} » est retirée : aucun droit ni procédure ne peut plus y être inscrit.",
        "en": "Parcel '{id}' is retired: no right or procedure can be recorded on it any more.",
    },
    "tenure.under_litige": {
        "fr": "La parcelle « {id} » fait l'objet d'un litige en cours ({litiges}) : aucune modification n'est "
        "possible avant sa mainlevée.",
        "en": "Parcel '{id}' is under a dispute ({litiges}): no change is possible until it is lifted.",
    },
    "party.not_found": {"fr": "Aucune partie d'identifiant « {id} ».", "en": "No party with id '{id}'."},
    "party.bad_kind": {
        "fr": "Type de partie « {kind} » inconnu ; types possibles : {kinds}.",
        "en": "Unknown party kind '{kind}'; possible kinds: {kinds}.",
    },
    "party.bad_group_type": {
        "fr": "Un groupement a un type parmi : {types}.", "en": "A group has a type among: {types}."},
    "party.members_of_group_only": {
        "fr": "Seul un groupement a un type de groupement et des membres.",
        "en": "Only a group has a group type and members."},
    "party.name_required": {"fr": "Le nom de la partie est obligatoire.", "en": "The party's name is required."},
    "party.unknown_commune": {"fr": "Commune « {commune} » inconnue.", "en": "Unknown commune '{commune}'."},
    "party.reason_required": {
        "fr": "Indiquez le motif de la modification (reason).", "en": "Give the reason for the change (reason)."},
    "party.no_change": {"fr": "Aucun changement par rapport à la version en vigueur.",
                        "en": "Nothing differs from the current version."},
    "rrr.not_found": {"fr": "Aucun droit d'identifiant « {id} ».", "en": "No right with id '{id}'."},
    "rrr.bad_share": {
        "fr": "Quote-part « {share} » invalide : une fraction entre 0 (exclu) et 1, par exemple 1/2.",
        "en": "Invalid share '{share}': a fraction between 0 (excluded) and 1, e.g. 1/2.",
    },
    "rrr.duplicate_holder": {"fr": "La partie « {party} » figure deux fois parmi les titulaires.",
                             "en": "Party '{party}' is listed twice among the holders."},
    "rrr.holders_required": {"fr": "Un droit a au moins un titulaire.", "en": "A right has at least one holder."},
    "rrr.shares_not_one": {
        "fr": "Les quotes-parts des titulaires totalisent {total}, et non 1.",
        "en": "The holders' shares sum to {total}, not 1.",
    },
    "rrr.affectation_exists": {
        "fr": "La parcelle « {parcel} » a déjà une affectation en vigueur (une affectation partagée est un seul "
        "droit à plusieurs titulaires).",
        "en": "Parcel '{parcel}' already has an affectation in force (a shared affectation is one right with "
        "several holders).",
    },
    "rrr.source_required": {"fr": "Indiquez la source (acte, délibération…) sur laquelle repose ce droit.",
                            "en": "Give the source (act, délibération…) this right rests on."},
    "rrr.bad_type": {"fr": "Type « {type} » inconnu ; types possibles : {types}.",
                     "en": "Unknown type '{type}'; possible types: {types}."},
    "rrr.affectation_needs_procedure": {
        "fr": "Une affectation ne s'inscrit pas directement : elle résulte d'une procédure de la commission "
        "domaniale achevée (POST /procedures).",
        "en": "An affectation is not recorded directly: it results from a completed procedure of the commission "
        "domaniale (POST /procedures).",
    },
    "rrr.tf_number_required": {"fr": "Un titre foncier a un numéro au livre foncier (tf_number).",
                               "en": "A titre foncier has a number in the livre foncier (tf_number)."},
    "rrr.ended": {"fr": "Le droit « {id} » a pris fin le {date} : il ne peut plus changer.",
                  "en": "Right '{id}' ended on {date}: it can no longer change."},
    "rrr.reason_required": {"fr": "Indiquez le motif (reason).", "en": "Give the reason (reason)."},
    "rrr.affectation_not_transferable": {
        "fr": "Une affectation ne se vend ni ne se transmet : elle est retirée (désaffectation) puis accordée à "
        "nouveau par une procédure.",
        "en": "An affectation is never sold or transferred: it is withdrawn (désaffectation) and granted again "
        "through a procedure.",
    },
    "rrr.no_change": {"fr": "Aucun changement par rapport à la version en vigueur.",
                      "en": "Nothing differs from the current version."},
    "rrr.bad_end_cause": {"fr": "Cause de fin « {cause} » inconnue ; causes possibles : {causes}.",
                          "en": "Unknown end cause '{cause}'; possible causes: {causes}."},
    "rrr.litige_lifted_by_mainlevee": {"fr": "Un litige prend fin par sa mainlevée (cause « mainlevee »).",
                                       "en": "A litige ends with its lifting (cause 'mainlevee')."},
    "rrr.mainlevee_for_restrictions": {"fr": "La mainlevée met fin à un litige, pas à un droit.",
                                       "en": "A mainlevée ends a litige, not a right."},
    "rrr.end_before_start": {"fr": "La date de fin précède le début du droit ({start}).",
                             "en": "The end date is before the right's start ({start})."},
    "rrr.desaffectation_needs_deliberation": {
        "fr": "Une désaffectation repose sur une délibération du conseil municipal (source de type deliberation).",
        "en": "A désaffectation rests on a délibération of the municipal council (a source of kind deliberation).",
    },
    "rrr.desaffectation_needs_notice": {
        "fr": "Une désaffectation suppose une mise en demeure préalable (notice_date).",
        "en": "A désaffectation requires a prior formal notice (notice_date).",
    },
    "rrr.notice_too_short": {
        "fr": "La désaffectation ne peut prendre effet moins de {days} jours après la mise en demeure du {notice}.",
        "en": "The désaffectation cannot take effect less than {days} days after the formal notice of {notice}.",
    },
    "source.not_found": {"fr": "Aucune source d'identifiant « {id} ».", "en": "No source with id '{id}'."},
    "source.other_commune": {"fr": "La source « {id} » n'est pas de la commune {commune}.",
                             "en": "Source '{id}' is not of commune {commune}."},
    "source.bad_kind": {"fr": "Type de source « {kind} » inconnu ; types possibles : {kinds}.",
                        "en": "Unknown source kind '{kind}'; possible kinds: {kinds}."},
    "source.deliberation_fields": {
        "fr": "Une délibération a un numéro (reference) et une session du conseil (council_session).",
        "en": "A délibération has a number (reference) and a council session (council_session).",
    },
    "source.bad_authority": {"fr": "Une approbation est donnée par : {authorities}.",
                             "en": "An approval is given by: {authorities}."},
    "source.bad_file_type": {"fr": "Le document n'est ni un PDF, ni une image JPEG, PNG ou TIFF.",
                             "en": "The document is neither a PDF nor a JPEG, PNG or TIFF image."},
    "source.empty_file": {"fr": "Le document est vide.", "en": "The document is empty."},
    "source.file_too_large": {"fr": "Le document dépasse la taille admise ({limit_mib} Mio).",
                              "en": "The document exceeds the size allowed ({limit_mib} MiB)."},
    "source.file_not_found": {"fr": "Aucun document d'identifiant « {id} ».", "en": "No document with id '{id}'."},
    "procedure.not_found": {"fr": "Aucune procédure d'identifiant « {id} ».", "en": "No procedure with id '{id}'."},
    "procedure.already_open": {"fr": "Une demande est déjà en cours d'instruction sur cette parcelle ({id}).",
                               "en": "A request is already being processed on this parcel ({id})."},
    "procedure.bad_predecessor": {
        "fr": "Une demande des ayants droit suit une affectation de la même parcelle, terminée par le décès ou la "
        "dissolution de son titulaire.",
        "en": "A request by the heirs follows an affectation of the same parcel ended by its holder's death or "
        "dissolution.",
    },
    "procedure.closed": {"fr": "La procédure est close ({state}).", "en": "The procedure is closed ({state})."},
    "procedure.refusal_reason": {"fr": "Un refus est motivé (reason).", "en": "A refusal gives its reason (reason)."},
    "procedure.bad_step": {"fr": "Étape « {step} » inconnue ; étapes : {steps}.",
                           "en": "Unknown step '{step}'; steps: {steps}."},
    "procedure.out_of_order": {
        "fr": "Étape « {step} » hors d'ordre : la procédure en est à « {state} », l'étape suivante est « {expected} ».",
        "en": "Step '{step}' out of order: the procedure stands at '{state}', the next step is '{expected}'.",
    },
    "procedure.date_before_previous": {"fr": "Cette étape ne peut précéder l'étape précédente ({date}).",
                                       "en": "This step cannot precede the previous one ({date})."},
    "procedure.neighbours_not_consulted": {
        "fr": "Le constat de la commission suppose les voisins consultés (details.neighbours_consulted = true).",
        "en": "The commission's survey requires the neighbours consulted (details.neighbours_consulted = true).",
    },
    "procedure.source_required": {
        "fr": "L'étape « {step} » repose sur un document de type « {kind} » (source_ids).",
        "en": "Step '{step}' rests on a document of kind '{kind}' (source_ids).",
    },
    "procedure.wrong_authority": {
        "fr": "Pour {hectares} ha, la délibération est approuvée par le {required}, non par le {authority}.",
        "en": "For {hectares} ha, the délibération is approved by the {required}, not by the {authority}.",
    },
    # Parcel mutations (issue 9)
    "mutation.procedure_in_progress": {
        "fr": "La parcelle « {id} » a une procédure en cours ({procedure}) : aucune mutation avant sa clôture.",
        "en": "Parcel '{id}' has a procedure in progress ({procedure}): no mutation until it is closed.",
    },
    "mutation.reason_required": {"fr": "Indiquez le motif de la mutation (reason).",
                                 "en": "Give the reason for the mutation (reason)."},
    "mutation.source_required": {
        "fr": "Une mutation repose sur au moins un document (plan de morcellement, délibération…) : source_ids.",
        "en": "A mutation rests on at least one document (survey plan, délibération…): source_ids.",
    },
    "mutation.bad_child": {"fr": "Parcelle issue n° {index} : {reason}",
                           "en": "Resulting parcel no. {index}: {reason}"},
    "mutation.child_outside": {
        "fr": "La parcelle issue n° {index} déborde de la parcelle mère de {m2} m².",
        "en": "Resulting parcel no. {index} extends {m2} m² beyond the parent parcel.",
    },
    "mutation.children_overlap": {
        "fr": "Les parcelles issues n° {a} et n° {b} se chevauchent sur {m2} m².",
        "en": "Resulting parcels no. {a} and no. {b} overlap by {m2} m².",
    },
    "mutation.children_do_not_cover": {
        "fr": "Les parcelles issues ne recouvrent pas la parcelle mère : {m2} m² non couverts, écart de "
        "superficie {percent} % (tolérance {tolerance} %).",
        "en": "The resulting parcels do not cover the parent: {m2} m² left uncovered, area difference "
        "{percent} % (tolerance {tolerance} %).",
    },
    "mutation.nicad_used": {
        "fr": "Le NICAD « {nicad} » a déjà été attribué (un NICAD retiré n'est jamais réutilisé).",
        "en": "NICAD '{nicad}' was already assigned (a retired NICAD is never reused).",
    },
    "mutation.before_right": {
        "fr": "La mutation ne peut précéder le début du droit « {id} » ({start}).",
        "en": "The mutation cannot precede the start of right '{id}' ({start}).",
    },
    "mutation.unknown_rights": {"fr": "Droits inconnus sur cette parcelle : {ids}.",
                                "en": "Rights unknown on this parcel: {ids}."},
    "mutation.rights_undecided": {
        "fr": "Dites ce que devient chaque droit en vigueur (reporté sur des parcelles issues, ou clos) : {ids}.",
        "en": "Say what becomes of each current right (carried to resulting parcels, or closed): {ids}.",
    },
    "mutation.bad_decision": {
        "fr": "Droit « {id} » : « close » ou {{\"carry\": [numéros des parcelles issues, de 1 à {count}]}}.",
        "en": "Right '{id}': 'close' or {{\"carry\": [numbers of resulting parcels, 1 to {count}]}}.",
    },
    "mutation.public_land_inalienable": {
        "fr": "Le droit « {id} » ne peut être reporté sur le domaine public (inaliénable).",
        "en": "Right '{id}' cannot be carried to public land (inalienable).",
    },
    "mutation.too_few_children": {"fr": "Un morcellement donne au moins deux parcelles.",
                                  "en": "A split gives at least two parcels."},
    "mutation.lots_required": {"fr": "Un lotissement a au moins un lot.", "en": "A lotissement has at least one lot."},
    "mutation.bad_public_use": {
        "fr": "Domaine public : usage « {use} » inconnu ; usages possibles : {uses}.",
        "en": "Public land: unknown use '{use}'; possible uses: {uses}.",
    },
    "mutation.merge_needs_two": {"fr": "Une fusion réunit au moins deux parcelles.",
                                 "en": "A merge joins at least two parcels."},
    "mutation.merge_across_communes": {
        "fr": "Les parcelles à fusionner sont de communes différentes ({communes}).",
        "en": "The parcels to merge lie in different communes ({communes}).",
    },
    "mutation.not_adjacent": {"fr": "Les parcelles à fusionner ne sont pas contiguës.",
                              "en": "The parcels to merge are not adjacent."},
    "mutation.rights_incompatible": {
        "fr": "Les droits des parcelles à fusionner diffèrent (titulaires, quotes-parts ou nature) : {ids} ; "
        "indiquez ceux qui prennent fin (end_rights).",
        "en": "The rights of the parcels to merge differ (holders, shares or kind): {ids}; say which end "
        "(end_rights).",
    },
    "mutation.regimes_differ": {
        "fr": "Les parcelles à fusionner n'ont pas le même régime foncier ({regimes}) : indiquez celui de la "
        "parcelle issue (tenure_regime).",
        "en": "The parcels to merge have different tenure regimes ({regimes}): give the merged parcel's "
        "(tenure_regime).",
    },
    "mutation.if_match_each": {
        "fr": "Une fusion exige dans If-Match l'ETag lu de chaque parcelle à fusionner.",
        "en": "A merge needs in If-Match the ETag read of every parcel to merge.",
    },
    "mutation.not_found": {"fr": "Aucune mutation d'identifiant « {id} ».", "en": "No mutation with id '{id}'."},
    "mutation.bad_file": {"fr": "Fichier « {path} » illisible : {reason}", "en": "File '{path}' unreadable: {reason}"},
    "mutation.file_without_crs": {
        "fr": "Le fichier « {path} » ne déclare pas son SCR : donnez --crs (ex. EPSG:32628).",
        "en": "File '{path}' declares no CRS: give --crs (e.g. EPSG:32628).",
    },
    "mutation.bad_date": {"fr": "Date « {date} » invalide (AAAA-MM-JJ).", "en": "Invalid date '{date}' (YYYY-MM-DD)."},
    "mutation.bad_carry": {"fr": "« {value} » : écrivez DROIT:1,2 (numéros des parcelles issues).",
                           "en": "'{value}': write RIGHT:1,2 (numbers of the resulting parcels)."},
    "mutation.one_geometry": {"fr": "Le fichier doit contenir une seule limite ({count} trouvées).",
                              "en": "The file must hold one boundary ({count} found)."},
    "mutation.child_without_geometry": {"fr": "La parcelle issue n° {index} n'a pas de géométrie.",
                                        "en": "Resulting parcel no. {index} has no geometry."},
    # Printed documents and their verification (issue 10)
    "document.empty": {"fr": "Le fichier envoyé est vide.", "en": "The uploaded file is empty."},
    "document.not_a_pdf": {
        "fr": "Le fichier envoyé n'est pas un PDF : seul un document PDF délivré par SIFC se vérifie ici.",
        "en": "The uploaded file is not a PDF: only a PDF document issued by SIFC can be verified here.",
    },
    "document.too_large": {
        "fr": "Le fichier dépasse la taille permise ({limit_mib} Mio).",
        "en": "The file exceeds the allowed size ({limit_mib} MiB).",
    },
    "document.procedure_not_completed": {
        "fr": "La procédure « {id} » n'est pas achevée (état : {state}) : ce document n'est délivré qu'après la "
        "notification.",
        "en": "Procedure '{id}' is not completed (state: {state}): this document is issued only after the "
        "notification.",
    },
    "document.rate_limited": {
        "fr": "Trop de vérifications depuis votre adresse : réessayez dans {seconds} s.",
        "en": "Too many verifications from your address: try again in {seconds} s.",
    },
    # Dashboards (issue 10)
    "dashboard.unknown_level": {
        "fr": "Pas de tableau de bord au niveau « {level} » : niveaux {levels}.",
        "en": "No dashboard at level '{level}': levels {levels}.",
    },
}

LEVEL_NAMES: dict[str, dict[str, str]] = {
    "pole": {"fr": "pôle", "en": "pole"},
    "region": {"fr": "région", "en": "region"},
    "department": {"fr": "département", "en": "department"},
    "arrondissement": {"fr": "arrondissement", "en": "arrondissement"},
    "commune": {"fr": "commune", "en": "commune"},
}


def translate(key: str, lang: Lang = "fr", /, **params: object) -> str:
    """Render message ``key`` in ``lang`` with ``params``; unknown keys render as the key."""
    texts = MESSAGES.get(key)
    if texts is None:
        return key
    template = texts.get(lang) or texts["fr"]
    return template.format(**params)


def pick_language(accept_language: str | None, default: Lang = "fr") -> Lang:
    """Choose ``fr`` or ``en`` from an ``Accept-Language`` header (RFC 9110 §12.5.4)."""
    if not accept_language:
        return default
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()))
    for _quality, tag in sorted(ranked, key=lambda item: -item[0]):
        primary = tag.split("-")[0]
        if primary in ("fr", "en"):
            return primary  # type: ignore[return-value]
        if tag == "*":
            return default
    return default
