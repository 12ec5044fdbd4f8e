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
          if (tail) { prepend(live, html); } else { live.innerHTML = html; localise(live); }
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
