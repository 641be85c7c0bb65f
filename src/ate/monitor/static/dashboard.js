// ate operator dashboard: renders /api/stream frames (server-sent events); no external libraries.
"use strict";

const MODULES = ["bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe"];
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function fmt(v, digits = 2) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return String(v);
}
const pct = (v) => (v === null || v === undefined ? "—" : (100 * v).toFixed(2) + " %");

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function table(id, columns, rows) {
  const t = $(id);
  t.replaceChildren();
  const head = el("tr");
  columns.forEach(([label]) => head.append(el("th", label)));
  t.append(head);
  if (!rows.length) { const r = el("tr"); const c = el("td", "none"); c.colSpan = columns.length; r.append(c); t.append(r); }
  rows.forEach((row) => {
    const tr = el("tr");
    columns.forEach(([, get]) => tr.append(el("td", fmt(get(row)))));
    t.append(tr);
  });
}

function tiles(status) {
  const box = $("modules");
  if (!box.children.length) {
    MODULES.forEach((m) => {
      const tile = el("div", undefined, "tile");
      tile.dataset.module = m;
      tile.append(el("span", m, "name"), el("span", "UNKNOWN", "status"));
      box.append(tile);
    });
  }
  MODULES.forEach((m) => {
    const tile = box.querySelector(`[data-module="${m}"]`);
    const s = status[m] || "UNKNOWN";
    tile.className = "tile st-" + s;
    tile.querySelector(".status").textContent = s;
  });
}

function health(h) {
  $("source").textContent = h.source;
  $("uptime").textContent = h.uptime_s === null ? "—" : fmt(h.uptime_s, 1) + " s";
  $("latency").textContent = `${fmt(h.trade_latency_ms.p50)} / ${fmt(h.trade_latency_ms.p99)}`;
  $("error-rates").textContent = Object.entries(h.api_error_rate)
    .map(([v, r]) => `${v}: ${pct(r["5m"])} / ${pct(r["24h"])}`).join(", ") || "—";
  $("websockets").textContent = Object.entries(h.websocket)
    .map(([s, w]) => `${s} ${w.connected ? "up" : "DOWN"} (${fmt(w.last_message_age_s, 1)} s)`).join(", ") || "—";
  $("skew").textContent = Object.entries(h.clock_skew_ms).map(([v, ms]) => `${v}: ${fmt(ms, 0)}`).join(", ") || "—";
  const st = h.trading_state || {};
  $("trading-state").textContent = st.state || "?";
  $("trading-state").className = "badge st-" + (st.state || "");
  $("state-reason").textContent = st.why ? `${st.why} (${st.who})` : "";
}

function strategies(s) {
  const rows = [
    ["arbitrage opportunities", s.arbitrage.opportunities_detected, "opportunities"],
    ["arbitrage trades", s.arbitrage.trades_executed, "arb-trades"],
    ["arbitrage avg profit (bps)", s.arbitrage.average_profit_bps],
    ["arbitrage slippage (bps)", s.arbitrage.slippage_bps],
    ["carry delta / target", `${fmt(s.delta_neutral.current_delta, 4)} / ${fmt(s.delta_neutral.target_delta, 4)}`],
    ["hedge effectiveness", s.delta_neutral.hedge_effectiveness, "hedge"],
    ["funding captured (USD)", s.delta_neutral.funding_captured_usd, "funding"],
    ["Sharpe (30 d)", s.performance.sharpe_ratio_rolling, "sharpe"],
    ["daily P&L (USD)", s.performance.daily_pnl_usd, "daily-pnl"],
    ["win rate (%)", s.performance.win_rate_pct, "win-rate"],
  ];
  const body = $("strategy").tBodies[0];
  body.replaceChildren();
  rows.forEach(([label, value, key]) => {
    const tr = el("tr");
    const td = el("td", fmt(value));
    if (key) td.dataset.metric = key;
    tr.append(el("th", label), td);
    body.append(tr);
  });
}

