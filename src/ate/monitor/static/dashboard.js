// ate operator dashboard: renders /api/stream frames (server-sent events). Charts: TradingView Lightweight
// Charts, vendored under /static/vendor (no CDN: the page's CSP allows this origin only).
"use strict";

const MODULES = ["bitvol", "lxvx", "garch", "kelly", "gamma", "emergency", "atr_supertrend", "multi_timeframe"];
// Vetoes that can block a new directional entry (combiner.entry_vetoes); "hedged" only blocks hedged books.
const blocksEntries = (scope) => scope === "directional" || scope === "all" || /^(market|venue):/.test(scope);
const LWC = window.LightweightCharts;
const $ = (id) => document.getElementById(id);

// ---- numbers: fixed decimals per kind (instrument tick/step, cents for USD), never raw floats ----------

function num(v, digits) {
  if (v === null || v === undefined || v === "") return "—";
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  const d = Number.isInteger(digits) ? Math.min(Math.max(digits, 0), 12) : 8;
  const text = n.toLocaleString("en-US", { minimumFractionDigits: Number.isInteger(digits) ? d : 0,
    maximumFractionDigits: d });
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text; // a loss rounded to zero is not "-0.00"
}
const usd = (v) => num(v, 2);
const pct = (v) => (v === null || v === undefined ? "—" : num(100 * v, 2) + " %");
const count = (v) => num(v, 0);

let clockKind = "wall";
function stamp(ms) {
  return ms === null || ms === undefined ? "—" : new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

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
    columns.forEach(([, get, cls]) => tr.append(el("td", get(row), cls)));
    t.append(tr);
  });
}

// ---- header: mode, state, the one clock ---------------------------------------------------------------

function header(m) {
  const eng = m.engine;
  clockKind = eng.clock;
  const mode = $("mode");
  mode.textContent = eng.mode ? eng.mode.toUpperCase() : "unknown";
  mode.className = "badge mode-" + (eng.mode || "unknown");
  $("mode-note").textContent = eng.read_only
    ? "read-only view of the store (no engine attached; mode from the config)" : "";
  // Until the engine runs (a ban being waited out, reconciliation), say so: figures below are the store's.
  const su = eng.startup;
  const starting = Boolean(su && su.phase !== "running");
  $("startup").hidden = !starting;
  $("startup").textContent = starting ? `engine ${su.detail}` : "";
  const clock = $("clock");
  clock.dataset.kind = eng.clock;
  clock.textContent = `${eng.clock} clock · ${stamp(m.ts_ms)} UTC`;
  $("clock-note").textContent = eng.clock_note || "";
  const st = m.system_health.trading_state || {};
  $("trading-state").textContent = st.state || "?";
  $("trading-state").className = "badge st-" + (st.state || "");
  $("state-reason").textContent = st.why ? `${st.why} (${st.who})` : "";
}

// ---- module tiles and why directional does (not) trade -------------------------------------------------

function tiles(signals) {
  const box = $("modules");
  if (!box.children.length) {
    MODULES.forEach((m) => {
      const tile = el("div", undefined, "tile");
      tile.dataset.module = m;
      tile.append(el("span", m, "name"), el("span", "UNKNOWN", "status"), el("span", "", "vote"),
        el("span", "", "mult"), el("span", "", "reason"), el("ul", undefined, "vetoes"));
      box.append(tile);
    });
  }
  MODULES.forEach((m) => {
    const tile = box.querySelector(`[data-module="${m}"]`);
    const s = signals[m] || {};
    const out = s.output || {};
    const status = s.status || "UNKNOWN";
    tile.className = "tile st-" + status;
    tile.querySelector(".status").textContent = status;
    const vote = out.vote;
    tile.querySelector(".vote").textContent = vote
      ? `vote ${vote.side} · confidence ${num(vote.confidence, 2)}` : ("vote" in out ? "no vote" : "");
    tile.querySelector(".mult").textContent = out.size_multiplier === null || out.size_multiplier === undefined
      ? "" : `size ×${num(out.size_multiplier, 2)}`;
    tile.querySelector(".reason").textContent = out.reason || "";
    const list = tile.querySelector(".vetoes");
    list.replaceChildren(...(out.vetoes || []).map((v) => {
      const li = el("li", `veto ${v.scope}: ${v.reason}`);
      li.dataset.scope = v.scope;
      return li;
    }));
  });
}

