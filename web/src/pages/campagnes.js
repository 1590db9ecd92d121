// The systematic campaigns of a commune (GET /campaigns?commune_code=…): a campaign's parcels and presumed holders
// (GET /campaigns/{id}/parcels, audited), its display periods (open, close: régularisation procedures for the
// parcels without an open claim), the printed display (a documents job), its claims (record, resolve: If-Match).
"use strict";

(() => {
  let current = null; // the campaign shown
  let listed = [];

  const today = () => new Date().toISOString().slice(0, 10);
  const commune = () => document.getElementById("commune").value.trim();

  function label(prefix, value) {
    const key = `campaigns.${prefix}.${value}`;
    const text = SIFC.t(key);
    return text === key ? value : text;
  }

  async function load(event, quiet = false) {
    if (event) event.preventDefault();
    if (!commune()) return;
    localStorage.setItem("sifc.campaigns.commune", commune());
    if (!quiet) SIFC.say(SIFC.t("common.loading"));
    const result = await SIFC.api(`/campaigns?${new URLSearchParams({commune_code: commune()})}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    if (!quiet) SIFC.say(result.body.length ? "" : SIFC.t("campaigns.none"));
    listed = result.body;
    document.getElementById("list").hidden = false;
    document.getElementById("rows").replaceChildren(...listed.map((c) => SIFC.el("tr", {"data-id": c.id},
      SIFC.el("td", {}, c.name), SIFC.el("td", {}, label("state", c.state)),
      SIFC.el("td", {}, c.counts.parcels), SIFC.el("td", {}, c.counts.registered),
      SIFC.el("td", {}, c.counts.open_claims),
      SIFC.el("td", {}, SIFC.el("button", {type: "button", onclick: () => show(c.id)}, SIFC.t("campaigns.view"))))));
  }

  async function show(id, quiet = false) {
    const [head, parcels, claims] = await Promise.all([
      SIFC.api(`/campaigns/${id}`), SIFC.api(`/campaigns/${id}/parcels`),
      SIFC.api(`/claims?${new URLSearchParams({campaign_id: id})}`)]);
    const failed = [head, parcels, claims].find((r) => !r.ok);
    if (failed) {
      SIFC.say(SIFC.problem(failed), true);
      return;
    }
    current = {head: head.body, parcels: parcels.body, claims: claims.body};
    if (!quiet) SIFC.say("");
    render();
  }

  function render() {
    const c = current.head;
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-name").textContent = c.name;
    document.getElementById("detail-state").textContent = label("state", c.state);
    document.getElementById("detail-counts").textContent = SIFC.t("campaigns.counts", c.counts);
    document.getElementById("parcel-rows").replaceChildren(...current.parcels.map((p) => SIFC.el("tr", {},
      SIFC.el("td", {}, p.nicad || p.parcel_id), SIFC.el("td", {}, p.area_m2 ?? "—"),
      SIFC.el("td", {}, p.presumed_holders.map((h) => h.name || h.party_id).join(", ") || "—"),
      SIFC.el("td", {}, p.open_claims), SIFC.el("td", {}, p.procedure_id || "—"))));
    document.getElementById("period-rows").replaceChildren(...c.display_periods.map((d) => SIFC.el("tr",
      {"data-id": d.id}, SIFC.el("td", {}, d.starts_on), SIFC.el("td", {}, d.ends_on),
      SIFC.el("td", {}, SIFC.t(d.closed ? "campaigns.closed" : "campaigns.running")), SIFC.el("td", {}))));
    const select = document.getElementById("claim-parcel");
    select.replaceChildren(...current.parcels.map((p) => SIFC.el("option", {value: p.parcel_id}, p.nicad || p.parcel_id)));
    const nicad = Object.fromEntries(current.parcels.map((p) => [p.parcel_id, p.nicad || p.parcel_id]));
    document.getElementById("claim-rows").replaceChildren(...current.claims.map((k) => SIFC.el("tr", {"data-id": k.id},
      SIFC.el("td", {}, nicad[k.parcel_id] || k.parcel_id), SIFC.el("td", {}, k.claimant_name || "—"),
      SIFC.el("td", {}, k.grounds), SIFC.el("td", {}, k.received_on), SIFC.el("td", {class: "claim-state"},
        label("claim", k.state)), SIFC.el("td", {}, k.state === "received" ? resolveControls(k) : ""))));
    const open = c.display_periods.find((d) => !d.closed);
    document.getElementById("close-form").hidden = !open;
    document.getElementById("display-form").hidden = c.state === "closed";
    document.getElementById("add-form").hidden = c.state !== "open";
  }

  function resolveControls(claim) {
    const decision = SIFC.el("select", {class: "decision"},
      ...["accepted", "rejected", "disputed"].map((d) => SIFC.el("option", {value: d}, label("claim", d))));
    const reason = SIFC.el("input", {class: "reason", maxlength: "1000", placeholder: SIFC.t("campaigns.reason")});
    const button = SIFC.el("button", {type: "button", onclick: () => resolve(claim, decision.value, reason.value)},
                           SIFC.t("campaigns.resolve"));
    return SIFC.el("span", {}, decision, reason, button);
  }

  async function resolve(claim, decision, reason) {
    const read = await SIFC.api(`/claims/${claim.id}`);
    if (!read.ok) {
      SIFC.say(SIFC.problem(read), true);
      return;
    }
    const body = {decision, resolved_on: today(), reason: reason || null};
    if (decision === "disputed") body.dispute = {kind: "autre", source_ids: claim.source_ids};
    const result = await SIFC.api(`/claims/${claim.id}/resolve`,
                                  SIFC.json("POST", body, {"If-Match": read.headers.get("ETag")}));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(SIFC.t("campaigns.resolved", {state: label("claim", result.body.state)}));
    await show(current.head.id, true);
  }

  async function post(path, body, done) {
    const result = await SIFC.api(path, SIFC.json("POST", body));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return null;
    }
    if (done) SIFC.say(done(result.body));
    return result.body;
  }

  async function create(event) {
    event.preventDefault();
    const section = document.getElementById("create-section").value.trim();
    const bbox = document.getElementById("create-bbox").value.split(/[\s,;]+/).filter(Boolean).map(Number);
    const area = section ? {kind: "section", section} : {kind: "bbox", bbox};
    const made = await post("/campaigns", {commune_code: commune(), name: document.getElementById("create-name").value,
                                           area}, () => SIFC.t("campaigns.created"));
    if (made) {
      await load(null, true);
      await show(made.id, true);
    }
  }

  async function addArea(event) {
    event.preventDefault();
    const added = await post(`/campaigns/${current.head.id}/parcels`, {source: "area"},
                             (b) => SIFC.t("campaigns.added", b));
    if (added) await show(current.head.id, true);
  }

  async function openDisplay(event) {
    event.preventDefault();
    const opened = await post(`/campaigns/${current.head.id}/display-periods`,
                              {starts_on: document.getElementById("display-on").value},
                              (b) => SIFC.t("campaigns.displayed", {starts: b.starts_on, ends: b.ends_on}));
    if (opened) await show(current.head.id, true);
  }

  async function closeDisplay(event) {
    event.preventDefault();
    const period = current.head.display_periods.find((d) => !d.closed);
    const closed = await post(`/campaigns/${current.head.id}/display-periods/${period.id}/close`,
                              {closed_on: document.getElementById("close-on").value},
                              (b) => (b.registered ? SIFC.t("campaigns.closed_report", {registered: b.registered.length,
                                                                                         waiting: b.waiting.length})
                                                   : SIFC.t("campaigns.queued")));
    if (closed) await show(current.head.id, true);
  }

  async function printDisplay(event) {
    event.preventDefault();
    const queued = await post(`/campaigns/${current.head.id}/display-documents`, {}, () => SIFC.t("campaigns.queued"));
    if (!queued) return;
    for (let i = 0; i < 120; i += 1) {
      const job = await SIFC.api(`/document-jobs/${queued.id}`);
      if (job.ok && job.body.status === "done") {
        const link = document.getElementById("print-link");
        link.href = `/document-jobs/${queued.id}/pdf`;
        link.hidden = false;
        SIFC.say(SIFC.t("campaigns.print_ready"));
        return;
      }
      if (!job.ok || job.body.status === "failed") {
        SIFC.say(job.ok ? (job.body.error && job.body.error.message) || SIFC.t("common.error") : SIFC.problem(job), true);
        return;
      }
      await new Promise((wake) => { setTimeout(wake, 1000); });
    }
  }

  async function recordClaim(event) {
    event.preventDefault();
    const made = await post("/claims", {
      parcel_id: document.getElementById("claim-parcel").value,
      claimant_name: document.getElementById("claim-name").value,
      grounds: document.getElementById("claim-grounds").value,
      received_on: document.getElementById("claim-on").value}, () => SIFC.t("campaigns.claim_recorded"));
    if (made) await show(current.head.id, true);
  }

  SIFC.start(() => { if (current) render(); }).then(() => {
    document.getElementById("pick").addEventListener("submit", load);
    document.getElementById("create-form").addEventListener("submit", create);
    document.getElementById("add-form").addEventListener("submit", addArea);
    document.getElementById("display-form").addEventListener("submit", openDisplay);
    document.getElementById("close-form").addEventListener("submit", closeDisplay);
    document.getElementById("print-form").addEventListener("submit", printDisplay);
    document.getElementById("claim-form").addEventListener("submit", recordClaim);
    ["display-on", "close-on", "claim-on"].forEach((id) => { document.getElementById(id).value = today(); });
    const wanted = new URLSearchParams(window.location.search).get("commune")
      || localStorage.getItem("sifc.campaigns.commune");
    if (wanted) {
      document.getElementById("commune").value = wanted;
      load();
    }
  });
})();
