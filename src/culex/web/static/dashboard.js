// culex dashboard: plain JavaScript, no build step, nothing loaded from elsewhere.
// Live data comes as server-sent events (/api/events: the overview and the topics changed,
// once a second; /api/subscribe: the test client's messages). Every text from the broker is
// put in the page as text (textContent), never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { csrf: null, events: null, history: null, topics: new Map(), overview: null,
  clients: [], clientSign: "", selectedClient: null, selectedTopic: null, subscription: null,
  disconnectButton: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e9) return (value / 1e9).toFixed(digits) + " G";
  if (abs >= 1e6) return (value / 1e6).toFixed(digits) + " M";
  if (abs >= 1e4) return (value / 1e3).toFixed(digits) + " k";
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

function ago(seconds) {
  if (!seconds) return "–";
  const s = Math.max(0, Date.now() / 1000 - seconds);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

async function api(path, body) {
  const options = body === undefined ? {} : { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf } };
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (response.status === 401 && path !== "/api/session") { location.reload(); }
  return { ok: response.ok, status: response.status, data };
}

// ---- charts: SVG polylines, one or two series over the last hour ---------------------------

const CHARTS = [
  { id: "messages", title: "Messages per second", a: "messages_in", b: "messages_out",
    la: "in", lb: "out" },
  { id: "bytes", title: "Bytes per second", a: "bytes_in", b: "bytes_out", la: "in", lb: "out" },
  { id: "connections", title: "Clients connected and sessions", a: "connected", b: "sessions",
    la: "connected", lb: "sessions" },
  { id: "subscriptions", title: "Subscriptions and retained messages", a: "subscriptions",
    b: "retained", la: "subscriptions", lb: "retained" },
  { id: "drops", title: "Messages dropped per second, and queued", a: "dropped", b: "queued",
    la: "dropped", lb: "queued" },
  { id: "commit", title: "Store commit time (ms, mean)", a: "commit_ms", la: "commit" },
];

function polyline(times, values, t0, t1, top, cls) {
  const width = 600, height = 100;
  const points = [];
  for (let i = 0; i < times.length; i++) {
    const x = ((times[i] - t0) / Math.max(t1 - t0, 1)) * width;
    const y = height - (values[i] / top) * (height - 4) - 2;
    points.push(x.toFixed(1) + "," + y.toFixed(1));
  }
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("class", cls);
  return line;
}

function chartSvg(times, series, t0, t1) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 600 100");
  svg.setAttribute("preserveAspectRatio", "none");
  for (const y of [25, 50, 75]) {
    const grid = document.createElementNS("http://www.w3.org/2000/svg", "line");
    grid.setAttribute("x1", "0"); grid.setAttribute("x2", "600");
    grid.setAttribute("y1", y); grid.setAttribute("y2", y);
    grid.setAttribute("class", "grid");
    svg.append(grid);
  }
  let high = 0;
  for (const [values] of series) for (const v of values) high = Math.max(high, v);
  const top = high > 0 ? high * 1.1 : 1;
  for (const [values, cls] of series) svg.append(polyline(times, values, t0, t1, top, cls));
  return { svg, high };
}

function drawCharts() {
  const h = state.history;
  if (!h) return;
  const box = $("charts");
  box.replaceChildren();
  const t1 = h.time.length ? h.time[h.time.length - 1] : Date.now() / 1000;
  const t0 = Math.min(h.time.length ? h.time[0] : t1, t1 - 60);
  for (const chart of CHARTS) {
    const series = [[h[chart.a], "line-a"]];
    if (chart.b) series.push([h[chart.b], "line-b"]);
    const { svg, high } = chartSvg(h.time, series, t0, t1);
    svg.id = "chart-" + chart.id;
    svg.dataset.points = String(h.time.length);
    const legend = el("div", { class: "legend" }, el("span", { class: "a" }, "— " + chart.la));
    if (chart.b) legend.append(el("span", { class: "b" }, "— " + chart.lb));
    const last = (name) => fmt(h[name][h[name].length - 1] ?? 0);
    legend.append(el("span", {}, "now " + last(chart.a) + (chart.b ? " / " + last(chart.b) : "")));
    box.append(el("div", { class: "chart" }, el("h3", {}, chart.title), legend, svg,
      el("div", { class: "axis" }, el("span", {}, Math.round((t1 - t0) / 60) + " min ago"),
        el("span", {}, "max " + fmt(high)), el("span", {}, "now"))));
  }
}

