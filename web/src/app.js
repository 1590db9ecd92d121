// SIFC web application for land officers: the map (the service's own vector tiles), parcel sheets,
// search, measures, spatial queries, sign-in, imports and procedures. Vanilla JS over MapLibre GL JS,
// served by the service itself: nothing is fetched from the Internet.
"use strict";

const LAYERS = ["poles", "regions", "departments", "communes", "parcels"];
// The legend's switches: each group of map layers is shown or hidden together; the choice is kept.
const LAYER_GROUPS = {
  basemap: ["basemap"], poles: ["poles-line"], regions: ["regions-line", "departments-line"],
  communes: ["communes-fill", "communes-line"], provisional: ["communes-provisional"],
  parcels: ["parcels-fill", "parcels-line"], localites: ["localites-points"],
};
const PARCEL_MIN_ZOOM = 14;
// A field return's statuses on the map (the legend's keys in app.css use the same colours).
const FIELD_STATUSES = ["applied", "conflict", "refused", "proposed_retirement"];
const FIELD_STATUS_COLOUR = ["match", ["get", "status"], "applied", "#1a9641", "conflict", "#d7191c",
                             "refused", "#ff7f00", "proposed_retirement", "#808080", "#0b4f6c"];
const EARTH_RADIUS = 6378137;  // WGS 84 semi-major axis, as turf's geodesic area
const state = {
  lang: localStorage.getItem("sifc.lang") || "fr",
  token: sessionStorage.getItem("sifc.token"),
  refresh: sessionStorage.getItem("sifc.refresh"),
  user: sessionStorage.getItem("sifc.user"),
  mode: "select", sketch: [], parcel: null, commune: null, labels: [],
  hidden: new Set(readJson(localStorage.getItem("sifc.hidden"), [])),
};

// The map starts below the bar, which wraps onto more lines on a narrow screen or with a long user name.
const bar = document.getElementById("bar");
new ResizeObserver(() => document.documentElement.style.setProperty("--bar-height", `${bar.offsetHeight}px`))
  .observe(bar);

function readJson(text, fallback) {
  try { return text ? JSON.parse(text) : fallback; } catch { return fallback; }
}

// ---- language -------------------------------------------------------------------------------------
// The strings come from the service's message catalogues (sifc/locale/<lang>/LC_MESSAGES/sifc.po, msgids web.*).
async function loadStrings() {
  const strings = {};
  await Promise.all(["fr", "en"].map(async (lang) => {
    try {
      const response = await fetch(`/app/i18n/${lang}.json`);
      strings[lang] = response.ok ? await response.json() : {};
    } catch (error) { strings[lang] = {}; }  // the keys are shown rather than nothing
  }));
  return strings;
}

function t(key) {
  return (window.SIFC_STRINGS[state.lang] || {})[key] || window.SIFC_STRINGS.fr[key] || key;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  if (link.offline) setOffline(true);
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  document.getElementById("lang").textContent = state.lang === "fr" ? "EN" : "FR";
  refreshLabels();
}

function switchLanguage() {
  state.lang = state.lang === "fr" ? "en" : "fr";
  localStorage.setItem("sifc.lang", state.lang);
  applyLanguage();
  if (state.parcel) openParcel(state.parcel);
}

// ---- API ------------------------------------------------------------------------------------------
async function api(path, options = {}, retried = false) {
  // Offline, the map is read-only: a write is not even tried (it would be lost), a read the service worker has
  // no copy of answers a message rather than an error.
  if (link.offline && (options.method || "GET") !== "GET") return unreachable("offline.readonly");
  const headers = {"Accept-Language": state.lang, ...(options.headers || {})};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let response;
  try {
    response = await fetch(path, {...options, headers});
  } catch (error) {
    checkLink();
    return unreachable("offline.unavailable");
  }
  // The access token lives 15 minutes: renew it once with the (single-use) refresh token, then retry.
  if (response.status === 401 && state.refresh && !retried && !path.startsWith("/auth/") && await renewToken()) {
    return api(path, options, true);
  }
  const type = response.headers.get("content-type") || "";
  const body = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.blob();
  return {ok: response.ok, status: response.status, headers: response.headers, body};
}

function unreachable(key) {
  return {ok: false, status: 0, headers: new Headers(), body: {detail: t(key)}};
}

function problem(result) {
  return (result.body && (result.body.detail || result.body.title)) || `${t("common.error")} ${result.status}`;
}

// ---- small DOM helpers -----------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs).forEach(([k, v]) => {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  });
  children.flat().forEach((c) => node.append(c instanceof Node ? c : document.createTextNode(c ?? "")));
  return node;
}

function table(rows) {
  return el("table", {}, rows.map(([k, v, id]) => el("tr", {}, el("th", {}, k), el("td", id ? {id} : {}, v ?? "—"))));
}

function showPanel(...children) {
  const body = document.getElementById("panel-body");
  body.replaceChildren(...children);
  document.getElementById("panel").hidden = false;
  disableWrites();
  return body;
}

function status(text) { document.getElementById("status").textContent = text || ""; }

function number(value, digits = 0) {
  return Number(value).toLocaleString(state.lang === "fr" ? "fr-FR" : "en-GB", {maximumFractionDigits: digits});
}

// ---- map -------------------------------------------------------------------------------------------
function tileSource(collection) {
  return {type: "vector", url: `${location.origin}/tiles/${collection}/tilejson.json`};
}

function geojsonSource() { return {type: "geojson", data: {type: "FeatureCollection", features: []}}; }

// The optional base layer (SIFC_BASEMAP_URL): raster XYZ tiles from a server the operator chose; none by default.
function basemapLayers(basemap, sources) {
  if (!basemap) return [];
  sources.basemap = {type: "raster", tiles: basemap.tiles, tileSize: 256, maxzoom: basemap.maxzoom,
                     attribution: basemap.attribution || undefined};
  return [{id: "basemap", type: "raster", source: "basemap", paint: {"raster-opacity": 0.85}}];
}

function groupOf(layerId) {
  return Object.keys(LAYER_GROUPS).find((g) => LAYER_GROUPS[g].includes(layerId));
}

