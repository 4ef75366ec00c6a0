/* Previews on a product's page: an image the server refused (422: the file and its defect,
   410: a version the store no longer holds) is replaced by the server's message. */
function easPlotFailed(img) {
  img.onerror = null;
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
