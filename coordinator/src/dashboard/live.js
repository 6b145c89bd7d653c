// Keeps <main> in step with the server: it sends the page's content again over server-sent
// events whenever it changes. No framework, no build step.
(function () {
  var main = document.getElementById("live");
  var dot = document.getElementById("connection");
  if (!main || !window.EventSource) return;
  var source = new EventSource("/live?path=" + encodeURIComponent(main.dataset.live) +
    "&seen=" + encodeURIComponent(main.dataset.seen || ""));
  source.addEventListener("main", function (event) {
    // Keep open <details> open across updates.
    var open = {};
    main.querySelectorAll("details[open] summary").forEach(function (s, i) { open[i + s.textContent] = true; });
    main.innerHTML = event.data;
    main.querySelectorAll("details summary").forEach(function (s, i) { if (open[i + s.textContent]) s.parentNode.open = true; });
    main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
    if (location.hash === "#log") { var log = document.getElementById("log"); if (log) log.scrollIntoView(); }
  });
  source.onopen = function () { dot.className = "on"; };
  source.onerror = function () { dot.className = "off"; };
})();
