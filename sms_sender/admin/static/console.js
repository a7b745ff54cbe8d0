// The console's small script: CSRF header on fetch calls and confirmations. No framework.
"use strict";

let statusNames = null;
function statusName(status) {
  if (statusNames === null) {
    const element = document.getElementById("status-names");
    statusNames = element ? JSON.parse(element.textContent) : {};
  }
  return statusNames[status] || status;
}

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

// Live SMS counter: asks the server, which uses the API's own rules (messages/encoding.py).
function wireSmsCounter(box) {
  const out = document.getElementById(box.dataset.smsCounter);
  let timer = null;
  let asked = 0;
  const update = async () => {
    const ticket = ++asked;
    const response = await consoleFetch("/admin/messages/size?text=" + encodeURIComponent(box.value));
    if (!response.ok || ticket !== asked) return;
    const size = await response.json();
    out.textContent = out.dataset.template.replace("%(length)s", size.length)
      .replace("%(encoding)s", size.encoding).replace("%(segments)s", size.segments);
    out.dataset.segments = size.segments;
    out.dataset.encoding = size.encoding;
    out.dataset.length = size.length;
  };
  box.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 120); });
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-sms-counter]").forEach(wireSmsCounter);
});

// CSV import: upload with a progress bar, then the server's answer (bad rows by line number).
function wireImport(form) {
  const bar = document.getElementById("import-progress");
  const out = document.getElementById("import-result");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    bar.hidden = false;
    bar.value = 0;
    request.upload.onprogress = (progress) => {
      if (!progress.lengthComputable) return;
      const percent = Math.round(progress.loaded * 100 / progress.total);
      bar.value = percent;
      out.textContent = out.dataset.uploading.replace("%(percent)s", percent);
    };
    request.upload.onload = () => { bar.removeAttribute("value"); out.textContent = out.dataset.working; };
    request.onload = () => {
      bar.hidden = true;
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (error) { answer = { detail: request.statusText }; }
      out.replaceChildren();
      const summary = document.createElement("p");
      if (request.status === 200) {
        summary.textContent = out.dataset.done.replace("%(imported)s", answer.imported).replace("%(failed)s", answer.failed);
        summary.className = "notice";
      } else {
        summary.textContent = answer.detail || request.statusText;
        summary.className = "alert";
      }
      out.appendChild(summary);
      if (answer.errors && answer.errors.length) {
        const list = document.createElement("ul");
        list.id = "import-errors";
        for (const row of answer.errors) {
          const item = document.createElement("li");
          item.textContent = out.dataset.line + " " + row.line + ": " + row.error;
          list.appendChild(item);
        }
        if (answer.errors_truncated) {
          const item = document.createElement("li");
          item.textContent = "… " + out.dataset.more;
          list.appendChild(item);
        }
        out.appendChild(list);
      }
    };
    request.send(new FormData(form));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("import-form");
  if (form) wireImport(form);
});

// ---- live progress (dashboard and mailing pages) ---------------------------------------------
const STATUS_ORDER = ["delivered", "sent", "undelivered", "failed", "unknown", "expired",
                      "cancelled", "skipped", "sending", "pending"];

function progressBar(counts, total) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.setAttribute("role", "img");
  const parts = [];
  for (const status of STATUS_ORDER) {
    const count = counts[status] || 0;
    if (!count || !total) continue;
    const piece = document.createElement("span");
    piece.className = "s-" + status;
    piece.style.width = (count * 100 / total) + "%";
    piece.title = statusName(status) + ": " + count;
    bar.appendChild(piece);
    parts.push(statusName(status) + " " + count);
  }
  bar.setAttribute("aria-label", parts.join(", ") || "0");
  return bar;
}

// Rate from the change of "done" between polls over the last ~10 s (display only).
const samples = {};
function rateOf(id, done, at) {
  const list = samples[id] = (samples[id] || []).filter((s) => at - s.at <= 10000);
  list.push({ at, done });
  if (list.length < 2) return null;
  const first = list[0];
  const seconds = (at - first.at) / 1000;
  return seconds > 0 ? Math.max(0, (done - first.done) / seconds) : null;
}

