// The delivery chart, drawn as SVG here (no library): per bucket, stacked bars of succeeded,
// failed and pending (each with its own fill pattern as well as colour) and the p50/p95
// latency lines (solid and dashed, with point markers of different shapes). A legend names
// each mark, every bar has a <title>, and a table gives the same numbers as text.
import { el, svg, table, time } from "./ui.js";

const SERIES = [
  { key: "succeeded", label: "Succeeded", fill: "url(#chart-ok)", swatch: "chart-ok" },
  { key: "failed", label: "Failed", fill: "url(#chart-bad)", swatch: "chart-bad" },
  { key: "pending", label: "Pending", fill: "url(#chart-wait)", swatch: "chart-wait" },
];
const LINES = [
  { key: "p50Ms", label: "Latency p50", dash: null, marker: "circle" },
  { key: "p95Ms", label: "Latency p95", dash: "6 4", marker: "square" },
];
const W = 900;
const H = 320;
const PAD = { left: 52, right: 64, top: 16, bottom: 44 };

function patterns() {
  // Green diagonal lines, red cross-hatch, amber dots: distinct with or without colour.
  return svg(
    "defs",
    {},
    svg("pattern", { id: "chart-ok", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      svg("rect", { width: 8, height: 8, fill: "#d7f0dd" }),
      svg("line", { x1: 0, y1: 0, x2: 0, y2: 8, stroke: "#1a7f37", "stroke-width": 4 })),
    svg("pattern", { id: "chart-bad", width: 8, height: 8, patternUnits: "userSpaceOnUse" },
      svg("rect", { width: 8, height: 8, fill: "#f9d8d6" }),
      svg("path", { d: "M0 0L8 8M8 0L0 8", stroke: "#b3261e", "stroke-width": 1.5 })),
    svg("pattern", { id: "chart-wait", width: 6, height: 6, patternUnits: "userSpaceOnUse" },
      svg("rect", { width: 6, height: 6, fill: "#fff4d6" }),
      svg("circle", { cx: 3, cy: 3, r: 1.4, fill: "#9a6700" })),
  );
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

const LABEL = {
  minute: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }),
  hour: new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit" }),
  day: new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" }),
};

function marker(shape, x, y) {
  return shape === "circle"
    ? svg("circle", { cx: x, cy: y, r: 3.5, fill: "#102a43" })
    : svg("rect", { x: x - 3.5, y: y - 3.5, width: 7, height: 7, fill: "#fff", stroke: "#102a43", "stroke-width": 1.5 });
}

export function legend() {
  return el(
    "ul",
    { class: "legend", "aria-label": "Legend" },
    SERIES.map((s) =>
      el("li", {}, svg("svg", { viewBox: "0 0 24 16", "aria-hidden": "true" }, svg("rect", { width: 24, height: 16, fill: s.fill })), s.label),
    ),
    LINES.map((l) =>
      el(
        "li",
        {},
        svg("svg", { viewBox: "0 0 24 16", "aria-hidden": "true" },
          svg("line", { x1: 0, y1: 8, x2: 24, y2: 8, stroke: "#102a43", "stroke-width": 2, "stroke-dasharray": l.dash }),
          marker(l.marker, 12, 8)),
        `${l.label} (right axis, ms)`,
      ),
    ),
  );
}

