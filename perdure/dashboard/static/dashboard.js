// Perdure dashboard: progressive enhancement only. Every page works without this script.
//  - auto-refresh: every 5 s, the page is fetched again at the same URL (the same filters and
//    cursor, so the same page of runs) and its live part swapped in place, keeping the scroll
//    position; off while the user types in a form or has text selected, or when unticked.
//  - copy buttons for run ids; a JSON check of the signal's payload as it is typed.
(function () {
  "use strict";
  var EVERY = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  var box = document.getElementById("auto-refresh");
  var KEY = "perdure.autoRefresh";
  if (box) {
    box.checked = localStorage.getItem(KEY) !== "off";
    box.addEventListener("change", function () { localStorage.setItem(KEY, box.checked ? "on" : "off"); });
  }

  function busy() {
    var a = document.activeElement;
    if (a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT")) return true;
    var sel = window.getSelection && window.getSelection();
    if (sel && String(sel).length > 0) return true;
    return toggled;
  }
  // A person who opened or closed a traceback is reading it: stop swapping the page under them.
  var toggled = false;
  document.addEventListener("toggle", function () { toggled = true; }, true);

  function refresh() {
    var live = document.querySelector("[data-live]");
    if (!live || !box || !box.checked || document.hidden || busy()) return;
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || busy()) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-live]");
        if (!fresh) return;
        var x = window.scrollX, y = window.scrollY;
        live.replaceWith(document.adoptNode(fresh));
        bind(document);
        window.scrollTo(x, y);
        document.documentElement.dataset.refreshed = String(Date.now());
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function bind(root) {
    root.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      if (b.dataset.bound) return;
      b.dataset.bound = "1";
      b.addEventListener("click", function () {
        var text = b.getAttribute("data-copy");
        var done = function () { b.classList.add("copied"); setTimeout(function () { b.classList.remove("copied"); }, 1200); };
        if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, function () {});
      });
    });
    root.querySelectorAll("textarea.json").forEach(function (t) {
      if (t.dataset.bound) return;
      t.dataset.bound = "1";
      var state = t.form && t.form.querySelector(".json-state");
      var check = function () {
        try { JSON.parse(t.value || "null"); t.classList.remove("invalid"); if (state) state.textContent = ""; return true; }
        catch (e) { t.classList.add("invalid"); if (state) state.textContent = "not valid JSON: " + e.message; return false; }
      };
      t.addEventListener("input", check);
      t.form.addEventListener("submit", function (ev) { if (!check()) ev.preventDefault(); });
    });
  }

  bind(document);
  if (EVERY > 0) setInterval(refresh, EVERY);
})();
