// modelmon's live page: polls /api/overview and redraws. The server rounds every number it shows (the
// `text` of each cell); this script only places text and draws the charts as plain SVG (no library).
"use strict";

const COLORS = {
  accuracy: "#2563eb", precision: "#d97706", recall: "#059669", f1: "#7c3aed", auc: "#0f766e",
  coverage: "#0891b2", p50: "#64748b", p95: "#b45309", psi: "#9333ea", ks: "#db2777", guide: "#94a3b8",
};
const W = 340, H = 160, M = { left: 44, right: 10, top: 8, bottom: 22 };

const esc = (value) => String(value).replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const $ = (id) => document.getElementById(id);
const known = (v) => v !== null && v !== undefined && Number.isFinite(v);

// ---------------------------------------------------------------------------------------------------
// Charts

function niceTicks(lo, hi, count = 4) {
  const raw = (hi - lo) / count || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step / 1e6; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

// The y range: the values (and `include`, e.g. 0 or a guide) padded a little, within `clamp`.
function domain(values, clamp, include = []) {
  const all = [...values, ...include];
  let lo = Math.min(...all), hi = Math.max(...all);
  const pad = Math.max((hi - lo) * 0.12, Math.abs(hi) * 0.02, 0.005);
  lo -= pad; hi += pad;
  if (clamp) { lo = Math.max(lo, clamp[0]); hi = Math.min(hi, clamp[1]); }
  return [lo, hi];
}

// Tick labels with as many decimals as the step needs (0.85, 0.90; never 0.9, 0.9, 0.9).
const decimals = (ticks) => (ticks.length > 1 ? Math.max(0, -Math.floor(Math.log10(ticks[1] - ticks[0]) + 1e-9)) : 2);

// Points [x, y] split where y is unknown, so a missing window is a gap, never a drop to 0.
function runs(xs, ys) {
  const out = [[]];
  xs.forEach((x, i) => (known(ys[i]) ? out[out.length - 1].push([x, ys[i]]) : out.push([])));
  return out.filter((run) => run.length);
}

const path = (pts) => pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");

function frame(spec, sx, sy, yTicks, xTicks) {
  const parts = [];
  for (const t of yTicks) {
    const y = sy(t);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>`,
      `<text x="${M.left - 4}" y="${y + 3}" text-anchor="end">${esc(spec.tick(t))}</text>`);
  }
  xTicks.forEach(([value, label], i) => {
    const anchor = xTicks.length === 1 ? "middle" : ["start", "middle", "end"][Math.min(i, 2)];
    parts.push(`<text x="${sx(value)}" y="${H - 6}" text-anchor="${anchor}">${esc(label)}</text>`);
  });
  for (const g of spec.guides || []) {
    const y = sy(spec.log ? Math.log10(g.y) : g.y);
    if (y >= M.top && y <= H - M.bottom) {
      parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="${COLORS.guide}" stroke-dasharray="4 3"/>`,
        `<text x="${W - M.right - 2}" y="${y - 3}" text-anchor="end" class="guide">${esc(g.label)}</text>`);
    }
  }
  return parts.join("");
}

function svg(body, label) {
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">${body}</svg>`;
}