function mapStyle(config) {
  const sources = Object.fromEntries(LAYERS.map((c) => [c, tileSource(c)]));
  ["selection", "query", "overlaps", "rejects", "field-preview", "sketch"].forEach((s) => { sources[s] = geojsonSource(); });
  // Localités: read per commune in view; the OSM attribution shows while the layer is drawn (from LOCALITE_MIN_ZOOM).
  sources.localites = {...geojsonSource(), attribution: OSM_ATTRIBUTION};
  const layers = [
    {id: "background", type: "background", paint: {"background-color": "#f4f1ea"}},
    ...basemapLayers(config.basemap, sources),
    {id: "poles-line", type: "line", source: "poles", "source-layer": "poles", maxzoom: 12,
     paint: {"line-color": "#2b7a3d", "line-width": 3, "line-opacity": 0.7}},
    {id: "regions-line", type: "line", source: "regions", "source-layer": "regions",
     paint: {"line-color": "#888", "line-width": 1.5}},
    {id: "departments-line", type: "line", source: "departments", "source-layer": "departments", minzoom: 7,
     paint: {"line-color": "#aaa", "line-width": 1}},
    {id: "communes-fill", type: "fill", source: "communes", "source-layer": "communes",
     paint: {"fill-color": "#5a2d82", "fill-opacity": 0.03}},
    {id: "communes-line", type: "line", source: "communes", "source-layer": "communes",
     filter: ["!=", ["get", "boundary_status"], "provisional"], paint: {"line-color": "#5a2d82", "line-width": 1.5}},
    {id: "communes-provisional", type: "line", source: "communes", "source-layer": "communes",
     filter: ["==", ["get", "boundary_status"], "provisional"],
     // Gaps three times the dashes: a limit shared by two communes is drawn twice, out of phase, and must still
     // read as dashed.
     paint: {"line-color": "#7a4aa0", "line-width": 1.5, "line-dasharray": [2, 6]}},
    {id: "parcels-fill", type: "fill", source: "parcels", "source-layer": "parcels", minzoom: PARCEL_MIN_ZOOM,
     paint: {"fill-color": "#e9c88a", "fill-opacity": 0.6}},
    {id: "parcels-line", type: "line", source: "parcels", "source-layer": "parcels", minzoom: PARCEL_MIN_ZOOM,
     paint: {"line-color": "#8a4b08", "line-width": 0.8}},
    {id: "localites-points", type: "circle", source: "localites", minzoom: LOCALITE_MIN_ZOOM,
     paint: {"circle-radius": 4, "circle-color": "#c2185b", "circle-stroke-color": "#fff", "circle-stroke-width": 1}},
    {id: "query-fill", type: "fill", source: "query", paint: {"fill-color": "#1f78b4", "fill-opacity": 0.45}},
    {id: "overlaps-fill", type: "fill", source: "overlaps", paint: {"fill-color": "#e00000", "fill-opacity": 0.6}},
    {id: "overlaps-line", type: "line", source: "overlaps", paint: {"line-color": "#e00000", "line-width": 2}},
    {id: "rejects-fill", type: "fill", source: "rejects", paint: {"fill-color": "#ff7f00", "fill-opacity": 0.5}},
    {id: "rejects-line", type: "line", source: "rejects", paint: {"line-color": "#ff7f00", "line-width": 2}},
    // A field return's preview: the file's features by status; a conflict's registry shape dashed beside it.
    {id: "field-preview-fill", type: "fill", source: "field-preview",
     filter: ["all", ["==", ["get", "side"], "field"], ["==", ["geometry-type"], "Polygon"]],
     paint: {"fill-color": FIELD_STATUS_COLOUR, "fill-opacity": 0.4}},
    {id: "field-preview-line", type: "line", source: "field-preview", filter: ["==", ["get", "side"], "field"],
     paint: {"line-color": FIELD_STATUS_COLOUR, "line-width": 2}},
    {id: "field-preview-registry", type: "line", source: "field-preview", filter: ["==", ["get", "side"], "registry"],
     paint: {"line-color": "#7b0d0e", "line-width": 2, "line-dasharray": [2, 2]}},
    {id: "field-preview-points", type: "circle", source: "field-preview",
     filter: ["all", ["==", ["get", "side"], "field"], ["==", ["geometry-type"], "Point"]],
     paint: {"circle-radius": 5, "circle-color": FIELD_STATUS_COLOUR, "circle-stroke-color": "#fff",
             "circle-stroke-width": 1}},
    {id: "selection-line", type: "line", source: "selection", paint: {"line-color": "#d7191c", "line-width": 3}},
    {id: "sketch-fill", type: "fill", source: "sketch", filter: ["==", ["geometry-type"], "Polygon"],
     paint: {"fill-color": "#0b4f6c", "fill-opacity": 0.15}},
    {id: "sketch-line", type: "line", source: "sketch", paint: {"line-color": "#0b4f6c", "line-width": 2}},
    {id: "sketch-points", type: "circle", source: "sketch", filter: ["==", ["geometry-type"], "Point"],
     paint: {"circle-radius": 4, "circle-color": "#0b4f6c"}},
  ];
  layers.forEach((layer) => {
    if (state.hidden.has(groupOf(layer.id))) layer.layout = {...layer.layout, visibility: "none"};
  });
  return {version: 8, sources, layers};
}

function setGroupVisible(group, visible) {
  const map = window.sifc.map;
  LAYER_GROUPS[group].forEach((id) => { if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", visible ? "visible" : "none"); });
  if (visible) state.hidden.delete(group); else state.hidden.add(group);
  localStorage.setItem("sifc.hidden", JSON.stringify([...state.hidden]));
  if (group === "communes") refreshLabels();
  if (group === "localites") refreshLocalites();
}

function bindLegend(config) {
  document.getElementById("basemap-toggle").hidden = !config.basemap;
  document.querySelectorAll("#legend [data-layer-group]").forEach((box) => {
    box.checked = !state.hidden.has(box.dataset.layerGroup);
    box.addEventListener("change", () => setGroupVisible(box.dataset.layerGroup, box.checked));
  });
}

function createMap(config) {
  const map = new maplibregl.Map({container: "map", style: mapStyle(config), center: [-17.2283, 14.6933], zoom: 6.5,
                                  attributionControl: {compact: true, customAttribution: "SIFC"}});
  map.addControl(new maplibregl.NavigationControl(), "top-left");
  map.addControl(new maplibregl.ScaleControl({unit: "metric"}), "bottom-right");
  map.doubleClickZoom.disable();
  map.on("click", onMapClick);
  map.on("moveend", refreshLabels);
  map.on("idle", refreshLabels);
  map.on("moveend", refreshLocalites);
  map.on("mousemove", "parcels-fill", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "parcels-fill", () => { map.getCanvas().style.cursor = ""; });
  return map;
}

function setData(source, data) {
  window.sifc.map.getSource(source).setData(data.type ? data : {type: "FeatureCollection", features: data});
}

function bounds(geometry) {
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === "number") {
      box[0] = Math.min(box[0], c[0]); box[1] = Math.min(box[1], c[1]);
      box[2] = Math.max(box[2], c[0]); box[3] = Math.max(box[3], c[1]);
    } else c.forEach(walk);
  };
  (geometry.type === "GeometryCollection" ? geometry.geometries : [geometry]).forEach((g) => walk(g.coordinates));
  return [[box[0], box[1]], [box[2], box[3]]];
}

