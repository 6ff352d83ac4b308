// vt-agent dashboards: table filters (spec, agent, status; mirrored in the query string) and, on the live
// server only, a poll of api/state.json that reloads the page when the watched run (or any log) changes.
// No data is inserted as HTML here: only textContent and element visibility are changed.
"use strict";

function applyFilters(form) {
  const wanted = {};
  for (const select of form.querySelectorAll("select")) wanted[select.name] = select.value;
  let shown = 0, total = 0;
  for (const table of document.querySelectorAll("table.filterable")) {
    let shownHere = 0;
    for (const row of table.querySelectorAll("tbody tr")) {
      total += 1;
      const ok = Object.entries(wanted).every(([key, value]) => !value || row.dataset[key] === value);
      row.hidden = !ok;
      if (ok) { shown += 1; shownHere += 1; }
    }
    const note = table.nextElementSibling;
    if (note && note.classList.contains("no-match")) note.hidden = shownHere > 0;
  }
  const count = document.getElementById("filter-count");
  if (count) count.textContent = `showing ${shown} of ${total} rows`;
}

function setUpFilters() {
  const form = document.getElementById("filters");
  if (!form) return;
  const params = new URLSearchParams(window.location.search);
  for (const select of form.querySelectorAll("select")) {
    const value = params.get(select.name);
    if (value !== null) {
      if (![...select.options].some((o) => o.value === value)) {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = value;
        select.appendChild(option);
      }
      select.value = value;
    }
    select.addEventListener("change", () => {
      const next = new URLSearchParams(window.location.search);
      if (select.value) next.set(select.name, select.value); else next.delete(select.name);
      const query = next.toString();
      try {
        history.replaceState(null, "", (query ? "?" + query : window.location.pathname) + window.location.hash);
      } catch (e) { /* file:// pages in some browsers refuse replaceState; the filter still applies */ }
      applyFilters(form);
    });
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); applyFilters(form); });
  applyFilters(form);
}

function setUpLiveReload() {
  const body = document.body;
  if (body.dataset.live !== "1") return;
  const url = `${body.dataset.root}api/state.json?watch=${encodeURIComponent(body.dataset.watch || "*")}`;
  const badge = document.getElementById("live-badge");
  let first = null;
  async function poll() {
    try {
      const response = await fetch(url, { cache: "no-store" });
      const state = await response.json();
      if (first === null) first = state.signature;
      else if (state.signature !== first) { window.location.reload(); return; }
      if (badge) badge.textContent = `live · checked ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (badge) badge.textContent = "live · server not answering";
    }
    setTimeout(poll, 2000);
  }
  poll();
}

document.addEventListener("DOMContentLoaded", () => { setUpFilters(); setUpLiveReload(); });