// A chart over time: spec = {title, t: [iso], lines: [{label, color, y, low?, high?, dash?}], clamp?, log?,
// include?: [y], tick?(value, decimals) -> text, guides?: [{y, label}]}.
function timeChart(spec) {
  const xs = spec.t.map((iso) => Date.parse(iso));
  const tf = (v) => (spec.log ? Math.log10(Math.max(v, 1e-12)) : v);
  const ys = spec.lines.map((l) => ({ ...l, y: l.y.map((v) => (known(v) ? tf(v) : null)),
    low: l.low && l.low.map((v) => (known(v) ? tf(v) : null)), high: l.high && l.high.map((v) => (known(v) ? tf(v) : null)) }));
  const all = ys.flatMap((l) => [...l.y, ...(l.low || []), ...(l.high || [])]).filter(known);
  if (!all.length) return figure(spec, `<p class="empty">${esc(spec.empty || "waiting for labels")}</p>`);
  const [lo, hi] = spec.log ? [Math.min(Math.floor(Math.min(...all)), -3), 0] : domain(all, spec.clamp, spec.include);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const sx = (x) => (x1 === x0 ? (M.left + W - M.right) / 2 : M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right));
  const sy = (y) => H - M.bottom - ((y - lo) / (hi - lo || 1)) * (H - M.top - M.bottom);
  const yTicks = spec.log ? niceTicks(lo, hi, 4).filter(Number.isInteger) : niceTicks(lo, hi);
  const fmtTime = (ms) => new Date(ms).toISOString().slice(11, 16);
  const xTicks = x1 === x0 ? [[x0, fmtTime(x0)]] : [0, 0.5, 1].map((f) => x0 + f * (x1 - x0)).map((x) => [x, fmtTime(x)]);
  const digits = decimals(yTicks);
  const tick = spec.log ? (t) => (t === 0 ? "1" : `1e${t}`) : (t) => (spec.tick ? spec.tick(t, digits) : t.toFixed(digits));
  let body = frame({ ...spec, tick }, sx, sy, yTicks, xTicks);
  for (const l of ys) {
    if (l.low && l.high) {
      for (const run of runs(xs, l.y.map((_, i) => (known(l.low[i]) && known(l.high[i]) ? i : null)))) {
        const idx = run.map(([, i]) => i);
        const upper = idx.map((i) => [sx(xs[i]), sy(l.high[i])]);
        const lower = idx.map((i) => [sx(xs[i]), sy(l.low[i])]).reverse();
        body += `<path d="${path([...upper, ...lower])}Z" fill="${l.color}" fill-opacity="0.14"/>`;
      }
    }
    for (const run of runs(xs, l.y)) {
      const pts = run.map(([x, y]) => [sx(x), sy(y)]);
      body += `<path d="${path(pts)}" fill="none" stroke="${l.color}" stroke-width="1.8"${l.dash ? ' stroke-dasharray="5 3"' : ""}/>`;
      if (pts.length < 40) body += pts.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="2" fill="${l.color}"/>`).join("");
    }
  }
  return figure(spec, svg(body, spec.title));
}

function calibrationChart(calibration) {
  const spec = { title: "Calibration, newest window", cls: "calibration", lines: [
    { label: "observed fraud rate", color: COLORS.accuracy }, { label: "perfect calibration", color: COLORS.guide, dash: true }] };
  if (!calibration) return figure(spec, `<p class="empty">waiting for labels</p>`);
  spec.note = `x: mean score, y: observed fraud rate, dot: a bin; ${calibration.n_labelled.text} labels, ECE ${calibration.ece.text}`;
  const s = H - M.top - M.bottom, left = (W - s) / 2;
  const sx = (v) => left + v * s, sy = (v) => H - M.bottom - v * s;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  let body = frame({ tick: (t) => t.toFixed(2) }, sx, sy, ticks, [0, 0.5, 1].map((t) => [t, t.toFixed(1)]));
  body = body.replaceAll(`x1="${M.left}"`, `x1="${left}"`).replaceAll(`x="${M.left - 4}"`, `x="${left - 4}"`)
    .replaceAll(`x2="${W - M.right}"`, `x2="${left + s}"`);
  body += `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(1)}" y2="${sy(1)}" stroke="${COLORS.guide}" stroke-dasharray="5 3"/>`;
  const bins = calibration.bins.filter((b) => known(b.mean_score) && known(b.observed_rate));
  const most = Math.max(1, ...bins.map((b) => b.n || 0));
  body += `<path d="${path(bins.map((b) => [sx(b.mean_score), sy(b.observed_rate)]))}" fill="none" stroke="${COLORS.accuracy}" stroke-width="1.5"/>`;
  for (const b of bins) {
    body += `<circle cx="${sx(b.mean_score)}" cy="${sy(b.observed_rate)}" r="${(2 + 5 * Math.sqrt((b.n || 0) / most)).toFixed(1)}" fill="${COLORS.accuracy}" fill-opacity="0.6"><title>bin ${b.bin}: ${b.n} predictions, mean score ${b.mean_score.toFixed(3)}, observed ${b.observed_rate.toFixed(3)}</title></circle>`;
  }
  return figure(spec, svg(body, spec.title));
}

