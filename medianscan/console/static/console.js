// medianscan console: state arrives as server-sent events; live view is an MJPEG stream; every button posts to
// /api/actions/<action> and shows the daemon's answer as it is (an ignored press says so), as does the footswitch's.
"use strict";

const $ = (id) => document.getElementById(id);
const live = $("live");
let state = null;
let liveOn = false;
let loupeAt = null;

function percent(x, digits = 1) { return (100 * x).toFixed(digits) + " %"; }
function megabytes(n) { return n == null ? "?" : n > 2e9 ? (n / 1e9).toFixed(1) + " GB" : (n / 1e6).toFixed(0) + " MB"; }
function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// --- the operator's requests and the daemon's answers ----------------------------------------------------
// One message box: the last answer, to this page's buttons or to the footswitch alike, coloured by what happened
// (done, queued, ignored, refused); a pause is done, not an error.
let toldNumber = 0;
let ownAnswer = null;  // the text this page last showed as its own press's answer
function showAnswer(text, outcome, source) {
  const answer = $("answer");
  answer.className = outcome || "";
  answer.replaceChildren(text);
  if (source) answer.append(" ", el("span", { class: "from" }, `(${source})`));
}
// `how`: what on this page asked ("Capture button", "space bar"), named with its answer as a pedal's press is
async function act(action, how, payload = {}) {
  showAnswer(action + "…", "", how);
  let body;
  try {
    const response = await fetch("/api/actions/" + action, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    body = response.headers.get("content-type")?.includes("json") ? await response.json() : { ok: false, text: await response.text() };
  } catch (err) {
    body = { ok: false, outcome: "refused", text: action + ": the daemon did not answer (" + err + ")" };
  }
  ownAnswer = body.text;
  showAnswer(body.text, body.outcome || (body.ok ? "done" : "refused"), how);
}
// the daemon's last answer to anyone: a pedal's, the socket's, another console's (this page's own is said above)
function showTold(told) {
  if (!told || told.number === toldNumber) return;
  toldNumber = told.number;
  if (told.source === "console" && told.answer.text === ownAnswer) return;
  showAnswer(told.answer.text, told.answer.outcome, told.source === "console" ? "another console" : told.source);
}
$("capture").addEventListener("click", () => act("capture", "Capture button"));
$("retake").addEventListener("click", () => act("retake", "Retake button"));
$("new-roll").addEventListener("click", () => $("roll-dialog").showModal());
$("roll-cancel").addEventListener("click", () => $("roll-dialog").close());
$("roll-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const film = {};
  for (const [key, value] of new FormData(e.target).entries()) {
    if (value.trim()) film[key] = key === "iso" ? parseInt(value, 10) : value.trim();
  }
  $("roll-dialog").close();
  act("new-roll", "New roll button", { film });
});
$("flat").addEventListener("click", () => act("flat", "Flat field button"));
$("base").addEventListener("click", () => act("base", "Film base button"));
$("scan-roll").addEventListener("click", () => act("scan-roll", "Scan roll button"));
$("stop-roll").addEventListener("click", () => act("stop-roll", "Stop button"));
$("scan-tiles").addEventListener("click", () => act("scan-tiles", "Scan tiles button", { strip: $("tiles-strip").checked }));
$("stop-tiles").addEventListener("click", () => act("stop-tiles", "Stop button"));
$("pause").addEventListener("click", () => act(state && state.paused ? "resume" : "pause", (state && state.paused ? "Resume" : "Pause") + " button"));
$("focus-reset").addEventListener("click", () => fetch("/api/focus/reset", { method: "POST" }));
document.addEventListener("keydown", (e) => {
  if ($("roll-dialog").open || e.target instanceof HTMLInputElement || e.target instanceof HTMLButtonElement) return;
  if (e.code === "Space" && !e.repeat) { e.preventDefault(); act("capture", "space bar"); }
  if (e.key === "Escape") { loupeAt = null; $("loupe-box").hidden = true; }
});