// ---- overview -------------------------------------------------------------------------------

const FIGURES = [
  ["connected", "clients connected", (o) => o.gauges.connected],
  ["sessions", "sessions", (o) => o.gauges.sessions],
  ["subscriptions", "subscriptions", (o) => o.gauges.subscriptions],
  ["retained", "retained messages", (o) => o.gauges.retained_messages],
  ["in", "messages in / s", (o) => o.sample && o.sample.messages_in],
  ["out", "messages out / s", (o) => o.sample && o.sample.messages_out],
  ["bytes-in", "bytes in / s", (o) => o.sample && o.sample.bytes_in],
  ["bytes-out", "bytes out / s", (o) => o.sample && o.sample.bytes_out],
  ["queued", "messages queued", (o) => o.gauges.queued_messages],
  ["dropped", "messages dropped", (o) => Object.values(o.counters.dropped).reduce((a, b) => a + b, 0)],
  ["commit", "store commit (ms)", (o) => o.sample && o.sample.commit_ms],
];

function showCluster(c) {
  const line = $("cluster");
  line.hidden = !c;
  if (!c) return;
  line.textContent = "Node " + c.node + " of a cluster of " + c.nodes.length + " (" +
    c.nodes.join(", ") + ") · NATS " + (c.connected ? "connected" : "NOT CONNECTED") + " · " +
    fmt(c.sent, 0) + " messages sent to the other nodes, " + fmt(c.received, 0) + " received";
}

function showOverview(o) {
  state.overview = o;
  showCluster(o.cluster);
  const figures = $("figures");
  if (!figures.children.length) {
    for (const [id, label] of FIGURES) {
      figures.append(el("div", {}, el("dt", {}, label), el("dd", { id: "figure-" + id }, "–")));
    }
  }
  for (const [id, , get] of FIGURES) $("figure-" + id).textContent = fmt(get(o));
  const drops = $("drops").tBodies[0];
  drops.replaceChildren(...Object.entries(o.counters.dropped).map(([reason, count]) =>
    el("tr", {}, el("td", {}, reason.replaceAll("_", " ")), el("td", { class: "num" }, fmt(count, 0)))));
  $("uptime").textContent = "Up " + Math.round(o.uptime / 60) + " min; a point every " +
    o.sample_seconds + " s, the last hour kept.";
  const h = state.history;
  if (h && o.sample && (!h.time.length || o.sample_time > h.time[h.time.length - 1])) {
    h.time.push(o.sample_time);
    for (const [name, value] of Object.entries(o.sample)) h[name].push(value);
    if (h.time.length > 1800) for (const key of Object.keys(h)) h[key].shift();
    if (current() === "overview") drawCharts();
  }
  const sign = [o.gauges.connected, o.gauges.sessions, o.counters.connections.accepted,
    o.gauges.subscriptions, o.gauges.queued_messages, o.gauges.inflight_messages].join();
  if (sign !== state.clientSign) { state.clientSign = sign; if (current() === "clients") loadClients(); }
}

// ---- clients ----------------------------------------------------------------------------------

async function loadClients() {
  const r = await api("/api/clients");
  if (!r.ok) return;
  state.clients = r.data;
  drawClients();
}

function sessionText(c) {
  if (c.session_expiry === 0) return "clean";
  if (c.session_expiry >= 0xFFFFFFFF) return "never expires";
  return "expires " + c.session_expiry + " s";
}

function drawClients() {
  const words = $("client-search").value.trim().toLowerCase();
  const shown = state.clients.filter((c) => !words ||
    [c.client_id, c.username || "", c.peer || ""].some((s) => s.toLowerCase().includes(words)));
  shown.sort((a, b) => (b.connected - a.connected) || a.client_id.localeCompare(b.client_id));
  $("client-count").textContent = shown.length + " of " + state.clients.length + " sessions";
  $("clients").tBodies[0].replaceChildren(...shown.slice(0, 2000).map((c) => {
    const row = el("tr", { "data-client": c.client_id,
      class: (c.connected ? "" : "offline") + (c.client_id === state.selectedClient ? " selected" : ""),
      onclick: () => { state.selectedClient = c.client_id; drawClients(); } },
      el("td", {}, c.client_id), el("td", {}, c.username || ""),
      el("td", {}, c.connected ? (c.peer || "") : "offline"), el("td", {}, c.protocol || ""),
      el("td", { class: "num" }, c.keep_alive ?? ""), el("td", {}, sessionText(c)),
      el("td", {}, c.tls ? "yes" : ""), el("td", { class: "num" }, c.queued),
      el("td", { class: "num" }, c.inflight), el("td", { class: "num" }, c.subscriptions.length));
    return row;
  }));
  drawClientDetail();
}

