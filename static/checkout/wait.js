// A payment's live status on the wait page and on the order page: learns each change pushed over a WebSocket,
// falls back to polling. Every status document carries the payment's seq; anything not newer than what we have
// is ignored, and on every (re)connect the server resends from the database what we have not seen.
//
// The page says where to listen (#payment-status): data-socket-url, a socket whose token the page minted when it
// was rendered (the one inside a pushed document may have expired: it is never switched to), and data-poll-url,
// the order page's JSON, which its signed link authorizes (the wait page polls the payment's status URL instead).
//
// requires_action (3-D Secure) is not an outcome: the shopper goes to their bank through the link the document
// names (data-field=next-action), and the page keeps listening for what comes after.
//
// It listens until nothing can change any more: failed, canceled, refunded. A succeeded or partly refunded payment
// can still be refunded, so the socket stays open (without one, polling goes on at a slow pace).
(function () {
  "use strict";
  const root = document.getElementById("payment-status");
  const initial = JSON.parse(document.getElementById("payment-document").textContent);
  const moneyFormat = JSON.parse(document.getElementById("money-format").textContent);
  const notice = document.getElementById("connection-notice");
  const FINAL = ["failed", "canceled", "refunded"];
  const HEARTBEAT_MS = 10000;
  const POLL_MS = 2000; // while there is no outcome yet
  const SLOW_POLL_MS = 15000; // once there is: only a refund can still come
  const MAX_RETRY_MS = 30000;
  const OFFLINE_TEXT = "We can't reach the shop right now. Your payment is safe; we'll keep trying.";
  const socketBase = root.dataset.socketUrl || initial.links.websocket;
  const orderPollUrl = root.dataset.pollUrl || null;
  let lastSeq = 0;
  let current = initial;
  let socket = null;
  let reconnectAttempts = 0;
  let pollFailures = 0;
  let pollTimer = null;
  let heartbeatTimer = null;
  let finished = false;

  function formatMoney(amount) {
    const digits = moneyFormat.exponent;
    const text = (amount / Math.pow(10, digits)).toLocaleString("en-US", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    return moneyFormat.symbol ? moneyFormat.symbol + text : text + " " + moneyFormat.currency;
  }

  // body: the order page's JSON when the document came in it (its refunds are then already at hand).
  function apply(doc, body) {
    if (!doc || doc.seq <= lastSeq) return;
    lastSeq = doc.seq;
    current = doc;
    root.dataset.paymentStatus = doc.status;
    root.querySelectorAll("[data-when]").forEach(function (section) {
      section.hidden = section.dataset.when.split(" ").indexOf(doc.status) === -1;
    });
    showNextAction(doc.next_action);
    const message = root.querySelector("[data-field=failure-message]");
    if (message && doc.failure) message.textContent = doc.failure.message;
    if (typeof doc.amount_refunded === "number") {
      root.querySelectorAll("[data-field=amount-refunded]").forEach(function (field) {
        field.textContent = formatMoney(doc.amount_refunded);
      });
    }
    const shown = root.querySelector("[data-when]:not([hidden]) h1");
    if (shown) document.title = shown.textContent + " · Roastery";
    root.dispatchEvent(new CustomEvent("payment-status", { detail: { payment: doc, body: body || null } }));
    if (FINAL.indexOf(doc.status) !== -1) finish();
  }

  // 3-D Secure: the link to the bank's page. A page rendered before the bank asked has no URL yet; the document
  // that says requires_action brings it. Only a web page is linked to, whatever a document might carry.
  function showNextAction(action) {
    const link = root.querySelector("[data-field=next-action]");
    if (!link || !action || typeof action.url !== "string") return;
    const url = new URL(action.url, window.location.href);
    if (url.protocol === "https:" || url.protocol === "http:") link.href = url.href;
  }

  function finish() {
    finished = true;
    clearTimeout(pollTimer);
    clearInterval(heartbeatTimer);
    if (socket) socket.close();
    setReachable(true);
  }

  // --- Saying so when the shop cannot be reached ---------------------------------------------------------
  function setReachable(reachable) {
    if (!notice) return;
    notice.textContent = reachable ? "" : OFFLINE_TEXT;
    root.querySelectorAll("[data-field=usually]").forEach(function (line) {
      line.hidden = !reachable; // "usually takes a few seconds" is not true while we cannot even ask
    });
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
    return scheme + "//" + window.location.host + pathOf(socketBase) + "&after_seq=" + lastSeq;
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
      setReachable(true);
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
      const backoff = Math.min(MAX_RETRY_MS, 1000 * Math.pow(2, reconnectAttempts));
      setTimeout(connect, backoff / 2 + (Math.random() * backoff) / 2);
    };
  }

  // --- Polling: the fallback ---------------------------------------------------------------------------
  function startPolling(delayMs) {
    if (finished || pollTimer) return;
    pollTimer = setTimeout(poll, delayMs);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  function pollRequestUrl() {
    if (orderPollUrl) return orderPollUrl;
    // Long-poll: the server answers as soon as the status changes (or after 25 s): 202 while the payment is not
    // final; once it has an outcome, 303, which fetch follows to the payment itself.
    return pathOf(current.links.status) + "?wait=25";
  }

  async function poll() {
    let nextMs = current.has_outcome ? SLOW_POLL_MS : POLL_MS;
    let reached = false;
    try {
      const response = await fetch(pollRequestUrl(), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      // A 5xx is a proxy with no shop behind it (or a shop that cannot answer): not reached, for the shopper.
      reached = response.status < 500;
      if (response.ok) {
        const body = await response.json();
        if (orderPollUrl) apply(body.payment, body);
        else apply(body);
      }
      const retryAfter = parseInt(response.headers.get("Retry-After"), 10);
      if (retryAfter > 0 && !current.has_outcome) nextMs = retryAfter * 1000;
    } catch (error) {
      reached = false;
    }
    if (reached) {
      pollFailures = 0;
    } else {
      pollFailures += 1;
      const backoff = Math.min(MAX_RETRY_MS, POLL_MS * Math.pow(2, pollFailures - 1));
      nextMs = backoff / 2 + (Math.random() * backoff) / 2;
    }
    pollTimer = null;
    const socketOpen = socket && socket.readyState === WebSocket.OPEN;
    if (!socketOpen) setReachable(reached);
    if (!finished && !socketOpen) startPolling(nextMs);
  }

  // --- Show that the page is alive ---------------------------------------------------------------------
  const elapsed = document.getElementById("elapsed");
  const startedAt = Date.now();
  setInterval(function () {
    if (!current.has_outcome && elapsed) {
      elapsed.textContent = "Waiting " + Math.round((Date.now() - startedAt) / 1000) + " s";
    }
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