function directional(signals, strat, state) {
  const lines = [];
  if (state && state.state && state.state !== "ACTIVE") lines.push(`trading state ${state.state}`);
  MODULES.forEach((m) => (((signals[m] || {}).output || {}).vetoes || []).filter((v) => blocksEntries(v.scope))
    .forEach((v) => lines.push(`${m} veto ${v.scope}: ${v.reason}`)));
  const p = $("directional-vetoes");
  p.dataset.blocked = String(lines.length > 0);
  p.textContent = lines.length ? "blocked by " + lines.join("; ") : "no active veto on directional entries";
  p.className = lines.length ? "blocked" : "";
  const d = strat.directional;
  const parts = [];
  if (d && d.phase) parts.push(`phase ${d.phase}`);
  if (d && d.last_decision) {
    const ld = d.last_decision;
    parts.push(`last decision ${ld.kind}${ld.side ? " " + ld.side : ""} (confidence ${num(ld.confidence, 2)}, `
      + `${stamp(ld.ts)} UTC): ${ld.reason || ""}`);
  }
  if (d && d.last_skip_reason) parts.push(`last entry skipped: ${d.last_skip_reason}`);
  $("directional-decision").textContent = parts.join(" · ") || "no directional decision reported";
}

// ---- health, strategies, P&L split --------------------------------------------------------------------

function health(h) {
  $("source").textContent = h.source;
  $("uptime").textContent = h.uptime_s === null ? "—" : num(h.uptime_s, 0) + " s";
  $("latency").textContent = `${num(h.trade_latency_ms.p50, 1)} / ${num(h.trade_latency_ms.p99, 1)}`;
  $("error-rates").textContent = Object.entries(h.api_error_rate)
    .map(([v, r]) => `${v}: ${pct(r["5m"])} / ${pct(r["24h"])}`).join(", ") || "—";
  $("websockets").textContent = Object.entries(h.websocket)
    .map(([s, w]) => `${s} ${w.connected ? "up" : "DOWN"} (${num(w.last_message_age_s, 1)} s)`).join(", ") || "—";
  $("skew").textContent = Object.entries(h.clock_skew_ms).map(([v, ms]) => `${v}: ${num(ms, 0)}`).join(", ") || "—";
}

function rows(body, list) {
  body.replaceChildren();
  list.forEach(([label, value, key, cls]) => {
    const tr = el("tr", undefined, cls);
    const td = el("td", value);
    if (key) td.dataset.metric = key;
    tr.append(el("th", label), td);
    body.append(tr);
  });
}

function strategies(s) {
  rows($("strategy").tBodies[0], [
    ["arbitrage opportunities", count(s.arbitrage.opportunities_detected), "opportunities"],
    ["arbitrage trades", count(s.arbitrage.trades_executed), "arb-trades"],
    ["arbitrage avg profit (bps)", num(s.arbitrage.average_profit_bps, 2), "arb-profit"],
    ["arbitrage slippage (bps)", num(s.arbitrage.slippage_bps, 2), "arb-slippage"],
    ["carry delta / target", `${num(s.delta_neutral.current_delta, 4)} / ${num(s.delta_neutral.target_delta, 4)}`],
    ["hedge effectiveness", num(s.delta_neutral.hedge_effectiveness, 4), "hedge"],
    ["funding captured (USD)", usd(s.delta_neutral.funding_captured_usd), "funding"],
    ["Sharpe (30 d)", num(s.performance.sharpe_ratio_rolling, 2), "sharpe"],
    ["win rate (%)", num(s.performance.win_rate_pct, 1), "win-rate"],
  ]);
}

function pnlSplit(perf) {
  const split = perf.daily_pnl_split;
  const list = [["total (equity change, deposits and withdrawals excluded)", usd(perf.daily_pnl_usd), "daily-pnl"]];
  if (split && split.strategy_usd !== null) {
    list.push(["strategy P&L (today's fills marked to market, fees, funding)", usd(split.strategy_usd), "strategy-pnl"]);
    Object.entries(split.by_strategy_usd).forEach(([name, v]) => list.push([`  ${name}`, usd(v), "strategy-pnl-" + name, "sub"]));
    list.push(["inventory revaluation (pre-funded inventory and holdings carried into the day)",
      usd(split.inventory_revaluation_usd), "revaluation"]);
  } else if (split) {
    list.push(["strategy P&L / inventory revaluation", `split unavailable: no price for ${split.unpriced.join(", ")}`,
      "strategy-pnl"]);
  }
  rows($("pnl-split").tBodies[0], list);
  $("pnl-window").textContent = split
    ? `from ${stamp(split.since_ms)} to ${stamp(split.until_ms)} UTC (${clockKind} clock)` : "no equity recorded today";
}

// ---- charts -------------------------------------------------------------------------------------------

const charts = {};
window.ateCharts = charts; // for inspection from the browser console (and the browser tests)

