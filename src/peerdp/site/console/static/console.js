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
          if (html !== null) { live.innerHTML = html; localise(live); live.dataset.refreshed = String(Date.now()); }
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