function chart(id, points, bars) {
  const svg = $(id);
  svg.replaceChildren();
  if (!points.length) { const t = document.createElementNS(SVG, "text"); t.setAttribute("x", 10); t.setAttribute("y", 20);
    t.setAttribute("fill", "#7d8a99"); t.textContent = "no data"; svg.append(t); return; }
  const W = 600, H = 200, xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  let lo = Math.min(...ys, bars ? 0 : Infinity), hi = Math.max(...ys, bars ? 0 : -Infinity);
  if (hi === lo) { hi += 1; lo -= 1; }
  const x0 = Math.min(...xs), x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  const X = (x) => ((x - x0) / (x1 - x0)) * (W - 20) + 10, Y = (y) => H - 10 - ((y - lo) / (hi - lo)) * (H - 20);
  if (bars) {
    const zero = document.createElementNS(SVG, "line");
    zero.setAttribute("class", "zero"); zero.setAttribute("x1", 0); zero.setAttribute("x2", W);
    zero.setAttribute("y1", Y(0)); zero.setAttribute("y2", Y(0)); svg.append(zero);
    const w = Math.max(2, (W - 20) / points.length - 2);
    points.forEach(([x, y]) => {
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("class", y >= 0 ? "up" : "down");
      r.setAttribute("x", X(x) - w / 2); r.setAttribute("width", w);
      r.setAttribute("y", Math.min(Y(y), Y(0))); r.setAttribute("height", Math.abs(Y(y) - Y(0)));
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${new Date(x).toISOString().slice(0, 10)}: ${y.toFixed(2)} USD`; r.append(title);
      svg.append(r);
    });
  } else {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" "));
    svg.append(line);
  }
}

function render(frame) {
  const m = frame.metrics;
  tiles(m.system_health.module_status);
  health(m.system_health);
  strategies(m.strategy_performance);
  table("positions", [["venue", (p) => p.venue], ["symbol", (p) => p.symbol], ["qty", (p) => p.qty],
    ["entry", (p) => p.entry_price], ["mark", (p) => p.mark_price], ["uPnL", (p) => p.unrealized_pnl]],
    m.current_positions);
  table("orders", [["id", (o) => o.client_order_id], ["venue", (o) => o.venue], ["symbol", (o) => o.symbol],
    ["side", (o) => o.side], ["qty", (o) => o.qty], ["price", (o) => o.price], ["status", (o) => o.status]],
    frame.orders);
  table("events", [["time (UTC)", (e) => new Date(e.ts_ms).toISOString().replace("T", " ").slice(0, 19)],
    ["kind", (e) => e.kind], ["severity", (e) => e.severity], ["message", (e) => e.message]], frame.events);
  chart("equity-chart", frame.equity.equity, false);
  chart("pnl-chart", frame.equity.daily_pnl, true);
  $("updated").textContent = new Date(m.ts_ms).toISOString().slice(11, 19) + " UTC";
}

async function control(action, confirmText) {
  const token = $("token").value;
  const msg = $("control-msg");
  if (confirmText && !window.confirm(confirmText)) { msg.textContent = `${action} cancelled`; return; }
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  try {
    const r = await fetch("/api/" + action, { method: "POST", headers, body: action === "kill" ? JSON.stringify({ reason: "dashboard kill button" }) : undefined });
    const body = await r.json().catch(() => ({}));
    msg.textContent = r.ok ? `${action}: done, state ${body.trading_state.state}` : `${action} refused (${r.status}): ${body.detail || ""}`;
    msg.dataset.status = r.status;
  } catch (err) {
    msg.textContent = `${action} failed: ${err}`;
  }
}

$("kill-btn").addEventListener("click", () => control("kill", "Halt all trading now?"));
$("resume-btn").addEventListener("click", () => control("resume", "Resume trading?"));
$("close-all-btn").addEventListener("click", () => control("close-all", "Close every position (reduce-only)?"));

tiles({});
const source = new EventSource("/api/stream");
source.onopen = () => { $("conn").textContent = "live"; };
source.onerror = () => { $("conn").textContent = "reconnecting…"; };
source.onmessage = (ev) => render(JSON.parse(ev.data));
