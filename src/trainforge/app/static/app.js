// trainforge web app: forms generated from /api/tasks/{task}/schema, runs watched through /api/runs/{id}/events.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
};
// Fields the form renders in its own cards (model, data, mapping) or never (managed by the server / secrets).
const SPECIAL = new Set(["model.name", "data.source", "data.columns"]);
const HIDDEN = new Set(["output.dir", "output.overwrite", "hub.token"]);

const state = { tasks: [], schema: null, columns: [], previewColumns: [], runId: null, source: null, events: [] };

async function api(path, options = {}) {
  const init = { ...options, headers: { ...(options.headers || {}) } };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = new Error(typeof body === "string" ? body : describe(body.detail));
    error.status = response.status;
    error.errors = body && body.detail && body.detail.errors;
    throw error;
  }
  return body;
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (detail && detail.errors) return detail.errors.map((e) => (e.key ? `${e.key}: ${e.message}` : e.message)).join("\n");
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("\n");
  return JSON.stringify(detail);
}

// ------------------------------------------------------------------------------------------ navigation

function show(view) {
  for (const section of document.querySelectorAll(".view")) section.classList.toggle("hidden", section.id !== `view-${view}`);
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  if (view === "runs") refreshRuns();
}

// ------------------------------------------------------------------------------------------ task & schema

async function loadTasks() {
  state.tasks = await api("/api/tasks");
  $("#task").replaceChildren(...state.tasks.map((t) => el("option", { value: t.name }, t.name)));
  await selectTask(state.tasks[0].name);
}

async function selectTask(name, config = null) {
  $("#task").value = name;
  state.schema = await api(`/api/tasks/${encodeURIComponent(name)}/schema`);
  $("#task-summary").textContent = state.schema.summary;
  $("#model-name").placeholder = state.schema.default_model
    ? `default: ${state.schema.default_model}` : "sentence-transformers/all-MiniLM-L6-v2 or /path/to/model";
  state.columns = state.schema.columns;
  renderFields();
  renderMapping(config ? (config.data || {}).columns || {} : null);
  if (config) fillForm(config);
  updateYaml();
}

function renderFields() {
  const basic = $("#basic-fields"), advanced = $("#advanced-fields");
  basic.replaceChildren();
  advanced.replaceChildren();
  for (const field of state.schema.fields) {
    if (SPECIAL.has(field.key) || HIDDEN.has(field.key) || field.secret) continue;
    (field.tier === "basic" ? basic : advanced).append(fieldWidget(field));
  }
}

function fieldWidget(field) {
  let input;
  const id = `f-${field.key.replace(/\./g, "-")}`;
  if (field.type === "boolean" && !field.nullable) {
    input = el("input", { type: "checkbox", id });
    input.checked = Boolean(field.default);
  } else if (field.enum || (field.type === "boolean" && field.nullable)) {
    const choices = field.enum || [true, false];
    input = el("select", { id }, field.nullable ? el("option", { value: "" }, "(default: none)") : null,
      ...choices.map((c) => el("option", { value: JSON.stringify(c) }, String(c))));
    input.value = field.default === null || field.default === undefined ? "" : JSON.stringify(field.default);
  } else {
    const numeric = field.type === "integer" || field.type === "number";
    input = el("input", { id, type: numeric ? "number" : "text", step: field.type === "integer" ? "1" : "any" });
    input.value = displayValue(field, field.default);
    if (field.type === "array") input.placeholder = "comma-separated";
    if (field.type === "object") input.placeholder = "JSON object";
    if (field.default === null || field.default === undefined) input.placeholder = field.required ? "required" : "(none)";
  }
  input.dataset.key = field.key;
  input.addEventListener("input", onFormChange);
  input.addEventListener("change", onFormChange);
  const label = el("label", { for: id }, field.name.replace(/_/g, " "), " ", el("code", {}, field.key));
  const wrapper = el("div", { class: "field", "data-field": field.key });
  if (input.type === "checkbox") wrapper.append(el("label", { for: id }, input, " ", field.name.replace(/_/g, " "), " ", el("code", {}, field.key)));
  else wrapper.append(label, input);
  wrapper.append(el("div", { class: "help" }, field.help + (field.default !== null && field.default !== undefined ? ` Default: ${JSON.stringify(field.default)}.` : "")));
  wrapper.append(el("div", { class: "error", "data-error-for": field.key }));
  return wrapper;
}

function displayValue(field, value) {
  if (value === null || value === undefined) return "";
  if (field.type === "array") return value.join(", ");
  if (field.type === "object") return Object.keys(value).length ? JSON.stringify(value) : "";
  return String(value);
}

function readField(field, input) {
  if (input.type === "checkbox") return input.checked;
  if (input.tagName === "SELECT") return input.value === "" ? null : JSON.parse(input.value);
  const text = input.value.trim();
  if (text === "") return field.nullable ? null : field.type === "array" ? [] : field.type === "object" ? {} : null;
  if (field.type === "integer" || field.type === "number") return Number(text);
  if (field.type === "array") return text.split(",").map((s) => s.trim()).filter(Boolean);
  if (field.type === "object") { try { return JSON.parse(text); } catch { return text; } }
  return text;
}

// ------------------------------------------------------------------------------------------ data

async function uploadFiles(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  $("#upload-status").textContent = "uploading…";
  try {
    const saved = await api("/api/uploads", { method: "POST", body: form });
    $("#upload-status").textContent = `uploaded ${saved.map((s) => s.name).join(", ")}`;
    $("#data-source").value = saved[0].path;
    await loadPreview();
  } catch (error) {
    $("#upload-status").textContent = "";
    showErrors([{ key: "data.source", message: error.message }]);
  }
}

