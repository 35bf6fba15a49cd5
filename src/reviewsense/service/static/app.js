// reviewsense dashboard: plain JS, no build step.
// The API key lives in sessionStorage and travels only in the X-API-Key header (never in a URL).
// The live feed reads /v1/stream with fetch(): EventSource cannot send headers.
"use strict";

const KEY_STORE = "reviewsense.apiKey";
let apiKey = sessionStorage.getItem(KEY_STORE);
let role = null;
let lastEventId = null;
let streamAbort = null;
const shown = new Map(); // flag id -> <li>

const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = Object.assign({ "X-API-Key": apiKey }, options.headers || {});
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) { logout("The key was rejected (unknown or revoked)."); throw new Error("401"); }
  return resp;
}

function logout(message) {
  sessionStorage.removeItem(KEY_STORE);
  apiKey = null;
  if (streamAbort) streamAbort.abort();
  $("dashboard").classList.add("hidden");
  $("logout").classList.add("hidden");
  $("login").classList.remove("hidden");
  $("login-error").textContent = message || "";
  $("who").textContent = "";
}

async function login(key) {
  apiKey = key;
  const resp = await fetch("/v1/me", { headers: { "X-API-Key": key } });
  if (!resp.ok) { logout("The key was rejected (unknown or revoked)."); return; }
  role = (await resp.json()).role;
  if (role === "ingest") { logout("An ingest key cannot read the dashboard: use a read or support key."); return; }
  sessionStorage.setItem(KEY_STORE, key);
  $("login").classList.add("hidden");
  $("dashboard").classList.remove("hidden");
  $("logout").classList.remove("hidden");
  $("who").textContent = role + " key";
  $("viewers-panel").classList.toggle("hidden", role !== "support");
  startStream();
  await loadOpenFlags();
  refreshTitles();
  refreshViewers();
}

// ------------------------------------------------------------------ flags

function fmtTime(iso) { return new Date(iso).toLocaleString(); }

function renderFlag(flag) {
  if (flag.status !== "open" || shown.has(flag.id)) return;
  const li = document.createElement("li");
  li.dataset.flagId = flag.id;
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `#${flag.id} · ${flag.title_name || flag.title_id} · P(negative) ${flag.prob_negative.toFixed(2)}`
    + (flag.user_id ? ` · user ${flag.user_id}` : "") + ` · ${fmtTime(flag.created_at)}`;
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = flag.text; // textContent: review text is untrusted, never HTML
  li.append(meta, text);
  if (role === "support") {
    const btn = document.createElement("button");
    btn.className = "resolve";
    btn.textContent = "Resolve";
    btn.addEventListener("click", () => resolveFlag(flag.id, btn));
    li.append(btn);
  }
  // Newest first.
  const feed = $("feed");
  const next = [...feed.children].find((el) => Number(el.dataset.flagId) < flag.id);
  feed.insertBefore(li, next || null);
  shown.set(flag.id, li);
  updateCount();
}

function updateCount() { $("flag-count").textContent = `(${shown.size} open)`; }

async function resolveFlag(id, btn) {
  btn.disabled = true;
  const resp = await api(`/v1/flags/${id}/resolve`, { method: "POST" });
  if (resp.ok) {
    const li = shown.get(id);
    if (li) li.remove();
    shown.delete(id);
    updateCount();
  } else {
    btn.disabled = false;
    $("feed-error").textContent = `resolve failed: ${(await resp.json()).detail}`;
  }
}

async function loadOpenFlags() {
  const resp = await api("/v1/flags?status=open&limit=100");
  if (!resp.ok) { $("feed-error").textContent = (await resp.json()).detail; return; }
  const page = await resp.json();
  page.items.forEach(renderFlag);
}

