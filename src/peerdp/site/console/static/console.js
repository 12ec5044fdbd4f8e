// The console without this script is complete; with it, times show in the browser's local
// time and a page's live part (#live[data-live]) is fetched again when the site changes
// (or, for a tail, only its newer rows, put on top).
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
  // A tail (data-after: the newest ID shown): the fragment holds only newer rows, put on top.
  function prepend(live, html) {
    if (!html.trim()) { return; }
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    localise(holder);
    var empty = live.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    live.prepend.apply(live, Array.prototype.slice.call(holder.children));
    var first = live.querySelector("tr[data-id]");
    if (first) { live.dataset.after = first.dataset.id; }
    var keep = parseInt(live.dataset.keep || "0", 10), rows = live.querySelectorAll("tr[data-id]");
    for (var i = keep; keep && i < rows.length; i++) { rows[i].remove(); }
  }
  // Time fields (data-utc): the server takes UTC; with this script they show and take the
  // browser's local time, sent converted to UTC.
  function localTimes(form) {
    var fields = form.querySelectorAll("input[data-utc]");
    if (!fields.length) { return; }
    function pad(n) { return String(n).padStart(2, "0"); }
    fields.forEach(function (el) {
      if (el.value) {
        var moment = new Date(el.value + "Z");
        if (!isNaN(moment)) {
          el.value = moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
            "T" + pad(moment.getHours()) + ":" + pad(moment.getMinutes()) + ":" + pad(moment.getSeconds());
        }
      }
    });
    form.querySelectorAll("[data-zone]").forEach(function (el) { el.textContent = "(local time)"; });
    form.addEventListener("submit", function () {
      fields.forEach(function (el) {
        if (!el.value) { return; }
        var moment = new Date(el.value);
        if (isNaN(moment)) { return; }
        var sent = document.createElement("input");
        sent.type = "hidden"; sent.name = el.name; sent.value = moment.toISOString();
        el.removeAttribute("name");
        form.appendChild(sent);
      });
      // Empty fields are left out: the shared URL names only the filters in use.
      form.querySelectorAll("input[name], select[name]").forEach(function (el) {
        if (!el.value && el.type !== "hidden") { el.disabled = true; }
      });
    });
  }
  function follow(live) {
    var busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      var tail = live.dataset.after !== undefined, url = live.dataset.live;
      if (tail) { url += (url.indexOf("?") < 0 ? "?" : "&") + "after_id=" + live.dataset.after; }
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (answer) {
          if (answer.status === 401) { window.location.reload(); return null; }
          return answer.ok ? answer.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          if (tail) { prepend(live, html); } else { replace(live, html); }
          live.dataset.refreshed = String(Date.now());
        })
        .catch(function () {})
        .finally(function () { busy = false; if (again) { again = false; refresh(); } });
    }
    var events = new EventSource(live.dataset.events || "/console/events");
    events.addEventListener("change", refresh);
    events.addEventListener("signed-out", function () { events.close(); window.location.reload(); });
    events.addEventListener("open", function () { live.dataset.following = "yes"; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localise(document);
    document.querySelectorAll("form").forEach(localTimes);
    var live = document.getElementById("live");
    if (live && live.dataset.live && window.EventSource) { follow(live); }
  });
})();
