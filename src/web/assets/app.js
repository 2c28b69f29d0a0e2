// The status page: follows the phone through server-sent events, and sends the user's
// commands with the page's CSRF token. Text from the phone goes in with textContent only.
"use strict";
const csrf = document.querySelector('meta[name="csrf-token"]').content;

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function post(path, form) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form || {}),
  });
  const text = await response.text();
  document.getElementById("call-message").textContent = text;
  return response.ok;
}

function showStatus(s) {
  document.getElementById("connection").textContent = s.connection;
  for (const node of document.querySelectorAll("#diagram .state")) {
    node.classList.toggle("current", node.dataset.state === s.state);
  }
  const counters = document.getElementById("counters");
  counters.replaceChildren();
  for (const [name, value] of s.counters) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    counters.append(dt, dd);
  }
  const lines = document.getElementById("lines");
  lines.replaceChildren();
  for (const l of s.lines) {
    const row = document.createElement("tr");
    cell(row, "Line " + l.line);
    cell(row, l.state);
    cell(row, l.expires_in);
    lines.appendChild(row);
  }
  const calls = document.getElementById("calls");
  calls.replaceChildren();
  for (const c of s.calls) {
    const row = document.createElement("tr");
    cell(row, "call#" + c.call);
    cell(row, c.line === null ? "" : String(c.line));
    cell(row, c.incoming ? "incoming" : "outgoing");
    cell(row, c.peer);
    cell(row, c.state);
    const actions = cell(row, "");
    const button = (label, path) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.setAttribute("aria-label", label + " call#" + c.call);
      b.addEventListener("click", () => post(path));
      actions.appendChild(b);
    };
    if (c.incoming && c.state === "ringing") {
      button("Answer", "/calls/" + c.call + "/answer");
      button("Reject", "/calls/" + c.call + "/reject");
    }
    button("Hang up", "/calls/" + c.call + "/hangup");
    calls.appendChild(row);
  }
}

function addTimeline(entry) {
  const li = document.createElement("li");
  li.textContent = (entry.at_ms / 1000).toFixed(3) + " s: " + entry.text;
  const list = document.getElementById("timeline");
  list.insertBefore(li, list.firstChild);
}

// Only the status page follows the phone; the settings pages are plain forms.
if (document.getElementById("dial")) {
  document.getElementById("dial").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    post("/calls/dial", { line: form.line.value, target: form.target.value });
  });

  const events = new EventSource("/events");
  events.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  events.addEventListener("timeline", (e) => addTimeline(JSON.parse(e.data)));
  // The session ended (logout elsewhere, expiry): back to the login.
  events.addEventListener("end", () => {
    events.close();
    window.location.assign("/login");
  });
}
