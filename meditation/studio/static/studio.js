// meditation studio: the page. Plain JavaScript, no build step, nothing from elsewhere.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
if (token) history.replaceState(null, "", location.pathname); // keep the token out of the address bar; the cookie carries on

const $ = (id) => document.getElementById(id);
const state = {
  options: null,
  values: {},        // only the settings the user set, by manifest key
  frontMatter: {},   // the script's own settings
  scenes: [],
  speakers: [],      // the script's declared speakers: {name, voice, line}
  job: null,         // the job the Hear panel follows
  result: null,      // the last finished render
  resultJob: null,
  errorLine: 0,
};

async function api(path, body, method) {
  const init = { method: method || (body === undefined ? "GET" : "POST"), headers: { "X-Studio-Token": token } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
  if (!response.ok) {
    const err = new Error(data.error || response.statusText);
    err.status = response.status;
    err.data = data;
    throw err;
  }
  return data;
}

function withToken(path) { return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token); }

// ---------------------------------------------------------------- Write

const editor = $("script");
const gutter = $("gutter");

function lineCount() { return editor.value.split("\n").length; }

// Lines wrap in the editor; a hidden mirror with the same width and font measures how tall each
// written line is, so its number in the gutter stays beside it.
const mirror = $("mirror");

function drawGutter() {
  const lines = editor.value.split("\n");
  mirror.style.width = editor.clientWidth + "px";
  const rows = document.createDocumentFragment();
  for (const text of lines) {
    const d = document.createElement("div");
    d.textContent = text || "\u200b";
    rows.appendChild(d);
  }
  mirror.replaceChildren(rows);
  const frag = document.createDocumentFragment();
  lines.forEach((_, i) => {
    const d = document.createElement("div");
    d.textContent = i + 1;
    d.dataset.line = i + 1;
    d.style.height = mirror.children[i].offsetHeight + "px";
    if (i + 1 === state.errorLine) d.classList.add("error");
    frag.appendChild(d);
  });
  const spacer = document.createElement("div");
  spacer.style.height = "200px"; // room to scroll as far as the editor does
  frag.appendChild(spacer);
  gutter.replaceChildren(frag);
  gutter.scrollTop = editor.scrollTop;
}

function cursorLine() { return editor.value.slice(0, editor.selectionStart).split("\n").length; }

function sceneAt(line) {
  let found = null;
  for (const s of state.scenes) if (s.line <= line) found = s;
  return found;
}

function showSceneHere() {
  const s = sceneAt(cursorLine());
  $("scene-here").textContent = s ? `scene: ${s.name}` : (state.scenes.length ? "" : "no scenes: preview plays the first minute");
  $("preview").textContent = s ? "Preview scene" : "Preview";
}

let checkTimer = null;
let checkSeq = 0;
function scheduleCheck() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(check, 300);
}

async function check() {
  const seq = ++checkSeq;
  let data;
  try {
    data = await api("/api/check", { text: editor.value, name: $("name").value });
  } catch (e) {
    if (seq !== checkSeq) return;
    showCheck(false, e.message, 0);
    return;
  }
  if (seq !== checkSeq) return; // a newer check is on its way
  if (data.ok) {
    state.scenes = data.scenes;
    state.speakers = data.speakers || [];
    state.frontMatter = data.front_matter;
    const n = data.scenes.length;
    showCheck(true, `✓ ${data.title}: ${n ? n + " scene" + (n === 1 ? "" : "s") : "no scenes"}`, 0);
  } else {
    showCheck(false, data.error.text, data.error.line, data.error.col);
  }
  showSceneHere();
  refreshControls();
}

function showCheck(ok, text, line, col) {
  const el = $("check");
  el.textContent = text;
  el.className = ok ? "good" : "bad";
  el.dataset.line = line || "";
  el.dataset.col = col || "";
  state.errorLine = ok ? 0 : line || 0;
  drawGutter();
}