// Server-Sent Events over fetch(): parse "id:", "event:" and "data:" lines by hand.
async function startStream() {
  if (streamAbort) streamAbort.abort();
  streamAbort = new AbortController();
  const signal = streamAbort.signal;
  let delay = 1000;
  while (apiKey && !signal.aborted) {
    try {
      const headers = { "X-API-Key": apiKey, "Accept": "text/event-stream" };
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;
      const resp = await fetch("/v1/stream", { headers, signal });
      if (resp.status === 401) { logout("The key was rejected (unknown or revoked)."); return; }
      if (!resp.ok) throw new Error(`stream: HTTP ${resp.status}`);
      $("status").textContent = "live";
      delay = 1000;
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          handleEvent(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    $("status").textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

function handleEvent(block) {
  let event = "message", data = "", id = null;
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data += (data ? "\n" : "") + value;
    else if (field === "id") id = value;
  }
  if (id) lastEventId = id;
  if (event === "flag" && data) renderFlag(JSON.parse(data));
}

// ------------------------------------------------------------------ titles

function pct(x) { return x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`; }

function sparkline(daily, days = 14) {
  const w = 120, h = 24;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  svg.setAttribute("class", "sparkline");
  const start = new Date(); start.setUTCHours(0, 0, 0, 0);
  start.setUTCDate(start.getUTCDate() - (days - 1));
  const pts = daily.map((d) => {
    const day = Math.round((Date.parse(d.date + "T00:00:00Z") - start) / 86400000);
    return [day / (days - 1) * (w - 4) + 2, h - 2 - d.positive_share * (h - 4)];
  });
  if (pts.length) {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.map((p) => p.join(",")).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", "#2e86de"); line.setAttribute("stroke-width", "1.5");
    svg.append(line);
    for (const [x, y] of pts) {
      const dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", x); dot.setAttribute("cy", y); dot.setAttribute("r", 1.5); dot.setAttribute("fill", "#2e86de");
      svg.append(dot);
    }
  }
  return svg;
}

function fillTable(table, items, columns) {
  table.replaceChildren();
  const head = table.insertRow();
  for (const [label] of columns) { const th = document.createElement("th"); th.textContent = label; head.append(th); }
  for (const item of items) {
    const row = table.insertRow();
    if (item.title_id !== undefined) row.dataset.titleId = item.title_id;
    for (const [, render, cls] of columns) {
      const td = row.insertCell();
      if (cls) td.className = cls;
      const v = render(item);
      if (v instanceof Node) td.append(v); else td.textContent = v;
    }
  }
}

async function refreshTitles() {
  if (!apiKey) return;
  try {
    const [top, fresh, all] = await Promise.all([
      api("/v1/titles?sort=positive_share&limit=10&days=0").then((r) => r.json()),
      api("/v1/titles?sort=new&limit=10&days=0").then((r) => r.json()),
      api("/v1/titles?sort=reviews&limit=100&days=14").then((r) => r.json()),
    ]);
    const name = (t) => t.name || t.title_id;
    fillTable($("top-titles"), top.items, [["Title", name], ["Positive", (t) => pct(t.positive_share), "num"], ["Reviews", (t) => t.reviews, "num"]]);
    fillTable($("new-titles"), fresh.items, [["Title", name], ["First seen", (t) => fmtTime(t.first_seen_at)], ["Positive", (t) => pct(t.positive_share), "num"]]);
    fillTable($("titles"), all.items, [
      ["Title", name], ["Reviews", (t) => t.reviews, "num"], ["Positive", (t) => pct(t.positive_share), "num"],
      ["7-day trend", (t) => t.trend_7d === null ? "–" : `${t.trend_7d > 0 ? "+" : ""}${Math.round(t.trend_7d * 100)} pts`, "num"],
      ["Daily positive share", (t) => sparkline(t.daily)],
    ]);
  } catch (err) { /* next refresh retries */ }
}

// ------------------------------------------------------------------ viewers (support keys)

const VIEWER_DAYS = 30;

async function refreshViewers() {
  if (!apiKey || role !== "support") return;
  const since = new Date(Date.now() - VIEWER_DAYS * 86400000).toISOString();
  try {
    const resp = await api(`/v1/users?sort=negative_share&limit=20&since=${encodeURIComponent(since)}`);
    if (!resp.ok) { $("viewers-error").textContent = (await resp.json()).detail; return; }
    $("viewers-error").textContent = "";
    const page = await resp.json();
    fillTable($("viewers"), page.items, [
      ["Viewer", (u) => u.user_id], ["Reviews", (u) => u.reviews, "num"],
      ["Negative", (u) => u.negative, "num"], ["Share", (u) => pct(u.negative_share), "num"],
      ["Open flags", (u) => u.open_flags, "num"], ["Last review", (u) => fmtTime(u.last_review_at)],
    ]);
    const rows = $("viewers").rows;
    page.items.forEach((u, i) => {
      const row = rows[i + 1];
      row.dataset.userId = u.user_id;
      if (u.negative_share !== null && u.negative_share >= 0.5) row.cells[3].classList.add("bad");
      row.addEventListener("click", () => showViewer(u.user_id));
    });
  } catch (err) { /* next refresh retries */ }
}

async function showViewer(userId) {
  const resp = await api(`/v1/users/${encodeURIComponent(userId)}/reviews?limit=20`);
  if (!resp.ok) { $("viewers-error").textContent = (await resp.json()).detail; return; }
  const list = $("viewer-reviews");
  list.replaceChildren();
  for (const r of (await resp.json()).items) {
    const li = document.createElement("li");
    li.className = r.label;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${userId} · ${r.title_name || r.title_id} · P(negative) ${r.prob_negative.toFixed(2)}`
      + (r.flag_status ? ` · flag ${r.flag_status}` : "") + ` · ${fmtTime(r.created_at)}`;
    const text = document.createElement("div");
    text.textContent = r.text; // untrusted: text, never HTML
    li.append(meta, text);
    list.append(li);
  }
}

// ------------------------------------------------------------------ start

$("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("key-input").value.trim()); });
$("logout").addEventListener("click", () => logout(""));
setInterval(refreshTitles, 10000);
setInterval(refreshViewers, 10000);
// Flags resolved elsewhere (another support agent) drop out on this periodic reload.
setInterval(async () => {
  if (!apiKey) return;
  const resp = await api("/v1/flags?status=open&limit=100");
  if (!resp.ok) return;
  const open = new Set((await resp.json()).items.map((f) => f.id));
  for (const [id, li] of shown) if (!open.has(id) && id <= Math.max(...open, 0)) { li.remove(); shown.delete(id); }
  updateCount();
}, 30000);
if (apiKey) login(apiKey); else logout("");