function drawClientDetail() {
  const box = $("client-detail");
  const c = state.clients.find((x) => x.client_id === state.selectedClient);
  if (!c) { box.hidden = true; return; }
  box.hidden = false;
  const rows = [["client id", c.client_id], ["state", c.connected ? "connected" : "offline"],
    ["user", c.username || "(none)"], ["address", c.peer || "–"], ["MQTT", c.protocol || "–"],
    ["keep-alive", c.keep_alive !== undefined ? c.keep_alive + " s" : "–"],
    ["session", sessionText(c)], ["TLS", c.tls ? "yes" : "no"], ["queued", c.queued],
    ["in flight", c.inflight]];
  const list = el("dl");
  for (const [k, v] of rows) list.append(el("dt", {}, k), el("dd", {}, String(v)));
  const subs = el("ul");
  for (const s of c.subscriptions) subs.append(el("li", {}, s));
  box.replaceChildren(el("h2", {}, c.client_id), list,
    el("h3", {}, "Subscriptions (" + c.subscriptions.length + ")"), subs, disconnectButton(c));
}

// One button kept across redraws: the detail is drawn again whenever a connection figure
// changes, and a button replaced between a press and its release would lose the click.
function disconnectButton(c) {
  let out = state.disconnectButton;
  if (!out) {
    out = state.disconnectButton = el("button", { class: "danger", id: "disconnect-client" },
      "Disconnect");
    out.addEventListener("click", async () => {
      out.disabled = true;
      const r = await api("/api/clients/disconnect", { client_id: out.dataset.client });
      out.textContent = r.ok ? "Disconnected" : "Not connected";
      loadClients();
    });
  }
  if (out.dataset.client !== c.client_id || c.connected) out.textContent = "Disconnect";
  out.dataset.client = c.client_id;
  out.disabled = !c.connected;
  return out;
}

// ---- topics -----------------------------------------------------------------------------------

const tree = { children: new Map(), li: null, ul: null };

function treeNode(parent, level, path) {
  let node = parent.children.get(level);
  if (node) return node;
  const value = el("span", { class: "value" });
  const meta = el("span", { class: "meta" });
  const twisty = el("span", { class: "twisty" }, "");
  const row = el("div", { class: "node" }, twisty, el("span", { class: "level" }, level || "(empty)"),
    value, meta);
  const li = el("li", { "data-path": path }, row);
  node = { children: new Map(), li, ul: null, row, value, meta, twisty, path, topic: null };
  // A level with a value is selected by a click (its twisty folds it); one without folds.
  const fold = () => {
    if (!node.ul) return;
    li.classList.toggle("closed");
    node.twisty.textContent = li.classList.contains("closed") ? "▸" : "▾";
  };
  twisty.addEventListener("click", (event) => { event.stopPropagation(); fold(); });
  row.addEventListener("click", () => {
    if (!node.topic) { fold(); return; }
    for (const other of document.querySelectorAll(".tree .node.selected")) other.classList.remove("selected");
    row.classList.add("selected");
    state.selectedTopic = node.path;
    showTopic();
  });
  if (!parent.ul) {
    parent.ul = parent === tree ? $("tree") : el("ul");
    if (parent !== tree) { parent.li.append(parent.ul); parent.twisty.textContent = "▾"; }
  }
  // Keep siblings in name order.
  const before = [...parent.children.keys()].filter((k) => k > level).sort()[0];
  if (before !== undefined) parent.ul.insertBefore(li, parent.children.get(before).li);
  else parent.ul.append(li);
  parent.children.set(level, node);
  return node;
}

