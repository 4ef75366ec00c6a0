/* The index site's only script (no library, no CDN): sends the job forms of /jobs and
 * /jobs/<id> to the authenticated API with fetch and the Authorization header, and shows the
 * answer in #job-result. The token is kept in sessionStorage only (gone with the tab). */
(function () {
  "use strict";
  var KEY = "eas-api-token";

  function storedToken() {
    try { return window.sessionStorage.getItem(KEY) || ""; } catch (e) { return ""; }
  }

  function keepToken(token) {
    try { window.sessionStorage.setItem(KEY, token); } catch (e) { /* storage disabled */ }
  }

  function show(ok, text) {
    var box = document.getElementById("job-result");
    if (!box) { return; }
    box.textContent = text;                 /* text, never HTML: messages are data */
    box.className = ok ? "pass" : "fail";
    box.hidden = false;
  }

  function token(form) {
    var input = form.querySelector("input[name=token]");
    var value = input ? input.value.trim() : "";
    if (value) { keepToken(value); }
    return value || storedToken();
  }

  function describe(body) {
    if (body.job_name !== undefined) {
      var counts = body.task_counts || {};
      var total = 0, parts = [];
      Object.keys(counts).sort().forEach(function (k) { total += counts[k]; parts.push(k + ": " + counts[k]); });
      return "Submitted job \u201c" + body.job_name + "\u201d: " + total + " task" + (total === 1 ? "" : "s") +
        (parts.length ? " (" + parts.join(", ") + ")" : "") + ". Event " + body.event_id + ".";
    }
    return Object.keys(body).map(function (k) {
      var v = body[k];
      return k.replace(/_/g, " ") + ": " + (typeof v === "object" ? JSON.stringify(v) : v);
    }).join(", ");
  }

  function send(url, body, form, done) {
    var headers = {"Authorization": "Bearer " + token(form)};
    if (body !== null) { headers["Content-Type"] = "application/json"; }
    show(true, "Sending\u2026");
    fetch(url, {method: "POST", headers: headers, body: body, credentials: "same-origin"})
      .then(function (response) {
        return response.text().then(function (text) {
          var parsed = null;
          try { parsed = JSON.parse(text); } catch (e) { parsed = null; }
          if (response.ok && parsed) {
            show(true, describe(parsed));
            if (done) { done(parsed); }
          } else {
            var message = parsed && parsed.error ? parsed.error : text.slice(0, 300);
            show(false, "Refused (HTTP " + response.status + "): " + message);
          }
        });
      })
      .catch(function (err) { show(false, "No answer from the site: " + err); });
  }

  function readJob(form) {
    var file = form.querySelector("input[type=file]");
    if (file && file.files && file.files.length) { return file.files[0].text(); }
    var area = form.querySelector("textarea");
    return Promise.resolve(area ? area.value : "");
  }

  function setup() {
    var forms = document.querySelectorAll("form.needs-script");
    Array.prototype.forEach.call(forms, function (form) {
      var fieldset = form.querySelector("fieldset");
      if (fieldset) { fieldset.disabled = false; }
      var input = form.querySelector("input[name=token]");
      if (input && !input.value) { input.value = storedToken(); }
    });
    var submit = document.getElementById("submit-job");
    if (submit) {
      submit.addEventListener("submit", function (event) {
        event.preventDefault();
        readJob(submit).then(function (text) {
          if (!text.trim()) { show(false, "Choose a job file or paste a job description."); return; }
          send(submit.getAttribute("data-url") || "/api/jobs", text, submit, null);
        }, function (err) { show(false, "Cannot read the file: " + err); });
      });
    }
    var actions = document.getElementById("job-actions");
    if (actions) {
      actions.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = event.submitter || actions.querySelector("button[data-url]");
        var question = button.getAttribute("data-confirm");
        if (question && !window.confirm(question)) { return; }
        send(button.getAttribute("data-url"), null, actions, null);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
}());