function fitTo(geometry, maxZoom = 18) {
  window.sifc.map.fitBounds(bounds(geometry), {padding: 60, maxZoom, duration: 600});
}

// ---- commune labels (DOM markers: no glyph server is needed offline) -----------------------------------
function labelPoint(features) {
  let box = null;
  features.forEach((f) => {
    const [[a, b], [c, d]] = bounds(f.geometry);
    box = box ? [Math.min(box[0], a), Math.min(box[1], b), Math.max(box[2], c), Math.max(box[3], d)] : [a, b, c, d];
  });
  return [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
}

function refreshLabels() {
  const map = window.sifc && window.sifc.map;
  if (!map || !map.getLayer("communes-fill")) return;
  state.labels.forEach((m) => m.remove());
  state.labels = [];
  if (map.getZoom() < 8 || state.hidden.has("communes")) return;
  const byCode = {};
  map.queryRenderedFeatures({layers: ["communes-fill"]}).forEach((f) => {
    (byCode[f.properties.code] = byCode[f.properties.code] || []).push(f);
  });
  const placed = [];
  Object.values(byCode).slice(0, 120).forEach((features) => {
    const p = features[0].properties;
    const at = map.project(labelPoint(features));
    if (placed.some((q) => Math.abs(q.x - at.x) < 90 && Math.abs(q.y - at.y) < 30)) return;
    placed.push(at);
    const node = el("div", {class: "commune-label", "data-code": p.code}, p.name);
    if (p.boundary_status === "provisional") node.append(el("div", {class: "provisional"}, `(${t("label.provisional")})`));
    state.labels.push(new maplibregl.Marker({element: node}).setLngLat(labelPoint(features)).addTo(map));
  });
}

// ---- localités (villages, quartiers): points from the communes in view, labelled where they help ---------
const LOCALITE_MIN_ZOOM = 11;
const LOCALITE_LABEL_ZOOM = 13;
const OSM_ATTRIBUTION = "© les contributeurs d'OpenStreetMap, ODbL 1.0";
const localites = {byCommune: {}, labels: []};

async function refreshLocalites() {
  const map = window.sifc && window.sifc.map;
  if (!map || !map.getSource("localites")) return;
  localites.labels.forEach((m) => m.remove());
  localites.labels = [];
  if (map.getZoom() < LOCALITE_MIN_ZOOM || state.hidden.has("localites")) return;
  const communes = state.hidden.has("communes") ? map.querySourceFeatures("communes", {sourceLayer: "communes"})
    : map.queryRenderedFeatures({layers: ["communes-fill"]});
  const codes = [...new Set(communes.map((f) => f.properties.code))];
  await Promise.all(codes.slice(0, 12).filter((c) => !(c in localites.byCommune)).map(async (code) => {
    localites.byCommune[code] = [];
    const result = await api(`/communes/${encodeURIComponent(code)}/localites`);
    if (result.ok && result.body && result.body.features) localites.byCommune[code] = result.body.features;
  }));
  const features = codes.flatMap((c) => localites.byCommune[c] || []);
  setData("localites", features);
  if (map.getZoom() < LOCALITE_LABEL_ZOOM) return;
  const view = map.getBounds();
  features.filter((f) => view.contains(f.geometry.coordinates)).slice(0, 200).forEach((f) => {
    const href = `/app/pages/localites.html?commune=${encodeURIComponent(f.properties.commune_code)}&id=${f.id}`;
    const node = el("a", {class: "localite-label", href, "data-id": f.id, title: f.properties.kind}, f.properties.name);
    localites.labels.push(new maplibregl.Marker({element: node, anchor: "top", offset: [0, 4]})
      .setLngLat(f.geometry.coordinates).addTo(map));
  });
}

// ---- clicks and drawing modes ---------------------------------------------------------------------------
function onMapClick(event) {
  if (state.mode !== "select") return addSketchPoint(event.lngLat);
  const hits = window.sifc.map.queryRenderedFeatures(event.point, {layers: ["parcels-fill"]});
  if (hits.length) return openParcel(hits[0].properties.id);
  return openPlace(event.lngLat.lng, event.lngLat.lat);
}

function setMode(mode) {
  state.mode = state.mode === mode ? "select" : mode;
  state.sketch = [];
  drawSketch();
  document.querySelectorAll("#tools [data-mode]").forEach((b) => b.classList.toggle("active", b.dataset.mode === state.mode));
  document.getElementById("finish").hidden = state.mode === "select";
  status(state.mode === "select" ? "" : t("tool.hint"));
}

function addSketchPoint(lngLat) {
  state.sketch.push([lngLat.lng, lngLat.lat]);
  drawSketch();
  if (state.mode === "measure-line" && state.sketch.length > 1) status(`${t("measure.distance")} : ${formatLength(lineLength(state.sketch))}`);
  if (state.mode === "measure-area" && state.sketch.length > 2) status(`${t("measure.area")} : ${formatArea(ringArea(state.sketch))}`);
}

function sketchPolygon() {
  return {type: "Polygon", coordinates: [[...state.sketch, state.sketch[0]]]};
}

function drawSketch() {
  const points = state.sketch.map((c) => ({type: "Feature", properties: {}, geometry: {type: "Point", coordinates: c}}));
  const shapes = [];
  if (state.mode !== "measure-line" && state.sketch.length > 2) shapes.push({type: "Feature", properties: {}, geometry: sketchPolygon()});
  else if (state.sketch.length > 1) shapes.push({type: "Feature", properties: {}, geometry: {type: "LineString", coordinates: state.sketch}});
  setData("sketch", [...shapes, ...points]);
}

function finishSketch() {
  if (state.mode === "draw-query" && state.sketch.length > 2) queryPolygon(sketchPolygon());
  const mode = state.mode;
  state.mode = "select";
  document.querySelectorAll("#tools [data-mode]").forEach((b) => b.classList.remove("active"));
  document.getElementById("finish").hidden = true;
  if (mode === "draw-query") status("");
}

function clearAll() {
  setMode("select");
  ["selection", "query", "overlaps", "rejects", "field-preview", "sketch"].forEach((s) => setData(s, []));
  status("");
}

// ---- measures (on the WGS 84 ellipsoid, in the browser) ---------------------------------------------------
// Each segment or polygon is measured in a local tangent plane scaled by the ellipsoid's radii of curvature
// (meridian M, prime vertical N) at its mean latitude: within 0.1 % of the geodesic for the few kilometres a
// land officer measures, with no library.
const rad = (d) => (d * Math.PI) / 180;
const E2 = 0.00669437999014;  // WGS 84 first eccentricity squared

function radii(lat) {
  const w = 1 - E2 * Math.sin(rad(lat)) ** 2;
  return {m: (EARTH_RADIUS * (1 - E2)) / w ** 1.5, n: EARTH_RADIUS / Math.sqrt(w)};
}

function localXY(coords) {
  const lat0 = coords.reduce((s, c) => s + c[1], 0) / coords.length;
  const lon0 = coords[0][0];
  const {m, n} = radii(lat0);
  return coords.map(([lon, lat]) => [rad(lon - lon0) * n * Math.cos(rad(lat0)), rad(lat - lat0) * m]);
}

function segment(a, b) {
  const [p, q] = localXY([a, b]);
  return Math.hypot(q[0] - p[0], q[1] - p[1]);
}

function lineLength(coords) {
  return coords.slice(1).reduce((sum, c, i) => sum + segment(coords[i], c), 0);
}

function ringArea(coords) {
  const xy = localXY(coords);
  let twice = 0;
  for (let i = 0; i < xy.length; i += 1) {
    const [x1, y1] = xy[i];
    const [x2, y2] = xy[(i + 1) % xy.length];
    twice += x1 * y2 - x2 * y1;  // the shoelace formula
  }
  return Math.abs(twice) / 2;
}

function formatLength(m) { return m >= 1000 ? `${number(m / 1000, 3)} km` : `${number(m, 1)} m`; }
function formatArea(m2) { return m2 >= 10000 ? `${number(m2 / 10000, 4)} ha (${number(m2)} m²)` : `${number(m2, 1)} m²`; }

// ---- parcel sheet -----------------------------------------------------------------------------------------
async function openParcel(id, fit = false) {
  state.parcel = id;
  const result = await api(`/parcels/${encodeURIComponent(id)}`);
  if (!result.ok) return showPanel(el("p", {class: "error"}, problem(result)));
  const feature = result.body;
  setData("selection", [feature]);
  if (fit) fitTo(feature.geometry, 18);
  const body = showPanel(parcelHeader(feature));
  const sections = await Promise.all([rightsSection(id), historySection(id), lineageSection(id), proceduresSection(id)]);
  if (state.parcel === id) body.append(...sections);
  return feature;
}

function parcelHeader(feature) {
  const p = feature.properties;
  return el("div", {id: "parcel-sheet", "data-id": p.id},
    el("h2", {}, `${t("parcel.title")} ${p.nicad || `(${t("parcel.no_nicad")})`}`),
    table([
      [t("parcel.nicad"), p.nicad, "sheet-nicad"], [t("parcel.nicad_status"), p.nicad_status],
      [t("parcel.commune"), p.commune_code], [t("parcel.section"), `${p.section || "—"} / ${p.local_number || "—"}`],
      [t("parcel.area"), p.area_m2 != null ? `${number(p.area_m2, 2)} m²` : null],
      [t("parcel.declared_area"), p.declared_area_m2 != null ? `${number(p.declared_area_m2, 2)} m²` : null],
      [t("parcel.land_use"), p.land_use], [t("parcel.tenure"), p.tenure_regime], [t("parcel.version"), p.version],
    ]),
    el("p", {}, el("a", {href: `/parcels/${p.id}/fiche.pdf`, target: "_blank", id: "fiche-link"}, t("parcel.fiche"))));
}

function holderText(h) {
  const party = h.party || h;
  const name = [party.given_names, party.name].filter(Boolean).join(" ") || party.party_id || h.party_id || "?";
  return h.share ? `${name} (${h.share})` : name;
}

async function rightsSection(id) {
  const result = await api(`/parcels/${id}/rights`);
  const section = el("section", {id: "sheet-rights"}, el("h3", {}, t("parcel.rights")));
  if (!result.ok) return section.appendChild(el("p", {}, problem(result))) && section;
  const rights = result.body.rights || [];
  if (!rights.length) section.append(el("p", {}, t("parcel.no_rights")));
  section.append(el("ul", {}, rights.map((r) => el("li", {},
    `${r.type} — ${r.status} — ${r.start_date || ""}${r.end_date ? ` → ${r.end_date}` : ""}`,
    r.holders ? el("div", {class: "holders"}, `${t("parcel.holders")} : ${r.holders.map(holderText).join(", ")}`) : ""))));
  return section;
}

async function historySection(id) {
  const result = await api(`/parcels/${id}/history`);
  const section = el("section", {id: "sheet-history"}, el("h3", {}, t("parcel.history")));
  if (!result.ok) return section.appendChild(el("p", {}, problem(result))) && section;
  const versions = result.body.versions || [];
  section.append(el("ul", {}, versions.map((v) => el("li", {},
    `v${v.properties.version} — ${String(v.properties.valid_from).slice(0, 10)}${v.properties.valid_to ? ` → ${String(v.properties.valid_to).slice(0, 10)}` : ""} — ${v.properties.reason || ""}`))));
  return section;
}

function lineageItems(entries) {
  return entries.map((m) => el("li", {}, `${m.kind || m.type || ""} ${m.occurred_on || m.date || ""} : `,
    [...(m.parents || []), ...(m.children || [])].map((p) => p.nicad || p.id).join(", ")));
}

async function lineageSection(id) {
  const result = await api(`/parcels/${id}/lineage`);
  const section = el("section", {id: "sheet-lineage"}, el("h3", {}, t("parcel.lineage")));
  if (!result.ok) return section.appendChild(el("p", {}, problem(result))) && section;
  const {ancestors = [], descendants = []} = result.body;
  if (!ancestors.length && !descendants.length) section.append(el("p", {}, t("parcel.no_lineage")));
  if (ancestors.length) section.append(el("p", {}, t("parcel.ancestors")), el("ul", {}, lineageItems(ancestors)));
  if (descendants.length) section.append(el("p", {}, t("parcel.descendants")), el("ul", {}, lineageItems(descendants)));
  return section;
}

async function proceduresSection(id) {
  const section = el("section", {id: "sheet-procedures"}, el("h3", {}, t("parcel.procedures")));
  if (!state.token) return section.appendChild(el("p", {}, t("auth.needed"))) && section;
  const result = await api(`/parcels/${id}/procedures`);
  if (!result.ok) return section.appendChild(el("p", {}, problem(result))) && section;
  const list = Array.isArray(result.body) ? result.body : result.body.procedures || [];
  section.append(el("ul", {}, list.map((p) => el("li", {},
    `${p.reference || p.kind} — ${p.state} `,
    el("span", {class: "result", "data-procedure": p.id, onclick: () => openProcedure(p.id)}, t("procedure.open"))))));
  return section;
}

// ---- procedure page (land officer) --------------------------------------------------------------------------
const STEPS = ["surveyed", "deliberated", "approved", "notified", "refused"];

async function openProcedure(id) {
  const result = await api(`/procedures/${id}`);
  if (!result.ok) return showPanel(el("p", {class: "error"}, problem(result)));
  const proc = result.body;
  const sourceIds = [...new Set((proc.steps || []).flatMap((s) => s.source_ids || []))];
  const documents = el("ul", {id: "procedure-documents"});
  showPanel(el("div", {id: "procedure", "data-id": id, "data-state": proc.state},
    el("h2", {}, `${t("procedure.title")} ${proc.reference || ""} — ${proc.state}`),
    el("p", {}, (proc.applicants || []).map((a) => `${a.name} (${a.share})`).join(", ")),
    el("h3", {}, t("procedure.steps")),
    el("ol", {id: "procedure-steps"}, (proc.steps || []).map((s) => el("li", {}, `${s.step} — ${s.occurred_on}${s.reason ? ` — ${s.reason}` : ""}`))),
    el("h3", {}, t("procedure.documents")), documents,
    stepForm(id, result.headers.get("ETag"))));
  const sources = await Promise.all(sourceIds.map((s) => api(`/sources/${s}`)));
  documents.append(...sources.filter((r) => r.ok).map((r) => el("li", {},
    `${r.body.kind} ${r.body.reference || ""} (${r.body.document_date || ""})`,
    ...(r.body.files || []).map((f) => el("a", {href: `/sources/${r.body.id}/files/${f.id}`, target: "_blank"}, ` ${f.name || f.file_name || "PDF"}`)))));
  return proc;
}

function stepForm(id, etag) {
  const form = el("form", {id: "step-form"}, el("h3", {}, t("procedure.next")),
    el("label", {}, t("procedure.step"), " ", el("select", {name: "step"}, STEPS.map((s) => el("option", {value: s}, s)))),
    el("label", {}, t("procedure.date"), " ", el("input", {name: "occurred_on", type: "date", required: ""})),
    el("label", {}, t("procedure.sources"), " ", el("input", {name: "source_ids"})),
    el("label", {}, el("input", {type: "checkbox", name: "neighbours_consulted", value: "true"}), " ", t("procedure.neighbours")),
    el("label", {}, t("procedure.reason"), " ", el("input", {name: "reason"})),
    el("button", {type: "submit"}, t("procedure.record")), el("p", {class: "message error"}));
  form.addEventListener("submit", (e) => { e.preventDefault(); recordStep(id, etag, form); });
  return form;
}

async function recordStep(id, etag, form) {
  const data = new FormData(form);
  const body = {step: data.get("step"), occurred_on: data.get("occurred_on"),
                source_ids: String(data.get("source_ids") || "").split(",").map((s) => s.trim()).filter(Boolean),
                details: data.get("neighbours_consulted") ? {neighbours_consulted: true} : {}};
  if (data.get("reason")) body.reason = data.get("reason");
  const result = await api(`/procedures/${id}/steps`, {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "If-Match": etag || ""}});
  if (!result.ok) { form.querySelector(".message").textContent = problem(result); return; }
  await openProcedure(id);
  status(t("procedure.recorded"));
}