function formatTime(iso) {
  const date = new Date(iso);
  // sv-SE writes 2026-12-01 19:15:20, the way the server renders times.
  return date.toLocaleString("sv-SE", { timeZone: zoneName() });
}

function zoneName() {
  const match = document.cookie.match(/(?:^|; )sms_sender_tz=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "UTC";
}

function cell(row, content, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  row.appendChild(td);
  return td;
}

function sum(counts) { return Object.values(counts || {}).reduce((a, b) => a + b, 0); }

function drawChart(svg, minutes) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const totals = minutes.map((minute) => sum(minute.by_status));
  const highest = Math.max(1, ...totals);
  const width = 600 / minutes.length;
  minutes.forEach((minute, index) => {
    let y = 150;
    for (const status of STATUS_ORDER) {
      const count = minute.by_status[status] || 0;
      if (!count) continue;
      const height = count * 140 / highest;
      y -= height;
      const rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", index * width + 0.5);
      rect.setAttribute("width", Math.max(1, width - 1));
      rect.setAttribute("y", y);
      rect.setAttribute("height", height);
      rect.setAttribute("class", "s-" + status);
      const title = document.createElementNS(ns, "title");
      title.textContent = formatTime(minute.at) + " · " + statusName(status) + ": " + count;
      rect.appendChild(title);
      svg.appendChild(rect);
    }
  });
  if (minutes.length) {
    document.getElementById("chart-from").textContent = formatTime(minutes[0].at);
    document.getElementById("chart-to").textContent = formatTime(minutes[minutes.length - 1].at);
    document.getElementById("chart-peak").textContent = "max " + highest + "/min";
  }
}

async function refreshDashboard(root) {
  const response = await consoleFetch(root.dataset.source);
  if (response.status === 401) { window.location.reload(); return; }
  if (!response.ok) return;
  const data = await response.json();
  const at = Date.parse(data.now);
  document.getElementById("updated-at").textContent = formatTime(data.now);
  const body = document.getElementById("running");
  body.replaceChildren();
  if (!data.active.length) {
    const row = body.insertRow();
    cell(row, root.dataset.noneRunning, "muted").colSpan = 6;
  }
  for (const mailing of data.active) {
    const row = body.insertRow();
    const link = document.createElement("a");
    link.href = "/admin/mailings/" + mailing.id;
    link.textContent = "#" + mailing.id;
    cell(row, link);
    cell(row, statusName(mailing.status) +
              (mailing.paused_reason ? " (" + mailing.paused_reason + ")" : ""));
    cell(row, progressBar(mailing.by_status, mailing.total));
    cell(row, mailing.done.toLocaleString() + " / " + mailing.total.toLocaleString(), "num");
    const rate = rateOf(mailing.id, mailing.done, at);
    cell(row, rate === null ? root.dataset.measuring : rate.toFixed(1) + " " + root.dataset.perSecond, "num");
    const left = mailing.total - mailing.done;
    let finish = "";
    if (left === 0) finish = "—";
    else if (rate) finish = formatTime(new Date(Math.min(at + left / rate * 1000, Date.parse(mailing.end_at))).toISOString());
    cell(row, finish);
  }
  const scheduled = document.getElementById("scheduled");
  scheduled.replaceChildren();
  if (!data.scheduled.length) {
    const item = document.createElement("li");
    item.className = "muted"; item.textContent = root.dataset.noneScheduled;
    scheduled.appendChild(item);
  }
  for (const mailing of data.scheduled) {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = "/admin/mailings/" + mailing.id;
    link.textContent = "#" + mailing.id;
    item.append(link, " · " + formatTime(mailing.start_at));
    scheduled.appendChild(item);
  }
}

async function refreshActivity(root) {
  const response = await consoleFetch(root.dataset.activity);
  if (!response.ok) return;
  const data = await response.json();
  for (const period of ["today", "week"]) {
    document.getElementById(period + "-total").textContent = sum(data[period]).toLocaleString();
    document.getElementById(period + "-detail").textContent = Object.entries(data[period])
      .map(([status, count]) => statusName(status) + " " + count).join(" · ");
  }
  drawChart(document.getElementById("chart"), data.per_minute);
}

