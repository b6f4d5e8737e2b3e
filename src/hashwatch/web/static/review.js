// hashwatch review pages: keys, the help overlay and press-and-hold reveal. No framework, no
// network beyond this server; every key has a button or link that does the same with a mouse.
"use strict";
(function () {
  var held = null; // the picture revealed while a key or the mouse is held
  var reveals = 0; // each reveal asks the server anew (never the browser's image cache): audited

  function selected() {
    var active = document.activeElement;
    if (active && active.dataset && active.dataset.for) {
      return document.getElementById(active.dataset.for);
    }
    return document.querySelector("img.pic");
  }

  function reveal(img) {
    if (!img || held === img) return;
    hide();
    held = img;
    reveals += 1;
    img.src = img.dataset.reveal + "&view=" + reveals; // the server audits each reveal
    img.classList.add("revealed");
  }

  function hide() {
    if (!held) return;
    held.src = held.dataset.src;
    held.classList.remove("revealed");
    held = null;
  }

  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) document.getElementById("help-close").focus();
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  function press(selector) {
    var button = document.querySelector(selector);
    if (button) button.click();
  }

  // x splits the item that holds the focus (Tab to its buttons), else the first one.
  function splitSelected() {
    var active = document.activeElement;
    var figure = active && active.closest ? active.closest("figure.item") : null;
    var scope = figure || document;
    var button = scope.querySelector("button.split");
    if (button) button.click();
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var key = event.key;
    if (key === "?") { toggleHelp(); event.preventDefault(); return; }
    if (key === "Escape") { toggleHelp(false); return; }
    if (key === "r" || key === "R" || key === " ") {
      event.preventDefault();
      reveal(selected());
      return;
    }
    if (event.repeat) return;
    if (key === "j") { follow("next"); return; }
    if (key === "k") { follow("prev"); return; }
    if (key === "u") { follow("undo"); return; }
    if (key === "f") { press('section.second-look button[data-key="f"]'); event.preventDefault(); return; }
    if (key === "x") { splitSelected(); event.preventDefault(); return; }
    var button = document.querySelector('form.decision button[data-key="' + CSS.escape(key) + '"]');
    if (button) { event.preventDefault(); button.click(); }
  });

  document.addEventListener("keyup", function (event) {
    if (event.key === "r" || event.key === "R" || event.key === " ") hide();
  });
  window.addEventListener("blur", hide);

  document.addEventListener("DOMContentLoaded", function () {
    var helpButton = document.getElementById("help-button");
    if (helpButton) helpButton.addEventListener("click", function () { toggleHelp(); });
    var close = document.getElementById("help-close");
    if (close) close.addEventListener("click", function () { toggleHelp(false); });
    document.querySelectorAll("button.reveal").forEach(function (button) {
      var img = document.getElementById(button.dataset.for);
      button.addEventListener("pointerdown", function (event) {
        event.preventDefault();
        reveal(img);
      });
      ["pointerup", "pointerleave", "pointercancel"].forEach(function (name) {
        button.addEventListener(name, hide);
      });
    });
    document.documentElement.dataset.ready = "1"; // keys and buttons are live
  });
})();
