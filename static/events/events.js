// Live events from /ws/events/: the VM page (its header and parts re-rendered by the server), the VM list
// (rows, bulk bar, thumbnails) and jobs ([data-job-id]: progress bar, state, log lines). Reconnects with a growing
// delay. No framework needed: what a page shows is always server-rendered HTML.
(function () {
  "use strict";
  const LABELS = {
    nostate: "no state", running: "running", blocked: "idle", paused: "paused", shutdown: "in shutdown",
    shutoff: "shut off", crashed: "crashed", pmsuspended: "pmsuspended", undefined: "deleted",
  };
  let delay = 500;

  function setBadge(el, slug, label) {
    if (!el) return;
    el.textContent = label;
    el.className = el.className.replace(/\bstate-[a-z]+\b/g, "").trim() + " state-" + slug;
    el.dataset.state = slug;
  }

  // The VM page (#vm-page): its header and the parts marked data-vm-live are re-rendered by the server when
  // this VM changes — "state" parts on a state change, "any" parts on any event (a device added, a redefinition).
  function vmPage(uuid) {
    const page = document.getElementById("vm-page");
    return page && page.dataset.vmUuid === uuid ? page : null;
  }

  // A part the user is working in (focus inside, or a field changed and not sent) is not swapped under their
  // hands: it is marked stale and re-read when the focus leaves it.
  function busy(part) {
    if (part.contains(document.activeElement) && document.activeElement !== document.body) return true;
    if (part.querySelector("#console-inline:not([hidden])")) return true;  // an open console keeps its socket
    return [...part.querySelectorAll("input, textarea, select")].some((el) => {
      if (el.type === "hidden") return false;
      if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
      if (el.tagName === "SELECT") {
        // a single select with no option marked selected starts on its first option
        const opts = [...el.options];
        const initial = opts.findIndex((o) => o.defaultSelected);
        if (!el.multiple) return el.selectedIndex !== (initial === -1 ? 0 : opts.findLastIndex((o) => o.defaultSelected));
        return opts.some((o) => o.selected !== o.defaultSelected);
      }
      return el.value !== el.defaultValue;
    });
  }

  // Parts are re-read one request at a time each; an answer older than the part's latest request is dropped.
  const partTimers = new WeakMap();
  const partSeq = new WeakMap();
  const retryTimers = new Map();
  function refreshPart(part, force, swap) {
    if (!part) return;
    clearTimeout(partTimers.get(part));
    partTimers.set(part, setTimeout(async () => {
      const page = document.getElementById("vm-page");
      if (!page || page.dataset.deleted) return;
      if (!force && busy(part)) { part.dataset.stale = "1"; return; }
      const seq = (partSeq.get(part) || 0) + 1;
      partSeq.set(part, seq);
      const html = await fetch(part.dataset.partUrl, {
        credentials: "same-origin", headers: { "HX-Request": "true" },
      }).then((r) => {
        // 404: the reader may no longer see this VM (a share removed) — the page turns off like a deleted VM's,
        // once the header says so too (a part read in the instant a VM moves to another host may miss it)
        if (r.status === 404) { confirmLost(page); return null; }
        return r.ok ? r.text() : null;
      }).catch(() => null);
      if (html === null || partSeq.get(part) !== seq || page.dataset.deleted || (!force && busy(part))) return;
      delete part.dataset.stale;
      (swap || swapInner)(part, html);
      // a part that says "ask again" (a running guest whose agent has not answered yet) is read again by itself
      const retry = part.querySelector("[data-retry-seconds]");
      clearTimeout(retryTimers.get(part));
      if (retry) retryTimers.set(part, setTimeout(() => refreshPart(part, true), retry.dataset.retrySeconds * 1000));
    }, 120));
  }
  function swapInner(part, html) {
    // what the reader opened stays open (the XML, a log)
    const open = [...part.querySelectorAll("details")].map((el) => el.open);
    part.innerHTML = html;
    part.querySelectorAll("details").forEach((el, i) => { if (open[i]) el.open = true; });
    if (window.htmx) window.htmx.process(part);
  }
  document.addEventListener("focusout", (ev) => {
    const part = ev.target.closest && ev.target.closest("[data-vm-live][data-stale]");
    if (part) setTimeout(() => { if (!part.contains(document.activeElement)) refreshPart(part); }, 0);
  });

  // The header: the badge, the facts and the actions change in one step from one server read, so the buttons
  // never disagree with the badge. The badge element stays (it is the aria-live region): only its text changes.
  function swapHeader(box, html) {
    const fresh = document.createElement("template");
    fresh.innerHTML = html;
    const head = fresh.content.getElementById("vm-head");
    const mine = box.querySelector("#vm-head");
    if (!head || !mine) return;
    const badge = head.querySelector("#vm-state");
    setBadge(mine.querySelector("#vm-state"), badge.dataset.state, badge.textContent);
    mine.dataset.state = head.dataset.state;
    mine.dataset.role = head.dataset.role;
    for (const id of ["vm-facts", "vm-actions"]) {
      const el = mine.querySelector("#" + id);
      if (el) el.replaceWith(head.querySelector("#" + id));
    }
    if (window.htmx) window.htmx.process(mine);
  }
  function refreshHeader(page) {
    refreshPart(page.querySelector("#vm-head-box"), true, swapHeader);
  }

  async function confirmLost(page) {
    const head = document.getElementById("vm-head-box");
    const url = head && head.dataset.partUrl;
    const r = url ? await fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .catch(() => null) : null;
    if (!r || r.status === 404) vmDeleted(page, "vm-lost");
  }
  function vmDeleted(page, bannerId) {
    if (page.dataset.deleted) return;
    page.dataset.deleted = "1";
    const banner = document.getElementById(bannerId || "vm-deleted");
    if (banner) banner.hidden = false;
    page.querySelectorAll("button, input, select, textarea").forEach((el) => {
      if (!banner || !banner.contains(el)) el.disabled = true;
    });
    page.querySelectorAll("a[href]").forEach((a) => {
      if (banner && banner.contains(a)) return;
      if (a.closest("nav[aria-label=breadcrumb]")) return;
      a.setAttribute("aria-disabled", "true");
      a.removeAttribute("href");
    });
  }

  function onVm(ev) {
    const gone = ev.event === "undefined" || ev.state === "undefined";
    const label = gone ? "deleted" : (ev.label || LABELS[ev.state] || ev.state);
    const slug = gone ? "undefined" : ev.state;
    // "shared"/"unshared": who may do what changed; "migrated": the VM is on another host now — the header and
    // every part are read again
    const access = ev.event === "shared" || ev.event === "unshared" || ev.event === "migrated";
    const page = vmPage(ev.uuid);
    if (page) {
      const head = document.getElementById("vm-head");
      const changed = access || !head || head.dataset.state !== slug;
      if (gone) {
        setBadge(document.getElementById("vm-state"), slug, label);
        vmDeleted(page);
      } else {
        if (changed) refreshHeader(page);
        page.querySelectorAll("[data-vm-live]").forEach((part) => {
          if (part.dataset.vmLive === "any" || changed) refreshPart(part);
        });
      }
    }
    // The list: a VM that appeared or went away (also behind the portal's back), or a row whose state changed,
    // re-reads the table — a row's badge, actions and thumbnail change together.
    const rows = document.querySelectorAll("tr[data-uuid='" + ev.uuid + "']");
    const rowChanged = access || [...rows].some((tr) => tr.dataset.state !== slug);
    if (ev.event === "defined" || gone || rowChanged || !rows.length) refreshList();
    document.dispatchEvent(new CustomEvent("kvmweb:vm", { detail: ev }));
  }

  // The VM list (#vm-table, with its filters and page in the URL) re-read as the partial htmx would fetch. The
  // boxes ticked for a bulk action stay ticked.
  let listing = null;
  function refreshList() {
    const table = document.getElementById("vm-table");
    if (!table) return;
    clearTimeout(listing);
    listing = setTimeout(async () => {
      const html = await fetch(location.pathname + location.search, {
        credentials: "same-origin", headers: { "HX-Request": "true" },
      }).then((r) => (r.ok ? r.text() : null)).catch(() => null);
      if (html === null) return;
      const ticked = new Set([...table.querySelectorAll("input[name=uuid]:checked")].map((el) => el.value));
      table.innerHTML = html;
      table.querySelectorAll("input[name=uuid]").forEach((el) => { el.checked = ticked.has(el.value); });
      if (window.htmx) window.htmx.process(table);
      bulkCount();
    }, 200);
  }

  // The list's bulk bar: "tick all", the count, and the list's current address as where to come back to.
  function bulkCount() {
    const table = document.getElementById("vm-table");
    const count = document.getElementById("bulk-count");
    if (!table || !count) return;
    const boxes = [...table.querySelectorAll("input[name=uuid]")];
    const n = boxes.filter((el) => el.checked).length;
    count.textContent = n ? n + " VM" + (n === 1 ? "" : "s") + " ticked:" : "Tick VMs to act on several at once.";
    table.querySelectorAll("[data-bulk-action]").forEach((b) => { b.disabled = n === 0; });
    const all = document.getElementById("bulk-all");
    if (all) { all.checked = n > 0 && n === boxes.length; all.indeterminate = n > 0 && n < boxes.length; }
  }
  document.addEventListener("change", (ev) => {
    const table = document.getElementById("vm-table");
    if (!table || !table.contains(ev.target)) return;
    if (ev.target.id === "bulk-all") {
      table.querySelectorAll("input[name=uuid]").forEach((el) => { el.checked = ev.target.checked; });
    }
    bulkCount();
  });
  document.addEventListener("submit", (ev) => {
    const next = ev.target.querySelector && ev.target.querySelector("input[name=next]");
    if (next && document.getElementById("vm-table")) next.value = location.pathname + location.search;
  }, true);
  document.addEventListener("htmx:afterSwap", (ev) => { if (ev.target.id === "vm-table") bulkCount(); });

  // Thumbnails of running VMs on the list: re-read every data-thumb-seconds, only those on screen and only
  // while the tab is visible (the server answers from its cache inside that time: one screenshot per VM).
  // A VM without a screen to show has its thumbnail removed.
  document.addEventListener("error", (ev) => {
    if (ev.target.matches && ev.target.matches("img[data-thumb]")) ev.target.remove();
  }, true);
  function thumbs() {
    const table = document.getElementById("vm-table");
    if (!table) return;
    const seconds = Number(table.dataset.thumbSeconds) || 30;
    setInterval(() => {
      if (document.hidden) return;
      table.querySelectorAll("img[data-thumb]").forEach((img) => {
        const r = img.getBoundingClientRect();
        if (r.bottom < 0 || r.top > innerHeight || !img.complete) return;
        const url = new URL(img.src, location.href);
        url.searchParams.set("thumb", String(Math.floor(Date.now() / 1000 / seconds)));
        img.src = url.pathname + url.search;
      });
    }, seconds * 1000);
  }

  // Parts of a page that the server renders from the state (a job page's started/finished times): re-read from
  // the server and swapped in, no reload.
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
    if (ev.state) {
      // A job about the VM of this page started or ended: its parts show the job (and what it changed).
      const page = document.getElementById("vm-page");
      if (page && ev.target_type === "vm" && page.dataset.vmUuid === ev.target) {
        page.querySelectorAll("[data-vm-live]").forEach((part) => refreshPart(part));
        if (ev.finished) refreshHeader(page);
      }
      if (ev.target_type === "vm" && document.getElementById("vm-table")) refreshList();
    }
    if (ev.finished) {
      const cancel = document.getElementById("cancel-form");
      if (cancel && document.querySelector("[data-job-id='" + ev.id + "']")) cancel.hidden = true;
    }
    document.dispatchEvent(new CustomEvent("kvmweb:job", { detail: ev }));
  }

  // A usage sample of the collector (one per host every few seconds, only the VMs this reader may see): the VM
  // list's CPU and memory cells of running rows change in place; the VM page's graphs (static/monitoring/graphs.js)
  // and any other listener get it as a "kvmweb:stats" DOM event.
  function onStats(ev) {
    const human = (window.kvmwebPieces && window.kvmwebPieces.human) || ((b) => Math.round(b) + " B");
    for (const vm of ev.vms || []) {
      document.querySelectorAll("tr[data-uuid='" + vm.uuid + "'][data-state='running']").forEach((tr) => {
        const cpu = tr.querySelector("[data-stat='cpu_pct']");
        if (cpu && vm.cpu_pct !== null && vm.cpu_pct !== undefined) cpu.textContent = vm.cpu_pct.toFixed(1) + " %";
        const mem = tr.querySelector("[data-stat='mem_used_bytes']");
        if (mem && vm.mem_used_bytes !== null && vm.mem_used_bytes !== undefined) mem.textContent = human(vm.mem_used_bytes);
      });
    }
    document.dispatchEvent(new CustomEvent("kvmweb:stats", { detail: ev }));
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
      // a role changed while no socket listened reads the page again like a "shared" event
      const head = document.getElementById("vm-head");
      const role = head && vm && vm.your_role !== head.dataset.role ? "shared" : undefined;
      if (vm && fresh) onVm({ kind: "vm", uuid: m[1], state: vm.state, event: role });
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
      else if (ev.kind === "stats") onStats(ev);
    };
    ws.onclose = () => {
      document.body.dataset.events = "disconnected";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  window.kvmwebEvents = { onVm: onVm, onJob: onJob, onStats: onStats };
  // Parts marked data-vm-lazy (the guest agent's answer, which may take a moment) are not in the page as served:
  // each is read once the page is there, then like any other part.
  document.querySelectorAll("#vm-page [data-vm-live][data-vm-lazy]").forEach((part) => refreshPart(part, true));
  bulkCount();
  thumbs();
  if (document.body.dataset.user) connect();
})();