function jumpTo(line, col) {
  const lines = editor.value.split("\n");
  let pos = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) pos += lines[i].length + 1;
  pos += Math.max(0, (col || 1) - 1);
  editor.focus();
  editor.setSelectionRange(pos, pos);
  const row = mirror.children[line - 1];
  if (row) editor.scrollTop = Math.max(0, row.offsetTop - 80);
}

// ---------------------------------------------------------------- Shape

function effective(key) {
  if (key in state.values) return state.values[key];
  if (key in state.frontMatter) return state.frontMatter[key];
  const c = state.options.controls.find((c) => c.key === key);
  return c ? c.default : null;
}

function parseValue(c, raw) {
  if (c.kind === "number") return Number(raw);
  if (c.kind === "integer") return /^[+-]?\d+$/.test(raw) ? parseInt(raw, 10) : raw;
  if (c.kind === "duration") return /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw; // seconds, or "10m"
  if (c.kind === "bool") return raw === "true";
  return raw;
}

// The controls come from the settings schema (GET /api/options): one per render setting.
function buildControls() {
  const box = $("controls");
  box.replaceChildren();
  for (const c of state.options.controls) {
    if (c.kind === "layers" || c.kind === "speakers") continue; // the Layers and Speakers boxes below
    const label = document.createElement("label");
    label.textContent = c.label + (c.unit && c.unit !== "×" ? ` (${c.unit})` : "");
    label.title = c.help;
    label.htmlFor = "c-" + c.key;
    const wrap = document.createElement("div");
    wrap.className = "control";
    let input;
    if (["voice", "soundscape", "choice", "bool", "file"].includes(c.kind)) {
      input = document.createElement("select");
      const choices = c.kind === "voice" ? state.options.voices
        : c.kind === "soundscape" ? soundscapeChoices()
        : c.kind === "file" ? state.options.inputs[c.key] || [] // files of the folder only
        : c.kind === "bool" ? ["true", "false"] : c.choices;
      input.appendChild(new Option("", ""));
      for (const v of choices) input.appendChild(new Option(c.kind === "bool" ? (v === "true" ? "on" : "off") : String(v), String(v)));
    } else {
      input = document.createElement("input");
      if (c.kind === "number" || c.kind === "integer") {
        input.type = "number";
        input.min = c.min;
        input.max = c.max;
        input.step = c.kind === "integer" ? "1" : "any";
      }
    }
    input.id = "c-" + c.key;
    input.dataset.key = c.key;
    input.title = c.help + (c.range ? ` (${c.range})` : "");
    input.addEventListener("change", () => {
      const raw = input.value.trim();
      if (raw === "") delete state.values[c.key];
      else state.values[c.key] = parseValue(c, raw);
      if (c.key === "soundscape") delete state.values.layers;
      refreshControls();
    });
    wrap.appendChild(input);
    const reset = document.createElement("button");
    reset.type = "button";
    reset.className = "reset";
    reset.textContent = "×";
    reset.title = "unset: use the script's value or the default";
    reset.addEventListener("click", () => { delete state.values[c.key]; refreshControls(); });
    box.append(label, wrap, reset);
  }
}

function refreshControls() {
  if (!state.options) return;
  for (const c of state.options.controls) {
    const input = $("c-" + c.key);
    if (!input) continue;
    const set = c.key in state.values;
    input.parentElement.classList.toggle("set", set);
    input.parentElement.nextElementSibling.classList.toggle("shown", set);
    // A background refresh (the as-you-type check) must not undo what the user is typing.
    if (document.activeElement !== input) input.value = set ? String(state.values[c.key]) : "";
    const fm = state.frontMatter[c.key];
    let shown;
    if (fm !== undefined) shown = `${fm} (script)`;
    else if (c.shown === null || c.shown === undefined) {
      const said = /\(default: ([^)]*)\)/.exec(c.help); // "title tag (default: the script's title)"
      shown = said ? said[1] : c.kind === "duration" ? "off (e.g. 10m)" : "";
    }
    else shown = `${c.shown} (default)`;
    if (c.kind === "bool" && fm === undefined) shown = `${c.default ? "on" : "off"} (default)`;
    if (c.kind === "file" && fm === undefined) shown = "none";
    if (input.tagName === "SELECT") input.options[0].textContent = shown || "(default)";
    else input.placeholder = shown;
  }
  // Pacing is a pause scale or a target duration, not both.
  const duration = "duration" in state.values || "duration" in state.frontMatter;
  const ps = $("c-pause_scale");
  if (ps) { ps.disabled = duration; if (duration) ps.placeholder = "fitted to the duration"; }
  drawSpeakers();
  drawLayers();
}

