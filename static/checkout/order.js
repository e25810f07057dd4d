// The order page's refunds, kept current: wait.js tells of every new payment status ("payment-status" on
// #payment-status); a refund that went through is one of them. The list is re-drawn from the order's JSON, the
// same the page polls without a socket (which then comes with the event, so it is not fetched twice).
(function () {
  "use strict";
  const root = document.getElementById("payment-status");
  const list = document.getElementById("refunds");
  const none = document.getElementById("no-refunds");
  if (!root || !list) return;

  function render(refunds) {
    list.replaceChildren.apply(
      list,
      refunds.map(function (refund) {
        const item = document.createElement("li");
        item.dataset.refundStatus = refund.status;
        const amount = document.createElement("span");
        amount.className = "refund-amount";
        amount.textContent = refund.amount_display;
        const state = document.createElement("span");
        state.className = "refund-state";
        state.textContent = refund.status_display;
        const when = document.createElement("time");
        when.className = "muted";
        when.dateTime = refund.created_at;
        when.textContent = refund.created_display;
        item.append(amount, " ", state, " ", when);
        return item;
      })
    );
    list.hidden = refunds.length === 0;
    if (none) none.hidden = refunds.length !== 0;
  }

  async function refresh() {
    try {
      const response = await fetch(root.dataset.pollUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.ok) render((await response.json()).refunds);
    } catch (error) {
      // Unreachable: wait.js says so and keeps trying; the next status it learns brings another refresh.
    }
  }

  root.addEventListener("payment-status", function (event) {
    const body = event.detail.body;
    if (body && Array.isArray(body.refunds)) render(body.refunds);
    else refresh();
  });
})();