async function loadPreview() {
  const source = $("#data-source").value.trim();
  clearErrors();
  if (!source) return;
  try {
    const preview = await api("/api/preview", { json: { source, task: $("#task").value } });
    state.previewColumns = preview.columns;
    const thumbs = preview.thumbnails || {};
    const head = el("tr", {}, ...preview.columns.map((c) => el("th", {}, `${c} (${preview.dtypes[c]})`)));
    // Image columns show the server's thumbnail (a data: URI) with the path as its tooltip.
    const cell = (r, c, i) => thumbs[c] && thumbs[c][i]
      ? el("td", { title: String(r[c]) }, el("img", { class: "thumb", src: thumbs[c][i], alt: String(r[c]), "data-column": c }))
      : el("td", { title: String(r[c]) }, String(r[c]));
    const rows = preview.rows.map((r, i) => el("tr", {}, ...preview.columns.map((c) => cell(r, c, i))));
    const counts = Object.entries(preview.class_counts || {}).map(([column, classes]) => el("div", { class: "class-counts" },
      el("h4", {}, `images per class (${column})`),
      el("table", { id: `class-counts-${column}` }, el("tr", {}, el("th", {}, "class"), el("th", {}, "images")),
        ...Object.entries(classes).map(([name, n]) => el("tr", { "data-class": name }, el("td", {}, name), el("td", {}, String(n)))))));
    $("#preview").replaceChildren(
      el("p", { class: "help" }, `${preview.total_rows} rows from ${preview.origin}; first ${preview.rows.length} shown`),
      ...counts,
      el("table", { id: "preview-table" }, el("thead", {}, head), el("tbody", {}, ...rows)));
    renderMapping(preview.mapping);
  } catch (error) {
    $("#preview").replaceChildren();
    showErrors(error.errors || [{ key: "data.source", message: error.message }]);
  }
  updateYaml();
}

function renderMapping(mapping) {
  const current = mapping || readMapping();
  const rest = state.columns.filter((column) => column.rest);
  $("#mapping").replaceChildren(...rest.map((column) => el("div", { class: "field" },
    el("label", {}, `${column.name} (all other columns)`), el("div", { class: "help" }, column.help))),
  ...state.columns.filter((column) => !column.rest).map((column) => {
    const options = [...state.previewColumns];
    const value = current[column.name];
    if (value && !options.includes(value)) options.push(value);
    const select = el("select", { id: `map-${column.name}`, "data-column": column.name },
      el("option", { value: "" }, column.required ? `(default: ${column.default})` : "(not used)"),
      ...options.map((c) => el("option", { value: c }, c)));
    select.value = value || "";
    select.addEventListener("change", onFormChange);
    return el("div", { class: "field", "data-field": `data.columns.${column.name}` },
      el("label", { for: select.id }, column.name, column.required ? " (required)" : " (optional)"),
      select, el("div", { class: "help" }, column.help),
      el("div", { class: "error", "data-error-for": `data.columns.${column.name}` }));
  }));
}

function readMapping() {
  const mapping = {};
  for (const select of document.querySelectorAll("#mapping select")) if (select.value) mapping[select.dataset.column] = select.value;
  return mapping;
}

async function loadModels() {
  const models = await api("/api/models");
  $("#model-list").replaceChildren(...models.map((m) => el("option", { value: m.path }, m.name)));
  $("#model-choices").replaceChildren(...models.map((m) => el("button", {
    type: "button", title: m.path, onclick: () => { $("#model-name").value = m.path; onFormChange(); },
  }, m.name)));
}

// ------------------------------------------------------------------------------------------ config <-> form

function buildConfig() {
  const config = { task: $("#task").value, model: { name: $("#model-name").value.trim() }, data: { source: $("#data-source").value.trim() } };
  if (!config.model.name && state.schema.default_model) delete config.model;  // the task's own default applies
  const mapping = readMapping();
  if (Object.keys(mapping).length) config.data.columns = mapping;
  for (const field of state.schema.fields) {
    const input = document.querySelector(`[data-key="${field.key}"]`);
    if (!input) continue;
    const value = readField(field, input);
    if (JSON.stringify(value) === JSON.stringify(field.default ?? null) && !(field.required && value !== null)) continue;
    if (value === null && field.default === undefined) continue;
    (config[field.section] = config[field.section] || {})[field.name] = value;
  }
  return config;
}

function fillForm(config) {
  $("#model-name").value = (config.model || {}).name || "";
  $("#data-source").value = (config.data || {}).source || "";
  for (const field of state.schema.fields) {
    const input = document.querySelector(`[data-key="${field.key}"]`);
    if (!input) continue;
    const section = config[field.section] || {};
    const value = field.name in section ? section[field.name] : field.default;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else if (input.tagName === "SELECT") input.value = value === null || value === undefined ? "" : JSON.stringify(value);
    else input.value = displayValue(field, value);
  }
}

let yamlTimer = null;
function onFormChange() {
  clearTimeout(yamlTimer);
  yamlTimer = setTimeout(updateYaml, 150);
}

async function updateYaml() {
  if (!state.schema) return;
  $("#yaml").value = await api("/api/config/yaml", { json: { config: buildConfig() } });
}

async function applyYaml() {
  clearErrors();
  try {
    const { config } = await api("/api/config/parse", { json: { yaml: $("#yaml").value } });
    const task = state.tasks.some((t) => t.name === config.task) ? config.task : $("#task").value;
    await selectTask(task, config);
    if (config.data && config.data.source) await loadPreviewKeepingMapping(config.data.columns || {});
  } catch (error) {
    showErrors(error.errors || [{ key: "", message: error.message }]);
  }
}

async function loadPreviewKeepingMapping(mapping) {
  await loadPreview();
  renderMapping({ ...readMapping(), ...mapping });
  updateYaml();
}

function downloadYaml() {
  const blob = new Blob([$("#yaml").value], { type: "application/yaml" });
  const link = el("a", { href: URL.createObjectURL(blob), download: `${$("#task").value}.yaml` });
  document.body.append(link);
  link.click();
  link.remove();
}

// ------------------------------------------------------------------------------------------ validate & start

function clearErrors() {
  for (const node of document.querySelectorAll("[data-error-for]")) node.textContent = "";
  for (const node of document.querySelectorAll(".invalid")) node.classList.remove("invalid");
  $("#form-errors").textContent = "";
  $("#validate-result").textContent = "";
}