// One voice select per speaker the script declares; what is set goes out as values.speakers {name: voice}.
function drawSpeakers() {
  const box = $("speakers");
  if (!state.speakers.length) {
    delete state.values.speakers;
    delete box.dataset.sig;
    const note = document.createElement("p");
    note.className = "muted small";
    note.textContent = "The script names no speakers: its narrator is the voice above.";
    box.replaceChildren(note);
    return;
  }
  const chosen = typeof state.values.speakers === "object" ? state.values.speakers : {};
  const declared = new Set(state.speakers.map((s) => s.name));
  for (const name of Object.keys(chosen)) if (!declared.has(name)) delete chosen[name];
  // Redrawn only when the script's speakers change: a check as the user types keeps an open select.
  const sig = JSON.stringify(state.speakers);
  if (box.dataset.sig === sig) return;
  box.dataset.sig = sig;
  box.replaceChildren();
  for (const s of state.speakers) {
    const label = document.createElement("label");
    label.textContent = s.name;
    label.htmlFor = "speaker-" + s.name;
    const select = document.createElement("select");
    select.id = "speaker-" + s.name;
    select.dataset.speaker = s.name;
    select.appendChild(new Option(`${s.voice} (script)`, ""));
    for (const v of state.options.voices) select.appendChild(new Option(v, v));
    select.value = chosen[s.name] || "";
    select.addEventListener("change", () => {
      const speakers = typeof state.values.speakers === "object" ? state.values.speakers : {};
      if (select.value) speakers[s.name] = select.value;
      else delete speakers[s.name];
      if (Object.keys(speakers).length) state.values.speakers = speakers;
      else delete state.values.speakers;
    });
    const wrap = document.createElement("div");
    wrap.className = "control";
    wrap.appendChild(select);
    box.append(label, wrap);
  }
}

function soundscapeChoices() { return ["auto", ...state.options.presets.map((p) => p.name), "none"]; }

function fillSoundscapes() {
  const select = $("c-soundscape");
  if (!select) return;
  const have = new Set([...select.options].map((o) => o.value));
  for (const name of soundscapeChoices()) if (!have.has(name)) select.insertBefore(new Option(name, name), select.options[select.options.length - 1]);
}

function currentPreset() {
  const name = effective("soundscape");
  if (name === "none") return null;
  return state.options.presets.find((p) => p.name === (name === "auto" ? "default" : name)) || null;
}

// Each layer of the preset: on or off (the layers setting) and its level; a changed level is saved
// as a preset file in the folder, which then becomes the soundscape setting.
function drawLayers() {
  const box = $("layers");
  const preset = currentPreset();
  const drawn = JSON.stringify([preset, state.values.layers || null]);
  if (box.dataset.drawn === drawn) return; // unchanged: keep the inputs (and the one being typed in)
  box.dataset.drawn = drawn;
  box.replaceChildren();
  $("preset-name").textContent = preset ? `of ${preset.name}` : "(narration alone)";
  if (!preset) return;
  const chosen = state.values.layers ? String(state.values.layers).split(",") : null;
  for (const [name, level] of Object.entries(preset.layers)) {
    const label = document.createElement("label");
    const on = document.createElement("input");
    on.type = "checkbox";
    on.id = "layer-" + name;
    on.checked = !chosen || chosen.includes(name);
    on.addEventListener("change", () => {
      const all = Object.keys(preset.layers);
      const keep = all.filter((n) => $("layer-" + n).checked);
      if (keep.length === all.length) delete state.values.layers;
      else state.values.layers = keep.join(",");
      refreshControls();
    });
    label.append(on, " " + name);
    const levelBox = document.createElement("span");
    const input = document.createElement("input");
    input.type = "number";
    input.step = "0.5";
    input.min = "-60";
    input.max = "12";
    input.value = level;
    input.id = "level-" + name;
    input.className = "level";
    input.title = "level in dB relative to the narration; each scene adds its own offset (see the timeline)";
    input.addEventListener("change", () => saveLevels(preset));
    levelBox.append(input, " dB");
    box.append(label, levelBox);
  }
}

