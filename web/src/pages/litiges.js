// The disputes register of a commune (GET /disputes?commune_code=…): each dispute's kind, state, dates, parcels
// and whether it is past its target days; a dispute's parties and steps (GET /disputes/{id}, audited); opening one
// (POST /disputes), its next step and its closing (If-Match: the ETag of the dispute read).
"use strict";

(() => {
  let current = null; // {body, etag} of the dispute shown
  let listed = [];

  const ids = (text) => text.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);
  const today = () => new Date().toISOString().slice(0, 10);
  const commune = () => document.getElementById("commune").value.trim();

  function label(prefix, value) {
    const key = `disputes.${prefix}.${value}`;
    const text = SIFC.t(key);
    return text === key ? value : text;
  }

  function renderList(quiet = false) {
    const table = document.getElementById("list");
    table.hidden = false;
    document.getElementById("rows").replaceChildren(...listed.map((d) => SIFC.el("tr", {"data-id": d.id},
      SIFC.el("td", {}, label("kind", d.kind)),
      SIFC.el("td", {}, label("state", d.state)),
      SIFC.el("td", {}, d.opened_on),
      SIFC.el("td", {}, d.since),
      SIFC.el("td", {}, (d.nicads.length ? d.nicads : d.parcel_ids).join(", ")),
      SIFC.el("td", {class: d.overdue ? "overdue" : ""},
              d.overdue === null || d.overdue === undefined ? "—" : SIFC.t(d.overdue ? "disputes.yes" : "disputes.no")),
      SIFC.el("td", {}, SIFC.el("button", {type: "button", onclick: () => show(d.id)}, SIFC.t("disputes.view"))))));
    if (!listed.length && !quiet) SIFC.say(SIFC.t("disputes.none"));
  }

  // The commune's list; ``quiet`` after a write, whose message stays in the status line.
  async function load(event, quiet = false) {
    if (event) event.preventDefault();
    if (!commune()) return;
    localStorage.setItem("sifc.disputes.commune", commune());
    const params = new URLSearchParams({commune_code: commune()});
    const state = document.getElementById("state-filter").value;
    if (state) params.set("state", state);
    if (!quiet) SIFC.say(SIFC.t("common.loading"));
    const result = await SIFC.api(`/disputes?${params}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    if (!quiet) SIFC.say("");
    listed = result.body.disputes;
    renderList(quiet);
  }

  function renderDetail() {
    const d = current.body;
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-id").textContent = d.id;
    document.getElementById("detail-kind").textContent = label("kind", d.kind);
    document.getElementById("detail-state").textContent = label("state", d.state);
    document.getElementById("detail-description").textContent = d.description || "";
    document.getElementById("detail-parties").replaceChildren(...d.parties.map((p) => SIFC.el("li", {},
      `${p.name || p.party_id} — ${label("role", p.role)}`)));
    document.getElementById("detail-steps").replaceChildren(...d.steps.map((s) => SIFC.el("tr", {},
      SIFC.el("td", {}, label("state", s.step)), SIFC.el("td", {}, s.occurred_on),
      SIFC.el("td", {}, [s.note, s.outcome, s.court_reference].filter(Boolean).join(" — ")))));
    // A closed dispute takes no more step (the forms' wrapper: a form's own display would override hidden).
    document.getElementById("writes").hidden = d.state === "closed";
  }

  async function show(id) {
    const result = await SIFC.api(`/disputes/${encodeURIComponent(id)}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    current = {body: result.body, etag: result.headers.get("ETag")};
    renderDetail();
  }

  async function write(path, body, done) {
    const result = await SIFC.api(path, SIFC.json("POST", body, current ? {"If-Match": current.etag} : {}));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    current = {body: result.body, etag: result.headers.get("ETag")};
    SIFC.say(SIFC.t(done, {state: label("state", result.body.state)}));
    renderDetail();
    await load(null, true);
  }

  function addStep(event) {
    event.preventDefault();
    if (!current) return;
    const body = {step: document.getElementById("step-name").value, occurred_on: document.getElementById("step-on").value,
                  source_ids: ids(document.getElementById("step-sources").value)};
    const note = document.getElementById("step-note").value.trim();
    const court = document.getElementById("step-court").value.trim();
    if (note) body.note = note;
    if (court) body.court_reference = court;
    write(`/disputes/${current.body.id}/steps`, body, "disputes.stepped");
  }

  function close(event) {
    event.preventDefault();
    if (!current) return;
    write(`/disputes/${current.body.id}/close`, {
      closed_on: document.getElementById("close-on").value, outcome: document.getElementById("close-outcome").value,
      source_ids: ids(document.getElementById("close-sources").value)}, "disputes.closed");
  }

  async function open(event) {
    event.preventDefault();
    const parties = ids(document.getElementById("open-parties").value).map((item) => {
      const [party, role] = item.split(":");
      return {party_id: party, role: role || "autre"};
    });
    const body = {commune_code: commune(), kind: document.getElementById("open-kind").value,
                  parcel_ids: ids(document.getElementById("open-parcels").value), parties,
                  opened_on: document.getElementById("open-on").value,
                  source_ids: ids(document.getElementById("open-sources").value)};
    const description = document.getElementById("open-description").value.trim();
    if (description) body.description = description;
    const result = await SIFC.api("/disputes", SIFC.json("POST", body));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    current = {body: result.body, etag: result.headers.get("ETag")};
    SIFC.say(SIFC.t("disputes.opened", {parcels: result.body.parcels.length}));
    renderDetail();
    await load(null, true);
  }

  SIFC.start(() => { if (listed.length) renderList(); if (current) renderDetail(); }).then(() => {
    const given = new URLSearchParams(window.location.search).get("commune")
      || localStorage.getItem("sifc.disputes.commune");
    for (const id of ["step-on", "close-on", "open-on"]) document.getElementById(id).value = today();
    document.getElementById("pick").addEventListener("submit", load);
    document.getElementById("step-form").addEventListener("submit", addStep);
    document.getElementById("close-form").addEventListener("submit", close);
    document.getElementById("open-form").addEventListener("submit", open);
    if (given) {
      document.getElementById("commune").value = given;
      load();
    }
  });
})();
