// Charts (templates/_chart.html): every element with data-vega-spec names a <script type="application/json"> holding
// a Vega-Lite spec built in Python (policyhub/charts.py); this embeds it with the vendored vega-embed. No inline
// script, no CDN and no eval: the libraries load from static/vendor/vega/, once, on the first page that has a
// chart (base.html hands their URLs to this script, hashed names in production), and Vega evaluates its
// expressions with vega-interpreter (``ast: true``) instead of compiling them with Function, so the
// Content-Security-Policy (policyhub/csp.py) needs no 'unsafe-eval'. Charts swapped in by htmx (the pages
// that poll while a run goes) are embedded on htmx:load. A drawn chart's element carries its Vega view as
// ``element.vegaView`` (the data: ``element.vegaView.data("table")``) and data-chart-state="rendered".
(function () {
  "use strict";
  var me = document.currentScript;
  var urls = [me.dataset.vega, me.dataset.vegaInterpreter, me.dataset.vegaLite, me.dataset.vegaEmbed];
  var loading = null;

  function load(src) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(script);
    });
  }

  function libraries() {  // in order: the interpreter and vega-lite need vega, vega-embed needs vega and vega-lite
    if (!loading) {
      loading = urls.reduce(function (done, src) { return done.then(function () { return load(src); }); },
                            Promise.resolve());
    }
    return loading;
  }

  function failed(element, error) {
    element.dataset.chartState = "failed";
    element.textContent = "The chart could not be drawn (" + error.message + "); its figures are in the table.";
    console.error(error);
  }

  function draw(element) {
    var spec = JSON.parse(document.getElementById(element.dataset.vegaSpec).textContent);
    var options = { mode: "vega-lite", renderer: "svg", actions: false, ast: true, expr: window.vega.expressionInterpreter };
    return window.vegaEmbed(element, spec, options)
      .then(function (result) {
        element.vegaView = result.view;
        element.dataset.chartState = "rendered";
      }, function (error) { failed(element, error); });
  }

  function embed(root) {
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-vega-spec]:not([data-chart-state])"));
    if (root.matches && root.matches("[data-vega-spec]:not([data-chart-state])")) found.push(root);
    if (!found.length) return;
    found.forEach(function (element) { element.dataset.chartState = "loading"; });
    libraries().then(
      function () { found.forEach(draw); },
      function (error) { found.forEach(function (element) { failed(element, error); }); }
    );
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { embed(document); });
  } else {
    embed(document);
  }
  document.addEventListener("htmx:load", function (event) { embed(event.detail.elt); });
  // A chart drawn inside a closed <details> had no width: let its "container" width catch up when it opens.
  document.addEventListener("toggle", function (event) {
    if (event.target.open && event.target.querySelector("[data-chart-state]")) window.dispatchEvent(new Event("resize"));
  }, true);
})();