function makeChart(id, unit) {
  const box = $(id);
  const chart = LWC.createChart(box, {
    autoSize: true,
    // The licence's attribution (notice + link to tradingview.com) is the page footer: the library's own logo
    // injects an inline <style>, which the page's CSP refuses.
    layout: { background: { color: "#171b21" }, textColor: "#c3ccd6", attributionLogo: false },
    grid: { vertLines: { color: "#222a33" }, horzLines: { color: "#222a33" } },
    rightPriceScale: { visible: true, borderColor: "#56606c" },
    timeScale: { visible: true, timeVisible: true, secondsVisible: false, borderColor: "#56606c" },
    localization: { locale: "en-US" },
  });
  return { chart, unit, fitted: false };
}

const sec = (ms) => Math.floor(ms / 1000);

function seriesOf(c, kind, opts) {
  // A market drawn from its fills (no candles yet) becomes a candle chart once candles arrive.
  if (c.series && c.series.seriesType() !== kind.type) {
    if (c.markers) { c.markers.detach(); c.markers = null; }
    c.chart.removeSeries(c.series);
    c.series = null;
  }
  if (!c.series) c.series = c.chart.addSeries(kind, opts);
  return c.series;
}

function fit(c, points) {
  if (!c.fitted && points.length) { c.chart.timeScale().fitContent(); c.fitted = true; }
}

function usdFormat(decimals) {
  return { type: "custom", minMove: 10 ** -decimals, formatter: (p) => num(p, decimals) };
}

function equityChart(equity) {
  const c = charts.equity || (charts.equity = makeChart("equity-chart", "USD"));
  const s = seriesOf(c, LWC.LineSeries, { color: "#5fb3ff", lineWidth: 2, title: "USD", priceFormat: usdFormat(2) });
  const data = equity.equity.map(([t, v]) => ({ time: sec(t), value: v }));
  s.setData(dedupe(data));
  fit(c, data);
}

function pnlChart(equity) {
  const c = charts.pnl || (charts.pnl = makeChart("pnl-chart", "USD"));
  const s = seriesOf(c, LWC.HistogramSeries, { title: "USD", priceFormat: usdFormat(2), base: 0 });
  const data = equity.daily_pnl.map(([t, v]) => ({ time: sec(t), value: v, color: v >= 0 ? "#3fa660" : "#c24848" }));
  s.setData(data);
  fit(c, data);
}

function dedupe(points) { // the chart wants strictly increasing times (seconds)
  const out = [];
  points.forEach((p) => { if (out.length && out[out.length - 1].time >= p.time) out[out.length - 1] = p; else out.push(p); });
  return out;
}

function priceChart(prices, trades) {
  const select = $("price-market");
  const markets = [...new Set([...Object.keys(prices), ...trades.map((t) => `${t.venue}:${t.symbol}`)])].sort();
  const have = [...select.options].map((o) => o.value);
  if (markets.join() !== have.join()) {
    const keep = select.value;
    select.replaceChildren(...markets.map((m) => { const o = el("option", m); o.value = m; return o; }));
    const busiest = trades.length ? `${trades[0].venue}:${trades[0].symbol}` : markets[0];
    select.value = markets.includes(keep) ? keep : busiest || "";
  }
  const market = select.value;
  const c = charts.price || (charts.price = makeChart("price-chart", ""));
  if (c.market !== market) { // a different market: new series, refit
    if (c.markers) { c.markers.detach(); c.markers = null; }
    if (c.series) { c.chart.removeSeries(c.series); c.series = null; }
    c.market = market; c.fitted = false;
  }
  if (!market) { $("price-note").textContent = "no market data and no trades yet"; return; }
  const p = prices[market];
  const mine = trades.filter((t) => `${t.venue}:${t.symbol}` === market).reverse(); // oldest first
  const decimals = p && Number.isInteger(p.price_decimals) ? p.price_decimals
    : (mine.length && Number.isInteger(mine[0].price_decimals) ? mine[0].price_decimals : 2);
  const unit = p && p.quote ? p.quote : "quote currency";
  $("price-title").textContent = `Price: ${market} (${unit})`;
  const format = { type: "custom", minMove: 10 ** -decimals, formatter: (x) => num(x, decimals) };
  let times;
  if (p && p.candles.length) {
    const s = seriesOf(c, LWC.CandlestickSeries, { title: unit, priceFormat: format, upColor: "#3fa660",
      downColor: "#c24848", wickUpColor: "#3fa660", wickDownColor: "#c24848", borderVisible: false });
    const data = p.candles.map(([t, o, h, l, cl]) => ({ time: sec(t), open: o, high: h, low: l, close: cl }));
    s.setData(data);
    times = data.map((d) => d.time);
    $("price-note").textContent = "1m candles; trades marked at their fill price";
  } else { // read-only view: no market data, so the line joins the fill prices themselves
    const s = seriesOf(c, LWC.LineSeries, { title: unit, priceFormat: format, color: "#9fb0c3", lineWidth: 1 });
    const data = dedupe(mine.map((t) => ({ time: sec(t.ts_ms), value: Number(t.price) })));
    s.setData(data);
    times = data.map((d) => d.time);
    $("price-note").textContent = "no market data (no engine attached): the line joins the fill prices";
  }
  // A marker sits on the bar containing its fill (1m candles), at the fill's own price.
  const bar = (ms) => { const t = sec(ms); let best = times[0]; for (const x of times) { if (x <= t) best = x; else break; } return best; };
  const markers = times.length ? mine.map((t) => ({
    time: bar(t.ts_ms), position: "atPriceMiddle", price: Number(t.price),
    shape: t.side === "BUY" ? "arrowUp" : "arrowDown", color: t.side === "BUY" ? "#5fd38a" : "#ff7070",
    text: `${t.side === "BUY" ? "B" : "S"} ${num(t.qty, t.qty_decimals)} @ ${num(t.price, decimals)}`,
  })) : [];
  if (!c.markers) c.markers = LWC.createSeriesMarkers(c.series, markers);
  else c.markers.setMarkers(markers);
  fit(c, times);
}