function swatch(color, dash) {
  return `<svg class="swatch" viewBox="0 0 14 8"><line x1="0" y1="4" x2="14" y2="4" stroke="${color}" stroke-width="2.5"${dash ? ' stroke-dasharray="4 2"' : ""}/></svg>`;
}

function figure(spec, inner) {
  const legend = (spec.lines || []).map((l) => `<span>${swatch(l.color, l.dash)}${esc(l.label)}</span>`).join("");
  const note = spec.note ? `<div class="note">${esc(spec.note)}</div>` : "";
  return `<figure class="${spec.cls || ""}"><figcaption>${esc(spec.title)}</figcaption>
    <div class="legend">${legend}</div>${inner}${note}</figure>`;
}

// ---------------------------------------------------------------------------------------------------
// Sections

const pct = (v) => `${Math.round(v * 100)}%`;

// Label latency in the unit its largest value reads best in.
function latency(t) {
  const most = Math.max(0, ...[...t.label_latency_p50_s, ...t.label_latency_p95_s].filter(known));
  const [unit, div] = most >= 5400 ? ["h", 3600] : most >= 120 ? ["min", 60] : ["s", 1];
  const scale = (ys) => ys.map((v) => (known(v) ? v / div : v));
  return { unit, p50: scale(t.label_latency_p50_s), p95: scale(t.label_latency_p95_s) };
}

function charts(m) {
  const t = m.trend, lat = latency(t);
  return [
    timeChart({ title: "Accuracy", t: t.t, clamp: [0, 1], note: "band: Wilson 95% interval",
      lines: [{ label: "accuracy", color: COLORS.accuracy, y: t.accuracy, low: t.accuracy_ci_low, high: t.accuracy_ci_high }] }),
    timeChart({ title: "Precision, recall, F1", t: t.t, clamp: [0, 1], note: "bands: Wilson 95% intervals",
      lines: [
        { label: "precision", color: COLORS.precision, y: t.precision, low: t.precision_ci_low, high: t.precision_ci_high },
        { label: "recall", color: COLORS.recall, y: t.recall, low: t.recall_ci_low, high: t.recall_ci_high },
        { label: "F1", color: COLORS.f1, y: t.f1, dash: true }] }),
    timeChart({ title: "ROC AUC", t: t.t, clamp: [0, 1], note: "band: ± error bound of the binned AUC",
      lines: [{ label: "ROC AUC", color: COLORS.auc, y: t.roc_auc, low: t.roc_auc_low, high: t.roc_auc_high }] }),
    calibrationChart(m.calibration),
    timeChart({ title: "Label coverage by prediction minute", t: m.coverage_trend.t, clamp: [0, 1], include: [0, 1], tick: pct,
      note: "share of each minute's predictions labelled so far (cohort view)",
      lines: [{ label: "label coverage", color: COLORS.coverage, y: m.coverage_trend.label_coverage }] }),
    timeChart({ title: `Label latency (${lat.unit})`, t: t.t, clamp: [0, Infinity], include: [0], note: "prediction to label, by label minute",
      lines: [{ label: "p50", color: COLORS.p50, y: lat.p50 }, { label: "p95", color: COLORS.p95, y: lat.p95 }] }),
    timeChart({ title: "Prediction drift: PSI", t: m.drift_trend.t, clamp: [0, Infinity], include: [0, 0.12],
      empty: "no drift reference (drift.reference_file)", guides: [{ y: 0.1, label: "0.1 moderate" }, { y: 0.25, label: "0.25 major" }],
      note: "scores vs reference, by prediction minute",
      lines: [{ label: "PSI", color: COLORS.psi, y: m.drift_trend.psi }] }),
    timeChart({ title: "Prediction drift: KS p-value", t: m.drift_trend.t, log: true, guides: [{ y: 0.01, label: "0.01" }],
      empty: "no drift reference (drift.reference_file)", note: "low p: scores differ from the reference",
      lines: [{ label: "KS p-value", color: COLORS.ks, y: m.drift_trend.ks_pvalue }] }),
  ].join("");
}