function updateTopics(entries, flash) {
  for (const t of entries) {
    state.topics.set(t.topic, t);
    let node = tree;
    const levels = t.topic.split("/");
    levels.forEach((level, i) => { node = treeNode(node, level, levels.slice(0, i + 1).join("/")); });
    node.topic = t;
    node.value.textContent = t.binary ? "0x" + t.payload.slice(0, 40) : t.payload.slice(0, 80);
    node.meta.textContent = (t.retained ? "retained · " : "") + fmt(t.rate, 2) + "/s";
    if (flash) { node.row.classList.remove("flash"); void node.row.offsetWidth; node.row.classList.add("flash"); }
    if (t.topic === state.selectedTopic) showTopic();
  }
  $("topic-count").textContent = state.topics.size + " topics";
  filterTopics();
}

function filterTopics() {
  const words = $("topic-search").value.trim().toLowerCase();
  const walk = (node) => {
    let any = false;
    for (const child of node.children.values()) {
      const mine = !words || child.path.toLowerCase().includes(words);
      const below = walk(child);
      child.li.hidden = !(mine || below);
      any = any || mine || below;
    }
    return any;
  };
  walk(tree);
}

async function showTopic() {
  const name = state.selectedTopic;
  const box = $("topic-detail");
  const r = await api("/api/topic?name=" + encodeURIComponent(name));
  if (!r.ok || name !== state.selectedTopic) return;
  const t = r.data;
  box.hidden = false;
  const list = el("dl");
  const rows = [["topic", t.topic], ["retained", t.retained ? "yes" : "no"], ["QoS", t.qos],
    ["size", t.size + " bytes" + (t.truncated ? " (start shown)" : "")],
    ["messages", t.count], ["rate", fmt(t.rate, 2) + " / s"], ["last", ago(t.time)]];
  for (const [k, v] of rows) list.append(el("dt", {}, k), el("dd", {}, String(v)));
  const parts = [el("h2", {}, "Topic"), list, el("pre", { id: "topic-payload" },
    t.binary ? "hex: " + t.payload : t.payload)];
  if (t.history && t.history.length > 1) {
    const times = t.history.map((p) => p[0]), values = t.history.map((p) => p[1]);
    const low = Math.min(...values), high = Math.max(...values);
    const span = high - low || 1;
    const { svg } = chartSvg(times, [[values.map((v) => v - low + span * 0.05), "line-a"]],
      times[0], times[times.length - 1]);
    svg.id = "topic-chart";
    parts.push(el("div", { class: "chart" }, el("h3", {}, "History"), svg,
      el("div", { class: "axis" }, el("span", {}, ago(times[0])), el("span", {},
        fmt(low, 2) + " … " + fmt(high, 2)), el("span", {}, "now"))));
  }
  box.replaceChildren(...parts);
}

// ---- retained -----------------------------------------------------------------------------------

let retainedList = [];

async function loadRetained() {
  const filter = $("retained-filter").value.trim() || "#";
  const r = await api("/api/retained?filter=" + encodeURIComponent(filter));
  retainedList = r.ok ? r.data : [];
  retainedList.sort((a, b) => a.topic.localeCompare(b.topic));
  $("retained").tBodies[0].replaceChildren(...retainedList.map((m) => {
    const remove = el("button", { class: "quiet", "data-delete": m.topic }, "Delete");
    remove.addEventListener("click", async (event) => {
      event.stopPropagation();
      await api("/api/retained/delete", { filter: m.topic });
      loadRetained();
    });
    return el("tr", { "data-topic": m.topic, onclick: () => inspectRetained(m) },
      el("td", {}, m.topic), el("td", { class: "num" }, m.size), el("td", { class: "num" }, m.qos),
      el("td", { class: "payload" }, m.binary ? "0x" + m.payload.slice(0, 32) : m.payload.slice(0, 60)),
      el("td", {}, remove));
  }));
  const all = $("retained-delete-all");
  all.hidden = retainedList.length < 2;
  all.dataset.confirm = "";
  all.textContent = "Delete all " + retainedList.length;
  $("retained-detail").hidden = true;
}

function inspectRetained(m) {
  const box = $("retained-detail");
  box.hidden = false;
  const list = el("dl");
  for (const [k, v] of [["topic", m.topic], ["QoS", m.qos], ["size", m.size + " bytes"]]) {
    list.append(el("dt", {}, k), el("dd", {}, String(v)));
  }
  box.replaceChildren(el("h2", {}, "Retained message"), list,
    el("pre", {}, (m.binary ? "hex: " : "") + m.payload + (m.truncated ? "\n…" : "")));
}

