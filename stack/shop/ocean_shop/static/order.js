// Live order status: follows /ws/orders/{id} and updates the badge in place.
// Without JavaScript (or WebSockets) the page's refresh link does the same job.
(function () {
  var badge = document.getElementById("order-status");
  if (!badge || !window.WebSocket) return;
  var id = badge.getAttribute("data-order-id");
  var live = document.getElementById("live");
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + location.host + "/ws/orders/" + id);
  function show(status) {
    badge.textContent = status;
    badge.setAttribute("data-status", status);
  }
  ws.onopen = function () { if (live) live.textContent = "live"; };
  ws.onmessage = function (event) {
    var message = JSON.parse(event.data);
    if (message.status) show(message.status);
  };
  ws.onclose = function () { if (live) live.textContent = ""; };
})();
