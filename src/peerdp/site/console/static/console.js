// The console without this script is complete; with it, times show in the browser's local
// time and a page's live part (#live[data-live]) is fetched again when the site changes.
"use strict";
(function () {
  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (!isNaN(moment)) { el.textContent = moment.toLocaleString(); el.title = el.getAttribute("datetime"); }
    });
  }
  // A refresh must not move the keyboard's place or undo a form being filled: the control
  // focused in #live is focused again in the new content, and what the user chose or typed
  // there is kept (each control found again by its form, name and label).
  var CONTROLS = "a[href], button, input, select, textarea";
  var some = Array.prototype.some;
  function nameOf(el) {
    return [el.tagName, el.form ? el.form.getAttribute("action") : "", el.id,
      el.getAttribute("name"), el.getAttribute("aria-label"), el.getAttribute("href"),
      el.type === "radio" ? el.value : "",
      /^(SELECT|TEXTAREA)$/.test(el.tagName) ? "" : el.textContent.trim()].join("|");
  }
  function ticked(el) { return el.type === "checkbox" || el.type === "radio"; }
  function changed(el) {
    if (el.tagName === "SELECT") {
      return some.call(el.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    if (ticked(el)) { return el.checked !== el.defaultChecked; }
    return el.type !== "hidden" && el.value !== el.defaultValue;
  }
  function restore(el, value) {
    if (ticked(el)) { el.checked = value; }
    else if (el.tagName !== "SELECT" || some.call(el.options, function (o) { return o.value === value; })) {
      el.value = value;
    }
  }
  function replace(live, html) {
    var kept = new Map(), active = document.activeElement;
    var focused = active && live.contains(active) ? nameOf(active) : null;
    live.querySelectorAll("input, select, textarea").forEach(function (el) {
      if (changed(el)) { kept.set(nameOf(el), ticked(el) ? el.checked : el.value); }
    });
    live.innerHTML = html;
    localise(live);  // before comparing: a link's text may hold a time
    live.querySelectorAll(CONTROLS).forEach(function (el) {
      var name = nameOf(el);
      if (kept.has(name)) { restore(el, kept.get(name)); }
      if (name === focused) { el.focus(); focused = null; }
    });
  }
  function follow(live) {
    var busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(live.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (answer) {
          if (answer.status === 401) { window.location.reload(); return null; }
          return answer.ok ? answer.text() : null;
        })
        .then(function (html) {
          if (html !== null) { replace(live, html); live.dataset.refreshed = String(Date.now()); }
        })
        .catch(function () {})
        .finally(function () { busy = false; if (again) { again = false; refresh(); } });
    }
    var events = new EventSource("/console/events");
    events.addEventListener("change", refresh);
    events.addEventListener("signed-out", function () { events.close(); window.location.reload(); });
    events.addEventListener("open", function () { live.dataset.following = "yes"; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    var live = document.getElementById("live");
    if (live && live.dataset.live && window.EventSource) { follow(live); }
  });
})();
