// Checkout submit with JavaScript: POST the form with fetch, get 202 + status URL, go to the wait page.
// Without JavaScript the same form posts normally and the server answers 303 to the wait page.
(function () {
  "use strict";
  const form = document.getElementById("checkout-form");
  if (!form || !window.fetch) return;
  const payButton = form.querySelector("button[type=submit]");
  const formError = document.getElementById("form-error");

  function showErrors(errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      const messages = errors[el.dataset.errorFor];
      el.textContent = messages ? messages.join(" ") : "";
      el.hidden = !messages;
      el.closest(".field").classList.toggle("has-error", Boolean(messages));
      const input = form.elements[el.dataset.errorFor];
      if (input) {
        input.setAttribute("aria-invalid", messages ? "true" : "false");
        input.setAttribute("aria-describedby", messages ? el.id : "");
      }
    });
    const first = form.querySelector(".has-error input");
    if (first) first.focus();
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (payButton.disabled) return; // a second click while the first is on its way
    payButton.disabled = true;
    payButton.setAttribute("aria-busy", "true");
    formError.hidden = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await response.json().catch(function () { return {}; });
      if (response.status === 202 && body.wait_url) {
        window.location.assign(body.wait_url);
        return; // keep the button disabled while the browser navigates
      }
      if (response.status === 422 && body.errors) {
        showErrors(body.errors);
      } else {
        formError.textContent = body.detail || "Something went wrong. Nothing was charged; please try again.";
        formError.hidden = false;
      }
    } catch (error) {
      formError.textContent = "We could not reach the shop. Check your connection; nothing was charged.";
      formError.hidden = false;
    }
    payButton.disabled = false;
    payButton.removeAttribute("aria-busy");
  });
})();