function showErrors(errors) {
  const unplaced = [];
  for (const { key, message } of errors) {
    const target = document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
    if (target) {
      target.textContent = message;
      const field = target.closest(".field");
      if (field) field.classList.add("invalid");
      const details = target.closest("details");
      if (details) details.open = true;
    } else unplaced.push(key ? `${key}: ${message}` : message);
  }
  $("#form-errors").textContent = errors.length ? `${errors.length} problem(s) — see the fields marked in red.` + (unplaced.length ? "\n" + unplaced.join("\n") : "") : "";
}

async function validate() {
  clearErrors();
  $("#validate-result").textContent = "checking config and data…";
  try {
    const report = await api("/api/config/validate", { json: { config: buildConfig() } });
    $("#validate-result").textContent = report.summary;
    return true;
  } catch (error) {
    $("#validate-result").textContent = "";
    showErrors(error.errors || [{ key: "", message: error.message }]);
    return false;
  }
}

async function start() {
  clearErrors();
  $("#start-btn").disabled = true;
  $("#validate-result").textContent = "checking config and data…";
  try {
    const job = await api("/api/runs", { json: { config: buildConfig(), name: $("#run-name").value.trim() || null } });
    $("#validate-result").textContent = "";
    show("runs");
    openRun(job.id);
  } catch (error) {
    $("#validate-result").textContent = "";
    showErrors(error.errors || [{ key: "", message: error.message }]);
  } finally {
    $("#start-btn").disabled = false;
  }
}

// ------------------------------------------------------------------------------------------ estimate
// The panel renders Estimate.to_dict() (src/trainforge/estimate/result.py), the figures `trainforge estimate` prints.

function bytes(size) {
  if (size === null || size === undefined) return "n/a";
  return Math.abs(size) >= 2 ** 30 ? `${(size / 2 ** 30).toFixed(2)} GiB` : `${(size / 2 ** 20).toFixed(1)} MiB`;
}

