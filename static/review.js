// Review queue keys: 1–9 choose a label, Enter submits, s skips, n focuses the note, u undoes the last
// submission, f opens the policy-feedback flag (inside it keys type, Enter sends, Esc closes), ? shows the keys.
// The forms are htmx forms: every key only submits the form a button would.
// Also loaded by the adjudication page. A refused action's 400 partial is swapped in by static/app.js
// (``data-swap-errors``), loaded on every page.
// The review forms swap with "settle:0ms": htmx then wires up the new item's forms in the same task as the swap,
// so a key pressed the moment the next item shows submits through htmx, never as a plain page-loading POST.
(function () {
  "use strict";

  // One action at a time: keys pressed while a request is in flight are ignored.
  var busy = false;
  document.addEventListener("htmx:beforeRequest", function () { busy = true; });
  ["htmx:afterRequest", "htmx:sendError", "htmx:sendAbort"].forEach(function (name) {
    document.addEventListener(name, function () { busy = false; });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target.id === "feedback-box") {
      // the flag box alone was swapped: the label and note of the review stay as they were
      var panel = document.getElementById("feedback-panel");
      if (panel && panel.open) {
        var error = document.getElementById("feedback-error");
        var field = document.getElementById(error && /rule/i.test(error.textContent) ? "feedback-rules" : "feedback-note");
        if (field) field.focus();
      } else if (document.activeElement && document.activeElement !== document.body) {
        document.activeElement.blur();
      }
      return;
    }
    if (event.detail.target.id !== "review-item") return;
    var active = document.activeElement;
    if (active && active !== document.body) active.blur();  // Enter must not re-press a button
    var top = event.detail.target.getBoundingClientRect().top;
    if (top < 0) event.detail.target.scrollIntoView({ block: "start" });
  });

  function isTyping(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    if (tag === "INPUT") return !/^(radio|checkbox|button|submit|reset)$/i.test(element.type);
    return false;
  }

  function submit(formId) {
    var form = document.getElementById(formId);
    if (form && !busy) form.requestSubmit();
  }

  function choose(number) {
    var radio = document.querySelector('#review-form input[name="label"][data-number="' + number + '"]');
    if (radio) radio.checked = true;
  }

  function openFeedback() {
    var panel = document.getElementById("feedback-panel");
    if (!panel) return;
    panel.open = true;
    var kind = panel.querySelector('input[name="kind"]:checked') || panel.querySelector('input[name="kind"]');
    if (kind) kind.focus();
  }

  function closeFeedback() {
    var panel = document.getElementById("feedback-panel");
    if (!panel) return;
    panel.open = false;
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  }

  // A rule ID in the flag's list of rules adds itself to (or drops out of) the rules field.
  function pickRule(id) {
    var input = document.getElementById("feedback-rules");
    if (!input) return;
    var ids = input.value.split(/[\s,;]+/).filter(Boolean);
    var at = ids.indexOf(id);
    if (at >= 0) ids.splice(at, 1); else ids.push(id);
    input.value = ids.join(", ");
  }

  function toggleHelp(show) {
    var help = document.getElementById("key-help");
    var button = document.getElementById("help-toggle");
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (button) button.setAttribute("aria-expanded", String(!help.hidden));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    if (button.id === "help-toggle") toggleHelp();
    if (button.id === "feedback-cancel") closeFeedback();
    if (button.dataset.rule) pickRule(button.dataset.rule);
    if (event.detail > 0 && button.closest(".review-bar")) button.blur();  // a mouse click leaves no focus behind
  });

  // Changing a filter reloads the queue with it (the Filter button does the same without JavaScript).
  document.addEventListener("change", function (event) {
    var form = event.target.closest("#review-filters");
    if (form) form.submit();
  });

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("review-item")) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    if (target && target.closest && target.closest("#feedback-panel")) {
      // inside the flag: no review shortcuts; Enter sends the flag (Shift+Enter: a new line), Esc closes it
      if (event.key === "Escape") {
        event.preventDefault();
        closeFeedback();
      } else if (event.key === "Enter" && !event.shiftKey && !/^(BUTTON|SUMMARY)$/.test(target.tagName)) {
        event.preventDefault();
        submit("feedback-form");
      }
      return;
    }
    if (target && target.id === "review-note") {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        submit("review-form");
      } else if (event.key === "Escape") {
        target.blur();
      }
      return;
    }
    if (isTyping(target)) return;
    if (event.key === "Enter" && target && /^(BUTTON|A|SUMMARY)$/.test(target.tagName)) return;  // native activation
    var handled = true;
    if (/^[1-9]$/.test(event.key)) {
      choose(event.key);
    } else if (event.key === "Enter") {
      submit("review-form");
    } else if (event.key === "s") {
      submit("skip-form");
    } else if (event.key === "u") {
      submit("undo-form");
    } else if (event.key === "f") {
      openFeedback();
    } else if (event.key === "n") {
      var note = document.getElementById("review-note");
      if (note) note.focus();
    } else if (event.key === "?") {
      toggleHelp();
    } else if (event.key === "Escape") {
      toggleHelp(false);
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });
})();