// ---- search -----------------------------------------------------------------------------------------------
async function search(event) {
  event.preventDefault();
  const kind = document.getElementById("search-kind").value;
  const text = document.getElementById("search-text").value.trim();
  if (!text) return null;
  if (kind === "nicad") return searchNicad(text);
  if (kind === "commune") return searchUnits(text, ["communes"]);
  const coords = text.match(/^\s*(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)\s*$/);
  if (coords) return openPlace(Number(coords[1]), Number(coords[2]), true);
  return searchUnits(text, ["communes", "arrondissements", "departments", "regions"]);
}

async function searchNicad(nicad) {
  const result = await api(`/parcels/by-nicad/${encodeURIComponent(nicad)}`);
  if (!result.ok) return showPanel(el("p", {class: "error"}, problem(result)));
  return openParcel(result.body.properties.id, true);
}

async function searchUnits(text, levels) {
  const found = await Promise.all(levels.map(async (level) => {
    const r = await api(`/${level}?q=${encodeURIComponent(text)}&geometry=false&limit=10`);
    return r.ok ? r.body.features.map((f) => ({level, ...f.properties})) : [];
  }));
  const units = found.flat();
  if (units.length === 1 && levels.length === 1) return openCommune(units[0].code);
  return showPanel(el("h2", {}, t("search.results")), units.length ? el("ul", {id: "search-results"}, units.map((u) =>
    el("li", {}, el("span", {class: "result", onclick: () => openUnit(u.level, u.code)}, `${u.name} (${u.code})`)))) : el("p", {}, t("search.none")));
}