function tile(field, label, cell, sub, alerting) {
  const classes = ["tile", known(cell.value) ? "" : "waiting", alerting.has(field) ? "alerting" : ""].join(" ").trim();
  return `<div class="${classes}" data-field="${field}">
    <div class="label">${esc(label)}</div><div class="value">${esc(cell.text)}</div>
    <div class="sub">${sub ? esc(sub) : "&nbsp;"}</div></div>`;
}

// A tile whose metric a firing alert of this version (over all segments) watches is outlined in its colour.
function tiles(m) {
  const x = m.metrics;
  const watched = m.alerts.filter((a) => a.segment === "all segments").map((a) => a.metric);
  const alerting = new Set(watched.map((metric) => (metric === "ks_pvalue" ? "psi" : metric)));
  const ci = (c) => (c.interval ? `95% CI ${c.interval}` : "");
  const few = m.few_labels ? "few labels: wide intervals" : "";
  return [
    tile("accuracy", "Accuracy", x.accuracy, ci(x.accuracy), alerting),
    tile("precision", "Precision", x.precision, ci(x.precision), alerting),
    tile("recall", "Recall", x.recall, ci(x.recall), alerting),
    tile("f1", "F1", x.f1, "", alerting),
    tile("roc_auc", "ROC AUC", x.roc_auc, x.roc_auc.interval || "", alerting),
    tile("n_labelled", "Labels in window", x.n_labelled, few, alerting),
    tile("label_coverage", "Label coverage", m.label_coverage, m.label_coverage.note || "", alerting),
    tile("label_latency_p50_s", "Label latency p50", x.label_latency_p50_s, "", alerting),
    tile("label_latency_p95_s", "Label latency p95", x.label_latency_p95_s, "", alerting),
    tile("psi", "Drift PSI", m.drift.psi, `KS p ${m.drift.ks_pvalue.text}`, alerting),
  ].join("");
}

const SEGMENT_HEADS = [["n_labelled", "labels"], ["accuracy", "accuracy"], ["precision", "precision"],
  ["recall", "recall"], ["f1", "F1"], ["roc_auc", "ROC AUC"]];

function segmentTable(segments) {
  if (!segments.rows.length) return `<p class="empty">waiting for labels</p>`;
  const head = SEGMENT_HEADS.map(([, label]) => `<th>${esc(label)}</th>`).join("");
  const rows = segments.rows.map((r) => {
    const cells = SEGMENT_HEADS.map(([f]) => `<td data-field="${f}" class="${known(r[f].value) ? "" : "waiting"}">${esc(r[f].text)}</td>`).join("");
    const flag = r.below ? ` <span class="flag" title="accuracy interval entirely below the model's overall accuracy">below overall</span>` : "";
    return `<tr data-segment="${esc(`${r.segment_key}=${r.segment_value}`)}"${r.below ? ' class="below"' : ""}><th scope="row">${esc(r.segment_key)}</th><td>${esc(r.segment_value)}${flag}</td>${cells}</tr>`;
  }).join("");
  return `<table class="segments"><thead><tr><th>segment</th><th>value</th>${head}</tr></thead><tbody>${rows}</tbody></table>`;
}

function modelCard(m) {
  const when = m.window ? `newest live window ${m.window.text}` : "no live window yet";
  return `<article class="model level-${m.status.level}" id="model-${esc(m.model_version)}" data-model="${esc(m.model_version)}">
    <header><h2>Model ${esc(m.model_version)}</h2><span class="badge">${esc(m.status.headline)}</span>
      <span class="detail">${esc(m.status.detail)}</span></header>
    <p class="when">${esc(when)}; by label arrival unless said</p>
    <div class="tiles">${tiles(m)}</div>
    <div class="charts">${charts(m)}</div>
    <h3>Segments <small>${m.segments.window ? esc(m.segments.window.text) : ""}</small></h3>
    ${segmentTable(m.segments)}
  </article>`;
}

