// The text console: xterm.js (npm @xterm/xterm) attached to the guest's serial port through the portal's websocket.
import { Terminal } from "/static/vendor/xterm/lib/xterm.mjs";
import { FitAddon } from "/static/vendor/xterm-addon-fit/lib/addon-fit.mjs";

export function mountTerminal(root) {
  const stateEl = root.querySelector(".console-state");
  // View only (the user may see the VM, not operate it): the portal drops whatever is typed; the terminal takes none.
  const viewOnly = "viewOnly" in root.dataset;
  const term = new Terminal({ convertEol: false, cursorBlink: !viewOnly, fontSize: 14, scrollback: 5000,
                              disableStdin: viewOnly });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(root.querySelector(".terminal-screen"));
  fit.fit();
  window.addEventListener("resize", () => fit.fit());
  const encoder = new TextEncoder();
  const state = { ws: null, status: "idle", lastClose: null, received: "" };

  function show(status, text) { state.status = status; stateEl.dataset.state = status; stateEl.textContent = text; }

  function connect() {
    if (state.ws) state.ws.close();
    state.closeReason = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    ws.binaryType = "arraybuffer";
    state.ws = ws;
    show("connecting", "Connecting…");
    ws.addEventListener("open", () => show("connected", "Connected"));
    ws.addEventListener("message", (ev) => {
      if (typeof ev.data === "string") {  // a control message: why the portal ends this console
        try { const msg = JSON.parse(ev.data); if (msg.type === "closed") state.closeReason = msg.reason; } catch (e) { /* ignore */ }
        return;
      }
      const data = new Uint8Array(ev.data);
      term.write(data);
      state.received += new TextDecoder().decode(data);
      if (state.received.length > 100000) state.received = state.received.slice(-50000);
    });
    ws.addEventListener("close", (ev) => {
      const reason = ev.reason || state.closeReason || "Disconnected";
      state.lastClose = { code: ev.code, reason };
      if (state.ws === ws) { show(ev.code === 1000 ? "disconnected" : "refused", reason); term.write(`\r\n[${reason}]\r\n`); }
    });
  }

  term.onData((data) => {
    if (!viewOnly && state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(encoder.encode(data));
  });
  root.querySelector("[data-action=reconnect]").addEventListener("click", connect);
  connect();
  term.focus();
  return { term, viewOnly, get status() { return state.status; }, get received() { return state.received; },
           get lastClose() { return state.lastClose; } };
}
