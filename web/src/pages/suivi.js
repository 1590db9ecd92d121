// The public tracking page: a file number and the code printed on the récépissé → the file's steps and dates
// (GET /suivi/{file}/{code}); no sign-in, nothing personal in the answer. ?dossier=… fills the file number.
"use strict";

(() => {
  let last = null;

  function stepName(step) {
    const key = `tracking.step.${step}`;
    const text = SIFC.t(key);
    return text === key ? step : text;
  }

  function show(body) {
    last = body;
    document.getElementById("result").hidden = false;
    document.getElementById("commune").textContent = `${body.commune.name} (${body.commune.code})`;
    document.getElementById("state").textContent = stepName(body.state);
    const next = document.getElementById("next");
    next.classList.toggle("overdue", Boolean(body.overdue));
    if (body.deadline === "closed") next.textContent = SIFC.t("tracking.closed");
    else if (body.deadline === "set") {
      next.textContent = SIFC.t("tracking.due_on", {step: stepName(body.next_step), date: body.due_on})
        + (body.overdue ? ` — ${SIFC.t("tracking.overdue")}` : "");
    } else next.textContent = SIFC.t("tracking.no_deadline", {step: stepName(body.next_step)});
    document.getElementById("steps").replaceChildren(...body.steps.map(
      (s) => SIFC.el("tr", {}, SIFC.el("td", {}, stepName(s.step)), SIFC.el("td", {}, s.occurred_on))));
  }

  async function track(event) {
    event.preventDefault();
    const number = document.getElementById("file-number").value.trim();
    const code = document.getElementById("code").value.trim();
    document.getElementById("result").hidden = true;
    last = null;
    if (!number || !code) {
      SIFC.say(SIFC.t("tracking.missing"), true);
      return;
    }
    SIFC.say(SIFC.t("common.loading"));
    const result = await SIFC.api(`/suivi/${encodeURIComponent(number)}/${encodeURIComponent(code)}`);
    if (!result.ok) {
      SIFC.say(SIFC.problem(result), true);
      return;
    }
    SIFC.say("");
    show(result.body);
  }

  SIFC.start(() => { if (last) show(last); }).then(() => {
    const given = new URLSearchParams(window.location.search).get("dossier");
    if (given) document.getElementById("file-number").value = given;
    document.getElementById("track").addEventListener("submit", track);
  });
})();