async function saveLevels(preset) {
  const levels = {};
  for (const name of Object.keys(preset.layers)) levels[name] = Number($("level-" + name).value);
  const stem = $("name").value.replace(/\.[^.\/]*$/, "");
  const base = preset.name.replace(/\.toml$/i, "");
  const path = preset.name.toLowerCase().endsWith(".toml") ? preset.name : `${stem}-${base}.toml`;
  try {
    const r = await api("/api/preset", { path, base: preset.name, levels });
    state.options.presets = state.options.presets.filter((p) => p.name !== r.path).concat([r.preset]);
    fillSoundscapes();
    state.values.soundscape = r.path;
    keepStatus(`levels saved as the preset ${r.path}`);
  } catch (e) {
    keepStatus(e.message, true);
  }
  refreshControls();
}

// ---------------------------------------------------------------- Hear

function jobBody(kind, format) {
  return { kind, text: editor.value, name: $("name").value, values: state.values, format: format || $("format").value, line: cursorLine() };
}

async function startJob(kind, format) {
  let job;
  try {
    job = await api("/api/jobs", jobBody(kind, format));
  } catch (e) {
    setJobText(e.message, true);
    if (e.data && e.data.script_error) {
      showCheck(false, e.data.script_error.text, e.data.script_error.line, e.data.script_error.col);
    }
    return null;
  }
  follow(job);
  return job;
}

function setJobText(text, bad) {
  const el = $("job");
  el.textContent = text;
  el.classList.toggle("bad", !!bad);
}

function setBar(percent) {
  $("bar").value = percent;
  $("percent").textContent = `${Math.round(percent)} %`;
}

function follow(job) {
  state.job = job;
  setBar(0);
  $("cancel").disabled = false;
  showJob(job);
  const source = new EventSource(withToken(`/api/jobs/${job.id}/events`));
  source.onmessage = (event) => {
    const snap = JSON.parse(event.data);
    if (!state.job || state.job.id !== snap.id) { source.close(); return; }
    state.job = snap;
    showJob(snap);
    if (["done", "failed", "cancelled"].includes(snap.state)) {
      source.close();
      $("cancel").disabled = true;
      if (snap.state === "done") finished(snap);
    }
  };
  source.onerror = () => {
    if (state.job && ["done", "failed", "cancelled"].includes(state.job.state)) source.close();
  };
}

function showJob(job) {
  const what = job.kind === "preview" ? `Preview of ${job.label}` : `Render of ${job.label}`;
  if (job.state === "queued") setJobText(`${what}: waiting (number ${job.position} in the queue)`);
  else if (job.state === "running") setJobText(`${what}: ${job.stage || "starting"}…`);
  else if (job.state === "failed") setJobText(`${what} failed: ${job.error}`, true);
  else if (job.state === "cancelling") setJobText(`${what}: cancelling…`);
  else if (job.state === "cancelled") setJobText(`${what} cancelled; nothing was kept`);
  else if (job.state === "done") setJobText(`${what}: ${job.result.summary.replace(/^[^:]*: /, "")}`);
  setBar(job.state === "cancelled" ? 0 : job.percent);
}