// ---- test client ------------------------------------------------------------------------------

function subscribe(filter) {
  unsubscribe();
  const list = $("sub-messages");
  list.replaceChildren();
  const source = new EventSource("/api/subscribe?filter=" + encodeURIComponent(filter));
  state.subscription = source;
  $("sub-state").textContent = "Subscribing to " + filter + " …";
  source.addEventListener("subscribed", () => {
    $("sub-state").textContent = "Subscribed to " + filter;
    $("sub-stop").hidden = false;
  });
  source.addEventListener("message", (e) => {
    const m = JSON.parse(e.data);
    const item = el("li", {}, el("span", { class: "topic" }, m.topic),
      el("span", { class: "badge" }, "QoS " + m.qos), m.retain ? el("span", { class: "badge" }, "retained") : "",
      el("pre", {}, m.binary ? "hex: " + m.payload : m.payload));
    list.prepend(item);
    while (list.children.length > 200) list.lastChild.remove();
    if (m.lost) $("sub-state").textContent = "Subscribed to " + filter + " (" + m.lost + " not shown: too fast)";
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      $("sub-state").textContent = "Refused: not a valid filter, or the ACL does not allow it";
      $("sub-stop").hidden = true;
    }
  };
}

function unsubscribe() {
  if (state.subscription) { state.subscription.close(); state.subscription = null; }
  $("sub-stop").hidden = true;
  $("sub-state").textContent = "";
}

// ---- pages, sign-in --------------------------------------------------------------------------

const PAGES = ["overview", "clients", "topics", "retained", "client"];

function current() {
  const name = location.hash.slice(1);
  return PAGES.includes(name) ? name : "overview";
}

function route() {
  const name = current();
  for (const page of PAGES) {
    $("page-" + page).hidden = page !== name;
    $("nav-" + page).classList.toggle("current", page === name);
  }
  if (name === "overview") drawCharts();
  if (name === "clients") loadClients();
  if (name === "retained") loadRetained();
}

async function live(session) {
  state.csrf = session.csrf;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("user").textContent = session.username;
  const history = await api("/api/history");
  state.history = history.ok ? history.data : null;
  const events = new EventSource("/api/events");
  state.events = events;
  let first = true;
  events.addEventListener("overview", (e) => showOverview(JSON.parse(e.data)));
  events.addEventListener("topics", (e) => {
    updateTopics(JSON.parse(e.data).topics, !first);
    first = false;
  });
  window.addEventListener("hashchange", route);
  route();
}

async function start() {
  const r = await api("/api/session");
  if (r.ok) live(r.data); else { $("login").hidden = false; $("username").focus(); }
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const response = await fetch("/login", { method: "POST",
    body: new URLSearchParams(new FormData($("login"))) });
  if (response.ok) { $("login-error").textContent = ""; live(await response.json()); }
  else $("login-error").textContent = "Wrong user name or password, or no access to the dashboard.";
});
$("logout").addEventListener("click", async () => {
  await api("/api/logout", {});
  location.reload();
});
$("client-search").addEventListener("input", drawClients);
$("topic-search").addEventListener("input", filterTopics);
$("retained-form").addEventListener("submit", (e) => { e.preventDefault(); loadRetained(); });
$("retained-delete-all").addEventListener("click", async () => {
  const button = $("retained-delete-all");
  if (!button.dataset.confirm) {
    button.dataset.confirm = "yes";
    button.textContent = "Really delete " + retainedList.length + " retained messages?";
    return;
  }
  await api("/api/retained/delete", { filter: $("retained-filter").value.trim() || "#" });
  loadRetained();
});
$("publish").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await api("/api/publish", { topic: $("pub-topic").value, payload: $("pub-payload").value,
    qos: Number($("pub-qos").value), retain: $("pub-retain").checked });
  $("pub-result").textContent = r.ok ? "Published to " + r.data.subscribers + " subscriber(s)"
    : "Refused: " + ((r.data && r.data.error) || r.status);
});
$("subscribe").addEventListener("submit", (e) => { e.preventDefault(); subscribe($("sub-filter").value.trim()); });
$("sub-stop").addEventListener("click", unsubscribe);
start();
