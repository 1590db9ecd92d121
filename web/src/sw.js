// SIFC service worker: a commune office that loses its link to the pole's service keeps a read-only map.
//
// It keeps the application's own files (the shell) and the public map data the user has viewed (vector tiles,
// TileJSON, the public GeoJSON of parcels and territorial units), and serves them when the service cannot be
// reached. Always the network first: online, every answer is the service's current one, and the copy is only
// refreshed. Nothing else is kept: no write (only GETs are looked at), no answer to a signed-in request (one may
// carry personal data: authors, holders, free text), no answer the service marks no-store or private, and no
// route outside the lists below (accounts, imports, field packages, documents, journals…).
"use strict";

const VERSION = "1";
const SHELL_CACHE = `sifc-shell-${VERSION}`;
const DATA_CACHE = `sifc-data-${VERSION}`;
// About 3,000 answers (mostly tiles of a few to some tens of kB): tens of MB at most. Past the limit, the answers
// fetched longest ago go first (Cache API keys keep the order of their last put).
const DATA_LIMIT = 3000;
const TRIM_EVERY = 50;
const CACHED_AT = "x-sifc-cached-at";
const SHELL = ["/", "/app/app.js", "/app/app.css", "/app/config.json", "/app/i18n/fr.json", "/app/i18n/en.json",
               "/app/vendor/maplibre-gl/maplibre-gl.js", "/app/vendor/maplibre-gl/maplibre-gl.css"];
// Public answers the map reads: the same to everyone, with no personal field (sifc/personal.py serves those to
// signed-in officers in scope only, and their requests are never kept).
const PUBLIC_DATA = [
  /^\/tiles\/[a-z_]+\/tilejson\.json$/,
  /^\/tiles\/[a-z_]+\/\d+\/\d+\/\d+\.mvt$/,
  /^\/parcels\/[0-9a-f-]{36}$/,
  /^\/parcels\/[0-9a-f-]{36}\/(rights|history|lineage)$/,
  /^\/parcels\/by-nicad\/[^/]+$/,
  /^\/(poles|regions|departments|arrondissements|communes)(\/[^/]+)?$/,
  /^\/locate$/,
];

const link = {offline: false, oldest: null};  // this worker's view; the page asks for it on start
let puts = 0;

self.addEventListener("install", (event) => {
  event.waitUntil(Promise.all(SHELL.map(async (path) => {
    const request = new Request(path, {cache: "no-cache"});
    const response = await fetch(request);
    if (response.ok) await keep(SHELL_CACHE, request, response);
  })).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith("sifc-") && ![SHELL_CACHE, DATA_CACHE].includes(n))
                                      .map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;  // writes go to the service as they are, never kept
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;  // the optional base map: its server's own caching
  const kind = kindOf(request, url.pathname);
  if (kind) event.respondWith(networkFirst(event, kind));
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "sifc-status" && event.source) event.waitUntil(report(event.source));
});

function kindOf(request, path) {
  if (request.mode === "navigate") return path === "/" ? "shell" : null;
  if (SHELL.includes(path) || path.startsWith("/app/vendor/maplibre-gl/")) return "shell";
  return PUBLIC_DATA.some((pattern) => pattern.test(path)) ? "data" : null;
}

async function networkFirst(event, kind) {
  const request = event.request;
  const cacheName = kind === "shell" ? SHELL_CACHE : DATA_CACHE;
  let response = null;
  try {
    response = await fetch(request);
  } catch (error) {
    response = null;  // no network, or the service is down: the copy below
  }
  // 502-504: a proxy answered that the service cannot be reached.
  if (response && !(response.status >= 502 && response.status <= 504)) {
    if (keepable(request, response, kind)) event.waitUntil(keep(cacheName, request, response.clone(), kind === "data"));
    if (link.offline) event.waitUntil(changed(false, null));
    return response;
  }
  const copy = await (await caches.open(cacheName)).match(request, {ignoreVary: true, ignoreSearch: kind === "shell"});
  event.waitUntil(changed(true, kind === "data" && copy ? copy.headers.get(CACHED_AT) : null));
  return copy || response || Response.error();
}

function keepable(request, response, kind) {
  if (response.type !== "basic" || !(response.status === 200 || (kind === "data" && response.status === 204))) {
    return false;
  }
  if (/no-store|private/i.test(response.headers.get("cache-control") || "")) return false;
  // A signed-in officer's answer may hold personal data: it is read from the network only.
  return !(request.headers.has("authorization") || request.headers.has("x-api-key"));
}

async function keep(cacheName, request, response, trim = false) {
  const headers = new Headers(response.headers);
  headers.set(CACHED_AT, new Date().toISOString());
  const body = response.status === 204 ? null : await response.arrayBuffer();
  const cache = await caches.open(cacheName);
  await cache.put(request, new Response(body, {status: response.status, statusText: response.statusText, headers}));
  puts += 1;
  if (trim && puts % TRIM_EVERY === 0) {
    const keys = await cache.keys();
    await Promise.all(keys.slice(0, Math.max(0, keys.length - DATA_LIMIT)).map((key) => cache.delete(key)));
  }
}

// The page shows « données du <date> »: the oldest copy served since the link went down, else the shell's date
// (when the application was last loaded from the service).
async function changed(offline, servedAt) {
  const before = `${link.offline} ${link.oldest}`;
  link.offline = offline;
  if (!offline) link.oldest = null;
  else if (servedAt && (!link.oldest || servedAt < link.oldest)) link.oldest = servedAt;
  if (`${link.offline} ${link.oldest}` === before) return;
  const message = {type: "sifc-link", offline: link.offline, date: await dataDate()};
  (await self.clients.matchAll({type: "window"})).forEach((client) => client.postMessage(message));
}

async function dataDate() {
  if (link.oldest) return link.oldest;
  const shell = await (await caches.open(SHELL_CACHE)).match("/", {ignoreVary: true});
  return shell ? shell.headers.get(CACHED_AT) : null;
}

async function report(client) {
  client.postMessage({type: "sifc-status", offline: link.offline, date: await dataDate()});
}
