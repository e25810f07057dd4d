// Checkout with JavaScript: inline card checks as the shopper types, then a fetch POST → 202 + status URL →
// the wait page. Without JavaScript the same form posts normally and the server answers 303 to the wait page.
// The server checks everything again; these checks only say it sooner.
(function () {
  "use strict";
  const form = document.getElementById("checkout-form");
  if (!form || !window.fetch) return;
  const payButton = form.querySelector("button[type=submit]");
  const formError = document.getElementById("form-error");
  const brandLine = document.getElementById("card-brand");
  const BRANDS = [
    { id: "amex", name: "American Express", pattern: /^3[47]/, lengths: [15], cvc: 4 },
    { id: "visa", name: "Visa", pattern: /^4/, lengths: [13, 16, 19], cvc: 3 },
    { id: "mastercard", name: "Mastercard", pattern: /^(5[1-5]|2(2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))/, lengths: [16], cvc: 3 },
  ];

  const digits = (value) => value.replace(/\D/g, "");
  const brandOf = (number) => BRANDS.find((brand) => brand.pattern.test(number)) || null;

  function luhn(number) {
    let sum = 0;
    for (let i = 0; i < number.length; i += 1) {
      let d = Number(number[number.length - 1 - i]);
      if (i % 2 === 1) { d *= 2; if (d > 9) d -= 9; }
      sum += d;
    }
    return sum % 10 === 0;
  }

  const checks = {
    card_number(value) {
      const number = digits(value);
      const brand = brandOf(number);
      if (!number) return "Enter the card number.";
      if (!brand) return "We accept Visa, Mastercard and American Express.";
      if (brand.lengths.indexOf(number.length) === -1 || !luhn(number)) return "This card number is not valid. Check it and try again.";
      return "";
    },
    expiry(value) {
      const match = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(value);
      if (!match) return "Enter the expiry date as MM/YY.";
      const month = Number(match[1]);
      let year = Number(match[2]);
      if (year < 100) year += 2000;
      if (month < 1 || month > 12) return "The expiry month must be between 01 and 12.";
      const now = new Date();
      if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) return "This card has expired.";
      return "";
    },
    cvc(value) {
      const brand = brandOf(digits(form.elements.card_number.value));
      const length = brand ? brand.cvc : 3;
      return new RegExp("^\\d{" + length + "}$").test(value.trim()) ? "" : "The security code is " + length + " digits for this card.";
    },
  };

  // The ids the server renders (templates/checkout/_field.html, Django's own): <id>_helptext and <id>_error.
  function showError(name, message) {
    const el = form.querySelector('[data-error-for="' + name + '"]');
    const input = form.elements[name];
    if (!el || !input) return;
    el.textContent = message || "";
    el.hidden = !message;
    el.closest(".field").classList.toggle("has-error", Boolean(message));
    const hint = document.getElementById(input.id + "_helptext");
    const describedBy = [hint ? hint.id : "", message ? el.id : ""].filter(Boolean).join(" ");
    if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    if (describedBy) input.setAttribute("aria-describedby", describedBy); else input.removeAttribute("aria-describedby");
  }

  // The button says what it charges ("Pay $59.00"); the server's label is the one it comes back to.
  let payLabel = payButton.textContent;

  function showFormError(message) {
    formError.textContent = message;
    formError.hidden = false;
    formError.scrollIntoView({ block: "center" });
  }

  // The cart changed since the page was rendered: nothing was charged. The summary, the promise the form carries
  // and the button's amount become the new ones, and the shopper decides again.
  function showCartChanged(body) {
    const summary = document.getElementById("order-summary");
    if (summary && body.summary_html) {
      const template = document.createElement("template");
      template.innerHTML = body.summary_html.trim();
      summary.replaceWith(template.content.firstElementChild);
    }
    form.elements.cart_signature.value = body.cart_signature;
    form.elements.expected_total.value = String(body.total);
    payLabel = body.pay_label;
    showFormError(body.detail);
  }

  function showErrors(errors) {
    form.querySelectorAll("[data-error-for]").forEach((el) => showError(el.dataset.errorFor, (errors[el.dataset.errorFor] || []).join(" ")));
    const first = form.querySelector(".has-error input, .has-error select");
    if (first) first.focus();
  }

  // Brand shown as typed, the number grouped in fours (4-6-5 for Amex).
  form.elements.card_number.addEventListener("input", function (event) {
    const number = digits(event.target.value).slice(0, 19);
    const brand = brandOf(number);
    brandLine.textContent = brand ? brand.name : "";
    const groups = brand && brand.id === "amex" ? [4, 6, 5] : [4, 4, 4, 4, 3];
    const parts = [];
    let at = 0;
    for (const size of groups) { if (at >= number.length) break; parts.push(number.slice(at, at + size)); at += size; }
    event.target.value = parts.join(" ");
  });

  Object.keys(checks).forEach(function (name) {
    form.elements[name].addEventListener("blur", function () {
      if (form.elements[name].value) showError(name, checks[name](form.elements[name].value));
    });
    form.elements[name].addEventListener("input", function () {
      if (form.elements[name].getAttribute("aria-invalid") === "true") showError(name, checks[name](form.elements[name].value));
    });
  });

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    if (payButton.disabled) return; // a second click while the first is on its way
    const problems = {};
    form.querySelectorAll("[data-error-for]").forEach(function (el) {
      const input = form.elements[el.dataset.errorFor];
      if (input && input.required && !input.value.trim()) problems[el.dataset.errorFor] = ["This field is required."];
    });
    Object.keys(checks).forEach(function (name) {
      const m = checks[name](form.elements[name].value);
      if (m && !problems[name]) problems[name] = [m];
    });
    if (Object.keys(problems).length) { showErrors(problems); return; }
    payButton.disabled = true;
    payButton.setAttribute("aria-busy", "true");
    payButton.textContent = "Paying…";
    formError.hidden = true;
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new FormData(form), headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      const body = await response.json().catch(function () { return {}; });
      if (response.status === 202 && body.wait_url) {
        window.location.assign(body.wait_url);
        return; // keep the button disabled while the browser navigates
      }
      // This cart is being paid for from another tab: that payment's page, not a second charge.
      if (body.code === "payment_in_progress" && body.wait_url) {
        window.location.assign(body.wait_url);
        return;
      }
      // A form rendered for another session, or a changed cart: the server made this shopper a new token.
      if (body.checkout_token) form.elements.checkout_token.value = body.checkout_token;
      if (response.status === 422 && body.errors) showErrors(body.errors);
      else if (body.code === "cart_changed") showCartChanged(body);
      else showFormError(body.detail || "Something went wrong. Nothing was charged; please try again.");
    } catch (error) {
      showFormError("We could not reach the shop. Check your connection; nothing was charged.");
    }
    payButton.disabled = false;
    payButton.removeAttribute("aria-busy");
    payButton.textContent = payLabel;
  });
})();
