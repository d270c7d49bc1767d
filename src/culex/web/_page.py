"""The dashboard's page: one HTML document with its script and style, no build step, nothing
fetched from elsewhere (a strict Content-Security-Policy says so to the browser).

For now the overview: sign in, then the broker's figures, live (server-sent events). The
clients, topics, retained messages and test client pages are to come (issue 15)."""

from __future__ import annotations

PAGE_HEADERS = [
    ("content-security-policy",
     "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
     "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("referrer-policy", "no-referrer"),
]

PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>culex</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d3b57;color:#fff;padding:.8em 1.2em;font-weight:600}
main{padding:1.2em;max-width:60em}
form{display:grid;gap:.6em;max-width:20em}
input,button{font:inherit;padding:.4em}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(11em,1fr));gap:.8em}
dl div{background:#fff;border-radius:6px;padding:.7em;box-shadow:0 1px 2px #0002}
dt{font-size:.8em;color:#56606b}dd{margin:0;font-size:1.5em;font-variant-numeric:tabular-nums}
#error{color:#a11}
</style></head>
<body><header>culex</header><main>
<form id="login" hidden>
<label>User <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
required></label><button>Sign in</button><p id="error"></p></form>
<section id="overview" hidden><dl id="figures"></dl>
<button id="logout">Sign out</button></section>
</main>
<script>
const $ = (id) => document.getElementById(id);
let csrf = null;
const FIGURES = [["connected", (o) => o.gauges.connected, "clients connected"],
  ["sessions", (o) => o.gauges.sessions, "sessions"],
  ["subscriptions", (o) => o.gauges.subscriptions, "subscriptions"],
  ["retained", (o) => o.gauges.retained_messages, "retained messages"],
  ["in", (o) => o.rates.messages_in, "messages in / s"],
  ["out", (o) => o.rates.messages_out, "messages out / s"],
  ["dropped", (o) => Object.values(o.counters.dropped).reduce((a, b) => a + b, 0),
   "messages dropped"]];
function show(o) {
  $("figures").innerHTML = "";
  for (const [id, get, label] of FIGURES) {
    const div = document.createElement("div");
    const dt = document.createElement("dt"); dt.textContent = label;
    const dd = document.createElement("dd"); dd.id = "figure-" + id;
    dd.textContent = Math.round(get(o) * 10) / 10;
    div.append(dt, dd); $("figures").append(div);
  }
}
function live() {
  $("login").hidden = true; $("overview").hidden = false;
  const events = new EventSource("/api/events");
  events.addEventListener("overview", (e) => show(JSON.parse(e.data)));
}
async function start() {
  const r = await fetch("/api/session");
  if (r.ok) { csrf = (await r.json()).csrf; live(); } else { $("login").hidden = false; }
}
$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/login", {method: "POST",
    body: new URLSearchParams(new FormData($("login")))});
  if (r.ok) { csrf = (await r.json()).csrf; live(); }
  else { $("error").textContent = "Wrong user name or password, or no access."; }
});
$("logout").addEventListener("click", async () => {
  await fetch("/api/logout", {method: "POST", headers: {"X-CSRF-Token": csrf}, body: "{}"});
  location.reload();
});
start();
</script></body></html>
"""
