// A tiny dependency-free SVG line chart: lineChart(container, [{name, points: [[x, y], ...]}], {xLabel}).
"use strict";

const CHART_COLORS = ["#2158d1", "#d1472a", "#17803d", "#8e44ad", "#a86400", "#0f8a8a", "#c2185b", "#455a64"];
const LEGEND_LINES = 8;

function lineChart(container, series, options = {}) {
  const width = 480, height = 220, left = 52, right = 12, top = 14, bottom = 34;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("data-points", String(all.length));
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  container.replaceChildren(svg);
  if (!all.length) {
    add("text", { x: width / 2, y: height / 2, "text-anchor": "middle", fill: "#5f6b7a", "font-size": 12 }, options.empty || "no data yet");
    return svg;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const sx = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const sy = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
  add("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#9aa4b1" });
  add("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#9aa4b1" });
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    add("line", { x1: left, y1: sy(y), x2: width - right, y2: sy(y), stroke: "#eef0f3" });
    add("text", { x: left - 6, y: sy(y) + 4, "text-anchor": "end", "font-size": 10, fill: "#5f6b7a" }, formatTick(y));
  }
  add("text", { x: left, y: height - bottom + 14, "font-size": 10, fill: "#5f6b7a" }, formatTick(x0));
  add("text", { x: width - right, y: height - bottom + 14, "text-anchor": "end", "font-size": 10, fill: "#5f6b7a" }, formatTick(x1));
  add("text", { x: (left + width) / 2, y: height - 4, "text-anchor": "middle", "font-size": 10, fill: "#5f6b7a" }, options.xLabel || "step");
  series.forEach((s, i) => {
    const color = CHART_COLORS[i % CHART_COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (pts.length > 1) {
      add("polyline", { fill: "none", stroke: color, "stroke-width": 2, points: pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "), "data-series": s.name });
    }
    for (const p of pts.length <= 30 ? pts : [pts[pts.length - 1]]) {
      add("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: color });
    }
    const last = pts[pts.length - 1];
    if (i < LEGEND_LINES) add("text", { x: left + 8, y: top + 12 + i * 13, "font-size": 11, fill: color }, `${s.name}${last ? ": " + formatTick(last[1]) : ""}`);
  });
  // Many series (a search's trials): the legend names the first ones and counts the rest instead of overflowing.
  if (series.length > LEGEND_LINES) {
    add("text", { x: left + 8, y: top + 12 + LEGEND_LINES * 13, "font-size": 11, fill: "#5f6b7a" }, `+ ${series.length - LEGEND_LINES} more`);
  }
  return svg;
}

function formatTick(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e5)) return v.toExponential(1);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}