async function openUnit(level, code) {
  if (level === "communes") return openCommune(code);
  const result = await api(`/${level}/${encodeURIComponent(code)}?simplify=100`);
  if (result.ok && result.body.geometry) fitTo(result.body.geometry, 12);
  return result;
}

async function openPlace(lon, lat, fly = false) {
  const result = await api(`/locate?lon=${lon}&lat=${lat}`);
  if (fly) window.sifc.map.flyTo({center: [lon, lat], zoom: Math.max(window.sifc.map.getZoom(), 15)});
  if (!result.ok) return showPanel(el("p", {class: "error"}, problem(result)));
  const levels = ["pole", "region", "department", "arrondissement", "commune"].filter((l) => result.body[l]);
  return showPanel(el("h2", {}, `${t("place.title")} ${number(lon, 5)}, ${number(lat, 5)}`),
    table(levels.map((l) => [l, `${result.body[l].name} (${result.body[l].code})${result.body[l].boundary_status === "provisional" ? ` — ${t("label.provisional")}` : ""}`])),
    result.body.commune ? el("p", {}, el("span", {class: "result", onclick: () => openCommune(result.body.commune.code)}, t("commune.title")))
                        : el("p", {}, t("place.outside")),
    result.body.pole ? el("p", {}, el("span", {class: "result", id: "pole-dashboard-link",
                                               onclick: () => openPoleDashboard(result.body.pole)}, t("pole.dashboard"))) : "");
}

