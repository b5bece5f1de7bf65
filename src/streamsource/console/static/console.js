// The console's only script besides htmx (pages allow no inline script): the live global
// log over Server-Sent Events, and the time-travel slider's shown value.
(function () {
  "use strict";

  function startLiveLog() {
    var source = document.getElementById("live-source");
    var table = document.querySelector("#log tbody");
    if (!source || !table || source.dataset.started) return;
    source.dataset.started = "1";
    var query = new URLSearchParams({ format: "html", after: source.dataset.after });
    if (source.dataset.category) query.set("category", source.dataset.category);
    if (source.dataset.type) query.set("type", source.dataset.type);
    var events = new EventSource("/api/log/live?" + query.toString());
    var status = document.getElementById("live-status");
    events.addEventListener("event", function (message) {
      table.insertAdjacentHTML("afterbegin", message.data); // rendered and escaped by the server
      table.firstElementChild.classList.add("new");
    });
    events.onerror = function () { if (status) status.textContent = "live: reconnecting"; };
    events.onopen = function () { if (status) status.textContent = "live: new events appear at the top"; };
  }

  function followSlider(event) {
    if (event.target && event.target.id === "version-slider") {
      var shown = document.getElementById("version-shown");
      if (shown) shown.textContent = event.target.value;
    }
  }

  document.addEventListener("DOMContentLoaded", startLiveLog);
  document.addEventListener("htmx:afterSettle", startLiveLog);
  document.addEventListener("input", followSlider);
})();