// ---- frame --------------------------------------------------------------------------------------------

function render(frame) {
  const m = frame.metrics;
  header(m);
  tiles(frame.signals);
  directional(frame.signals, m.strategy_performance, m.system_health.trading_state);
  health(m.system_health);
  strategies(m.strategy_performance);
  pnlSplit(m.strategy_performance.performance);
  controls(m.engine.read_only);
  table("positions", [["venue", (p) => p.venue], ["symbol", (p) => p.symbol],
    ["qty", (p) => num(p.qty, p.qty_decimals), "n"], ["entry", (p) => num(p.entry_price, p.price_decimals), "n"],
    ["mark", (p) => num(p.mark_price, p.price_decimals), "n"], ["notional (USD)", (p) => usd(p.notional), "n"],
    ["uPnL (USD)", (p) => usd(p.unrealized_pnl), "n"]], m.current_positions);
  table("orders", [["id", (o) => o.client_order_id], ["venue", (o) => o.venue], ["symbol", (o) => o.symbol],
    ["side", (o) => o.side], ["qty", (o) => num(o.qty, o.qty_decimals), "n"],
    ["price", (o) => num(o.price, o.price_decimals), "n"], ["status", (o) => o.status]], frame.orders);
  table("trades", [[`time (UTC, ${clockKind} clock)`, (t) => stamp(t.ts_ms)], ["venue", (t) => t.venue],
    ["symbol", (t) => t.symbol], ["side", (t) => t.side], ["qty", (t) => num(t.qty, t.qty_decimals), "n"],
    ["price", (t) => num(t.price, t.price_decimals), "n"], ["fee", (t) => `${num(t.fee)} ${t.fee_asset}`, "n"],
    ["strategy", (t) => t.strategy]], frame.trades.slice(0, 20));
  table("events", [[`time (UTC, ${clockKind} clock)`, (e) => stamp(e.ts_ms)],
    ["kind", (e) => e.kind], ["severity", (e) => e.severity], ["message", (e) => e.message]], frame.events);
  equityChart(frame.equity);
  pnlChart(frame.equity);
  priceChart(frame.prices, frame.trades);
  lastFrame = frame;
}

// ---- controls (only when an engine is attached) -------------------------------------------------------

function controls(readOnly) {
  const slot = $("controls-slot");
  if (readOnly) { slot.replaceChildren(); return; }
  if (slot.children.length) return;
  slot.append($("controls-tpl").content.cloneNode(true));
  $("kill-btn").addEventListener("click", () => control("kill", "Halt all trading now?"));
  $("resume-btn").addEventListener("click", () => control("resume", "Resume trading?"));
  $("close-all-btn").addEventListener("click", () => control("close-all", "Close every position (reduce-only)?"));
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

let lastFrame = null;
$("price-market").addEventListener("change", () => { if (lastFrame) priceChart(lastFrame.prices, lastFrame.trades); });
tiles({});
const source = new EventSource("/api/stream");
source.onopen = () => { $("conn").textContent = "stream connected"; };
source.onerror = () => { $("conn").textContent = "stream reconnecting…"; };
source.onmessage = (ev) => render(JSON.parse(ev.data));