// ---- a territorial pole's dashboard (charts drawn by the service: /dashboards/pole/{code}.png) -------------
function openPoleDashboard(pole) {
  const base = `/dashboards/pole/${encodeURIComponent(pole.code)}`;
  return showPanel(el("div", {id: "pole", "data-code": pole.code}, el("h2", {}, `${t("pole.dashboard")} ${pole.name}`),
    el("p", {}, el("a", {href: `${base}.pdf`, target: "_blank"}, "PDF"), " · ", el("a", {href: base, target: "_blank"}, "JSON")),
    el("img", {src: `${base}.png`, alt: t("pole.dashboard"), loading: "lazy"})));
}

// ---- commune: zoom, overlaps, dashboard ----------------------------------------------------------------------
async function openCommune(code) {
  const result = await api(`/communes/${encodeURIComponent(code)}?simplify=20`);
  if (!result.ok) return showPanel(el("p", {class: "error"}, problem(result)));
  const p = result.body.properties;
  state.commune = code;
  if (result.body.geometry) fitTo(result.body.geometry, 15);
  return showPanel(el("div", {id: "commune", "data-code": code}, el("h2", {}, `${t("commune.title")} ${p.name}`),
    table([["code", p.code], [t("commune.status"), t(`status.${p.boundary_status === "provisional" ? "provisional" : "official"}`)]]),
    el("p", {}, el("button", {type: "button", onclick: () => result.body.geometry && fitTo(result.body.geometry, 15)}, t("commune.zoom")), " ",
       el("button", {type: "button", id: "show-overlaps", onclick: () => showOverlaps(code)}, t("commune.overlaps"))),
    el("p", {id: "overlaps-count"}),
    el("h3", {}, t("commune.dashboard")),
    el("p", {}, el("a", {href: `/dashboards/commune/${encodeURIComponent(code)}`, target: "_blank"}, t("commune.dashboard"))),
    el("img", {src: `/dashboards/commune/${encodeURIComponent(code)}.png`, alt: t("commune.dashboard"), loading: "lazy"})));
}

async function showOverlaps(code) {
  const result = await api(`/communes/${encodeURIComponent(code)}/overlaps`);
  const out = document.getElementById("overlaps-count");
  if (!result.ok) { if (out) out.textContent = problem(result); return; }
  setData("overlaps", result.body);
  if (out) out.textContent = `${result.body.features.length} ${t("commune.overlaps_found")}`;
}

// ---- polygon query ------------------------------------------------------------------------------------------
async function queryPolygon(geometry) {
  const result = await api("/parcels/intersecting", {method: "POST", body: JSON.stringify(geometry),
                                                     headers: {"Content-Type": "application/json"}});
  if (!result.ok) return showPanel(el("p", {class: "error"}, problem(result)));
  setData("query", result.body);
  const features = result.body.features;
  return showPanel(el("h2", {}, `${features.length} ${t("query.found")}`), el("ul", {id: "query-results"}, features.map((f) =>
    el("li", {}, el("span", {class: "result", onclick: () => openParcel(f.properties.id, true)}, f.properties.nicad || f.properties.id),
       ` — ${f.properties.land_use || ""} — ${number(f.properties.area_m2 || 0)} m²`))));
}

// ---- sign-in -------------------------------------------------------------------------------------------------
async function login(event) {
  event.preventDefault();
  const form = event.target;
  const result = await api("/auth/token", {method: "POST", body: new URLSearchParams(new FormData(form))});
  if (!result.ok) { document.getElementById("login-error").textContent = `${t("auth.failed")} : ${problem(result)}`; return; }
  keepTokens(result.body);
  state.user = form.username.value.trim().toLowerCase();
  sessionStorage.setItem("sifc.user", state.user);
  form.reset();
  document.getElementById("login").close();
  showUser();
}

function keepTokens(body) {
  state.token = body.access_token;
  state.refresh = body.refresh_token;
  sessionStorage.setItem("sifc.token", state.token);
  sessionStorage.setItem("sifc.refresh", state.refresh || "");
}

async function renewToken() {
  const response = await fetch("/auth/refresh", {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify({refresh_token: state.refresh})});
  if (!response.ok) { forgetTokens(); showUser(); return false; }
  keepTokens(await response.json());
  return true;
}

function forgetTokens() {
  state.token = state.refresh = state.user = null;
  ["sifc.token", "sifc.refresh", "sifc.user"].forEach((k) => sessionStorage.removeItem(k));
}

async function logout() {
  if (state.refresh) await api("/auth/logout", {method: "POST", body: JSON.stringify({refresh_token: state.refresh}),
                                                headers: {"Content-Type": "application/json"}});
  forgetTokens();
  showUser();
}

function showUser() {
  document.getElementById("who").textContent = state.user || "";
  document.getElementById("login-open").hidden = Boolean(state.token);
  document.getElementById("logout").hidden = !state.token;
}

// ---- imports (analyst) ---------------------------------------------------------------------------------------
function openImports() {
  const form = el("form", {id: "import-form"},
    el("label", {}, t("import.file"), " ", el("input", {type: "file", name: "file", required: ""})),
    el("label", {}, t("import.commune"), " ", el("input", {name: "commune", value: state.commune || ""})),
    el("label", {}, t("import.on_invalid"), " ", el("select", {name: "on_invalid"}, el("option", {value: "repair"}, "repair"), el("option", {value: "reject"}, "reject"))),
    el("label", {}, el("input", {type: "checkbox", name: "dry_run", value: "true"}), " ", t("import.dry_run")),
    el("button", {type: "submit"}, t("import.send")));
  form.addEventListener("submit", (e) => { e.preventDefault(); sendImport(form); });
  showPanel(el("h2", {}, t("import.title")), state.token ? form : el("p", {}, t("auth.needed")), el("div", {id: "import-job"}),
            state.token ? fieldReturnPart() : "");
}

async function sendImport(form) {
  const data = new FormData(form);
  if (!data.get("commune")) data.delete("commune");
  const result = await api("/imports", {method: "POST", body: data});
  if (!result.ok) { document.getElementById("import-job").textContent = problem(result); return; }
  followImport(result.body.id);
}

