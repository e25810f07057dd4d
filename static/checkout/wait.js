// The "please wait" page: learns the outcome pushed over a WebSocket, falls back to polling the status URL.
// Every status document carries the payment's seq; anything not newer than what we have is ignored, and on
// every (re)connect the server resends from the database what we have not seen.
(function () {
  "use strict";
  const root = document.getElementById("payment-status");
  const initial = JSON.parse(document.getElementById("payment-document").textContent);
  const HEARTBEAT_MS = 10000;
  let lastSeq = 0;
  let current = initial;
  let socket = null;
  let reconnectAttempts = 0;
  let pollTimer = null;
  let heartbeatTimer = null;
  let finished = false;

  function apply(doc) {
    if (!doc || doc.seq <= lastSeq) return;
    lastSeq = doc.seq;
    current = doc;
    root.dataset.paymentStatus = doc.status;
    root.querySelectorAll("[data-when]").forEach(function (section) {
      section.hidden = section.dataset.when.split(" ").indexOf(doc.status) === -1;
    });
    const message = root.querySelector("[data-field=failure-message]");
    if (message && doc.failure) message.textContent = doc.failure.message;
    const shown = root.querySelector("[data-when]:not([hidden]) h1");
    if (shown) document.title = shown.textContent + " · Roastery";
    if (doc.has_outcome) finish();
  }

  function finish() {
    finished = true;
    clearTimeout(pollTimer);
    clearInterval(heartbeatTimer);
    if (socket) socket.close();
  }

  // A link's path and query, to be asked of this page's own origin. The page's documents name them as absolute
  // URLs and the socket's frames as paths; either way the page talks to the origin it came from (its session
  // cookie and its Content-Security-Policy's 'self' are that origin's), whatever host a proxy told the server.
  function pathOf(link) {
    const url = new URL(link, window.location.href);
    return url.pathname + url.search;
  }

  // --- WebSocket: the fast path ------------------------------------------------------------------------
  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + pathOf(current.links.websocket) + "&after_seq=" + lastSeq;
  }

  function connect() {
    if (finished || !("WebSocket" in window)) return startPolling(0);
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      return startPolling(0);
    }
    socket.onopen = function () {
      reconnectAttempts = 0;
      stopPolling();
      // A push dropped by the channel layer while we stay connected is caught by asking again.
      heartbeatTimer = setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(JSON.stringify({ type: "resume", after_seq: lastSeq }));
        }
      }, HEARTBEAT_MS);
    };
    socket.onmessage = function (event) {
      const message = JSON.parse(event.data);
      if (message.type === "payment.status") apply(message.payment);
    };
    socket.onclose = function (event) {
      clearInterval(heartbeatTimer);
      if (finished) return;
      startPolling(0);
      if (event.code === 4404) return; // the token was refused (expired): polling alone carries on
      reconnectAttempts += 1;
      const backoff = Math.min(30000, 1000 * Math.pow(2, reconnectAttempts));
      setTimeout(connect, backoff / 2 + Math.random() * backoff / 2);
    };
  }

  // --- Polling the status URL: the fallback ------------------------------------------------------------
  function startPolling(delayMs) {
    if (finished || pollTimer) return;
    pollTimer = setTimeout(poll, delayMs);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function poll() {
    let nextMs = 2000;
    try {
      // Long-poll: the server answers as soon as the status changes (or after 25 s): 202 while the payment is
      // not final; once it is, 303, which fetch follows to the payment itself.
      const response = await fetch(pathOf(current.links.status) + "?wait=25", {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.ok) apply(await response.json());
      const retryAfter = parseInt(response.headers.get("Retry-After"), 10);
      if (retryAfter > 0) nextMs = retryAfter * 1000;
    } catch (error) {
      nextMs = 5000;
    }
    pollTimer = null;
    if (!finished && !(socket && socket.readyState === WebSocket.OPEN)) startPolling(nextMs);
  }

  // --- Show that the page is alive ---------------------------------------------------------------------
  const elapsed = document.getElementById("elapsed");
  const startedAt = Date.now();
  setInterval(function () {
    if (!finished && elapsed) elapsed.textContent = "Waiting " + Math.round((Date.now() - startedAt) / 1000) + " s";
  }, 1000);

  // Back/forward cache: a page restored from memory may show an old state; ask for the current one.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted || finished) return;
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resume", after_seq: lastSeq }));
    else startPolling(0);
  });

  apply(initial);
  if (!finished) connect();
})();