function summary(data) {
  if (!data.models.length) return `<p class="empty">waiting for the first metrics rows on topic ${esc(data.source.topic)}</p>`;
  return data.models.map((m) => {
    const x = m.metrics;
    const numbers = m.window ? `accuracy ${x.accuracy.text} · recall ${x.recall.text} · AUC ${x.roc_auc.text} · ${x.n_labelled.text} labels` : "";
    return `<a class="pill level-${m.status.level}" href="#model-${esc(m.model_version)}" data-model="${esc(m.model_version)}">
      <b>model ${esc(m.model_version)}</b><span class="headline">${esc(m.status.headline)}</span><span class="detail">${esc(m.status.detail)}</span>
      <small>${esc(numbers)}</small></a>`;
  }).join("");
}

function alertPanel(alerts) {
  const items = alerts.firing.map((a) => `<li class="sev-${esc(a.severity)}"><span class="badge">${esc(a.severity)}</span>
    <b>${esc(a.rule)}</b> ${esc(a.text)} <small>${esc(a.where)}</small></li>`).join("");
  return `<h2>Alerts</h2><p class="${alerts.firing.length ? "firing" : "quiet"}" id="alerts-summary">${esc(alerts.text)}</p>${items ? `<ul>${items}</ul>` : ""}`;
}

const DIFF_HEADS = [["n_labelled", "shared labels"], ["accuracy_diff", "Δ accuracy"], ["precision_diff", "Δ precision"],
  ["recall_diff", "Δ recall"], ["f1_diff", "Δ F1"], ["brier_diff", "Δ Brier"], ["mcnemar_b", "only champion right"],
  ["mcnemar_c", "only challenger right"], ["mcnemar_pvalue", "McNemar p"]];

function comparisonPanel(rows) {
  if (!rows.length) return `<h2>Champion vs challenger</h2><p class="empty">no comparison rows (comparison not configured, or waiting for labels)</p>`;
  const head = DIFF_HEADS.map(([, label]) => `<th>${esc(label)}</th>`).join("");
  const body = rows.map((r) => `<tr data-challenger="${esc(r.challenger)}" class="${r.significant ? "significant" : ""}">
    <th scope="row">${esc(r.challenger)} vs ${esc(r.champion)}</th><td>${esc(r.window.text)}</td>
    ${DIFF_HEADS.map(([f]) => `<td data-field="${f}">${esc(r[f].text)}</td>`).join("")}<td class="verdict">${esc(r.verdict)}</td></tr>`).join("");
  return `<h2>Champion vs challenger <small>challenger minus champion on the transactions both scored, newest window</small></h2>
    <table><thead><tr><th>challenger</th><th>window</th>${head}<th>verdict</th></tr></thead><tbody>${body}</tbody></table>`;
}

// ---------------------------------------------------------------------------------------------------
// Polling

let lastGood = null;

function render(data) {
  $("source").textContent = `${data.source.text}; updated ${new Date().toLocaleTimeString()}`;
  $("source").className = "source";
  $("summary").innerHTML = summary(data);
  $("alerts").innerHTML = alertPanel(data.alerts);
  $("models").innerHTML = data.models.map(modelCard).join("");
  $("comparison").innerHTML = comparisonPanel(data.comparison);
  document.body.dataset.loaded = data.generated_at;
}

async function refresh() {
  let delay = 5;
  try {
    const response = await fetch("/api/overview", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    render(data);
    lastGood = new Date();
    delay = data.refresh_s;
  } catch (error) {
    const since = lastGood ? `; showing data from ${lastGood.toLocaleTimeString()}` : "";
    $("source").textContent = `cannot reach the exporter (${error.message})${since}`;
    $("source").className = "source error";
  }
  setTimeout(refresh, delay * 1000);
}

refresh();