function duration(seconds) {
  if (seconds >= 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return seconds >= 60 ? `${(seconds / 60).toFixed(1)} min` : `${seconds.toFixed(1)} s`;
}

const count = (n) => (n === null || n === undefined ? "n/a" : n.toLocaleString("en-US"));

// [label, value, key] rows as a two-column table; each row is findable as tr[data-row=key].
function kvTable(id, rows) {
  return el("table", { id, class: "kv" }, ...rows.map(([label, value, key]) => el("tr", { "data-row": key || label },
    el("th", {}, label), el("td", {}, value))));
}

async function estimate() {
  clearErrors();
  const button = $("#estimate-btn"), target = $("#estimate-result");
  const measure = $("#estimate-measure").checked, limit = $("#estimate-memory-limit").value.trim();
  button.disabled = true;
  target.replaceChildren(el("p", { class: "help", id: "estimate-status" }, measure
    ? "estimating: checking config and data, then timing a few training steps in a separate process…"
    : "estimating parameters and memory…"));
  try {
    const report = await api("/api/config/estimate", { json: { config: buildConfig(), measure, memory_limit: limit || null } });
    renderEstimate(target, report, measure);
  } catch (error) {
    target.replaceChildren();
    showErrors(error.errors || [{ key: "", message: error.message }]);
  } finally {
    button.disabled = false;
  }
}

function renderEstimate(target, r, measured) {
  const parts = [el("h3", {}, "Estimate"), el("p", { class: "help" }, `task ${r.task} · model ${r.model} · device ${r.device}`)];
  if (!r.applies) parts.push(el("p", { id: "estimate-data" }, `loaded data: ${bytes(r.data_bytes)}`));
  else {
    const share = (100 * (r.trainable_params || 0) / Math.max(1, r.total_params || 1)).toFixed(2);
    parts.push(kvTable("estimate-params", [
      ["total parameters", count(r.total_params), "total_params"],
      ["trainable parameters", `${count(r.trainable_params)} (${share}%)`, "trainable_params"],
      ["weights", r.weights_dtype, "weights_dtype"],
      ["batch", `${r.batch_size} per device × ${r.gradient_accumulation_steps} accumulation`, "batch"],
      ...Object.entries(r.sequence || {}).map(([name, info]) => [`${name} tokens`,
        `typical ${info.typical}, longest ${info.peak}` + (info.limit ? ` (limit ${info.limit})` : ""), `sequence-${name}`]),
    ]));
  }
  if (r.memory) parts.push(...memoryParts(r));
  if (r.fits !== null && r.fits !== undefined) {
    const needed = (r.memory ? r.memory.peak_bytes : 0) + (r.runtime_bytes || 0);
    parts.push(el("p", { id: "estimate-fits", class: r.fits ? "fits" : "no-fit", "data-fits": String(r.fits) },
      `${r.fits ? "Fits" : "Does NOT fit"}: needs ${bytes(needed)} (incl. ${bytes(r.runtime_bytes)} for the process itself) of ${bytes(r.available_bytes)} available`));
  }
  if (r.largest_batch !== null && r.largest_batch !== undefined) {
    parts.push(el("p", { id: "estimate-largest-batch" }, `largest per-device batch that fits: ${count(r.largest_batch)}`));
  }
  if (r.applies) parts.push(...speedParts(r.speed, measured));
  if (r.alternatives && r.alternatives.length) parts.push(...alternativeParts(r.alternatives));
  if (r.notes && r.notes.length) parts.push(el("ul", { id: "estimate-notes", class: "help" }, ...r.notes.map((n) => el("li", {}, n))));
  parts.push(el("details", {}, el("summary", {}, "as `trainforge estimate` prints it"), el("pre", { id: "estimate-summary" }, r.summary)));
  target.replaceChildren(...parts);
}

function memoryParts(r) {
  const m = r.memory;
  const both = (value) => [el("td", { class: "number" }, bytes(value)), el("td", { class: "number" }, bytes(value))];
  const row = (key, label, cells) => el("tr", { "data-component": key }, el("th", {}, label), ...cells);
  const configured = (on) => (m.checkpointing === on ? { class: "configured", title: "as configured" } : {});
  return [el("h4", {}, "Peak memory of one training step"), el("table", { id: "estimate-memory" },
    el("tr", {}, el("th", {}, "component"), el("th", configured(false), "without gradient checkpointing"),
      el("th", configured(true), "with gradient checkpointing")),
    row("weights", "weights", both(m.weights)),
    m.reference_model ? row("reference_model", "reference model", both(m.reference_model)) : null,
    row("gradients", "gradients", both(m.gradients)),
    row("optimizer", "optimizer states", both(m.optimizer)),
    row("activations", "activations", [el("td", { class: "number" }, bytes(m.activations)), el("td", { class: "number" }, bytes(m.activations_checkpointed))]),
    row("runtime", "runtime", both(m.overhead)),
    row("peak", "total", [el("td", { class: "number", "data-bytes": String(m.peak_without_checkpointing_bytes) }, el("strong", {}, bytes(m.peak_without_checkpointing_bytes))),
      el("td", { class: "number", "data-bytes": String(m.peak_with_checkpointing_bytes) }, el("strong", {}, bytes(m.peak_with_checkpointing_bytes)))])),
  el("p", { class: "help" }, `gradient checkpointing is ${m.checkpointing ? "on" : "off"} in this config (training.gradient_checkpointing)`)];
}

function speedParts(speed, measured) {
  if (!speed) {
    return [el("p", { class: "help", id: "estimate-speed" }, measured
      ? "speed: not measured (the notes say why)" : "speed: not measured (tick \"measure speed\" to time a few training steps)")];
  }
  const rows = [
    ["step time", `${speed.step_s.toFixed(3)} s/step (median of ${speed.steps_timed} steps after ${speed.steps_warm} warm-up)`, "step_s"],
    ["samples/s", speed.samples_per_s.toFixed(1), "samples_per_s"],
    ["tokens/s", speed.tokens_per_s ? Math.round(speed.tokens_per_s).toLocaleString("en-US") : "n/a", "tokens_per_s"],
    ["time per epoch", `${duration(speed.epoch_s)} (${count(speed.steps_per_epoch)} steps; training steps only)`, "epoch_s"],
    ["device", speed.device, "device"],
  ];
  if (speed.measured_peak_bytes !== null && speed.measured_peak_bytes !== undefined) rows.push(["memory those steps added", bytes(speed.measured_peak_bytes), "measured_peak_bytes"]);
  return [el("h4", {}, "Speed (measured)"), kvTable("estimate-speed", rows)];
}

function alternativeParts(alternatives) {
  const title = alternatives.some((a) => a.fits) ? "Settings that fit" : "Settings tried";
  return [el("h4", {}, title), el("table", { id: "estimate-alternatives" },
    el("tr", {}, el("th", {}, "setting"), el("th", {}, "peak"), el("th", {}, ""), el("th", {}, "overrides (add to trainforge train)")),
    ...alternatives.map((a) => el("tr", { "data-alternative": a.name, "data-fits": String(a.fits) },
      el("td", {}, a.name, a.note ? el("div", { class: "help" }, a.note) : null), el("td", { class: "number" }, bytes(a.memory.peak_bytes)),
      el("td", { class: a.fits ? "fits" : "no-fit" }, a.fits ? "fits" : "too big"), el("td", {}, el("code", {}, a.overrides.join(" "))))))];
}

// ------------------------------------------------------------------------------------------ runs

function clock(seconds) {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.max(0, Math.round(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

function progressText(job) {
  const p = job.progress;
  if (!p) {
    if (job.status === "queued") return "waiting in the queue";
    if (job.status === "running") return "starting…";
    return job.finished ? `ended ${new Date(job.finished * 1000).toLocaleTimeString()}` : "";
  }
  return (p.trial !== null && p.trial !== undefined ? `trial ${p.trial} · ` : "") + `step ${p.step}/${p.max_steps} · elapsed ${clock(p.elapsed_s)}` + (job.status === "running" ? ` · ETA ${clock(p.eta_s)}` : "");
}

async function refreshRuns() {
  const runs = await api("/api/runs");
  $("#runs-table tbody").replaceChildren(...runs.map((job) => el("tr", {
    "data-run": job.id, class: job.id === state.runId ? "selected" : "", onclick: () => openRun(job.id),
  }, el("td", {}, job.name), el("td", {}, job.task), el("td", {}, el("span", { class: `status ${job.status}` }, job.status)),
  el("td", {}, progressText(job)), el("td", {}, new Date(job.created * 1000).toLocaleString()))));
}

function openRun(id) {
  if (state.source) state.source.close();
  state.runId = id;
  state.events = [];
  state.job = null;
  $("#run-detail").classList.remove("hidden");
  for (const sel of ["#run-log", "#run-card", "#run-error", "#playground-body"]) $(sel).textContent = "";
  $("#run-metrics").replaceChildren();
  $("#search-trials").classList.add("hidden");
  $("#playground").classList.add("hidden");
  $("#use").classList.add("hidden");
  for (const sel of ["#evaluate-body", "#export-body", "#publish-body", "#serve-body"]) $(sel).replaceChildren();
  $("#download-link").href = `/api/runs/${id}/download`;
  drawCharts();
  const source = new EventSource(`/api/runs/${id}/events`);
  state.source = source;
  let firstLog = true;
  source.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  source.addEventListener("event", (e) => {
    const event = JSON.parse(e.data);
    state.events.push(event);
    drawCharts();
    if (/^(trial_started|search_trial|search_finished)$/.test(event.event) || (event.event === "run_started" && event.search)) renderTrials(id);
  });
  source.addEventListener("log", (e) => {
    const log = $("#run-log");
    if (firstLog) { log.textContent = ""; firstLog = false; }
    log.textContent = (log.textContent + JSON.parse(e.data)).slice(-20000);
    log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("end", () => { source.close(); finishRun(id); });
  refreshRuns();
}

function showStatus(job) {
  state.job = job;
  $("#run-title").textContent = job.name;
  const status = $("#run-status");
  status.textContent = job.status;
  status.className = `status ${job.status}`;
  $("#run-progress").textContent = progressText(job);
  $("#run-progress-bar").style.width = `${Math.round(100 * (job.status === "succeeded" ? 1 : (job.progress || {}).fraction || 0))}%`;
  $("#cancel-btn").disabled = !["queued", "running"].includes(job.status);
  const error = $("#run-error");
  error.textContent = job.error || "";
  error.classList.toggle("hidden", !job.error || job.status === "succeeded");
  refreshRuns();
}

// A search's log repeats each trial's steps and evaluations with `trial`: one curve per trial (the search metric only).
function drawCharts() {
  const steps = state.events.filter((e) => e.event === "step" && typeof e.loss === "number");
  const evals = state.events.filter((e) => e.event === "eval");
  const started = state.events.find((e) => e.event === "run_started" && e.search);
  if (started) {
    const trials = [...new Set(steps.concat(evals).map((e) => e.trial))].filter((t) => t !== undefined).sort((a, b) => a - b);
    const metric = started.search.metric.replace(/^eval_/, "");  // eval events name their metrics without the prefix
    lineChart($("#loss-chart"), trials.map((t) => ({ name: `trial ${t}`, points: steps.filter((e) => e.trial === t).map((e) => [e.step, e.loss]) })),
      { empty: "each trial's loss appears as it trains" });
    lineChart($("#eval-chart"), trials.map((t) => ({ name: `trial ${t}`, points: evals.filter((e) => e.trial === t && typeof e.metrics[metric] === "number").map((e) => [e.step, e.metrics[metric]]) })),
      { empty: `${metric} of each trial appears after its first evaluation` });
    return;
  }
  lineChart($("#loss-chart"), [{ name: "loss", points: steps.map((e) => [e.step, e.loss]) }]);
  const names = [...new Set(evals.flatMap((e) => Object.keys(e.metrics)))]
    .filter((k) => !/runtime|per_second|epoch/.test(k) && evals.some((e) => typeof e.metrics[k] === "number"));
  lineChart($("#eval-chart"), names.map((name) => ({ name, points: evals.filter((e) => typeof e.metrics[name] === "number").map((e) => [e.step, e.metrics[name]]) })),
    { empty: "evaluation metrics appear after the first evaluation" });
}

// A hyperparameter search's trials, live from the run's events: trial_started (running), search_trial (its end:
// complete, pruned or failed, with the value) and search_finished (the best trial, the reports to download).
function renderTrials(id) {
  const started = state.events.find((e) => e.event === "run_started" && e.search);
  const trials = new Map();
  for (const e of state.events) {
    if (e.event === "trial_started") trials.set(e.number, { number: e.number, state: "running", params: e.params, value: null, duration_s: null });
    if (e.event === "search_trial") trials.set(e.number, { ...e });
  }
  const finished = state.events.find((e) => e.event === "search_finished");
  const search = started ? started.search : null;
  const keys = [...new Set([...(search ? search.space : []), ...[...trials.values()].flatMap((t) => Object.keys(t.params || {}))])];
  const rows = [...trials.values()].sort((a, b) => a.number - b.number).map((t) => el("tr", {
    "data-trial": String(t.number), "data-state": t.state, class: finished && finished.best_trial === t.number ? "best" : "",
  }, el("td", {}, String(t.number)), el("td", {}, el("span", { class: `status trial-${t.state}` }, t.state)),
  ...keys.map((k) => el("td", {}, numberCell((t.params || {})[k]))), el("td", { "data-column": "value" }, t.value === null || t.value === undefined ? "" : numberCell(t.value)),
  el("td", {}, t.duration_s === null || t.duration_s === undefined ? "" : `${t.duration_s} s`)));
  const done = [...trials.values()].filter((t) => t.state !== "running").length;
  const head = search ? `${done} of ${search.trials} trial(s) done · ${search.direction} ${search.metric}` : `${done} trial(s) done`;
  const links = finished ? el("p", { id: "search-links" }, `best: trial ${finished.best_trial} (${numberCell(finished.value)}) · `,
    el("a", { href: `/api/runs/${id}/search/leaderboard.csv`, id: "leaderboard-link" }, "leaderboard.csv"), " · ",
    el("a", { href: `/api/runs/${id}/search/best_config.yaml`, id: "best-config-link" }, "best_config.yaml")) : null;
  $("#search-trials").classList.remove("hidden");
  $("#search-trials-body").replaceChildren(el("p", { class: "help", id: "search-progress" }, head),
    el("table", { id: "trials-table" }, el("tr", {}, el("th", {}, "trial"), el("th", {}, "state"), ...keys.map((k) => el("th", {}, k)),
      el("th", {}, search ? search.metric : "value"), el("th", {}, "time")), ...rows), links);
}

async function finishRun(id) {
  const job = await api(`/api/runs/${id}`);
  if (id !== state.runId) return;
  showStatus(job);
  if (job.metrics) {
    $("#run-metrics").replaceChildren(el("tr", {}, el("th", {}, "metric"), el("th", {}, "value")),
      ...Object.entries(job.metrics).map(([k, v]) => el("tr", { "data-metric": k }, el("td", {}, k), el("td", {}, typeof v === "number" ? v.toFixed(4) : String(v)))));
  }
  try { $("#run-card").textContent = await api(`/api/runs/${id}/card`); } catch (error) { $("#run-card").textContent = ""; }
  if (job.status === "succeeded") { renderPlayground(job); renderUse(job); }
}

async function cancelRun() {
  if (!state.runId) return;
  showStatus(await api(`/api/runs/${state.runId}/cancel`, { method: "POST" }));
}

async function rerun() {
  const job = state.job && state.job.config ? state.job : await api(`/api/runs/${state.runId}`);
  const config = JSON.parse(JSON.stringify(job.config));
  delete (config.output || {}).dir;
  show("new");
  await selectTask(config.task, config);
  if (config.data && config.data.source) await loadPreviewKeepingMapping(config.data.columns || {});
  $("#run-name").value = `${job.name} (edited)`;
  window.scrollTo(0, 0);
}

// ------------------------------------------------------------------------------------------ playground

function renderPlayground(job) {
  const body = $("#playground-body");
  $("#playground").classList.remove("hidden");
  if (job.playground.kind === "chat") return renderChat(job, body);
  const images = {};  // column -> data: URI of the chosen file
  const inputs = job.playground.inputs.map((input) => {
    if (!input.image) {
      return el("div", { class: "field" },
        el("label", { for: `play-${input.column}` }, input.column), el("textarea", { id: `play-${input.column}`, rows: 2, "data-column": input.column }),
        el("div", { class: "help" }, input.help));
    }
    // An image input: a file picker; the image goes to /predict as a data: URI (the server reads no paths).
    const shown = el("img", { class: "play-image hidden", id: `play-image-${input.column}`, alt: input.column });
    const picker = el("input", { type: "file", accept: "image/*", id: `play-file-${input.column}`, "data-image-column": input.column });
    picker.addEventListener("change", () => {
      const file = picker.files[0];
      if (!file) return;
      const reader = new FileReader();
      reader.onload = () => { images[input.column] = reader.result; shown.src = reader.result; shown.classList.remove("hidden"); };
      reader.readAsDataURL(file);
    });
    return el("div", { class: "field" }, el("label", { for: picker.id }, `${input.column} (image)`), picker, shown, el("div", { class: "help" }, input.help));
  });
  const hasImages = job.playground.inputs.some((i) => i.image);
  const csv = hasImages ? null : el("textarea", { id: "play-csv", rows: 3, placeholder: "or paste CSV rows with a header line" });
  const result = el("div", { id: "playground-result" });
  const button = el("button", { type: "button", id: "predict-btn", class: "primary", onclick: async () => {
    result.textContent = "predicting…";
    const payload = {};
    if (csv && csv.value.trim()) payload.csv = csv.value;
    else {
      payload.inputs = Object.fromEntries([...body.querySelectorAll("textarea[data-column]")].map((t) => [t.dataset.column, t.value]));
      for (const input of job.playground.inputs.filter((i) => i.image)) {
        if (!images[input.column]) { result.replaceChildren(el("div", { class: "errors" }, `choose an image for ${input.column}`)); return; }
        payload.inputs[input.column] = images[input.column];
      }
    }
    try {
      const { predictions } = await api(`/api/runs/${job.id}/predict`, { json: payload });
      renderPredictions(result, predictions, job.playground, images);
    } catch (error) { result.replaceChildren(el("div", { class: "errors" }, error.message)); }
  } }, "Predict");
  body.replaceChildren(...inputs, ...(csv ? [csv] : []), el("div", { class: "row" }, button), result);
}

// A list of {box, label, score} (a detector's prediction): the boxes are drawn over the image.
const isBoxes = (value) => Array.isArray(value) && value.length > 0 && value.every((b) => b && typeof b === "object" && "box" in b);

function renderPredictions(result, predictions, playground, images) {
  const imageColumns = new Set(playground.inputs.filter((i) => i.image).map((i) => i.column));
  const columns = Object.keys(predictions[0] || {}).filter((c) => !imageColumns.has(c));
  const text = (value) => typeof value === "number" ? value.toFixed(4)
    : isBoxes(value) ? `${value.length} box(es)` : Array.isArray(value) || (value && typeof value === "object") ? JSON.stringify(value) : String(value);
  const parts = [el("table", { id: "predictions" }, el("tr", {}, ...columns.map((c) => el("th", {}, c))),
    ...predictions.map((row) => el("tr", {}, ...columns.map((c) => el("td", { "data-column": c }, text(row[c]))))))];
  const first = predictions[0] || {};
  const scores = columns.filter((c) => c.startsWith("prob_") && typeof first[c] === "number").map((c) => [c.slice(5), first[c]]).sort((a, b) => b[1] - a[1]);
  if (scores.length) {
    parts.push(el("div", { id: "prediction-scores", class: "scores" }, ...scores.map(([label, score]) => el("div", { class: "score", "data-label": label },
      el("span", {}, label), el("div", { class: "bar" }, el("div", { style: `width:${Math.round(100 * score)}%` })), el("span", {}, score.toFixed(3))))));
  }
  const boxesColumn = columns.find((c) => isBoxes(first[c]));
  const image = Object.values(images)[0];
  if (boxesColumn && image) parts.push(drawBoxes(image, first[boxesColumn], playground.box_format || "xyxy"));
  result.replaceChildren(...parts);
}

function drawBoxes(src, boxes, format) {
  const canvas = el("canvas", { id: "prediction-boxes", "data-boxes": String(boxes.length) });
  const image = new Image();
  image.onload = () => {
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(image, 0, 0);
    ctx.lineWidth = Math.max(2, image.naturalWidth / 200);
    ctx.font = `${Math.max(12, Math.round(image.naturalWidth / 40))}px sans-serif`;
    boxes.forEach((b, i) => {
      let [x1, y1, x2, y2] = Array.isArray(b.box) ? b.box : [b.box.xmin, b.box.ymin, b.box.xmax, b.box.ymax];
      if (Array.isArray(b.box) && format === "xywh") { x2 += x1; y2 += y1; }
      ctx.strokeStyle = ctx.fillStyle = `hsl(${(i * 67) % 360} 80% 45%)`;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      ctx.fillText(`${b.label} ${typeof b.score === "number" ? b.score.toFixed(2) : ""}`, x1 + 2, Math.max(12, y1 - 3));
    });
    canvas.dataset.drawn = "1";
  };
  image.src = src;
  return canvas;
}

function renderChat(job, body) {
  const messages = [];
  const log = el("div", { class: "chat-log", id: "chat-log" });
  const input = el("textarea", { id: "chat-input", rows: 2, placeholder: "Say something…" });
  const send = el("button", { type: "button", class: "primary", id: "chat-send", onclick: async () => {
    const text = input.value.trim();
    if (!text) return;
    messages.push({ role: "user", content: text });
    log.append(el("p", { class: "user" }, `you: ${text}`));
    input.value = "";
    send.disabled = true;
    try {
      const { reply } = await api(`/api/runs/${job.id}/chat`, { json: { messages } });
      messages.push({ role: "assistant", content: reply });
      log.append(el("p", {}, `model: ${reply}`));
    } catch (error) {
      messages.pop();
      log.append(el("p", { class: "errors" }, error.message));
    } finally { send.disabled = false; }
  } }, "Send");
  body.replaceChildren(log, input, el("div", { class: "row" }, send));
}

// ------------------------------------------------------------------------------------------ use: evaluate, export, publish, serve
// Everything offered comes from /api/runs/{id}/use (the run's evaluation kind, the exporters' capabilities, the
// server's Hub token, the serve endpoints of its task): no task names here.

async function renderUse(job) {
  let use;
  try { use = await api(`/api/runs/${job.id}/use`); } catch (error) { return; }
  if (job.id !== state.runId) return;
  $("#use").classList.remove("hidden");
  renderEvaluate(job, use);
  renderExport(job, use);
  renderPublish(job, use);
  renderServe(use.serve);
}

// Follow an action until it ends; `show` gets each view (status, log, result).
async function followAction(runId, action, status, onDone) {
  const started = Date.now();
  for (;;) {
    if (runId !== state.runId) return;
    status.className = `action-status ${action.status}`;
    if (action.status === "running") status.textContent = `${action.kind} running… ${Math.round((Date.now() - started) / 1000)} s`;
    else if (action.status === "failed") status.textContent = `${action.kind} failed: ${action.error || "see the log"}`;
    else status.textContent = `${action.kind} done`;
    if (action.status !== "running") { onDone(action); return; }
    await new Promise((resolve) => setTimeout(resolve, 700));
    try { action = await api(`/api/runs/${runId}/actions/${action.id}`); } catch (error) { status.textContent = error.message; return; }
  }
}

async function startAction(job, path, payload, status, button, onDone) {
  button.disabled = true;
  status.className = "action-status";
  status.textContent = "starting…";
  try {
    const action = await api(`/api/runs/${job.id}/${path}`, { json: payload });
    await followAction(job.id, action, status, onDone);
  } catch (error) {
    status.className = "action-status failed";
    status.textContent = error.message;
  } finally { button.disabled = false; }
}

function numberCell(value) {
  return typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toFixed(4)) : String(value ?? "");
}

function recordsTable(records, id) {
  const columns = Object.keys(records[0] || {});
  return el("table", { id }, el("tr", {}, ...columns.map((c) => el("th", {}, c))),
    ...records.map((r) => el("tr", {}, ...columns.map((c) => el("td", {}, numberCell(r[c]))))));
}

function matrixTable(table) {
  return el("table", { class: "matrix", id: "confusion-matrix" },
    el("tr", {}, el("th", {}, "true \\ predicted"), ...table.labels.map((l) => el("th", {}, String(l)))),
    ...table.matrix.map((row, i) => el("tr", {}, el("th", {}, String(table.labels[i])),
      ...row.map((n, j) => el("td", { class: i === j ? "diagonal" : "" }, String(n))))));
}

const REPORT_HEADER = new Set(["run", "task", "kind", "data", "rows", "seconds", "metrics", "notes"]);

function renderReport(target, report) {
  const doc = report.document;
  const parts = [el("p", { class: "help" }, `${report.name}: ${doc.rows} rows of ${doc.data}, ${doc.kind.replace(/_/g, " ")}, ${doc.seconds} s`),
    el("table", { id: "evaluation-metrics" }, el("tr", {}, el("th", {}, "metric"), el("th", {}, "value")),
      ...Object.entries(doc.metrics).map(([k, v]) => el("tr", { "data-metric": k }, el("td", {}, k), el("td", {}, numberCell(v)))))];
  for (const note of doc.notes || []) parts.push(el("p", { class: "help" }, note));
  for (const [title, table] of Object.entries(doc)) {
    if (REPORT_HEADER.has(title) || !table || typeof table !== "object") continue;
    if (table.matrix) parts.push(el("h4", {}, title), matrixTable(table));
    else if (Array.isArray(table) && table.length && typeof table[0] === "object") parts.push(el("h4", {}, title), recordsTable(table.slice(0, 20)));
  }
  target.replaceChildren(...parts);
}

async function renderEvaluate(job, use) {
  const body = $("#evaluate-body");
  const offer = use.evaluate;
  if (!offer.available) { body.replaceChildren(el("p", { class: "help" }, offer.reason)); return; }
  let uploads = [];
  try { uploads = await api("/api/uploads"); } catch (error) { uploads = []; }
  const pick = el("select", { id: "evaluate-upload" }, el("option", { value: "" }, uploads.length ? "(choose an uploaded file)" : "(no uploads yet)"),
    ...uploads.map((u) => el("option", { value: u.path }, `${u.name} (${u.size} bytes)`)));
  const path = el("input", { id: "evaluate-source", placeholder: "or a labelled file (or folder) on the server" });
  pick.addEventListener("change", () => { if (pick.value) path.value = pick.value; });
  const file = el("input", { type: "file", id: "evaluate-file", accept: ".csv,.tsv,.jsonl,.json,.parquet,.zip" });
  const status = el("div", { class: "action-status", id: "evaluate-status" });
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    const form = new FormData();
    form.append("files", file.files[0], file.files[0].name);
    status.textContent = "uploading…";
    try {
      const [saved] = await api("/api/uploads", { method: "POST", body: form });
      path.value = saved.path;
      pick.append(el("option", { value: saved.path }, saved.name));
      pick.value = saved.path;
      status.textContent = `uploaded ${saved.name}`;
    } catch (error) { status.className = "action-status failed"; status.textContent = error.message; }
  });
  const columns = offer.columns.map((c) => el("div", { class: "field" },
    el("label", { for: `evaluate-col-${c.name}` }, `${c.name} (${c.role}${c.required ? "" : ", optional"})`),
    el("input", { id: `evaluate-col-${c.name}`, "data-column": c.name, value: c.column }),
    el("div", { class: "help" }, c.help)));
  const report = el("div", { id: "evaluation-report" });
  const button = el("button", { type: "button", class: "primary", id: "evaluate-btn", onclick: () => {
    const mapping = {};
    for (const input of body.querySelectorAll("input[data-column]")) if (input.value.trim()) mapping[input.dataset.column] = input.value.trim();
    startAction(job, "evaluate", { source: path.value.trim(), columns: mapping }, status, button, (action) => {
      if (action.result) renderReport(report, action.result);
    });
  } }, "Evaluate");
  body.replaceChildren(el("div", { class: "row" }, pick), el("div", { class: "row" }, path), el("div", { class: "row" }, el("label", {}, "upload labelled data ", file)),
    el("details", {}, el("summary", {}, "columns"), el("div", { class: "grid" }, ...columns)),
    el("div", { class: "row" }, button), status, report);
  if (use.evaluations.length) renderReport(report, use.evaluations[0]);
}

function renderExport(job, use) {
  const body = $("#export-body");
  const parts = [];
  for (const offer of use.export.formats) {
    if (!offer.available) {
      parts.push(el("details", { "data-format": offer.format }, el("summary", {}, `${offer.format}: not offered for this run`), el("pre", {}, offer.reason)));
      continue;
    }
    const status = el("div", { class: "action-status", id: `export-status-${offer.format}` });
    const result = el("div", { id: `export-result-${offer.format}` });
    const int8 = offer.options.includes("int8") ? el("input", { type: "checkbox", id: `export-int8-${offer.format}` }) : null;
    const button = el("button", { type: "button", class: "primary", id: `export-${offer.format}`, onclick: () =>
      startAction(job, "export", { format: offer.format, quantize: int8 && int8.checked ? "int8" : null }, status, button, (action) => {
        const r = action.result || {};
        const lines = [r.path ? `written to ${r.path}` : "nothing written"];
        const v = r.verification;
        if (v) {
          lines.push(`verified with onnxruntime on ${v.rows} rows: max abs diff ${v.max_abs_diff.toExponential(2)} (tolerance ${v.tolerance})`);
          if (v.int8) lines.push(`int8: max abs diff ${v.int8.max_abs_diff.toExponential(2)} vs PyTorch`);
        }
        result.replaceChildren(el("pre", {}, lines.join("\n")));
      }) }, `Export ${offer.format}`);
    parts.push(el("div", { class: "row", "data-format": offer.format }, button, int8 ? el("label", {}, int8, " also int8") : null), status, result);
  }
  body.replaceChildren(...parts);
}

function renderPublish(job, use) {
  const body = $("#publish-body");
  const offer = use.publish;
  if (!offer.available) { body.replaceChildren(el("p", { class: "errors", id: "publish-unavailable" }, offer.reason)); return; }
  const repo = el("input", { id: "publish-repo", placeholder: "your-name/model-name", value: offer.repo_id || "" });
  const isPrivate = el("input", { type: "checkbox", id: "publish-private" });
  isPrivate.checked = offer.private;
  const revision = el("input", { id: "publish-revision", placeholder: "branch (default: main)", value: offer.revision || "" });
  const license = el("input", { id: "publish-license", placeholder: "license id, e.g. apache-2.0 (default: the base model's)", value: offer.license || "" });
  const status = el("div", { class: "action-status", id: "publish-status" });
  const result = el("div", { id: "publish-result" });
  const button = el("button", { type: "button", class: "primary", id: "publish-btn", onclick: () => {
    const payload = { repo_id: repo.value.trim(), private: isPrivate.checked, revision: revision.value.trim() || null, license: license.value.trim() || null };
    startAction(job, "publish", payload, status, button, (action) => {
      const r = action.result;
      if (!r) return;
      result.replaceChildren(el("p", {}, "published to ", el("a", { href: r.url, target: "_blank", rel: "noopener" }, r.url),
        ` (${r.private ? "private" : "public"}, branch ${r.revision}, ${r.files.length} files)`),
      ...r.notes.map((n) => el("p", { class: "help" }, n)), el("p", { class: "help" }, `left out: ${r.left_out.join(", ") || "nothing"}`));
    });
  } }, "Publish");
  body.replaceChildren(el("div", { class: "field" }, el("label", { for: "publish-repo" }, "repository"), repo),
    el("label", {}, isPrivate, " private (a private push never writes into an existing public repository)"),
    el("div", { class: "grid" }, revision, license), el("div", { class: "row" }, button), status, result);
}

function renderServe(serve) {
  $("#serve-body").replaceChildren(
    el("pre", { id: "serve-command" }, serve.command),
    el("p", { class: "help" }, `model name: ${serve.model}; endpoints: ${serve.endpoints.join(", ")}`),
    el("pre", { id: "serve-curl" }, serve.curl),
    el("pre", { id: "serve-python" }, serve.python));
}

// ------------------------------------------------------------------------------------------ wiring

document.addEventListener("DOMContentLoaded", async () => {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("#task").addEventListener("change", () => selectTask($("#task").value));
  $("#model-name").addEventListener("input", onFormChange);
  $("#data-source").addEventListener("change", onFormChange);
  $("#upload").addEventListener("change", (e) => uploadFiles([...e.target.files]));
  $("#preview-btn").addEventListener("click", loadPreview);
  $("#apply-yaml").addEventListener("click", applyYaml);
  $("#download-yaml").addEventListener("click", downloadYaml);
  $("#validate-btn").addEventListener("click", validate);
  $("#estimate-btn").addEventListener("click", estimate);
  $("#start-btn").addEventListener("click", start);
  $("#cancel-btn").addEventListener("click", cancelRun);
  $("#rerun-btn").addEventListener("click", rerun);
  setInterval(() => { if (!$("#view-runs").classList.contains("hidden")) refreshRuns(); }, 3000);
  await Promise.all([loadTasks(), loadModels()]);
  document.body.dataset.ready = "1";
});
