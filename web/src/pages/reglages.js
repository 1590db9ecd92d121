// A commune's settings (GET /communes/{code}/settings): the values in force on a date with their origin, date and
// cited source; an officer sets a new dated, sourced value (POST /communes/{code}/settings/{key}).
// ?commune=… opens a commune.
"use strict";

(() => {
  let settings = [];

  function field(id) { return document.getElementById(id); }

  function shown(value) { return value === null || value === undefined ? "—" : JSON.stringify(value); }

  function choose(row) {
    field("key").value = row.key;
    field("value").value = row.value === null ? "" : JSON.stringify(row.value);
    describe();
    field("value").focus();
  }

  function describe() {
    const row = settings.find((s) => s.key === field("key").value);
    field("meaning").textContent = row ? `${row.meaning} (${row.unit})` : "";
  }

  function render() {
    field("rows").replaceChildren(...settings.map((s) => SIFC.el("tr", {"data-key": s.key, "data-origin": s.origin},
      SIFC.el("td", {}, SIFC.el("code", {}, s.key)), SIFC.el("td", {class: "value"}, shown(s.value)),
      SIFC.el("td", {}, SIFC.t(`settings.origin_${s.origin}`)), SIFC.el("td", {}, s.valid_from || "—"),
      SIFC.el("td", {class: "source"}, s.source || "—"),
      SIFC.el("td", {}, SIFC.el("button", {type: "button", class: "choose", onclick: () => choose(s)},
                                  SIFC.t("settings.change"))))));
    const current = field("key").value;
    field("key").replaceChildren(...settings.map((s) => SIFC.el("option", {value: s.key}, s.key)));
    if (current) field("key").value = current;
    describe();
  }

  async function load() {
    const code = field("commune").value.trim();
    if (!code) return false;
    SIFC.say(SIFC.t("common.loading"));
    const on = field("on").value;
    const query = on ? `?on=${encodeURIComponent(on)}` : "";
    const result = await SIFC.api(`/communes/${encodeURIComponent(code)}/settings${query}`);
    if (!result.ok) {
      settings = [];
      render();
      SIFC.say(SIFC.problem(result), true);
      return false;
    }
    settings = result.body.settings;
    render();
    const missing = settings.filter((s) => s.origin === "none").length;
    SIFC.say(SIFC.t("settings.count", {count: settings.length, missing}));
    return true;
  }

  async function save(event) {
    event.preventDefault();
    const code = field("commune").value.trim();
    let value;
    try {
      value = JSON.parse(field("value").value);
    } catch (error) {
      SIFC.say(SIFC.t("settings.bad_json"), true);
      return;
    }
    const body = {value, valid_from: field("valid-from").value, source: field("source").value.trim(),
                  source_document_id: field("document").value.trim() || null};
    const key = field("key").value;
    const result = await SIFC.api(`/communes/${encodeURIComponent(code)}/settings/${encodeURIComponent(key)}`,
                                  SIFC.json("POST", body));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    await load();
    SIFC.say(SIFC.t("settings.saved", {key, since: result.body.valid_from}));
  }

  async function main() {
    await SIFC.start(() => render());
    field("pick").addEventListener("submit", (event) => { event.preventDefault(); load(); });
    field("edit").addEventListener("submit", save);
    field("key").addEventListener("change", describe);
    const commune = new URLSearchParams(location.search).get("commune");
    if (commune) {
      field("commune").value = commune;
      await load();
    }
  }

  main();
})();
