// Shared by the application's pages under /app/pages/ (commission, régie, suivi…): the language and its strings
// (the web.* msgids of the service's catalogues), the sign-in token kept by the map page (sessionStorage), API
// calls with Accept-Language and the token, and small DOM helpers. Each page loads this file, then its own script.
"use strict";

const SIFC = (() => {
  const page = {
    lang: localStorage.getItem("sifc.lang") || "fr",
    token: sessionStorage.getItem("sifc.token"),
    refresh: sessionStorage.getItem("sifc.refresh"),
    user: sessionStorage.getItem("sifc.user"),
    strings: {fr: {}, en: {}},
  };

  async function loadStrings() {
    await Promise.all(["fr", "en"].map(async (lang) => {
      try {
        const response = await fetch(`/app/i18n/${lang}.json`);
        page.strings[lang] = response.ok ? await response.json() : {};
      } catch (error) { page.strings[lang] = {}; }
    }));
  }

  function t(key, params = {}) {
    const text = page.strings[page.lang][key] || page.strings.fr[key] || key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  function applyLanguage(root = document) {
    document.documentElement.lang = page.lang;
    root.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    root.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
      node.placeholder = t(node.dataset.i18nPlaceholder);
    });
    const button = document.getElementById("lang");
    if (button) button.textContent = page.lang === "fr" ? "EN" : "FR";
  }

  function switchLanguage(onSwitch) {
    page.lang = page.lang === "fr" ? "en" : "fr";
    localStorage.setItem("sifc.lang", page.lang);
    applyLanguage();
    if (onSwitch) onSwitch();
  }

  async function renewToken() {
    const response = await fetch("/auth/refresh", {method: "POST", headers: {"Content-Type": "application/json"},
                                                   body: JSON.stringify({refresh_token: page.refresh})});
    if (!response.ok) return false;
    const body = await response.json();
    page.token = body.access_token;
    page.refresh = body.refresh_token;
    sessionStorage.setItem("sifc.token", page.token);
    sessionStorage.setItem("sifc.refresh", page.refresh || "");
    return true;
  }

  // An API call: {ok, status, headers, body} (body parsed as JSON when it is JSON, else a Blob); never throws.
  async function api(path, options = {}, retried = false) {
    const headers = {"Accept-Language": page.lang, ...(options.headers || {})};
    if (page.token) headers.Authorization = `Bearer ${page.token}`;
    let response;
    try {
      response = await fetch(path, {...options, headers});
    } catch (error) {
      return {ok: false, status: 0, headers: new Headers(), body: {detail: t("offline.unavailable")}};
    }
    if (response.status === 401 && page.refresh && !retried && !path.startsWith("/auth/") && await renewToken()) {
      return api(path, options, true);
    }
    const type = response.headers.get("content-type") || "";
    const body = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.blob();
    return {ok: response.ok, status: response.status, headers: response.headers, body};
  }

  // A JSON body for api(): api(path, json("POST", {...}, {"If-Match": etag})).
  function json(method, body, headers = {}) {
    return {method, headers: {"Content-Type": "application/json", ...headers}, body: JSON.stringify(body)};
  }

  function problem(result) {
    return (result.body && (result.body.detail || result.body.title)) || `${t("common.error")} ${result.status}`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs).forEach(([key, value]) => {
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
    });
    children.flat().forEach((child) => {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    });
    return node;
  }

  // A message in the page's status line (role="status"), or an error (role="alert").
  function say(text, isError = false) {
    const line = document.getElementById("message");
    if (!line) return;
    line.textContent = text;
    line.setAttribute("role", isError ? "alert" : "status");
    line.classList.toggle("error", isError);
  }

  // Common start-up: strings, language button, who is signed in. Resolves once the page may render.
  async function start(onSwitch) {
    await loadStrings();
    const button = document.getElementById("lang");
    if (button) button.addEventListener("click", () => switchLanguage(onSwitch));
    const who = document.getElementById("who");
    if (who) who.textContent = page.user || t("pages.anonymous");
    applyLanguage();
  }

  return {page, t, api, json, problem, el, say, start, applyLanguage};
})();