// --- live view, clipping marks and the magnifier -------------------------------------------------------------
function setLive(wanted, why) {
  $("live-note").hidden = wanted; $("live-note").textContent = why || "";
  live.hidden = !wanted;  // no broken-image placeholder while there is no picture
  if (wanted === liveOn) return;
  liveOn = wanted;
  if (wanted) live.src = "/api/live.mjpg?t=" + Date.now(); else live.removeAttribute("src");
}
live.addEventListener("error", () => { liveOn = false; });
// where the picture is drawn inside the element (object-fit: contain leaves bars beside or above it)
function drawnRect() {
  const box = live.getBoundingClientRect();
  if (!live.naturalWidth) return box;
  const scale = Math.min(box.width / live.naturalWidth, box.height / live.naturalHeight);
  const w = live.naturalWidth * scale, h = live.naturalHeight * scale;
  return { left: box.left + (box.width - w) / 2, top: box.top + (box.height - h) / 2, width: w, height: h };
}
function zoom(body) {
  return fetch("/api/zoom", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}
live.addEventListener("click", (e) => {
  const box = drawnRect();
  const at = { x: (e.clientX - box.left) / box.width, y: (e.clientY - box.top) / box.height };
  if (at.x < 0 || at.x > 1 || at.y < 0 || at.y > 1) return;  // a click on the bars beside the picture
  if ($("body-zoom").checked) { zoom(at); return; }  // the body magnifies: the live view itself shows it
  loupeAt = at;
  $("loupe-box").hidden = false; refreshLoupe();
});
$("body-zoom").addEventListener("change", (e) => {
  if (e.target.checked) { loupeAt = null; $("loupe-box").hidden = true; zoom({ x: 0.5, y: 0.5 }); }
  else zoom({ off: true });
});
function refreshLoupe() {
  if (!loupeAt) return;
  $("loupe").src = `/api/magnify.jpg?x=${loupeAt.x.toFixed(4)}&y=${loupeAt.y.toFixed(4)}&t=${Date.now()}`;
}
setInterval(refreshLoupe, 400);

const sampler = document.createElement("canvas");
function markClipping() {
  const overlay = $("clip-overlay");
  const ctx = overlay.getContext("2d");
  if (!liveOn || !$("clip-toggle").checked || !live.naturalWidth) { ctx.clearRect(0, 0, overlay.width, overlay.height); return; }
  const w = 320, h = Math.round(320 * live.naturalHeight / live.naturalWidth);
  sampler.width = overlay.width = w; sampler.height = overlay.height = h;
  const drawn = drawnRect(), frame = $("live-box").getBoundingClientRect();
  Object.assign(overlay.style, { left: `${drawn.left - frame.left - 1}px`, top: `${drawn.top - frame.top - 1}px`,
    width: `${drawn.width}px`, height: `${drawn.height}px` });
  const s = sampler.getContext("2d", { willReadFrequently: true });
  s.drawImage(live, 0, 0, w, h);
  const pixels = s.getImageData(0, 0, w, h);
  const marks = ctx.createImageData(w, h);
  for (let i = 0; i < pixels.data.length; i += 4) {
    if (pixels.data[i] >= 250 || pixels.data[i + 1] >= 250 || pixels.data[i + 2] >= 250) {
      marks.data[i] = 255; marks.data[i + 3] = 200;
    }
  }
  ctx.putImageData(marks, 0, 0);
}
setInterval(markClipping, 500);

// --- the state ---------------------------------------------------------------------------------------------
function banner(text, level) { $("banners").append(el("div", { class: level }, text)); }
const CAMERA_UP = ["ready", "capturing", "settings refused"];  // connected: live view runs
const CAMERA_BADGE = { ready: "ok", capturing: "ok", connecting: "", "settings refused": "warn", "not connected": "bad" };

function showState(s) {
  state = s;
  const cam = s.camera;
  $("camera").textContent = (cam.model || "camera") + ": " + cam.state + (cam.battery ? ` · battery ${cam.battery}` : "");
  $("camera").className = "badge " + (CAMERA_BADGE[cam.state] ?? "");
  $("paused").hidden = !s.paused;
  $("queue").textContent = `queue ${s.queue.waiting} waiting, ${s.queue.blending} blending` + (s.queue.stitching ? `, ${s.queue.stitching} stitching` : "") + (s.queue.full ? " (full)" : "") + (s.busy ? " · capturing" + (s.group ? " " + s.group : "") : "");
  $("disk").textContent = "disk free " + megabytes(s.disk_free_bytes);
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  $("pause").classList.toggle("warn", s.paused);
  showRoll(s);
  showRollRun(s);
  showTileRun(s);
  // one banner for each thing that is wrong now, said once
  $("banners").replaceChildren();
  const said = [s.told?.answer.text];
  if (cam.state === "settings refused") banner("Setting refused: " + cam.error, "warn");
  else if (cam.state === "not connected") banner("Camera not connected" + (cam.error ? ": " + cam.error : ""), "");
  if (cam.error) said.push(cam.error);
  if (s.live.unavailable && CAMERA_UP.includes(cam.state)) banner(s.live.unavailable, "warn");
  if (s.message && !said.some((text) => text && (text.includes(s.message) || s.message.includes(text)))) banner(s.message, "");
  showTold(s.told);
  if (!CAMERA_UP.includes(cam.state)) setLive(false, cam.state === "connecting" ? "connecting to the camera…" : "no camera");
  else if (s.live.unavailable) setLive(false, s.live.unavailable);
  else setLive(true);
  $("fps").textContent = s.live.running ? `${s.live.fps} fps` : (s.live.paused || "");
  const zoomNotes = { on: "magnified by the body: click to move it", none: "no body magnifier here: click the view for a 1:1 crop" };
  $("zoom-note").textContent = zoomNotes[s.live.body_zoom] || "";
  if (s.live.body_zoom === "none") $("body-zoom").checked = false;
  showFrames(s.negatives);
}

// the roll run (scan-roll): its button when a rig is configured, Stop and the progress while it runs, and the
// found frame's outline drawn over the live view
function showRollRun(s) {
  const run = s.roll_run;
  $("scan-roll").hidden = !s.rig || s.rig_axes === "xy" || !!run;
  $("stop-roll").hidden = !run;
  $("roll-run-box").hidden = !run;
  $("roll-run").textContent = s.roll_run_said ? "roll run: " + s.roll_run_said : "";
  // its last frames, as scan-roll prints them: found, centred, shot, blended; a blank skipped
  $("roll-frames").replaceChildren(...s.roll_frames.map((f) => el("li", { title: f.text }, f.text)));
  outline = run && run.outline;
  placeOutline();
}
// the tile run (scan-tiles): its button on an XY stage, Stop while it runs, and a map of the plan (columns x
// rows, each tile waiting, under way, shot or failed), kept after the run until the next
function showTileRun(s) {
  const run = s.tile_run, going = !!(run && run.under_way);
  $("scan-tiles").hidden = s.rig_axes !== "xy" || going || !!s.roll_run;
  $("tiles-strip-box").hidden = $("scan-tiles").hidden;
  $("stop-tiles").hidden = !going;
  $("tile-run-box").hidden = !run;
  if (!run) return;
  $("tile-run").textContent = (going ? "tile run " : "last tile run ") + s.tile_run_said;
  const map = $("tile-map");
  map.style.gridTemplateColumns = `repeat(${run.columns}, 1fr)`;
  const cells = [];
  for (let row = 0; row < run.rows; row++) {
    for (let column = 0; column < run.columns; column++) {
      const tile = run.tiles.find((t) => t.row === row && t.column === column);
      const state = tile ? tile.state : "waiting";
      const doing = !["waiting", "shot", "kept", "failed"].includes(state);
      const text = tile ? `${tile.name}: ${state}${tile.settled ? ", " + tile.settled : ""}` : "";
      const cell = el("span", { title: text, "data-state": state, "data-testid": `tile-${row}-${column}` });
      if (doing) cell.classList.add("doing");
      cells.push(cell);
    }
  }
  map.replaceChildren(...cells);
}
let outline = null;
function placeOutline() {
  const box = $("frame-outline");
  box.hidden = !outline || !liveOn || !live.naturalWidth;
  if (box.hidden) return;
  const drawn = drawnRect(), frame = $("live-box").getBoundingClientRect();
  const [left, top, right, bottom] = outline;
  Object.assign(box.style, {
    left: `${drawn.left - frame.left + left * drawn.width}px`, top: `${drawn.top - frame.top + top * drawn.height}px`,
    width: `${(right - left) * drawn.width}px`, height: `${(bottom - top) * drawn.height}px` });
}
window.addEventListener("resize", placeOutline);

function showRoll(s) {
  $("roll-name").textContent = s.roll || "none yet: the first capture starts one";
  $("roll-folder").textContent = s.roll_folder || "–";
  $("roll-flat").textContent = s.flat || (s.roll ? "none (Flat field shoots one)" : "–");
  $("next").textContent = s.next_negative;
}

function describe(n) {
  const bits = [];
  if (n.noise_ratio) bits.push(`${(1 / n.noise_ratio).toFixed(1)}x cleaner than one raw`);
  if (n.frames_used != null) bits.push(`${n.frames_used} of ${n.frames_expected} frames used`);
  if (n.tiles != null) bits.push(`stitched from ${n.tiles} tiles`);
  if (n.snr != null) bits.push(snrText(n) + " in the densest tenth");
  return bits;
}
// the raw's clipped share, only where there is some: "clipped R 0.31 % G 12 %"
function clipping(n) {
  const clip = Object.entries(n.clipped || {}).filter(([, v]) => v >= 5e-5);
  const share = (v) => percent(v, v < 0.01 ? 2 : v < 0.1 ? 1 : 0);
  return clip.length ? "clipped " + clip.map(([c, v]) => `${c} ${share(v)}`).join(" ") : "";
}
// "SNR 152 of 100": what the negative's densest tenth reached, against frames: auto's target
function snrText(n) {
  return `SNR ${n.snr.toFixed(0)}` + (n.snr_target != null ? ` of ${n.snr_target.toFixed(0)}` : "");
}
function line(cls, text, title = text) { return el("div", { class: cls, title }, text); }

function showFrames(negatives) {
  const list = $("frames");
  const seen = new Set();
  for (const n of negatives) {
    seen.add(n.name);
    const key = JSON.stringify(n);
    let item = list.querySelector(`li[data-name="${CSS.escape(n.name)}"]`);
    if (item && item.dataset.key === key) continue;
    const fresh = el("li", { "data-name": n.name, "data-state": n.state });
    fresh.dataset.key = key;
    fresh.append(el("span", { class: "state" }, n.state), el("div", { class: "name" }, n.name));
    if (n.positive) fresh.append(el("img", { src: n.positive, alt: `${n.name} as a positive`, loading: "lazy" }));
    if (n.noise_ratio) fresh.append(line("figures", `${(1 / n.noise_ratio).toFixed(1)}x cleaner`, `noise ${n.noise_ratio.toFixed(2)}x a single frame's`));
    if (n.frames_used != null) fresh.append(line("figures", `${n.frames_used} of ${n.frames_expected} frames used`));
    if (n.tiles != null) fresh.append(line("figures", `${n.tiles} tiles` + (n.state === "stitched" ? " stitched" : ""), "a negative shot in tiles, stitched on the raw into one DNG"));
    if (n.snr != null) fresh.append(line("figures", snrText(n), "signal-to-noise ratio in the negative's densest tenth (the positive's highlights)"));
    if (n.snr_short) fresh.append(line("why", n.snr_short));
    if (clipping(n)) fresh.append(line("clipped", clipping(n), "in the raws, " + clipping(n)));
    for (const [file, why] of n.rejected) fresh.append(line("why", `rejected ${file}: ${why}`));
    if (n.problem) fresh.append(line("why", n.problem));
    if (item) item.replaceWith(fresh); else list.append(fresh);
    fresh.scrollIntoView({ inline: "end", block: "nearest" });
  }
  for (const item of [...list.children]) if (!seen.has(item.dataset.name)) item.remove();
  const blended = negatives.filter((n) => n.positive);
  const last = blended[blended.length - 1];
  if (last && $("last-blend").dataset.name !== last.name) {
    $("last-blend").dataset.name = last.name;
    $("last-blend").src = last.positive;
    $("last-blend").hidden = false;
    $("last-caption").textContent = [last.name, ...describe(last), clipping(last)].filter(Boolean).join(" · ");
  } else if (!last) {
    delete $("last-blend").dataset.name;
    $("last-blend").hidden = true;
    $("last-caption").textContent = "no negative blended in this roll yet";
  }
}

function showFocus(f) {
  $("focus-bar").style.width = Math.min(100, 100 * f.of_peak).toFixed(1) + "%";
  $("focus-figure").textContent = `${(100 * f.of_peak).toFixed(0)} % of peak`;
  $("clip-figure").textContent = percent(f.clipped);
}

function connect() {
  const events = new EventSource("/api/events");
  // the page's own link to the daemon: said only while it is down (the camera's state is the camera badge)
  events.addEventListener("open", () => { $("connection").hidden = true; });
  events.addEventListener("state", (e) => showState(JSON.parse(e.data)));
  events.addEventListener("focus", (e) => showFocus(JSON.parse(e.data)));
  events.addEventListener("error", () => {
    $("connection").hidden = false; $("connection").textContent = "daemon not reachable: retrying"; $("connection").className = "badge bad";
  });
}
connect();