async function followImport(id) {
  const result = await api(`/imports/${id}`);
  if (!result.ok) { document.getElementById("import-job").textContent = problem(result); return; }
  const job = result.body;
  showJob(job);
  if (job.status === "queued" || job.status === "running") setTimeout(() => followImport(id), 1000);
}

function showJob(job) {
  const box = document.getElementById("import-job");
  if (!box) return;
  box.replaceChildren(table([[t("import.status"), job.status, "import-status"], [t("import.stage"), job.stage],
    [t("import.progress"), job.progress != null ? String(job.progress) : null]]),
    job.error ? el("p", {class: "error"}, job.error.message) : "",
    job.links.report ? el("button", {type: "button", onclick: () => showReport(job.id)}, t("import.report")) : "",
    job.links.rejects ? el("button", {type: "button", onclick: () => showRejects(job.id)}, t("import.rejects")) : "",
    el("div", {id: "import-report"}));
}

async function showReport(id) {
  const result = await api(`/imports/${id}/report`);
  const box = document.getElementById("import-report");
  if (!result.ok) { box.textContent = problem(result); return; }
  const report = result.body;
  const counts = Object.entries(report).filter(([k, v]) => typeof v === "number" || (typeof v === "string" && k !== "sha256"));
  box.replaceChildren(table(counts.map(([k, v]) => [k, String(v)])),
    el("h3", {}, `${t("import.issues")} (${(report.issues || []).length})`),
    el("ul", {id: "import-issues"}, (report.issues || []).slice(0, 200).map((i) => el("li", {},
      `#${i.feature} ${i.status} : ${[...(i.reasons || []), ...(i.warnings || [])].join(", ")}${i.nicad ? ` (${i.nicad})` : ""}`))));
}

async function showRejects(id) {
  const result = await api(`/imports/${id}/rejects?format=geojson`);
  if (!result.ok || !result.body || !result.body.features) { status(problem(result)); return; }
  setData("rejects", result.body);
  if (result.body.features.length) fitTo({type: "GeometryCollection", geometries: result.body.features.map((f) => f.geometry).filter(Boolean)});
}

// ---- field return (agent foncier): preview a returned package, then apply it ----------------------------------
// The holder sends the zip (or data.gpkg) edited in QGIS/QField; a dry run shows what the registry would do with
// each changed feature, drawn on the map by status, before the same file is sent for real.
function fieldReturnPart() {
  const select = el("select", {name: "package", required: ""});
  const file = el("input", {type: "file", name: "file", accept: ".zip,.gpkg", required: ""});
  const apply = el("button", {type: "button", id: "field-apply", disabled: ""}, t("field.apply"));
  const form = el("form", {id: "field-return-form"},
    el("label", {}, t("field.package"), " ", select),
    el("label", {}, t("field.file"), " ", file),
    el("button", {type: "submit", id: "field-preview-send"}, t("field.preview")), " ", apply);
  form.addEventListener("submit", (e) => { e.preventDefault(); sendFieldReturn(form, true); });
  apply.addEventListener("click", () => sendFieldReturn(form, false));
  // Only the file just previewed may be applied: another file or package asks for a new preview.
  [select, file].forEach((input) => input.addEventListener("change", () => { apply.disabled = true; }));
  loadFieldPackages(select);
  return el("section", {id: "field-return"}, el("h2", {}, t("field.title")), form, el("div", {id: "field-job"}));
}

async function loadFieldPackages(select) {
  const result = await api("/field/packages?status=open&limit=200");
  const mine = result.ok ? result.body.packages.filter((p) => p.issued_to === state.user) : [];
  select.replaceChildren(...mine.map((p) => el("option", {value: p.id},
    `${p.commune_code} — ${p.issued_at.slice(0, 10)} — ${p.item_count} ${t("field.parcels")} (${p.id.slice(0, 8)})`)));
  if (!mine.length) select.append(el("option", {value: "", disabled: ""}, result.ok ? t("field.no_package") : problem(result)));
}

async function sendFieldReturn(form, dryRun) {
  const data = new FormData(form);
  const id = data.get("package");
  data.delete("package");
  const box = document.getElementById("field-job");
  document.getElementById("field-apply").disabled = true;
  if (dryRun) setData("field-preview", []);
  if (!id) { box.textContent = t("field.no_package"); return; }
  box.replaceChildren(el("p", {}, t("field.sending")));
  const result = await api(`/field/packages/${encodeURIComponent(id)}/return?dry_run=${dryRun}`,
                           {method: "POST", body: data});
  if (!result.ok) { box.replaceChildren(el("p", {class: "error"}, problem(result))); return; }
  followFieldReturn(result.body.id, dryRun);
}

async function followFieldReturn(id, dryRun) {
  const result = await api(`/field/returns/${id}`);
  const box = document.getElementById("field-job");
  if (!box) return;
  if (!result.ok) { box.replaceChildren(el("p", {class: "error"}, problem(result))); return; }
  const job = result.body;
  box.replaceChildren(table([[t("import.status"), job.status, "field-status"], [t("import.stage"), job.stage]]),
    job.error ? el("p", {class: "error"}, job.error.message) : "", el("div", {id: "field-report"}));
  if (job.status === "queued" || job.status === "running") { setTimeout(() => followFieldReturn(id, dryRun), 1000); return; }
  if (job.status !== "done") return;
  const report = await api(`/field/returns/${id}/report`);
  if (!report.ok) { document.getElementById("field-report").textContent = problem(report); return; }
  showFieldReport(id, job, report.body);
  if (dryRun && !report.body.already_applied) document.getElementById("field-apply").disabled = false;
}

function fieldStatus(status, dryRun) {
  return t(`field.status.${status === "applied" && dryRun ? "to_apply" : status}`);
}

function showFieldReport(id, job, report) {
  const counts = report.counts || {};
  const changed = (report.features || []).filter((f) => f.status !== "unchanged");
  const rejected = (counts.conflict || 0) + (counts.refused || 0);
  const keys = [...FIELD_STATUSES, "unchanged", "photos"];
  document.getElementById("field-report").replaceChildren(
    el("h3", {}, t(report.dry_run ? "field.preview_title" : "field.outcome_title")),
    report.already_applied ? el("p", {id: "field-already"}, t("field.already_applied")) : "",
    table(keys.map((k) => [k === "photos" ? t("field.photos") : fieldStatus(k, report.dry_run), String(counts[k] || 0),
                           `field-count-${k}`])),
    el("ul", {id: "field-features"}, changed.slice(0, 500).map((f) => el("li", {"data-status": f.status},
      el("span", {class: `field-key ${f.status}`}), `${f.layer} #${f.fid} — ${fieldStatus(f.status, report.dry_run)}`,
      f.message ? ` : ${f.message}` : ""))),
    (report.warnings || []).length ? el("ul", {id: "field-warnings"}, report.warnings.slice(0, 200).map((w) =>
      el("li", {}, `${w.layer} #${w.fid} : ${w.message}`))) : "",
    rejected && job.links.rejects ? el("p", {}, el("a", {href: `/field/returns/${id}/rejects`, id: "field-rejects",
      onclick: (e) => { e.preventDefault(); downloadFieldRejects(id); }}, t("field.rejects"))) : "");
  drawFieldPreview(changed);
}