// buckets: the stats API's array; bucket: "minute" | "hour" | "day".
export function chart(buckets, bucket) {
  const n = Math.max(buckets.length, 1);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / n;
  const barW = Math.max(1, slot * 0.7);
  // At least 4 on each axis, so the four grid steps are whole numbers.
  const countMax = Math.max(4, niceMax(Math.max(0, ...buckets.map((b) => b.succeeded + b.failed + b.pending))));
  const msMax = Math.max(4, niceMax(Math.max(0, ...buckets.flatMap((b) => [b.p50Ms || 0, b.p95Ms || 0]))));
  const y = (v) => PAD.top + plotH - (v / countMax) * plotH;
  const yMs = (v) => PAD.top + plotH - (v / msMax) * plotH;
  const xMid = (i) => PAD.left + slot * i + slot / 2;

  const axes = svg("g", { class: "axes", "font-size": 12, fill: "#1b1f24" });
  for (let i = 0; i <= 4; i++) {
    const value = (countMax * i) / 4;
    const at = y(value);
    axes.append(
      svg("line", { x1: PAD.left, x2: W - PAD.right, y1: at, y2: at, stroke: "#d0d7de" }),
      svg("text", { x: PAD.left - 6, y: at + 4, "text-anchor": "end" }, String(Math.round(value))),
      svg("text", { x: W - PAD.right + 6, y: at + 4 }, `${Math.round((msMax * i) / 4)} ms`),
    );
  }
  axes.append(
    svg("text", { x: 4, y: PAD.top - 4 + 10, "font-size": 11 }, "count"),
    svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), stroke: "#1b1f24" }),
  );
  const every = Math.ceil(n / 12);
  buckets.forEach((b, i) => {
    if (i % every === 0) {
      axes.append(svg("text", { x: xMid(i), y: H - PAD.bottom + 16, "text-anchor": "middle", "font-size": 11 }, LABEL[bucket].format(new Date(b.start))));
    }
  });

  const bars = svg("g", { class: "bars" });
  buckets.forEach((b, i) => {
    let base = 0;
    const when = new Date(b.start).toISOString();
    for (const s of SERIES) {
      const value = b[s.key];
      if (!value) continue;
      bars.append(
        svg("rect", { x: xMid(i) - barW / 2, y: y(base + value), width: barW, height: y(base) - y(base + value), fill: s.fill, stroke: "#1b1f24", "stroke-width": 0.5 },
          svg("title", {}, `${when}: ${value} ${s.label.toLowerCase()}`)),
      );
      base += value;
    }
  });

  const lines = svg("g", { class: "lines" });
  for (const l of LINES) {
    const points = buckets.map((b, i) => (b[l.key] === null || b[l.key] === undefined ? null : [xMid(i), yMs(b[l.key]), b]));
    let d = "";
    let pen = false;
    for (const p of points) {
      if (!p) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${p[0].toFixed(1)} ${p[1].toFixed(1)}`;
      pen = true;
    }
    if (d) lines.append(svg("path", { d, fill: "none", stroke: "#102a43", "stroke-width": 2, "stroke-dasharray": l.dash }));
    for (const p of points.filter(Boolean)) {
      const m = marker(l.marker, p[0], p[1]);
      m.append(svg("title", {}, `${new Date(p[2].start).toISOString()}: ${l.label} ${Math.round(p[2][l.key])} ms`));
      lines.append(m);
    }
  }

  const totals = SERIES.map((s) => `${buckets.reduce((sum, b) => sum + b[s.key], 0)} ${s.label.toLowerCase()}`).join(", ");
  const summary = `Deliveries per ${bucket}: ${totals}.`;
  return el(
    "figure",
    {},
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Chart. ${summary}` }, patterns(), axes, bars, lines),
    el("figcaption", {}, summary),
  );
}

export function chartTable(buckets) {
  const num = (v) => (v === null || v === undefined ? "—" : String(Math.round(v)));
  return table(
    [
      { label: "Bucket start", cell: (b) => time(b.start) },
      { label: "Attempts", cell: (b) => String(b.attempts), class: "num" },
      ...SERIES.map((s) => ({ label: s.label, cell: (b) => String(b[s.key]), class: "num" })),
      { label: "p50 (ms)", cell: (b) => num(b.p50Ms), class: "num" },
      { label: "p95 (ms)", cell: (b) => num(b.p95Ms), class: "num" },
    ],
    buckets,
    { caption: "The chart's numbers", empty: "No buckets." },
  );
}
