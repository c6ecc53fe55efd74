// tradeloop's small client-side additions. htmx does the work; this only glues events.
(function () {
  "use strict";

  // After a websocket reconnects, pushes sent while it was down are lost, so ask the page
  // to re-sync over HTTP: elements opt in with hx-trigger="tl:resync from:body".
  var openedSockets = new WeakSet();
  document.addEventListener("htmx:wsOpen", function (event) {
    var socketElement = event.target;
    if (openedSockets.has(socketElement)) {
      htmx.trigger(document.body, "tl:resync");
    }
    openedSockets.add(socketElement);
  });

  // A failed request must not fail silently: show it where messages go.
  document.addEventListener("htmx:responseError", function (event) {
    showMessage("The server answered " + event.detail.xhr.status + ". Please try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showMessage("Could not reach the server. Check your connection and try again.");
  });

  function showMessage(text) {
    var main = document.querySelector("main");
    if (!main) {
      return;
    }
    var box = main.querySelector(".messages");
    if (!box) {
      box = document.createElement("div");
      box.className = "messages";
      main.prepend(box);
    }
    var article = document.createElement("article");
    article.setAttribute("role", "alert");
    article.className = "message message-error";
    article.textContent = text;
    box.append(article);
  }
})();
