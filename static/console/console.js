// The graphical console: noVNC (npm @novnc/novnc) over a websocket to the console proxy, with a one-time token
// fetched from the portal for every (re)connection.
//
// This module imports noVNC, so it is loaded only where a console is shown: the console's own page loads it at once
// (console_page.js), a VM's page only when the person presses "Console" (vm_section.js, a dynamic import).
import RFB from "/static/vendor/novnc/core/rfb.js";
import { KEYSYM, planKeys } from "./keys.js";

// Close codes the proxy uses after which trying again can help (the display went away, the VM is restarting, the
// user's role changed: the next token says what they may do now).
const RETRYABLE = new Set([1006, 4011, 4013, 4015, 4100]);
const MAX_RETRIES = 30;
// "Paste as keys…": the pause after each key (its press and release), in ms; twice that after a key typed with
// Shift (four events instead of two). QEMU itself feeds key events to the guest 10 ms apart, so a burst reaches the
// guest at 20 ms a key, into a PS/2 queue of 16 bytes (8 keys): a guest whose CPU stalls longer than that queue
// lasts (a busy host running other guests) loses every key that does not fit. Measured on a GRUB guest under TCG
// whose vCPU stalls 270 ms at a time: sent in a burst or 25 ms apart, keys were lost every time; 40 and 50 ms apart,
// never. A pause of P ms rides out stalls of about 8 P.
export const KEY_DELAY = { default: 50, min: 10, max: 200 };
const DELAY_STORE = "kvmweb.console.keyDelay";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function clampDelay(value) {
  const n = Math.round(Number(value));
  if (!Number.isFinite(n)) return KEY_DELAY.default;
  return Math.min(KEY_DELAY.max, Math.max(KEY_DELAY.min, n));
}

function storedDelay() {
  try { return clampDelay(localStorage.getItem(DELAY_STORE) ?? KEY_DELAY.default); } catch (e) { return KEY_DELAY.default; }
}

function skippedWords(skipped) {
  return skipped.map((s) => (s.count > 1 ? `${s.label} ×${s.count}` : s.label)).join(", ");
}

