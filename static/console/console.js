// The graphical console: noVNC (npm @novnc/novnc) over a websocket to the console proxy, with a one-time token
// fetched from the portal for every (re)connection.
import RFB from "/static/vendor/novnc/core/rfb.js";

const KEY = { ctrl: 0xffe3, alt: 0xffe9, shift: 0xffe1, enter: 0xff0d, tab: 0xff09, f1: 0xffbe };
// QEMU turns a keysym into the scancode of its key without the Shift it needs (A and a are the same key), so
// text typed as keystrokes presses Shift itself for the characters that need it on a US keyboard.
const SHIFTED = /[A-Z~!@#$%^&*()_+{}|:"<>?]/;
// Close codes the proxy uses after which trying again can help (the display went away, the VM is restarting).
const RETRYABLE = new Set([1006, 4011, 4013, 4100]);
const MAX_RETRIES = 30;

function keysymFor(ch) {
  if (ch === "\n" || ch === "\r") return KEY.enter;
  if (ch === "\t") return KEY.tab;
  const code = ch.codePointAt(0);
  if (code >= 0x20 && code <= 0xff) return code;  // Latin-1 keysyms equal their code points
  return 0x01000000 + code;                        // Unicode keysyms
}

export function mountConsole(root) {
  const screen = root.querySelector(".console-screen");
  const stateEl = root.querySelector(".console-state");
  const state = { rfb: null, status: "idle", lastClose: null, retries: 0, timer: null, stopped: false };

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
    return body.ws_url;
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

  async function connect() {
    clearTimeout(state.timer);
    if (state.rfb) { try { state.rfb.disconnect(); } catch (e) { /* already closed */ } state.rfb = null; }
    show("connecting", "Connecting…");
    let url;
    try {
      url = await fetchToken();
    } catch (err) {
      if (err.retry) scheduleRetry(err.message); else show("refused", err.message);
      return;
    }
    // Our own WebSocket, handed to noVNC, so that the proxy's close code and reason reach the page.
    const ws = new WebSocket(url, ["binary"]);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("close", (ev) => { state.lastClose = { code: ev.code, reason: ev.reason }; });
    const rfb = new RFB(screen, ws, { shared: true });
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

  root.querySelector("[data-action=cad]").addEventListener("click", () => state.rfb && state.rfb.sendCtrlAltDel());
  root.querySelector("[data-action=fkey]").addEventListener("change", (ev) => {
    const n = parseInt(ev.target.value, 10);
    if (n >= 1 && n <= 7) combo([KEY.ctrl, "ControlLeft"], [KEY.alt, "AltLeft"], [KEY.f1 + n - 1, `F${n}`]);
    ev.target.value = "";
  });
  const dialog = root.querySelector(".console-paste");
  root.querySelector("[data-action=paste]").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", () => {
    const area = dialog.querySelector("textarea");
    if (dialog.returnValue === "type" && state.rfb) typeText(area.value);
    area.value = "";
  });
  root.querySelector("[data-action=scale]").addEventListener("change", (ev) => {
    if (state.rfb) state.rfb.scaleViewport = ev.target.checked;  // unchecked: 1:1, the screen area scrolls
  });
  root.querySelector("[data-action=fullscreen]").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen(); else root.requestFullscreen();
  });
  root.querySelector("[data-action=reconnect]").addEventListener("click", () => { state.retries = 0; connect(); });

  function typeText(text) {
    const rfb = state.rfb;
    for (const ch of text) {
      const shift = SHIFTED.test(ch);
      if (shift) rfb.sendKey(KEY.shift, "ShiftLeft", true);
      rfb.sendKey(keysymFor(ch), null);
      if (shift) rfb.sendKey(KEY.shift, "ShiftLeft", false);
    }
  }

  connect();
  return {
    get rfb() { return state.rfb; },
    get status() { return state.status; },
    get lastClose() { return state.lastClose; },
    connect, typeText,
    sendKey: (sym, code) => state.rfb && state.rfb.sendKey(sym, code),
    stop() { state.stopped = true; clearTimeout(state.timer); if (state.rfb) state.rfb.disconnect(); },
  };
}