// Every changed feature on the map: the file's shape (a conflict's registry shape dashed beside it); a feature the
// report gives no shape of (a deletion, an attribute change) is drawn with the registry's current shape.
async function drawFieldPreview(changed) {
  const shapes = await Promise.all(changed.map(async (f) => {
    const props = {layer: f.layer, fid: f.fid, status: f.status};
    const out = [];
    let geometry = f.geometry || (f.field && f.field.geometry);
    if (!geometry && f.parcel_id) {
      const parcel = await api(`/parcels/${encodeURIComponent(f.parcel_id)}`);
      geometry = parcel.ok ? parcel.body.geometry : null;
    }
    if (geometry) out.push({type: "Feature", properties: {...props, side: "field"}, geometry});
    if (f.registry && f.registry.geometry) {
      out.push({type: "Feature", properties: {...props, side: "registry"}, geometry: f.registry.geometry});
    }
    return out;
  }));
  const features = shapes.flat();
  setData("field-preview", features);
  if (!features.length) return;
  // Clear of the side panel, where the report is read beside the map.
  const panel = document.getElementById("panel");
  const right = panel.hidden ? 60 : panel.offsetWidth + 40;
  window.sifc.map.fitBounds(bounds({type: "GeometryCollection", geometries: features.map((f) => f.geometry)}),
                            {padding: {top: 60, bottom: 60, left: 60, right}, maxZoom: 19, duration: 600});
}

async function downloadFieldRejects(id) {
  const result = await api(`/field/returns/${id}/rejects`);
  if (!result.ok || !(result.body instanceof Blob)) { status(problem(result)); return; }
  const url = URL.createObjectURL(result.body);
  const link = el("a", {href: url, download: `retour-${id}.gpkg`});
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---- offline: a commune office without its link keeps a read-only map (web/src/sw.js) ---------------------------
// The service worker keeps the application and the public map data viewed, and says when it answers from its
// copies; the page then shows the banner and disables every action that writes (or needs the service).
const link = {offline: false, date: null, retry: null};
const WRITE_CONTROLS = ["#login-open", "#open-imports", "#tools [data-mode='draw-query']", "#step-form button[type=submit]",
                        "#import-form button[type=submit]", "#field-return-form button"].join(", ");

function startServiceWorker() {
  window.addEventListener("offline", () => setOffline(true));
  window.addEventListener("online", checkLink);
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.addEventListener("message", (event) => {
    const message = event.data || {};
    if (message.type === "sifc-link" && message.offline) setOffline(true, message.date);
    else if (message.type === "sifc-link") checkLink();
    else if (message.type === "sifc-status" && link.offline) setOffline(true, message.date);
  });
  navigator.serviceWorker.register("/sw.js").catch(() => { /* no worker (private window…): online only */ });
}

// Whether the service answers, asked of /health, which the worker never answers from a copy.
async function checkLink() {
  let up = navigator.onLine;
  if (up) {
    try { up = (await fetch("/health", {cache: "no-store"})).ok; } catch (error) { up = false; }
  }
  setOffline(!up);
  if (!up && navigator.serviceWorker && navigator.serviceWorker.controller) {
    navigator.serviceWorker.controller.postMessage({type: "sifc-status"});
  }
}

function setOffline(offline, date) {
  if (!offline) link.date = null;
  else if (date && (!link.date || date < link.date)) link.date = date;
  link.offline = offline;
  clearInterval(link.retry);
  link.retry = offline ? setInterval(checkLink, 30_000) : null;
  document.body.classList.toggle("offline", offline);
  const banner = document.getElementById("offline");
  banner.hidden = !offline;
  banner.textContent = offline ? t("offline.banner").replace("{date}", link.date ? when(link.date) : t("offline.date_unknown")) : "";
  disableWrites();
}

function when(iso) {
  return new Date(iso).toLocaleString(state.lang === "fr" ? "fr-FR" : "en-GB", {dateStyle: "short", timeStyle: "short"});
}

// Each control gets back, online, the state it had (the field return's Apply stays off until a preview).
function disableWrites() {
  document.querySelectorAll(WRITE_CONTROLS).forEach((control) => {
    if (link.offline && !("offlineWas" in control.dataset)) {
      control.dataset.offlineWas = String(control.disabled);
      control.disabled = true;
    } else if (!link.offline && "offlineWas" in control.dataset) {
      control.disabled = control.dataset.offlineWas === "true";
      delete control.dataset.offlineWas;
    }
  });
}

// ---- start ---------------------------------------------------------------------------------------------------
function bindUi() {
  document.getElementById("search").addEventListener("submit", search);
  document.getElementById("lang").addEventListener("click", switchLanguage);
  document.querySelectorAll("#tools [data-mode]").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  document.getElementById("finish").addEventListener("click", finishSketch);
  document.getElementById("clear").addEventListener("click", clearAll);
  document.getElementById("open-imports").addEventListener("click", openImports);
  document.getElementById("panel-close").addEventListener("click", () => { document.getElementById("panel").hidden = true; });
  document.getElementById("login-open").addEventListener("click", () => document.getElementById("login").showModal());
  document.getElementById("login-cancel").addEventListener("click", () => document.getElementById("login").close());
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
}

async function loadConfig() {
  try {
    const response = await fetch("/app/config.json");
    if (response.ok) return await response.json();
  } catch (error) { /* the map works without it: no base layer */ }
  return {basemap: null};
}

async function start() {
  window.SIFC_STRINGS = await loadStrings();
  window.sifc = {state, t, api, openParcel, openCommune, openProcedure, searchNicad, queryPolygon, showOverlaps,
                 lineLength, ringArea, setGroupVisible};
  bindUi();
  showUser();
  const config = await loadConfig();
  bindLegend(config);
  window.sifc.map = createMap(config);
  applyLanguage();
  Object.assign(window.sifc, {link, checkLink});
  startServiceWorker();
  checkLink();
}

start();
