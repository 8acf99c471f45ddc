// The VM page's "Monitoring" section: CPU, memory, disk and network use drawn with Chart.js from the VM's usage
// history (GET /api/v1/vms/{uuid}/stats/?range=1h|1d|30d), one range at a time (the buttons). On the 1 h range the
// collector's live samples ("stats" events of the events socket, handed over by static/events/events.js as
// "kvmweb:stats" DOM events) are added as they arrive, and the oldest fall off. Missing samples are gaps.
(function () {
  "use strict";
  const section = document.getElementById("vm-monitoring");
  if (!section || !window.Chart) return;
  const human = (window.kvmwebPieces && window.kvmwebPieces.human) || ((b) => Math.round(b) + " B");
  const SPAN = { "1h": 3600, "1d": 86400, "30d": 30 * 86400 };
  // chart → its lines (metric, label) and how its values read
  const CHARTS = {
    cpu: { lines: [["cpu_pct", "CPU"]], unit: "pct" },
    memory: { lines: [["mem_used_bytes", "In use"]], unit: "bytes" },
    disk: { lines: [["disk_rd_bps", "Read"], ["disk_wr_bps", "Write"]], unit: "rate" },
    net: { lines: [["net_rx_bps", "Received"], ["net_tx_bps", "Sent"]], unit: "rate" },
  };
  const COLORS = ["#1565c0", "#c62828"];
  const status = document.getElementById("monitoring-status");
  const uuid = section.dataset.vmUuid;
  let range = section.dataset.range || "1h";
  let step = 5;
  let seq = 0;

  function fmt(unit, v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    if (unit === "pct") return v.toFixed(v < 10 ? 1 : 0) + " %";
    return human(v) + (unit === "rate" ? "/s" : "");
  }
  function timeLabel(t) {
    const d = new Date(t * 1000);
    if (range === "30d") return d.toLocaleDateString([], { month: "short", day: "numeric" });
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // Lines are drawn without dots, except a measured point between two gaps (it would not show otherwise).
  function lonely(ctx) {
    const data = ctx.dataset.data;
    const i = ctx.dataIndex;
    const gap = (p) => !p || p.y === null;
    return !gap(data[i]) && gap(data[i - 1]) && gap(data[i + 1]) ? 2 : 0;
  }

  const charts = {};
  for (const [name, spec] of Object.entries(CHARTS)) {
    const canvas = section.querySelector("canvas[data-chart='" + name + "']");
    if (!canvas) continue;
    charts[name] = new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: spec.lines.map(([metric, label], i) => ({
          label: label, metric: metric, data: [], borderColor: COLORS[i], backgroundColor: COLORS[i],
          borderWidth: 1.5, pointRadius: lonely, pointHoverRadius: 3, spanGaps: false, fill: false,
        })),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: {
          legend: { display: spec.lines.length > 1, labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              title: (items) => (items.length ? new Date(items[0].parsed.x * 1000).toLocaleString() : ""),
              label: (item) => item.dataset.label + ": " + fmt(spec.unit, item.parsed.y),
            },
          },
        },
        scales: {
          x: { type: "linear", ticks: { maxTicksLimit: 6, callback: (v) => timeLabel(v) } },
          y: {
            beginAtZero: true, suggestedMax: spec.unit === "pct" ? 100 : undefined,
            ticks: { maxTicksLimit: 5, callback: (v) => fmt(spec.unit, v) },
          },
        },
      },
    });
  }

  function setWindow(chart, end) {
    chart.options.scales.x.min = end - SPAN[range];
    chart.options.scales.x.max = end;
  }

  // The figure after each caption: the latest value of each line.
  function showNow(values) {
    for (const [name, spec] of Object.entries(CHARTS)) {
      const el = section.querySelector("[data-now='" + (name === "disk" || name === "net" ? name : spec.lines[0][0]) + "']");
      if (!el) continue;
      const known = spec.lines.map(([m]) => values[m]).filter((v) => v !== null && v !== undefined);
      el.textContent = known.length ? "· " + spec.lines.map(([m]) => fmt(spec.unit, values[m])).join(" / ") : "";
    }
  }

  async function load(wanted) {
    const mine = ++seq;
    status.textContent = "Loading the usage history…";
    let body = null;
    try {
      const r = await fetch(section.dataset.statsUrl + "?range=" + encodeURIComponent(wanted),
        { credentials: "same-origin", headers: { Accept: "application/json" } });
      body = r.ok ? await r.json() : null;
    } catch (e) { body = null; }
    if (mine !== seq) return;  // a newer range was asked for meanwhile
    if (!body) { status.textContent = "Could not read the usage history."; return; }
    range = body.range;
    step = body.step;
    const last = body.t.length ? body.t[body.t.length - 1] : Math.floor(Date.now() / 1000);
    let measured = 0;
    const latest = {};
    for (const chart of Object.values(charts)) {
      for (const ds of chart.data.datasets) {
        const values = body.values[ds.metric] || [];
        ds.data = body.t.map((t, i) => ({ x: t, y: values[i] === undefined ? null : values[i] }));
        const known = ds.data.filter((p) => p.y !== null);
        measured = Math.max(measured, known.length);
        latest[ds.metric] = known.length ? known[known.length - 1].y : null;
      }
      setWindow(chart, last + step);
      chart.update("none");
    }
    showNow(latest);
    section.dataset.range = range;
    section.dataset.loaded = range;
    const every = step < 60 ? step + " s" : step / 60 + " min";
    status.textContent = measured
      ? "Averages every " + every + (range === "1h" ? "; new samples are added as they come." : ".")
      : "No usage measured in this range yet" + (range === "1h" ? ": samples are added as they come." : ".");
  }

  section.addEventListener("click", (ev) => {
    const button = ev.target.closest && ev.target.closest("button[data-range]");
    if (!button || button.disabled) return;
    section.querySelectorAll("button[data-range]").forEach((b) => {
      const on = b === button;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.classList.toggle("outline", !on);
    });
    load(button.dataset.range);
  });

  // A live sample: on the 1 h range, its point is added (or replaces the point of the same step) and the window
  // moves on; the oldest points fall off.
  document.addEventListener("kvmweb:stats", (ev) => {
    const vm = (ev.detail.vms || []).find((v) => v.uuid === uuid);
    if (!vm) return;
    showNow(vm);
    if (range !== "1h" || section.dataset.loaded !== "1h") return;
    const x = Math.floor(ev.detail.t / step) * step;
    for (const chart of Object.values(charts)) {
      for (const ds of chart.data.datasets) {
        const y = vm[ds.metric] === undefined ? null : vm[ds.metric];
        const end = ds.data.length ? ds.data[ds.data.length - 1] : null;
        if (end && end.x === x) end.y = y;
        else if (!end || end.x < x) ds.data.push({ x: x, y: y });
        while (ds.data.length && ds.data[0].x <= x - SPAN["1h"]) ds.data.shift();
      }
      setWindow(chart, x + step);
      chart.update("none");
    }
    section.dataset.live = String(ev.detail.t);
    if (status.textContent.startsWith("No usage")) {
      status.textContent = "Averages every " + step + " s; new samples are added as they come.";
    }
  });

  load(range);
})();
