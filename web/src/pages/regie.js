// The régisseur's desk: a commune's files with a fee, found by number (GET /communes/{code}/fees); a file's fee,
// payments and balance (GET /procedures/{id}/fees); recording a payment (POST /payments), printing its receipt
// (GET /payments/{id}/receipt.pdf), cancelling one (POST /payments/{id}/cancel, a reason asked); the bordereau de
// versement of a period (GET /communes/{code}/bordereau, format=pdf to print it).
"use strict";

(() => {
  let current = null; // the file shown: the answer of GET /procedures/{id}/fees

  const today = () => new Date().toISOString().slice(0, 10);
  const commune = () => document.getElementById("commune").value.trim();
  const francs = (amount) => `${Number(amount).toLocaleString(SIFC.page.lang === "en" ? "en" : "fr-FR")} ${
    SIFC.page.lang === "en" ? "XOF" : "FCFA"}`;

  function label(prefix, value) {
    const key = `fees.${prefix}.${value}`;
    const text = SIFC.t(key);
    return text === key ? value : text;
  }

  function openPdf(result, name) {
    const url = URL.createObjectURL(result.body);
    const link = SIFC.el("a", {href: url, download: name, target: "_blank", rel: "noopener"});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  async function find(event) {
    if (event) event.preventDefault();
    if (!commune()) return;
    localStorage.setItem("sifc.fees.commune", commune());
    const params = new URLSearchParams();
    const number = document.getElementById("number").value.trim();
    if (number) params.set("number", number);
    if (document.getElementById("unpaid").checked) params.set("unpaid", "true");
    SIFC.say(SIFC.t("common.loading"));
    const result = await SIFC.api(`/communes/${encodeURIComponent(commune())}/fees?${params}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(result.body.length ? "" : SIFC.t("fees.none"));
    document.getElementById("files").hidden = false;
    document.getElementById("file-rows").replaceChildren(...result.body.map((f) => SIFC.el("tr", {},
      SIFC.el("td", {}, f.reference || f.procedure_id), SIFC.el("td", {}, f.kind), SIFC.el("td", {}, f.nicad || "—"),
      SIFC.el("td", {}, francs(f.amount)), SIFC.el("td", {}, francs(f.paid)),
      SIFC.el("td", {class: f.balance > 0 ? "overdue" : ""}, francs(f.balance)),
      SIFC.el("td", {}, SIFC.el("button", {type: "button", onclick: () => show(f.procedure_id)},
                                SIFC.t("fees.open"))))));
    if (result.body.length === 1) show(result.body[0].procedure_id);
  }

  function paymentRow(p) {
    const voucher = p.receipt || p.quittance_number || (p.cancels_payment_id ? SIFC.t("fees.cancellation") : "—");
    const actions = [];
    if (p.receipt) {
      actions.push(SIFC.el("button", {type: "button", onclick: () => receipt(p.id)}, SIFC.t("fees.receipt")));
    }
    if (!p.cancels_payment_id && !p.cancelled_by) {
      actions.push(SIFC.el("button", {type: "button", onclick: () => cancel(p.id)}, SIFC.t("fees.cancel")));
    }
    if (p.cancelled_by) actions.push(SIFC.el("span", {}, SIFC.t("fees.cancelled")));
    return SIFC.el("tr", {"data-id": p.id}, SIFC.el("td", {}, p.paid_on), SIFC.el("td", {}, voucher),
                   SIFC.el("td", {}, label("method", p.method) + (p.mobile_reference ? ` (${p.mobile_reference})` : "")),
                   SIFC.el("td", {}, francs(p.amount)), SIFC.el("td", {}, actions));
  }

  function render() {
    const f = current;
    document.getElementById("detail").hidden = false;
    document.getElementById("detail-number").textContent = f.procedure.reference || f.procedure.id;
    document.getElementById("detail-due").textContent = f.fee ? francs(f.fee.amount) : SIFC.t("fees.no_fee");
    document.getElementById("detail-paid").textContent = francs(f.paid);
    document.getElementById("detail-balance").textContent = francs(f.balance);
    document.getElementById("detail-schedule").textContent = f.fee
      ? SIFC.t("fees.schedule_line", {reference: f.fee.deliberation_reference || "—", date: f.fee.deliberation_date,
                                      on: f.fee.assessed_on}) : "";
    document.getElementById("payment-rows").replaceChildren(...f.payments.map(paymentRow));
    document.getElementById("pay-form").hidden = !f.fee || f.balance <= 0;
    document.getElementById("pay-amount").value = f.balance > 0 ? f.balance : "";
  }

  async function show(id) {
    const result = await SIFC.api(`/procedures/${encodeURIComponent(id)}/fees`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    current = result.body;
    render();
  }

  async function pay(event) {
    event.preventDefault();
    const body = {procedure_id: current.procedure.id, amount: Number(document.getElementById("pay-amount").value),
                  method: document.getElementById("pay-method").value, paid_on: document.getElementById("pay-on").value};
    const reference = document.getElementById("pay-reference").value.trim();
    const quittance = document.getElementById("pay-quittance").value.trim();
    if (reference) body.mobile_reference = reference;
    if (quittance) body.quittance_number = quittance;
    const result = await SIFC.api("/payments", SIFC.json("POST", body));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(SIFC.t("fees.recorded", {voucher: result.body.receipt || result.body.quittance_number}));
    document.getElementById("pay-reference").value = "";
    document.getElementById("pay-quittance").value = "";
    await show(current.procedure.id);
  }

  async function receipt(id) {
    const result = await SIFC.api(`/payments/${encodeURIComponent(id)}/receipt.pdf`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(SIFC.t("fees.printed"));
    openPdf(result, "recu.pdf");
  }

  async function cancel(id) {
    const reason = window.prompt(SIFC.t("fees.cancel_reason"));
    if (reason === null) return;
    const result = await SIFC.api(`/payments/${encodeURIComponent(id)}/cancel`, SIFC.json("POST", {reason}));
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(SIFC.t("fees.cancel_done"));
    await show(current.procedure.id);
  }

  function period() {
    return new URLSearchParams({from: document.getElementById("bordereau-from").value,
                                to: document.getElementById("bordereau-to").value});
  }

  async function bordereau(event) {
    event.preventDefault();
    if (!commune()) return;
    const result = await SIFC.api(`/communes/${encodeURIComponent(commune())}/bordereau?${period()}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    const b = result.body;
    document.getElementById("bordereau").hidden = false;
    document.getElementById("bordereau-rows").replaceChildren(...b.lines.map((line) => SIFC.el("tr", {},
      SIFC.el("td", {}, line.paid_on),
      SIFC.el("td", {}, (line.cancellation ? `${SIFC.t("fees.cancellation")} ` : "") + (line.voucher || "—")),
      SIFC.el("td", {}, line.file_number), SIFC.el("td", {}, label("method", line.method)),
      SIFC.el("td", {}, francs(line.amount)))));
    document.getElementById("bordereau-totals").textContent = SIFC.t("fees.totals", {
      cash: francs(b.totals.cash), mobile: francs(b.totals.mobile_money), total: francs(b.total), count: b.count});
    SIFC.say("");
  }

  async function bordereauPdf() {
    if (!commune()) return;
    const params = period();
    params.set("format", "pdf");
    const result = await SIFC.api(`/communes/${encodeURIComponent(commune())}/bordereau?${params}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say(SIFC.t("fees.printed"));
    openPdf(result, "bordereau-versement.pdf");
  }

  SIFC.start(() => { if (current) render(); }).then(() => {
    document.getElementById("commune").value = new URLSearchParams(location.search).get("commune")
      || localStorage.getItem("sifc.fees.commune") || "";
    document.getElementById("pay-on").value = today();
    document.getElementById("bordereau-from").value = today();
    document.getElementById("bordereau-to").value = today();
    document.getElementById("find").addEventListener("submit", find);
    document.getElementById("pay-form").addEventListener("submit", pay);
    document.getElementById("bordereau-form").addEventListener("submit", bordereau);
    document.getElementById("bordereau-pdf").addEventListener("click", bordereauPdf);
    if (!SIFC.page.token) SIFC.say(SIFC.t("fees.sign_in"), true);
  });
})();
