// The thank-you page follows the letter. While it is on its way, look again every 5 seconds (for
// a minute at most: the server stops offering data-refresh) and replace the status, which
// screen readers announce (role=status). What the status says comes from the server, from the
// one state machine that renders the page (services/intake/progress.py): one stage at a time,
// its own words, so the page never holds two stages' sentences. The page itself never reloads,
// so nothing moves under the reader's eyes; without scripts the "Check again" link does the same
// by hand.
(function () {
  "use strict";
  var status = document.querySelector("[role=status][data-refresh]");
  if (!status || !window.fetch || !window.DOMParser) {
    return;
  }
  function look(url) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[role=status]");
        if (!fresh) {
          return;
        }
        status.innerHTML = fresh.innerHTML;
        status.setAttribute("data-stage", fresh.getAttribute("data-stage") || "");
        var next = fresh.getAttribute("data-refresh");
        if (next) {
          status.setAttribute("data-refresh", next);
          window.setTimeout(function () { look(next); }, 5000);
        } else {
          status.removeAttribute("data-refresh");
        }
      })
      .catch(function () { /* the "Check again" link still works */ });
  }
  window.setTimeout(function () { look(status.getAttribute("data-refresh")); }, 5000);
}());
