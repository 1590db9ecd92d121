// Localités of a commune (GET /communes/{code}/localites): the list, and an officer's add, move, rename or
// retirement (POST /localites, PATCH and DELETE /localites/{id} with the If-Match of the version read).
// ?commune=… opens a commune, &id=… a localité in the form (the map links here).
"use strict";

(() => {
  let features = [];

  function field(id) { return document.getElementById(id); }

  function resetForm() {
    ["localite-id", "name", "lon", "lat", "reason"].forEach((id) => { field(id).value = ""; });
    field("kind").value = "village";
    field("edit-title").textContent = SIFC.t("localites.add");
    field("retire").hidden = true;
    field("cancel").hidden = true;
  }

  function choose(feature) {
    const p = feature.properties;
    field("localite-id").value = feature.id;
    field("name").value = p.name;
    field("kind").value = p.kind;
    [field("lon").value, field("lat").value] = feature.geometry.coordinates.map((c) => c.toFixed(6));
    field("reason").value = "";
    field("edit-title").textContent = SIFC.t("localites.edit", {name: p.name});
    field("retire").hidden = false;
    field("cancel").hidden = false;
    field("name").focus();
  }

  function origin(value) { return value === "osm" ? "OpenStreetMap" : SIFC.t("localites.by_officer"); }

  function render() {
    field("rows").replaceChildren(...features.map((f) => SIFC.el("tr", {"data-id": f.id},
      SIFC.el("td", {}, f.properties.name), SIFC.el("td", {}, f.properties.kind),
      SIFC.el("td", {}, origin(f.properties.origin)),
      SIFC.el("td", {}, f.geometry.coordinates.map((c) => c.toFixed(5)).join(", ")),
      SIFC.el("td", {}, SIFC.el("button", {type: "button", class: "choose", onclick: () => choose(f)},
                                  SIFC.t("localites.correct"))))));
    const osm = features.some((f) => f.properties.origin === "osm");
    field("attribution").textContent = osm ? "© les contributeurs d'OpenStreetMap, ODbL 1.0" : "";
  }

  async function load() {
    const code = field("commune").value.trim();
    if (!code) return false;
    SIFC.say(SIFC.t("common.loading"));
    const result = await SIFC.api(`/communes/${encodeURIComponent(code)}/localites`);
    if (!result.ok) {
      features = [];
      render();
      SIFC.say(SIFC.problem(result), true);
      return false;
    }
    features = result.body.features;
    render();
    SIFC.say(SIFC.t("localites.count", {count: features.length}));
    return true;
  }

  function point() {
    const lon = Number(field("lon").value.replace(",", "."));
    const lat = Number(field("lat").value.replace(",", "."));
    if (!field("lon").value.trim() || !field("lat").value.trim() || !Number.isFinite(lon) || !Number.isFinite(lat)) {
      return null;
    }
    return {type: "Point", coordinates: [lon, lat]};
  }

  async function save(event) {
    event.preventDefault();
    const id = field("localite-id").value;
    const geometry = point();
    if (!geometry) {
      SIFC.say(SIFC.t("localites.point_required"), true);
      return;
    }
    const properties = {name: field("name").value.trim(), kind: field("kind").value,
                        reason: field("reason").value.trim() || undefined};
    let result;
    if (id) {
      const read = await SIFC.api(`/localites/${id}`);
      if (!read.ok) { SIFC.say(SIFC.problem(read), true); return; }
      result = await SIFC.api(`/localites/${id}`, SIFC.json("PATCH", {type: "Feature", geometry, properties},
                                                           {"If-Match": read.headers.get("ETag")}));
    } else {
      properties.commune_code = field("commune").value.trim() || undefined;
      result = await SIFC.api("/localites", SIFC.json("POST", {type: "Feature", geometry, properties}));
    }
    if (!result.ok) { SIFC.say(SIFC.problem(result), true); return; }
    resetForm();
    await load();
    SIFC.say(SIFC.t(id ? "localites.saved" : "localites.added", {name: result.body.properties.name}));
  }

  async function retire() {
    const id = field("localite-id").value;
    const reason = field("reason").value.trim();
    if (!id) return;
    if (!reason) { SIFC.say(SIFC.t("localites.reason_required"), true); return; }
    const read = await SIFC.api(`/localites/${id}`);
    if (!read.ok) { SIFC.say(SIFC.problem(read), true); return; }
    const result = await SIFC.api(`/localites/${id}`, SIFC.json("DELETE", {reason}, {"If-Match": read.headers.get("ETag")}));
    if (!result.ok) { SIFC.say(SIFC.problem(result), true); return; }
    resetForm();
    await load();
    SIFC.say(SIFC.t("localites.retired"));
  }

  SIFC.start(render).then(async () => {
    const params = new URLSearchParams(window.location.search);
    field("pick").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    field("edit").addEventListener("submit", save);
    field("retire").addEventListener("click", retire);
    field("cancel").addEventListener("click", resetForm);
    resetForm();
    if (params.get("commune")) {
      field("commune").value = params.get("commune");
      if (await load() && params.get("id")) {
        const found = features.find((f) => f.id === params.get("id"));
        if (found) choose(found);
      }
    }
  });
})();
