// The dashboard (#dashboard) stays true without a reload: each part marked data-dash-live="vm job stats" is re-read
// from the server (data-part-url, rendered by the same template the page includes) and swapped in when an event
// it lists arrives through events.js (the "kvmweb:vm", "kvmweb:job" and "kvmweb:stats" DOM events), after the
// events socket reconnects, and — for the usage parts ("stats") — every data-refresh-seconds while the tab is
// visible. The mechanism of the VM page's data-vm-live parts: one request at a time per part, an answer older
// than the part's newest request is dropped, a part with the keyboard focus inside waits until the focus leaves.
// A part is re-read at most once per data-min-seconds. This file never builds HTML.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const parts = [...root.querySelectorAll("[data-dash-live][data-part-url]")];
  const info = new Map(parts.map((part) => [part, { seq: 0, last: 0, timer: null, stale: false }]));

  function focused(part) {
    return part.contains(document.activeElement) && document.activeElement !== document.body;
  }

  async function load(part) {
    const s = info.get(part);
    s.timer = null;
    if (document.hidden) { s.stale = true; return; }
    if (focused(part)) { s.stale = true; return; }
    s.last = Date.now();
    const seq = ++s.seq;
    const html = await fetch(part.dataset.partUrl, {
      credentials: "same-origin", headers: { "HX-Request": "true" },
    }).then((r) => (r.ok ? r.text() : null)).catch(() => null);
    if (html === null || seq !== s.seq) return;
    if (focused(part)) { s.stale = true; return; }
    s.stale = false;
    part.innerHTML = html;
    part.dataset.refreshed = String(seq);  // how many times it was re-read (tests wait on it)
    if (window.htmx) window.htmx.process(part);
  }

  function refresh(part) {
    const s = info.get(part);
    if (!s || s.timer) return;  // a read is already on its way: it will see this change too
    const gap = (Number(part.dataset.minSeconds) || 2) * 1000;
    s.timer = setTimeout(() => load(part), Math.max(150, s.last + gap - Date.now()));
  }

  function on(kind) {
    parts.forEach((part) => {
      if (part.dataset.dashLive.split(/\s+/).includes(kind)) refresh(part);
    });
  }

  document.addEventListener("kvmweb:vm", () => on("vm"));
  // a job's progress and log lines move in place (events.js); a job that starts or ends changes the parts
  document.addEventListener("kvmweb:job", (ev) => { if (ev.detail && ev.detail.state) on("job"); });
  document.addEventListener("kvmweb:stats", () => on("stats"));

  // a part skipped while focused or hidden is read when the focus leaves it or the tab comes back
  document.addEventListener("focusout", () => {
    setTimeout(() => parts.forEach((part) => { if (info.get(part).stale && !focused(part)) refresh(part); }), 0);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) parts.forEach((part) => { if (info.get(part).stale) refresh(part); });
  });

  // after the events socket reconnects, what changed while nobody listened is read again (not on the first connect:
  // the page was just rendered)
  let wasConnected = document.body.dataset.events === "connected";
  let lost = false;
  new MutationObserver(() => {
    const now = document.body.dataset.events === "connected";
    if (now && lost) parts.forEach(refresh);
    if (wasConnected && !now) lost = true;
    if (now) lost = false;
    wasConnected = now;
  }).observe(document.body, { attributes: true, attributeFilter: ["data-events"] });

  const seconds = Number(root.dataset.refreshSeconds) || 30;
  setInterval(() => { if (!document.hidden) on("stats"); }, seconds * 1000);
})();
