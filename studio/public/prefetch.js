// Starts fetching an app's graph while the Studio's script loads and starts (the canvas is
// an app's first page; issue 12's first-load target). api.ts takes the answer once.
(function () {
  var found = location.pathname.match(/^\/apps\/([^/]+)(\/nodes\/[^/]+)?\/?$/);
  if (!found || !window.fetch) return;
  var path = "/apps/" + found[1] + "/graph";
  window.__patternsPrefetch = { path: path, response: fetch("/api/v1" + path, { credentials: "same-origin" }) };
})();
