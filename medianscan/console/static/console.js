// medianscan console: state arrives as server-sent events; live view is an MJPEG stream; every button posts to
// /api/actions/<action> and shows the daemon's answer as it is (an ignored press says so).
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

// --- the operator's requests ------------------------------------------------------------------------------
async function act(action, payload = {}) {
  const answer = $("answer");
  answer.className = ""; answer.textContent = action + "…";
  try {
    const response = await fetch("/api/actions/" + action, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : { ok: false, text: await response.text() };
    answer.textContent = body.text;
    answer.className = body.ok ? "ok" : (body.outcome === "ignored" ? "ignored" : "bad");
  } catch (err) {
    answer.textContent = action + ": the daemon did not answer (" + err + ")"; answer.className = "bad";
  }
}
$("capture").addEventListener("click", () => act("capture"));
$("retake").addEventListener("click", () => act("retake"));
$("new-roll").addEventListener("click", () => $("roll-dialog").showModal());
$("roll-cancel").addEventListener("click", () => $("roll-dialog").close());
$("roll-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const film = {};
  for (const [key, value] of new FormData(e.target).entries()) {
    if (value.trim()) film[key] = key === "iso" ? parseInt(value, 10) : value.trim();
  }
  $("roll-dialog").close();
  act("new-roll", { film });
});
$("flat").addEventListener("click", () => act("flat"));
$("pause").addEventListener("click", () => act(state && state.paused ? "resume" : "pause"));
$("focus-reset").addEventListener("click", () => fetch("/api/focus/reset", { method: "POST" }));
document.addEventListener("keydown", (e) => {
  if ($("roll-dialog").open || e.target instanceof HTMLInputElement || e.target instanceof HTMLButtonElement) return;
  if (e.code === "Space" && !e.repeat) { e.preventDefault(); act("capture"); }
  if (e.key === "Escape") { loupeAt = null; $("loupe-box").hidden = true; }
});

// --- live view, clipping marks and the magnifier -------------------------------------------------------------
function setLive(wanted, why) {
  $("live-note").hidden = wanted; $("live-note").textContent = why || "";
  if (wanted === liveOn) return;
  liveOn = wanted;
  live.src = wanted ? "/api/live.mjpg?t=" + Date.now() : "";
  if (!wanted) live.removeAttribute("src");
}
live.addEventListener("error", () => { liveOn = false; });
function zoom(body) {
  return fetch("/api/zoom", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}
live.addEventListener("click", (e) => {
  const box = live.getBoundingClientRect();
  const at = { x: (e.clientX - box.left) / box.width, y: (e.clientY - box.top) / box.height };
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
function banner(text, level) { const d = el("div", { class: level }, text); $("banners").append(d); }

function showState(s) {
  state = s;
  const cam = s.camera;
  $("camera").textContent = cam.model ? `${cam.model}: ${cam.state}` + (cam.battery ? ` · battery ${cam.battery}` : "") : `camera ${cam.state}`;
  $("roll").textContent = "roll " + (s.roll || "–") + (s.flat ? ` · flat ${s.flat}` : " · no flat") + (s.paused ? " · paused" : "") + (s.busy ? " · capturing" + (s.group ? " " + s.group : "") : "");
  $("queue").textContent = `queue ${s.queue.waiting} waiting, ${s.queue.blending} blending` + (s.queue.full ? " (full)" : "");
  $("disk").textContent = "disk free " + megabytes(s.disk_free_bytes);
  $("pause").textContent = s.paused ? "Resume" : "Pause";
  $("banners").replaceChildren();
  if (cam.state !== "ready" && cam.state !== "capturing") banner(`The camera is ${cam.state}` + (cam.error ? `: ${cam.error}` : ""), "");
  if (s.live.unavailable) banner(s.live.unavailable, "warn");
  if (s.paused) banner("Paused: presses are ignored until you resume.", "warn");
  if (s.message) banner(s.message, "");
  const connected = cam.state === "ready" || cam.state === "capturing";
  if (s.live.unavailable) setLive(false, s.live.unavailable);
  else if (!connected) setLive(false, "no camera");
  else setLive(true);
  $("fps").textContent = s.live.running ? `${s.live.fps} fps` : (s.live.paused || "");
  const zoomNotes = { on: "magnified by the body: click to move it", none: "this body has no magnifier libgphoto2 drives: click the view for the 1:1 crop" };
  $("zoom-note").textContent = zoomNotes[s.live.body_zoom] || "";
  if (s.live.body_zoom === "none") $("body-zoom").checked = false;
  showFrames(s.negatives);
}

function describe(n) {
  const bits = [];
  if (n.noise_ratio) bits.push(`${n.noise_ratio.toFixed(2)}x noise, ${(1 / n.noise_ratio).toFixed(1)}x cleaner`);
  if (n.frames_used != null) bits.push(`${n.frames_used} of ${n.frames_expected} frames used`);
  const clip = Object.entries(n.clipped || {});
  if (clip.length) bits.push("raw clipped " + clip.map(([c, v]) => `${c} ${percent(v, 2)}`).join(" "));
  return bits;
}

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
    for (const line of describe(n)) fresh.append(el("div", { class: "figures" }, line));
    for (const [file, why] of n.rejected) fresh.append(el("div", { class: "why" }, `rejected ${file}: ${why}`));
    if (n.problem) fresh.append(el("div", { class: "why" }, n.problem));
    if (item) item.replaceWith(fresh); else list.append(fresh);
    fresh.scrollIntoView({ inline: "end", block: "nearest" });
  }
  for (const item of [...list.children]) if (!seen.has(item.dataset.name)) item.remove();
  const blended = negatives.filter((n) => n.positive);
  const last = blended[blended.length - 1];
  if (last && $("last-blend").dataset.name !== last.name) {
    $("last-blend").dataset.name = last.name;
    $("last-blend").src = last.positive;
    $("last-caption").textContent = [last.name, ...describe(last)].join(" · ");
  }
}

function showFocus(f) {
  $("focus-bar").style.width = Math.min(100, 100 * f.of_peak).toFixed(1) + "%";
  $("focus-figure").textContent = `${(100 * f.of_peak).toFixed(0)} % of peak`;
  $("clip-figure").textContent = percent(f.clipped);
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { $("connection").textContent = "connected"; $("connection").className = "pill ok"; });
  events.addEventListener("state", (e) => showState(JSON.parse(e.data)));
  events.addEventListener("focus", (e) => showFocus(JSON.parse(e.data)));
  events.addEventListener("error", () => { $("connection").textContent = "daemon not reachable: retrying"; $("connection").className = "pill bad"; });
}
connect();
