// Live events from /ws/events/: VM state badges (#vm-state, tr[data-uuid] on the VM list) and jobs
// ([data-job-id]: progress bar, state, log lines). Reconnects with a growing delay. No framework needed.
(function () {
  "use strict";
  const LABELS = {
    nostate: "no state", running: "running", blocked: "idle", paused: "paused", shutdown: "in shutdown",
    shutoff: "shut off", crashed: "crashed", pmsuspended: "pmsuspended",
  };
  let delay = 500;

  function setBadge(el, slug, label) {
    if (!el) return;
    el.textContent = label;
    el.className = el.className.replace(/\bstate-[a-z]+\b/g, "").trim() + " state-" + slug;
    el.dataset.state = slug;
  }

  function onVm(ev) {
    const label = LABELS[ev.state] || ev.state;
    const m = location.pathname.match(/^\/vms\/([0-9a-f-]{36})\//);
    const badge = document.getElementById("vm-state");
    if (badge && m && m[1] === ev.uuid) {
      const changed = badge.dataset.state !== ev.state;
      setBadge(badge, ev.state, label);
      if (changed) refreshActions();
    }
    const rows = document.querySelectorAll("tr[data-uuid='" + ev.uuid + "'] .state");
    rows.forEach((el) => setBadge(el, ev.state, label));
    // A VM that appeared (defined) or went away (undefined), also behind the portal's back: re-read the list.
    if (ev.event === "defined" || ev.event === "undefined" || (!rows.length && ev.state !== "undefined")) {
      refreshList();
    }
    document.dispatchEvent(new CustomEvent("kvmweb:vm", { detail: ev }));
  }

  // The VM list (#vm-table, with its filters and page in the URL) re-read as the partial htmx would fetch.
  let listing = null;
  function refreshList() {
    const table = document.getElementById("vm-table");
    if (!table) return;
    clearTimeout(listing);
    listing = setTimeout(async () => {
      const html = await fetch(location.pathname + location.search, {
        credentials: "same-origin", headers: { "HX-Request": "true" },
      }).then((r) => (r.ok ? r.text() : null)).catch(() => null);
      if (html !== null) table.innerHTML = html;
    }, 200);
  }

  // Parts of a page that the server renders from the state (the VM page's Start/Force off buttons, a job page's
  // started/finished times): re-read from the server and swapped in, no reload.
  const refreshing = {};
  function refreshFromPage(selector) {
    clearTimeout(refreshing[selector]);
    refreshing[selector] = setTimeout(async () => {
      const mine = document.querySelector(selector);
      if (!mine) return;
      const html = await fetch(location.href, { credentials: "same-origin" }).then((r) => (r.ok ? r.text() : null))
        .catch(() => null);
      if (!html) return;
      const fresh = new DOMParser().parseFromString(html, "text/html").querySelector(selector);
      if (fresh) mine.replaceWith(fresh);
    }, 150);
  }
  const refreshActions = () => refreshFromPage(".vm-head .actions");

  // A job event. Without ``state`` (lines re-read after a newer event arrived) only progress and log lines apply:
  // both only grow, so an older read cannot undo anything.
  function onJob(ev) {
    const meta = document.getElementById("job-meta");
    if (ev.state && meta && meta.dataset.jobId === String(ev.id) && meta.dataset.state !== ev.state) {
      refreshFromPage("#job-meta");
    }
    document.querySelectorAll("[data-job-id='" + ev.id + "']").forEach((box) => {
      const bar = box.querySelector("[data-job-progress]");
      if (bar) bar.value = Math.max(Number(bar.value) || 0, ev.progress || 0);
      const pct = box.querySelector("[data-job-percent]");
      if (pct && bar) pct.textContent = bar.value + "%";
      if (ev.state) {
        const st = box.querySelector("[data-job-state]");
        if (st) { st.textContent = ev.state; st.className = "state job-state-" + ev.state; }
        const err = box.querySelector("[data-job-error]");
        if (err && ev.error) { err.textContent = ev.error; err.hidden = false; }
        box.dataset.jobFinished = ev.finished ? "1" : "0";
      }
      const log = box.querySelector("[data-job-log]");
      if (log && ev.line && !log.querySelector("[data-line-id='" + ev.line.id + "']")) {
        const li = document.createElement("li");
        li.dataset.lineId = ev.line.id;
        li.className = "log-" + ev.line.level;
        const t = document.createElement("time");
        t.textContent = new Date(ev.line.at).toTimeString().slice(0, 8);
        li.append(t, " " + ev.line.message);
        // in order of the lines' ids, whichever way (event or re-read) each came
        const later = [...log.querySelectorAll("[data-line-id]")].find((el) => Number(el.dataset.lineId) > ev.line.id);
        log.insertBefore(li, later || null);
      }
    });
    if (ev.finished) {
      const cancel = document.getElementById("cancel-form");
      if (cancel && document.querySelector("[data-job-id='" + ev.id + "']")) cancel.hidden = true;
    }
    document.dispatchEvent(new CustomEvent("kvmweb:job", { detail: ev }));
  }

  // Live events received per VM / job: a re-read answered after a newer event arrived is stale and is dropped.
  const received = {};
  const bump = (key) => { received[key] = (received[key] || 0) + 1; };

  // After (re)connecting, read what may have changed while no socket listened: this page's VM and its jobs.
  async function resync() {
    // [body, fresh]: fresh when no live event about ``key`` arrived while the request was out
    const get = async (url, key) => {
      const before = received[key] || 0;
      const body = await fetch(url, { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null))
        .catch(() => null);
      return [body, (received[key] || 0) === before];
    };
    const m = location.pathname.match(/^\/vms\/([0-9a-f-]{36})\/$/);
    if (m) {
      const [vm, fresh] = await get("/api/v1/vms/" + m[1] + "/", "vm:" + m[1]);
      if (vm && fresh) onVm({ kind: "vm", uuid: m[1], state: vm.state });
    }
    const ids = new Set();
    document.querySelectorAll("[data-job-id][data-job-finished='0']").forEach((el) => ids.add(el.dataset.jobId));
    for (const id of ids) {
      const [job, fresh] = await get("/api/v1/jobs/" + id + "/", "job:" + id);
      if (!job) continue;
      for (const line of job.log || []) onJob({ kind: "job", id: job.id, progress: job.progress, line: line });
      if (fresh) {
        onJob({ kind: "job", id: job.id, state: job.state, progress: job.progress, error: job.error,
          finished: ["succeeded", "failed", "cancelled"].includes(job.state) });
      }
    }
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/events/";
    const ws = new WebSocket(url);
    ws.onopen = () => { delay = 500; document.body.dataset.events = "connected"; };
    ws.onmessage = (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev.kind === "hello") resync();
      else if (ev.kind === "vm") { bump("vm:" + ev.uuid); onVm(ev); }
      else if (ev.kind === "job") { bump("job:" + ev.id); onJob(ev); }
    };
    ws.onclose = () => {
      document.body.dataset.events = "disconnected";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  window.kvmwebEvents = { onVm: onVm, onJob: onJob };
  if (document.body.dataset.user) connect();
})();
