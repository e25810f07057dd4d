// The live staff dashboard: redraws the server's snapshot from every frame of /ws/staff/dashboard (a fresh
// figures document on connect, on a change and every few seconds) and draws the per-minute chart as SVG.
// Without a socket the page is the server's snapshot; the table stays as the chart's plain fallback.
(function () {
  "use strict";
  const root = document.getElementById("staff-dashboard");
  if (!root || !window.WebSocket) return;
  const SVG = "http://www.w3.org/2000/svg";
  const chart = root.querySelector("[data-chart=per-minute]");
  const table = root.querySelector(".dashboard-table tbody");
  let figures = JSON.parse(document.getElementById("dashboard-figures").textContent);
  let reconnectAttempts = 0;

  function pick(doc, path) {
    return path.split(".").reduce(function (value, key) { return value == null ? null : value[key]; }, doc);
  }

  function shown(value, path) {
    if (value == null) return "n/a";
    if (path.indexOf("time_to_outcome.p") === 0) return (Math.round(value * 100) / 100).toString();
    return String(value);
  }

  function cell(tag, text) {
    const element = document.createElement(tag);
    element.textContent = text;
    return element;
  }

  function drawTable(doc) {
    const rows = doc.per_minute.slice().reverse().map(function (row) {
      const tr = document.createElement("tr");
      const head = cell("th", row.minute.slice(11, 16));
      head.scope = "row";
      tr.appendChild(head);
      doc.series.forEach(function (name) { tr.appendChild(cell("td", String(row[name]))); });
      return tr;
    });
    table.replaceChildren.apply(table, rows);
  }

  function svg(tag, attributes) {
    const element = document.createElementNS(SVG, tag);
    Object.keys(attributes).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    return element;
  }

  // Stacked bars, one per minute, one colour per outcome (dashboard.css).
  function drawChart(doc) {
    const width = 960, height = 220, left = 32, bottom = 18;
    const minutes = doc.per_minute;
    const totals = minutes.map(function (row) {
      return doc.series.reduce(function (sum, name) { return sum + row[name]; }, 0);
    });
    const peak = Math.max(1, Math.max.apply(null, totals));
    const step = (width - left) / minutes.length;
    const scale = (height - bottom - 4) / peak;
    const drawing = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "Outcomes per minute" });
    drawing.appendChild(svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }));
    const top = svg("text", { x: 0, y: 10 });
    top.textContent = String(peak);
    drawing.appendChild(top);
    minutes.forEach(function (row, index) {
      let y = height - bottom;
      doc.series.forEach(function (name) {
        if (!row[name]) return;
        const h = row[name] * scale;
        y -= h;
        const bar = svg("rect", {
          class: "bar-" + name, x: left + index * step + 1, y: y, width: Math.max(1, step - 2), height: h,
          "data-minute": row.minute, "data-series": name, "data-count": row[name],
        });
        const tip = svg("title", {});
        tip.textContent = row.minute.slice(11, 16) + " " + name + ": " + row[name];
        bar.appendChild(tip);
        drawing.appendChild(bar);
      });
      if (index % 5 === 0) {
        const label = svg("text", { x: left + index * step, y: height - 4 });
        label.textContent = row.minute.slice(11, 16);
        drawing.appendChild(label);
      }
    });
    chart.replaceChildren(drawing);
    chart.hidden = false;
  }

  function apply(doc) {
    figures = doc;
    root.querySelectorAll("[data-figure]").forEach(function (element) {
      const path = element.dataset.figure;
      if (path === "live") return;
      element.textContent = shown(pick(doc, path), path);
      if (path === "at") element.setAttribute("datetime", doc.at);
    });
    root.querySelectorAll("[data-total]").forEach(function (element) {
      const name = element.dataset.total;
      element.textContent = String(doc.per_minute.reduce(function (sum, row) { return sum + row[name]; }, 0));
    });
    drawTable(doc);
    drawChart(doc);
  }

  function setLive(on, text) {
    root.dataset.live = on ? "on" : "off";
    root.querySelector("[data-figure=live]").textContent = text;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + root.dataset.socketPath);
    socket.addEventListener("open", function () { reconnectAttempts = 0; setLive(true, "live"); });
    socket.addEventListener("message", function (event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (error) { return; }
      if (frame && frame.type === "dashboard.figures") apply(frame.figures);
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4403) { setLive(false, "not live: your account may not watch the dashboard"); return; }
      setLive(false, "reconnecting…");
      reconnectAttempts += 1;
      setTimeout(connect, Math.min(30000, 1000 * Math.pow(2, reconnectAttempts - 1)));
    });
  }

  apply(figures);
  connect();
})();