function finished(job) {
  const player = $("player");
  for (const t of player.querySelectorAll("track")) t.remove();
  $("caption").textContent = "";
  const track = document.createElement("track");
  track.kind = "captions";
  track.label = "Captions";
  track.srclang = "en";
  track.src = withToken(`/api/jobs/${job.id}/captions`);
  track.default = true;
  player.appendChild(track);
  // An audio element shows no captions itself: the current cue goes in the line under it.
  track.track.mode = "hidden";
  track.track.oncuechange = () => {
    const cues = track.track.activeCues;
    $("caption").textContent = cues && cues.length ? [...cues].map((c) => c.text).join(" ") : "";
  };
  player.src = withToken(`/api/jobs/${job.id}/audio`);
  player.dataset.job = job.id;
  player.dataset.expected = job.result.duration_s;
  player.play().catch(() => {});
  state.result = job.result;
  state.resultJob = job;
  drawTimeline(job.result);
  if (job.kind === "render") offerDownloads(job);
}

function offerDownloads(job) {
  const box = $("downloads");
  box.replaceChildren();
  const fmt = job.file.split(".").pop();
  const a = document.createElement("a");
  a.href = withToken(`/api/jobs/${job.id}/audio?download=1`);
  a.download = job.file;
  a.textContent = `Download ${fmt.toUpperCase()}`;
  a.id = "download";
  const t = document.createElement("a");
  t.href = withToken(`/api/jobs/${job.id}/timings`);
  t.download = job.file.replace(/\.[^.]+$/, ".json");
  t.textContent = "Timings (JSON)";
  const c = document.createElement("a");
  c.href = withToken(`/api/jobs/${job.id}/captions?download=1`);
  c.download = job.file.replace(/\.[^.]+$/, ".vtt");
  c.textContent = "Captions (WebVTT)";
  c.id = "download-captions";
  box.append(a, c, t, document.createTextNode(" render as: "));
  for (const other of state.options.formats) {
    if (other === fmt) continue;
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = other.toUpperCase();
    b.title = `render the same settings as ${other.toUpperCase()}`;
    b.addEventListener("click", () => startJob("render", other));
    box.appendChild(b);
  }
}

// The timeline: scenes as bands, spoken segments, then one row per layer with its level in each scene.
const SVG = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const SCENE_COLOURS = ["#d9e4ef", "#efe3d0", "#dfead9", "#eadcea", "#e9e6cf", "#d6e9e6"];

function drawTimeline(result) {
  const svg = $("timeline");
  const tl = result.timeline;
  const layers = [];
  for (const s of tl.scenes) for (const l of s.layers) if (!layers.includes(l)) layers.push(l);
  const W = 1000, left = 90, top = 4, sceneH = 26, segH = 14, rowH = 14, gap = 4;
  const H = top + sceneH + gap + segH + gap + layers.length * (rowH + 2) + 6;
  const x = (t) => left + (W - left - 6) * (t / tl.duration);
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.style.aspectRatio = `${W} / ${H}`;
  svg.classList.add("shown");
  svg.appendChild(el("text", { x: 4, y: top + 17 }, "scenes"));
  tl.scenes.forEach((s, i) => {
    const g = el("g", { class: "scene" });
    g.appendChild(el("rect", { x: x(s.start), y: top, width: Math.max(1, x(s.end) - x(s.start)), height: sceneH, fill: SCENE_COLOURS[i % SCENE_COLOURS.length] }));
    g.appendChild(el("title", {}, `${s.name || "(no scene)"}: ${fmtTime(s.start)}–${fmtTime(s.end)}`));
    const label = el("text", { x: x(s.start) + 4, y: top + 17 }, s.name || "");
    g.appendChild(label);
    svg.appendChild(g);
  });
  const y2 = top + sceneH + gap;
  svg.appendChild(el("text", { x: 4, y: y2 + 11 }, "speech"));
  for (const g of tl.segments) {
    const r = el("rect", { class: "segment", x: x(g.start), y: y2, width: Math.max(1, x(g.end) - x(g.start)), height: segH, fill: "#4d6a8a", rx: 2 });
    r.appendChild(el("title", {}, `${fmtTime(g.start)} ${g.text}`));
    svg.appendChild(r);
  }
  let y3 = y2 + segH + gap;
  for (const name of layers) {
    svg.appendChild(el("text", { x: 4, y: y3 + 11 }, name));
    tl.scenes.forEach((s, i) => {
      if (!s.layers.includes(name)) return;
      const level = (result.levels[i] || {})[name];
      // Louder layers are darker: −40 dB (relative to the voice) faint, 0 dB full.
      const opacity = level === undefined ? 0.5 : Math.min(1, Math.max(0.12, (level + 40) / 40));
      const r = el("rect", { class: "layer", x: x(s.start), y: y3, width: Math.max(1, x(s.end) - x(s.start)), height: rowH, fill: "#a5793a", "fill-opacity": opacity.toFixed(2) });
      r.appendChild(el("title", {}, `${name} in ${s.name || "the track"}: ${level === undefined ? "cue" : level + " dB"}`));
      svg.appendChild(r);
    });
    y3 += rowH + 2;
  }
  svg.appendChild(el("line", { class: "cursor", id: "cursor", x1: left, x2: left, y1: 0, y2: H }));
  svg.dataset.duration = tl.duration;
  svg.dataset.left = left;
  $("legend").textContent = `${fmtTime(tl.duration)} · ${tl.scenes.length} scene(s) · ${tl.segments.length} spoken segments · layer shading: level relative to the voice`;
  moveCursor();
}

