// Mint web app: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Instants: shown in the browser's time zone; the title keeps the UTC instant (hover).
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.textContent = d.toLocaleString(undefined, {
          year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        });
      }
    });
  }

  // A money form is sent once: the button is disabled while it is on its way (the
  // Idempotency-Key in the form makes a second send harmless anyway).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once") || event.defaultPrevented) return;
    if (form.dataset.sending === "1") { event.preventDefault(); return; }
    form.dataset.sending = "1";
    setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) {
        b.disabled = true; b.setAttribute("aria-busy", "true");
      });
    }, 0);
  });

  // Recipient suggestions fill the email field (buttons: keyboard and screen readers).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-fill]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-fill"));
    if (input) { input.value = button.getAttribute("data-value"); input.focus(); }
    var box = button.closest(".suggestions");
    if (box) box.innerHTML = "";
  });

  // KYC upload: type (by the first bytes, not the name) and size checked before sending.
  var MAGIC = [[0xff, 0xd8, 0xff], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], [0x25, 0x50, 0x44, 0x46, 0x2d]];
  function isDocument(bytes) {
    return MAGIC.some(function (magic) {
      return magic.every(function (b, i) { return bytes[i] === b; });
    });
  }
  function showFileError(form, message) {
    var error = form.querySelector("#f-file-error");
    var input = form.querySelector("#f-file");
    error.textContent = message;
    if (message) { error.setAttribute("role", "alert"); input.setAttribute("aria-invalid", "true"); }
    else { error.removeAttribute("role"); input.removeAttribute("aria-invalid"); }
  }
  function checkFile(form) {
    var input = form.querySelector("#f-file");
    var max = parseInt(form.getAttribute("data-max-bytes"), 10);
    var file = input.files && input.files[0];
    if (!file) return Promise.resolve("Choose a file to upload.");
    if (file.size > max) {
      return Promise.resolve("The file is too large (" + (file.size / 1048576).toFixed(1) + " MB); " + Math.floor(max / 1048576) + " MB at most.");
    }
    return file.slice(0, 16).arrayBuffer().then(function (buffer) {
      return isDocument(new Uint8Array(buffer)) ? "" : "This file is not a JPEG, PNG or PDF (whatever its name says).";
    });
  }
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "upload-form") return;
    event.preventDefault();
    checkFile(form).then(function (problem) {
      showFileError(form, problem);
      if (!problem) {
        var bar = form.querySelector("#upload-progress");
        bar.hidden = false; bar.value = 0;
        event.detail.issueRequest(true);
      }
    });
  });
  document.addEventListener("change", function (event) {
    if (event.target.id !== "f-file") return;
    var form = event.target.form;
    checkFile(form).then(function (problem) { showFileError(form, problem); });
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var bar = document.getElementById("upload-progress");
    if (bar && event.detail.lengthComputable) {
      bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
    }
  });

  // An htmx request that fails outright (Mint down, network) says so instead of nothing.
  document.addEventListener("htmx:responseError", function (event) { banner(event.detail.xhr.status); });
  document.addEventListener("htmx:sendError", function () { banner(0); });
  function banner(status) {
    var main = document.getElementById("main");
    var p = document.getElementById("request-failed") || document.createElement("p");
    p.id = "request-failed"; p.className = "form-error"; p.setAttribute("role", "alert");
    p.textContent = status === 413 ? "The file is too large (10 MB at most)."
      : "Mint is not answering right now. Try again in a moment.";
    main.insertBefore(p, main.firstChild);
  }

  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.detail.target.parentNode || document); });
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    // a one-time notice (?notice=) is not shown again on reload
    var url = new URL(window.location.href);
    if (url.searchParams.has("notice")) {
      url.searchParams.delete("notice");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  });
})();
