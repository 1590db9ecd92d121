// Council sessions of a commune (GET /sessions?commune_code=…): plan one (POST /sessions), set its agenda
// (POST /sessions/{id}/agenda, DELETE …/agenda/{procedure}), its attendees, close the agenda, then deliberate the
// whole session with a decision per item (POST /sessions/{id}/deliberate; If-Match: the ETag of the session read).
// Once deliberated, its documents are built by a job (POST /sessions/{id}/documents) whose progress is shown.
"use strict";

(() => {
  let current = null; // {body, etag} of the session shown
  const today = () => new Date().toISOString().slice(0, 10);
  const commune = () => document.getElementById("commune").value.trim();

  function label(prefix, value) {
    const key = `sessions.${prefix}.${value}`;
    const text = SIFC.t(key);
    return text === key ? value : text;
  }

  async function load(event) {
    if (event) event.preventDefault();
    if (!commune()) return;
    localStorage.setItem("sifc.sessions.commune", commune());
    SIFC.say(SIFC.t("common.loading"));
    const result = await SIFC.api(`/sessions?${new URLSearchParams({commune_code: commune()})}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(result.body.length ? "" : SIFC.t("sessions.none"));
    document.getElementById("list").hidden = false;
    document.getElementById("rows").replaceChildren(...result.body.map((s) => SIFC.el("tr", {"data-id": s.id},
      SIFC.el("td", {}, s.held_on), SIFC.el("td", {}, label("kind", s.kind)), SIFC.el("td", {}, label("state", s.state)),
      SIFC.el("td", {}, String(s.item_count)), SIFC.el("td", {}, s.deliberation_number || "—"),
      SIFC.el("td", {}, SIFC.el("button", {type: "button", onclick: () => show(s.id)}, SIFC.t("sessions.view"))))));
  }

  function decisionCell(item, editable) {
    if (!editable) return SIFC.el("td", {}, item.decision ? label("decision", item.decision) : "—");
    const select = SIFC.el("select", {name: "decision", "data-procedure": item.procedure_id},
      ...["granted", "refused", "deferred"].map((d) => SIFC.el("option", {value: d}, label("decision", d))));
    return SIFC.el("td", {}, select);
  }

  function render() {
    const s = current.body;
    const planned = s.state === "planned";
    const closed = s.state === "agenda_closed";
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-title").textContent = `${label("kind", s.kind)} — ${s.held_on}` +
      (s.reference ? ` (${s.reference})` : "");
    document.getElementById("detail-state").textContent = label("state", s.state);
    document.getElementById("detail-deliberation").textContent = s.deliberation_number
      ? ` — ${SIFC.t("sessions.number")} ${s.deliberation_number} (${s.deliberated_on})` : "";
    document.getElementById("items").replaceChildren(...s.items.map((item) => SIFC.el("tr", {"data-id": item.procedure_id},
      SIFC.el("td", {}, String(item.position)), SIFC.el("td", {}, item.reference || item.procedure_id),
      SIFC.el("td", {}, item.kind), decisionCell(item, closed),
      SIFC.el("td", {}, closed ? SIFC.el("input", {name: "reason", maxlength: "1000", "data-procedure": item.procedure_id})
                               : item.reason || ""),
      SIFC.el("td", {}, planned ? SIFC.el("button", {type: "button", onclick: () => remove(item.procedure_id)},
                                           SIFC.t("sessions.remove")) : ""))));
    document.getElementById("attendees").replaceChildren(...s.attendees.map((a) => SIFC.el("li", {},
      `${a.name || a.party_id} — ${label("capacity", a.capacity)}${a.present ? "" : ` (${SIFC.t("sessions.absent")})`}`)));
    document.getElementById("add-form").hidden = !planned;
    document.getElementById("attendee-form").hidden = s.state === "deliberated";
    document.getElementById("deliberate-form").hidden = !closed;
    document.getElementById("documents").hidden = s.state !== "deliberated";
  }

  async function show(id) {
    const result = await SIFC.api(`/sessions/${encodeURIComponent(id)}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    current = {body: result.body, etag: result.headers.get("ETag")};
    document.getElementById("documents-progress").textContent = "";
    document.getElementById("documents-links").replaceChildren();
    render();
  }

  // A write on the session shown, with its ETag; the answer is the session as written.
  async function write(method, path, body, done) {
    const options = body === null ? {method, headers: {"If-Match": current.etag}}
                                  : SIFC.json(method, body, {"If-Match": current.etag});
    const result = await SIFC.api(`/sessions/${encodeURIComponent(current.body.id)}${path}`, options);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return false;
    }
    current = {body: result.body, etag: result.headers.get("ETag")};
    render();
    SIFC.say(done);
    load();
    return true;
  }

  async function create(event) {
    event.preventDefault();
    const members = document.getElementById("create-members").value;
    const result = await SIFC.api("/sessions", SIFC.json("POST", {
      commune_code: commune(), kind: document.getElementById("create-kind").value,
      held_on: document.getElementById("create-on").value,
      reference: document.getElementById("create-reference").value.trim() || null,
      members_in_office: members ? Number(members) : null}));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    current = {body: result.body, etag: result.headers.get("ETag")};
    render();
    SIFC.say(SIFC.t("sessions.created"));
    load();
  }

  function add(event) {
    event.preventDefault();
    const input = document.getElementById("add-procedure");
    write("POST", "/agenda", {procedure_id: input.value.trim()}, SIFC.t("sessions.added")).then((ok) => {
      if (ok) input.value = "";
    });
  }

  function remove(procedureId) {
    write("DELETE", `/agenda/${encodeURIComponent(procedureId)}`, null, SIFC.t("sessions.removed"));
  }

  function attendee(event) {
    event.preventDefault();
    const name = document.getElementById("attendee-name");
    write("POST", "/attendees", {capacity: document.getElementById("attendee-capacity").value, name: name.value.trim(),
                                 present: document.getElementById("attendee-present").checked},
          SIFC.t("sessions.attendee_added")).then((ok) => { if (ok) name.value = ""; });
  }

  function deliberate(event) {
    event.preventDefault();
    const reasons = {};
    document.querySelectorAll("#items input[name=reason]").forEach((input) => {
      reasons[input.dataset.procedure] = input.value.trim() || null;
    });
    const decisions = [...document.querySelectorAll("#items select[name=decision]")].map((select) => ({
      procedure_id: select.dataset.procedure, decision: select.value, reason: reasons[select.dataset.procedure]}));
    write("POST", "/deliberate", {number: document.getElementById("deliberate-number").value.trim(),
                                  deliberated_on: document.getElementById("deliberate-on").value,
                                  source_id: document.getElementById("deliberate-source").value.trim(), decisions},
          SIFC.t("sessions.deliberated"));
  }

  // The documents job: queued, then polled until done or failed (helper route of the document jobs).
  async function documents() {
    const progress = document.getElementById("documents-progress");
    const result = await SIFC.api(`/sessions/${encodeURIComponent(current.body.id)}/documents`, {method: "POST"});
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    const path = new URL(result.headers.get("Location") || result.body.links.self, window.location.href).pathname;
    for (let job = result.body; ; ) {
      progress.textContent = SIFC.t("sessions.job_progress", {status: job.status, done: job.progress_done ?? 0,
                                                              total: job.progress_total ?? "?"});
      if (job.status === "done") {
        document.getElementById("documents-links").replaceChildren(
          SIFC.el("a", {href: `${path}/pdf`}, "PDF"), " ", SIFC.el("a", {href: `${path}/zip`}, "ZIP"));
        return;
      }
      if (job.status === "failed") {
        SIFC.say(job.error || SIFC.t("common.error"), true);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const next = await SIFC.api(path);
      if (!next.ok) {
        SIFC.say(SIFC.problem(next), true);
        return;
      }
      job = next.body;
    }
  }

  SIFC.start(() => { if (current) render(); }).then(() => {
    document.getElementById("pick").addEventListener("submit", load);
    document.getElementById("create-form").addEventListener("submit", create);
    document.getElementById("add-form").addEventListener("submit", add);
    document.getElementById("close-agenda").addEventListener("click",
      () => write("POST", "/close-agenda", null, SIFC.t("sessions.agenda_closed")));
    document.getElementById("attendee-form").addEventListener("submit", attendee);
    document.getElementById("deliberate-form").addEventListener("submit", deliberate);
    document.getElementById("documents").addEventListener("click", documents);
    document.getElementById("create-on").value = today();
    document.getElementById("deliberate-on").value = today();
    const remembered = localStorage.getItem("sifc.sessions.commune");
    if (remembered) {
      document.getElementById("commune").value = remembered;
      load();
    }
  });
})();