function moveCursor() {
  const svg = $("timeline");
  const line = $("cursor");
  if (!line || !svg.dataset.duration) return;
  const d = parseFloat(svg.dataset.duration);
  const left = parseFloat(svg.dataset.left);
  const t = Math.min(d, $("player").currentTime || 0);
  const xx = left + (1000 - left - 6) * (t / d);
  line.setAttribute("x1", xx);
  line.setAttribute("x2", xx);
}

function fmtTime(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

function animate() {
  moveCursor();
  if (!$("player").paused) requestAnimationFrame(animate);
}

// ---------------------------------------------------------------- Keep

function keepStatus(text, bad) {
  const el2 = $("keep-status");
  el2.textContent = text;
  el2.classList.toggle("bad", !!bad);
}

async function saveWithConfirm(path, body) {
  try {
    return await api(path, body);
  } catch (e) {
    if (e.status === 409 && !body.overwrite && confirm(`${body.path} exists. Replace it?`)) {
      return api(path, { ...body, overwrite: true });
    }
    throw e;
  }
}

async function refreshFiles() {
  let data;
  try { data = await api("/api/files"); } catch (e) { return; }
  const select = $("open");
  select.replaceChildren(new Option("…", ""));
  for (const f of data.files) select.appendChild(new Option(`${f.path}${f.kind === "settings" ? " (settings)" : ""}`, f.path));
}

async function openFile(path) {
  try {
    const data = await api("/api/file?path=" + encodeURIComponent(path));
    if (data.text !== undefined) {
      if (editor.value !== state.savedText && !confirm("The script has unsaved changes. Open another and lose them?")) return;
      editor.value = data.text;
      state.savedText = data.text;
      $("name").value = data.path;
      $("settings-path").value = data.path.replace(/\.[^.]+$/, ".toml");
      drawGutter();
      check();
      keepStatus(`opened ${data.path}`);
    } else {
      const s = data.settings;
      state.values = {};
      for (const [k, v] of Object.entries(s.values)) state.values[k] = Array.isArray(v) ? v.join(",") : v;
      if (s.format && state.options.formats.includes(s.format)) $("format").value = s.format;
      refreshControls();
      keepStatus(`settings from ${data.path}${s.script ? " (for " + s.script + ")" : ""}`);
    }
  } catch (e) {
    keepStatus(e.message, true);
  }
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    state.options = await api("/api/options");
  } catch (e) {
    document.body.textContent = `meditation studio: ${e.message}`;
    return;
  }
  $("folder").textContent = state.options.folder;
  for (const f of state.options.formats) $("format").appendChild(new Option(f.toUpperCase(), f));
  buildControls();
  editor.value = state.options.dream;
  state.savedText = editor.value; // the dream ships with the package: nothing to lose yet
  editor.setSelectionRange(0, 0);
  drawGutter();
  refreshControls();
  check();
  refreshFiles();

  editor.addEventListener("input", () => { drawGutter(); scheduleCheck(); });
  editor.addEventListener("scroll", () => { gutter.scrollTop = editor.scrollTop; });
  new ResizeObserver(() => drawGutter()).observe(editor);
  for (const ev of ["keyup", "click", "select"]) editor.addEventListener(ev, showSceneHere);
  $("name").addEventListener("change", () => {
    scheduleCheck();
    $("settings-path").value = $("name").value.replace(/\.[^.\/]*$/, "") + ".toml"; // settings beside their script
  });
  $("check").addEventListener("click", () => { const l = parseInt($("check").dataset.line, 10); if (l) jumpTo(l, parseInt($("check").dataset.col, 10)); });
  $("preview").addEventListener("click", () => startJob("preview"));
  $("render").addEventListener("click", () => startJob("render"));
  $("cancel").addEventListener("click", async () => { if (state.job) { try { await api(`/api/jobs/${state.job.id}/cancel`, {}); } catch (e) { setJobText(e.message, true); } } });
  const player = $("player");
  player.addEventListener("error", () => {
    if (player.src) setJobText(`This browser cannot play ${(state.resultJob && state.resultJob.file) || "the file"}; download it instead.`, true);
  });
  player.addEventListener("play", animate);
  player.addEventListener("timeupdate", moveCursor);
  player.addEventListener("seeked", moveCursor);
  $("timeline").addEventListener("click", (e) => {
    const svg = $("timeline");
    if (!svg.dataset.duration) return;
    const box = svg.getBoundingClientRect();
    const left = parseFloat(svg.dataset.left) / 1000 * box.width;
    const frac = (e.clientX - box.left - left) / (box.width * (1000 - parseFloat(svg.dataset.left) - 6) / 1000);
    player.currentTime = Math.max(0, Math.min(1, frac)) * parseFloat(svg.dataset.duration);
  });

  const save = async () => {
    const text = editor.value;
    try {
      const r = await saveWithConfirm("/api/script", { path: $("name").value, text });
      state.savedText = text;
      keepStatus(`saved ${r.path}`);
      refreshFiles();
    } catch (e) { keepStatus(e.message, true); }
  };
  $("save").addEventListener("click", save);
  // Writers' keys: Ctrl+S saves, Ctrl+Enter previews the scene under the cursor.
  document.addEventListener("keydown", (e) => {
    if (!(e.ctrlKey || e.metaKey)) return;
    if (e.key === "s") { e.preventDefault(); save(); }
    else if (e.key === "Enter") { e.preventDefault(); startJob("preview"); }
  });
  window.addEventListener("beforeunload", (e) => { if (editor.value !== state.savedText) e.preventDefault(); });
  $("open").addEventListener("change", () => { const p = $("open").value; if (p) openFile(p); $("open").value = ""; });
  $("save-settings").addEventListener("click", async () => {
    try {
      const r = await saveWithConfirm("/api/settings", { path: $("settings-path").value, values: state.values, script: $("name").value, format: $("format").value });
      keepStatus(`saved ${r.path} (render it with: meditation batch ${r.path})`);
      refreshFiles();
    } catch (e) { keepStatus(e.message, true); }
  });
  $("add-manifest").addEventListener("click", async () => {
    try {
      const r = await api("/api/manifest", { path: $("manifest-path").value, values: state.values, script: $("name").value, name: $("variant-name").value, format: $("format").value });
      keepStatus(`added to ${r.path}: ${r.variants} variant(s) in all`);
      refreshFiles();
    } catch (e) { keepStatus(e.message, true); }
  });
  $("copy-command").addEventListener("click", async () => {
    try {
      const r = await api("/api/command", { values: state.values, name: $("name").value, text: editor.value, format: $("format").value });
      $("command").textContent = r.command;
      const where = `run it in ${r.folder}`;
      try { await navigator.clipboard.writeText(r.command); keepStatus(`command copied: ${where}`); } catch (e) { keepStatus(`select the command above to copy it: ${where}`); }
    } catch (e) { $("command").textContent = ""; keepStatus(e.message, true); }
  });
}

start();