function poll(work, milliseconds = 2000) {
  const run = async () => {
    try { await work(); } finally { setTimeout(run, milliseconds); }
  };
  run();
}

document.addEventListener("DOMContentLoaded", () => {
  // The operator's time zone, for the server's rendering of times (named on each page).
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !document.cookie.match(/(?:^|; )sms_sender_tz=/)) {
    document.cookie = "sms_sender_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
  }
  const root = document.getElementById("dashboard");
  if (root) {
    poll(() => refreshDashboard(root));
    poll(() => refreshActivity(root), 30000);
  }
});

async function refreshMailing(root) {
  const response = await consoleFetch(root.dataset.source);
  if (!response.ok) return;
  const data = await response.json();
  const left = (data.by_status.pending || 0) + (data.by_status.sending || 0);
  const done = data.total - left;
  document.getElementById("progress-bar").replaceChildren(progressBar(data.by_status, data.total));
  document.getElementById("progress-done").textContent = done;
  document.getElementById("progress-total").textContent = data.total;
  document.getElementById("progress-percent").textContent = data.total ? Math.round(done * 100 / data.total) : 0;
  document.getElementById("progress-detail").textContent = Object.entries(data.by_status)
    .filter(([, count]) => count).map(([status, count]) => statusName(status) + " " + count)
    .join(" · ");
  document.getElementById("mailing-status").textContent = statusName(data.status);
  await refreshMailingParts(data.status);
  const at = Date.parse(data.now);
  const rate = rateOf("detail", done, at);
  let text = "";
  if (rate !== null && left > 0) {
    text = " · " + rate.toFixed(1) + " " + root.dataset.perSecond;
    if (rate > 0) text += " · " + root.dataset.finish + " " + formatTime(new Date(Math.min(at + left / rate * 1000, Date.parse(data.end_at))).toISOString());
  }
  document.getElementById("progress-rate").textContent = text;
}

// The reports table (this page's filter and page) while the mailing runs, and the actions
// once its status changes: swapped in from /live, so they follow the mailing without a reload.
async function refreshMailingParts(status) {
  const controls = document.getElementById("mailing-controls");
  const table = document.getElementById("mailing-reports");
  const changed = controls.dataset.status !== status;
  if (!table || (status !== "running" && !changed)) return;
  const response = await consoleFetch(table.dataset.source + window.location.search,
                                      { headers: { "Accept": "text/html" } });
  if (!response.ok) return;
  const parts = document.createElement("template");
  parts.innerHTML = await response.text();
  table.replaceChildren(...parts.content.getElementById("mailing-reports").childNodes);
  const fresh = parts.content.getElementById("mailing-controls");
  if (changed || fresh.dataset.status !== controls.dataset.status) {
    // An open edit form is left alone only while the status stays what it was rendered for.
    controls.replaceChildren(...fresh.childNodes);
    controls.dataset.status = fresh.dataset.status;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("progress");
  if (root) poll(() => refreshMailing(root));
});

// "N clients match" under the filter builder: the API's preview of the ticked filter.
function wirePreview(form) {
  const out = document.getElementById("preview");
  let asked = 0;
  const update = async () => {
    const ticket = ++asked;
    const ticked = (name) => Array.from(form.querySelectorAll(`input[name="${name}[]"]:checked`))
      .map((box) => box.value);
    const response = await consoleFetch(out.dataset.source, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ tags: ticked("tags"), operator_codes: ticked("operator_codes"),
                             purpose: form.querySelector("#purpose").value }),
    });
    if (ticket !== asked) return;
    const answer = await response.json();
    if (!response.ok) { out.textContent = answer.detail || response.statusText; return; }
    out.dataset.matching = answer.matching;
    out.textContent = out.dataset.template.replace("%(matching)s", answer.matching)
      .replace("%(will_send)s", answer.will_send).replace("%(no_consent)s", answer.skipped.no_consent)
      .replace("%(opted_out)s", answer.skipped.opted_out);
  };
  form.addEventListener("change", (event) => {
    if (event.target.matches('input[type="checkbox"], #purpose')) update();
  });
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("mailing-form");
  if (form && document.getElementById("preview")) wirePreview(form);
});
