/* Previews on a product's page: an image the server refused (422: the file and its defect,
   410: a version the store no longer holds) is replaced by the server's message.
   Loaded in <head> without defer, so the listener is in place before any preview loads; error
   events do not bubble, hence the capture phase. No inline onerror: the CSP forbids it. */
function easPlotFailed(img) {
  var fallback = "the plot could not be loaded";
  fetch(img.src)
    .then(function (r) { return r.ok ? fallback : r.text(); })
    .catch(function () { return fallback; })
    .then(function (message) {
      var p = document.createElement("p");
      p.className = "fail plot-error";
      p.textContent = message;
      img.replaceWith(p);
    });
}

document.addEventListener("error", function (event) {
  var target = event.target;
  if (target instanceof HTMLImageElement && target.classList.contains("plot")) {
    easPlotFailed(target);
  }
}, true);
