// Small behaviours of the server-rendered pages, here rather than inline so that the Content-Security-Policy
// (policyhub/csp.py) needs no 'unsafe-inline' for scripts:
// * <form data-confirm="…"> asks before it submits (e.g. deleting an export's files);
// * <button data-add-row="labels|rules"> adds a row to the draft editor's formset from its <template>;
// * a refused htmx action (400) inside [data-swap-errors] comes back as a partial that says why: it is shown
//   instead of dropped (the review item, an adjudication, a policy owner's flag form).
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 400 && target && target.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-add-row]");
    if (!button) return;
    var prefix = button.dataset.addRow;
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var html = document.getElementById(prefix.slice(0, -1) + "-template").innerHTML.replace(/__prefix__/g, total.value);
    document.getElementById(prefix.slice(0, -1) + "-rows").insertAdjacentHTML("beforeend", html);
    total.value = parseInt(total.value, 10) + 1;
  });
})();