export function mountConsole(root) {
  const screen = root.querySelector(".console-screen");
  const stateEl = root.querySelector(".console-state");
  const state = { rfb: null, status: "idle", lastClose: null, retries: 0, timer: null, stopped: false, typing: null,
                  lastTyping: null, jobs: 0, viewOnly: false };

  function show(status, text) {
    state.status = status;
    stateEl.dataset.state = status;
    stateEl.textContent = text;
  }

  async function fetchToken() {
    const resp = await fetch(root.dataset.tokenUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": root.dataset.csrf, "Accept": "application/json" },
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const err = new Error(body.detail || `The portal refused a console token (${resp.status}).`);
      err.retry = resp.status === 409 || resp.status >= 500;
      throw err;
    }
    return body;
  }

  function scheduleRetry(why) {
    if (state.stopped || state.retries >= MAX_RETRIES) {
      show("disconnected", `${why} — press Reconnect.`);
      return;
    }
    state.retries += 1;
    const delay = Math.min(1000 * state.retries, 5000);
    show("reconnecting", `${why} — reconnecting in ${Math.round(delay / 1000)} s…`);
    state.timer = setTimeout(connect, delay);
  }

  // A view-only console (the user may watch the VM, not operate it): the proxy passes no key, mouse or clipboard
  // message, whatever this page sends; the page says so and hides what would type.
  function setViewOnly(viewOnly) {
    state.viewOnly = viewOnly;
    root.classList.toggle("console-view-only", viewOnly);
    root.querySelector(".console-viewonly").hidden = !viewOnly;
    for (const el of root.querySelectorAll("[data-input]")) { el.hidden = viewOnly; el.disabled = viewOnly; }
  }

  async function connect() {
    clearTimeout(state.timer);
    if (state.rfb) { try { state.rfb.disconnect(); } catch (e) { /* already closed */ } state.rfb = null; }
    show("connecting", "Connecting…");
    let issued;
    try {
      issued = await fetchToken();
    } catch (err) {
      if (err.retry) scheduleRetry(err.message); else show("refused", err.message);
      return;
    }
    setViewOnly(Boolean(issued.view_only));
    // Our own WebSocket, handed to noVNC, so that the proxy's close code and reason reach the page.
    const ws = new WebSocket(issued.url, ["binary"]);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("close", (ev) => { state.lastClose = { code: ev.code, reason: ev.reason }; });
    const rfb = new RFB(screen, ws, { shared: true });
    rfb.viewOnly = state.viewOnly;
    state.rfb = rfb;
    rfb.scaleViewport = root.querySelector("[data-action=scale]").checked;
    rfb.focusOnClick = true;
    rfb.addEventListener("connect", () => {
      state.retries = 0;
      show("connected", "Connected");
      rfb.focus();
    });
    rfb.addEventListener("disconnect", () => {
      if (state.rfb !== rfb) return;
      state.rfb = null;
      const close = state.lastClose || { code: 1006, reason: "" };
      const reason = close.reason || (close.code === 1000 ? "Disconnected" : "Connection lost");
      if (RETRYABLE.has(close.code)) scheduleRetry(reason);
      else show(close.code === 1000 ? "disconnected" : "refused", reason);
    });
    rfb.addEventListener("securityfailure", (ev) => show("refused", `Security failure: ${ev.detail.reason || ""}`));
  }

  function combo(...keys) {
    const rfb = state.rfb;
    if (!rfb) return;
    for (const [sym, code] of keys) rfb.sendKey(sym, code, true);
    for (const [sym, code] of keys.slice().reverse()) rfb.sendKey(sym, code, false);
  }

  // ------------------------------------------------------------------------------------------- paste as keys
  const dialog = root.querySelector(".console-paste");
  const area = dialog.querySelector("textarea");
  const delayInput = dialog.querySelector("[name=delay]");
  const skippedEl = dialog.querySelector(".console-paste-skipped");
  const countEl = dialog.querySelector(".console-paste-count");
  const typeButton = dialog.querySelector("button[value=type]");
  const pasteButton = root.querySelector("[data-action=paste]");
  const bar = root.querySelector(".console-typing");
  const barProgress = bar.querySelector("progress");
  const barText = bar.querySelector(".console-typing-text");
  const barStop = bar.querySelector("[data-action=stop-typing]");

  function describePlan() {
    const plan = planKeys(area.value);
    const n = plan.strokes.length;
    countEl.textContent = n ? `${n} key${n === 1 ? "" : "s"} to type.` : "";
    skippedEl.hidden = plan.skipped.length === 0;
    skippedEl.textContent = plan.skipped.length
      ? `Cannot be typed, will be skipped: ${skippedWords(plan.skipped)}.`
      : "";
    typeButton.disabled = n === 0;
    return plan;
  }

  function report(text, { busy = false } = {}) {
    bar.hidden = false;
    barProgress.hidden = !busy;
    barStop.hidden = !busy;
    barText.textContent = text;
  }

  // Types the text as key presses, one character at a time, `delay` ms apart; resolves to what happened.
  async function typeText(text, { delay } = {}) {
    const pause = clampDelay(delay ?? storedDelay());
    const plan = planKeys(text);
    const rfb = state.rfb;
    if (state.typing) state.typing.cancelled = true;
    state.jobs += 1;
    const job = { id: state.jobs, total: plan.strokes.length, typed: 0, skipped: plan.skipped, cancelled: false,
                  lost: false, delay: pause, started: performance.now(), ms: 0 };
    state.typing = job;
    const skippedNote = plan.skipped.length ? ` Skipped (cannot be typed): ${skippedWords(plan.skipped)}.` : "";
    if (!rfb || state.status !== "connected" || state.viewOnly) {
      job.lost = true;
      report(state.viewOnly ? "View only: nothing was typed." : "Not connected: nothing was typed.");
      state.typing = null;
      state.lastTyping = job;
      return job;
    }
    pasteButton.disabled = true;
    barProgress.max = Math.max(job.total, 1);
    barProgress.value = 0;
    report(`Typing 0 of ${job.total} keys…`, { busy: true });
    try {
      for (const s of plan.strokes) {
        if (job.cancelled) break;
        if (state.rfb !== rfb || state.status !== "connected") { job.lost = true; break; }
        // Shift held around the key for the characters that need it; sendKey without "down" sends the key's press
        // and its release, so both are on their way before the pause and the next key.
        if (s.shift) rfb.sendKey(KEYSYM.shift, "ShiftLeft", true);
        rfb.sendKey(s.keysym, s.code);
        if (s.shift) rfb.sendKey(KEYSYM.shift, "ShiftLeft", false);
        job.typed += 1;
        barProgress.value = job.typed;
        barText.textContent = `Typing ${job.typed} of ${job.total} keys…`;
        if (job.typed < job.total) await sleep(s.shift ? 2 * pause : pause);
      }
    } finally {
      job.ms = Math.round(performance.now() - job.started);
      state.lastTyping = job;
      if (state.typing === job) {  // not replaced by a newer text meanwhile: the bar and the button are this one's
        state.typing = null;
        pasteButton.disabled = false;
        let text;
        if (job.lost) text = `Connection lost: typed ${job.typed} of ${job.total} keys.`;
        else if (job.cancelled) text = `Cancelled: typed ${job.typed} of ${job.total} keys.`;
        else text = `Typed ${job.total} key${job.total === 1 ? "" : "s"}.`;
        report(text + skippedNote);
        if (state.rfb === rfb && !job.lost) rfb.focus();
      }
    }
    return job;
  }

  function cancelTyping() {
    if (state.typing) state.typing.cancelled = true;
  }

  pasteButton.addEventListener("click", () => {
    dialog.returnValue = "";  // Esc closes without a value: never reuse the last one
    delayInput.value = storedDelay();
    describePlan();
    dialog.showModal();
  });
  area.addEventListener("input", describePlan);
  delayInput.addEventListener("change", () => {
    const value = clampDelay(delayInput.value);
    delayInput.value = value;
    try { localStorage.setItem(DELAY_STORE, String(value)); } catch (e) { /* private mode: not remembered */ }
  });
  dialog.addEventListener("close", () => {
    const text = area.value;
    const delay = clampDelay(delayInput.value);
    area.value = "";
    if (dialog.returnValue === "type") {
      try { localStorage.setItem(DELAY_STORE, String(delay)); } catch (e) { /* not remembered */ }
      typeText(text, { delay });
    }
  });
  barStop.addEventListener("click", cancelTyping);

  // ------------------------------------------------------------------------------------------- the toolbar
  root.querySelector("[data-action=cad]").addEventListener("click", () => state.rfb && state.rfb.sendCtrlAltDel());
  root.querySelector("[data-action=fkey]").addEventListener("change", (ev) => {
    const n = parseInt(ev.target.value, 10);
    if (n >= 1 && n <= 7) combo([KEYSYM.ctrl, "ControlLeft"], [KEYSYM.alt, "AltLeft"], [KEYSYM.f1 + n - 1, `F${n}`]);
    ev.target.value = "";
  });
  root.querySelector("[data-action=scale]").addEventListener("change", (ev) => {
    if (state.rfb) state.rfb.scaleViewport = ev.target.checked;  // unchecked: 1:1, the screen area scrolls
  });
  root.querySelector("[data-action=fullscreen]").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen(); else root.requestFullscreen();
  });
  root.querySelector("[data-action=reconnect]").addEventListener("click", () => { state.retries = 0; connect(); });

  connect();
  return {
    get rfb() { return state.rfb; },
    get status() { return state.status; },
    get lastClose() { return state.lastClose; },
    get typing() { return state.typing; },
    get lastTyping() { return state.lastTyping; },
    get viewOnly() { return state.viewOnly; },
    connect, typeText, cancelTyping,
    sendKey: (sym, code) => state.rfb && state.rfb.sendKey(sym, code),
    stop() { state.stopped = true; clearTimeout(state.timer); cancelTyping(); if (state.rfb) state.rfb.disconnect(); },
  };
}
