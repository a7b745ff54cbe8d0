// The console's small script: CSRF header on fetch calls and confirmations. No framework.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// fetch with the session's CSRF token and a JSON answer (problem+json on errors).
async function consoleFetch(url, options = {}) {
  const headers = Object.assign({ "Accept": "application/json", "X-CSRF-Token": csrfToken() },
                                options.headers || {});
  return fetch(url, Object.assign({}, options, { headers, credentials: "same-origin" }));
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
