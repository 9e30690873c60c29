// The SLA page's charts (uPlot, vendored): the series JSON is embedded in the page (#sla-data) and refreshed
// from /console/sla/<service>/series.json every 30 s. Thresholds are dashed red lines; numbers in people's units.
(() => {
  const RED = "#cf222e", COLOURS = ["#0969da", "#8250df", "#1f883d", "#bf8700", "#57606a"];
  const pct = (v, d = 1) => v == null ? "-" : `${(+v).toFixed(d)} %`;
  const ms = (v) => v == null ? "-" : v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(0)} ms`;
  const times = (v) => v == null ? "-" : `${(+v).toFixed(1)}×`;
  const charts = [];

  function line(label, stroke, fmt, dash) {
    return {label, stroke, width: dash ? 1.5 : 2, dash, value: (u, v) => fmt(v), spanGaps: false};
  }

  function draw(el, title, data, series, fmt) {
    el.replaceChildren();
    if (!data[0].length || data.slice(1).every((ys) => ys.every((y) => y == null))) {
      el.innerHTML = `<p class="muted chart-empty">${title}: no data in this range</p>`;
      return;
    }
    const opts = {
      title, width: Math.max(el.clientWidth, 320), height: 220,
      scales: {x: {time: true}},
      series: [{}, ...series],
      axes: [{}, {values: (u, vals) => vals.map((v) => fmt(v)), size: 70}],
    };
    charts.push(new uPlot(opts, data, el));
  }

  const flat = (xs, v) => xs.map(() => v);

  function render(d) {
    charts.splice(0).forEach((c) => c.destroy());
    const m = d.minutes, th = d.thresholds, b = d.budget;
    const box = (id) => document.getElementById(id);
    draw(box("chart-errors"), "Error rate per minute", [m.t, m.error_rate.map((v) => v == null ? null : v * 100),
      flat(m.t, th.error_rate * 100)],
      [line("error rate", COLOURS[0], pct), line(`trigger ${pct(th.error_rate * 100)}`, RED, pct, [6, 4])], pct);
    const q = Math.round(th.latency_quantile * 100);
    draw(box("chart-latency"), `p${q} latency per minute`, [m.t, m.latency_ms, flat(m.t, th.latency_ms)],
      [line(`p${q}`, COLOURS[1], ms), line(`trigger ${ms(th.latency_ms)}`, RED, ms, [6, 4])], ms);
    const names = Object.keys(d.memory);
    const joined = names.length ? uPlot.join(names.map((n) => [d.memory[n].t, d.memory[n].percent])) : [[]];
    draw(box("chart-memory"), "Memory per instance", [...joined, flat(joined[0], th.memory_percent)],
      [...names.map((n, i) => line(n, COLOURS[i % COLOURS.length], pct)),
       line(`trigger ${pct(th.memory_percent)}`, RED, pct, [6, 4])], pct);
    const factor = (w) => (b.alerts.find((a) => a.long === {"1h": 3600, "6h": 21600, "3d": 259200}[w]) || {}).factor;
    const windows = ["1h", "6h", "3d"].filter((w) => w in b.burn);
    draw(box("chart-burn"), "Burn rate (1 = on schedule for the period)", [b.t, ...windows.map((w) => b.burn[w]),
      ...windows.filter(factor).map((w) => flat(b.t, factor(w)))],
      [...windows.map((w, i) => line(`${w} window`, COLOURS[i], times)),
       ...windows.filter(factor).map((w) => line(`${w} alert ${factor(w)}×`, RED, times, [6, 4]))], times);
    draw(box("chart-budget"), `Error budget left (${(d.objective * 100).toFixed(1)} % over ${d.period_days} days)`,
      [b.t, b.budget_remaining.map((v) => v == null ? null : v * 100), flat(b.t, 0)],
      [line("budget left", COLOURS[2], pct), line("exhausted", RED, pct, [6, 4])], pct);
    document.body.dataset.chartsDrawn = String(charts.length);
  }

  function start() {
    const holder = document.getElementById("sla-data");
    if (!holder || typeof uPlot === "undefined") return;
    render(JSON.parse(holder.textContent));
    const src = holder.dataset.src;
    setInterval(async () => {
      const r = await fetch(src, {credentials: "same-origin"});
      if (r.ok) render(await r.json());
    }, 30000);
  }
  if (document.readyState === "complete") start(); else window.addEventListener("load", start);
})();
