// Hookboard's own behaviour on top of htmx: dialogs (focus, Escape, focus trap), "select
// all" per event category, and adding/removing custom header rows. No inline scripts:
// the Content-Security-Policy allows only files served by Hookboard itself.
(function () {
  "use strict";

  var opener = null;

  function dialogHost() {
    return document.getElementById("dialog");
  }

  function openModal() {
    var host = dialogHost();
    return host ? host.querySelector(".modal") : null;
  }

  function closeDialog() {
    var host = dialogHost();
    if (!host || !host.firstElementChild) return;
    host.innerHTML = "";
    document.body.classList.remove("has-dialog");
    if (opener && document.body.contains(opener)) opener.focus();
    opener = null;
  }

  function focusables(root) {
    return Array.prototype.filter.call(
      root.querySelectorAll("a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled])"),
      function (el) { return el.offsetParent !== null; }
    );
  }

  function focusDialog() {
    var modal = openModal();
    if (!modal) {
      document.body.classList.remove("has-dialog");
      return;
    }
    document.body.classList.add("has-dialog");
    var invalid = modal.querySelector("[aria-invalid=true], .has-error input, .has-error select");
    var wanted = modal.querySelector("[data-autofocus]");
    var first = invalid || wanted || modal.querySelector("input:not([type=hidden]):not([readonly]), select, textarea") || modal.querySelector("[id=confirm-delete], .btn-primary") || modal;
    first.focus();
    setupForms(modal);
  }

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var target = evt.detail.target;
    if (target && target.id === "dialog" && !openModal()) opener = evt.detail.elt;
  });

  document.addEventListener("htmx:afterSettle", function () {
    focusDialog();
  });

  document.addEventListener("click", function (evt) {
    var close = evt.target.closest && evt.target.closest("[data-close-dialog]");
    if (close && dialogHost() && dialogHost().contains(close)) {
      evt.preventDefault();
      closeDialog();
      return;
    }
    if (evt.target.classList && evt.target.classList.contains("modal-backdrop")) closeDialog();
    if (evt.target.classList && evt.target.classList.contains("remove-header")) {
      evt.preventDefault();
      removeHeaderRow(evt.target.closest(".header-row"));
    }
    if (evt.target.id === "add-header") {
      evt.preventDefault();
      addHeaderRow(evt.target.closest("form"));
    }
  });

  document.addEventListener("keydown", function (evt) {
    var modal = openModal();
    if (!modal) return;
    if (evt.key === "Escape") {
      evt.preventDefault();
      closeDialog();
    } else if (evt.key === "Tab") {
      var items = focusables(modal);
      if (items.length === 0) return;
      var first = items[0];
      var last = items[items.length - 1];
      if (evt.shiftKey && document.activeElement === first) {
        evt.preventDefault();
        last.focus();
      } else if (!evt.shiftKey && document.activeElement === last) {
        evt.preventDefault();
        first.focus();
      }
    }
  });

  document.addEventListener("change", function (evt) {
    var el = evt.target;
    var form = el.form;
    if (!form) return;
    if (el.dataset && el.dataset.selectAll) {
      form.querySelectorAll('input[name=events][data-group="' + el.dataset.selectAll + '"]').forEach(function (box) {
        box.checked = el.checked;
      });
    } else if (el.name === "events" && el.dataset.group) {
      syncGroup(form, el.dataset.group);
    }
  });

  function syncGroup(form, group) {
    var boxes = form.querySelectorAll('input[name=events][data-group="' + group + '"]');
    var all = form.querySelector('input[data-select-all="' + group + '"]');
    if (!all) return;
    var checked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
    all.checked = checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
  }

  var rowCounter = 1000;

  function addHeaderRow(form) {
    var rows = form.querySelector(".header-rows");
    var template = rows.querySelector(".header-row");
    var count = rows.querySelectorAll(".header-row").length;
    if (count >= 20) return;
    var row = template.cloneNode(true);
    rowCounter += 1;
    row.querySelectorAll("input").forEach(function (input) {
      input.value = "";
      var kind = input.name === "header_name" ? "name" : "value";
      input.id = "header-" + kind + "-" + rowCounter;
    });
    row.querySelectorAll("label").forEach(function (label) {
      var kind = label.getAttribute("for").indexOf("header-name") === 0 ? "name" : "value";
      label.setAttribute("for", "header-" + kind + "-" + rowCounter);
    });
    rows.appendChild(row);
    row.querySelector("input").focus();
  }

  function removeHeaderRow(row) {
    var rows = row.parentNode;
    if (rows.querySelectorAll(".header-row").length > 1) {
      var previous = row.previousElementSibling || row.nextElementSibling;
      rows.removeChild(row);
      if (previous) previous.querySelector("input").focus();
    } else {
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      row.querySelector("input").focus();
    }
  }

  function setupForms(root) {
    root.querySelectorAll("#add-header").forEach(function (button) { button.hidden = false; });
    root.querySelectorAll("[data-select-all]").forEach(function (all) {
      if (all.form) syncGroup(all.form, all.dataset.selectAll);
    });
  }

  // The dashboard refreshes its panel every 30 seconds; the Pause button (a toggle,
  // aria-pressed) holds the refreshes back until Resume. The state lives in the button,
  // outside the panel that is swapped.
  function dashboardPaused() {
    var pause = document.getElementById("dashboard-pause");
    return pause !== null && pause.getAttribute("aria-pressed") === "true";
  }

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (elt && elt.id === "dashboard-panel" && evt.detail.requestConfig && evt.detail.requestConfig.verb === "get" && dashboardPaused()) {
      evt.preventDefault();
    }
  });

  document.addEventListener("click", function (evt) {
    var pause = evt.target.closest && evt.target.closest("#dashboard-pause");
    if (!pause) return;
    var paused = pause.getAttribute("aria-pressed") !== "true";
    pause.setAttribute("aria-pressed", paused ? "true" : "false");
    pause.textContent = paused ? "Resume" : "Pause";
    var note = pause.parentNode.querySelector(".muted");
    if (note) note.textContent = paused ? "Updates paused." : "Refreshes itself every 30 seconds.";
  });

  document.addEventListener("DOMContentLoaded", function () {
    setupForms(document);
    if (openModal()) focusDialog();
  });
})();
