// Live updates of the incident pages: the feed (server-sent events) says that
// something changed; the page fetches its main part again, rendered and escaped
// by the server, and keeps what the reader had open.
(() => {
  "use strict";
  const main = document.getElementById("main");
  const live = document.getElementById("live");
  if (!main || !main.dataset.live) return;
  const incident = main.dataset.incident || "";
  const reports = new Map(); // report address + version -> its HTML, so a refresh does not reload it
  let timer = null;

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function duration(seconds) {
    if (seconds < 10) return seconds.toFixed(1) + " s";
    if (seconds < 60) return Math.round(seconds) + " s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + String(Math.floor(seconds % 60)).padStart(2, "0") + " s";
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }

  function tick() {
    const now = Date.now() / 1000;
    for (const element of main.querySelectorAll("[data-since]")) {
      element.textContent = duration(now - Number(element.dataset.since));
    }
  }

  async function loadReport() {
    const section = document.getElementById("report");
    if (!section || !section.dataset.report) return;
    const key = section.dataset.report + "@" + section.dataset.version;
    const body = section.querySelector(".report-body");
    if (!reports.has(key)) {
      const response = await fetch(section.dataset.report, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      reports.set(key, await response.text());
    }
    body.innerHTML = reports.get(key);
  }

  async function refresh() {
    const open = new Set([...main.querySelectorAll("details[open]")].map((d) => d.id || d.dataset.file || d.className));
    let response;
    try {
      response = await fetch(main.dataset.live, { credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      return; // the feed's own reconnect shows the state
    }
    if (response.redirected || response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      return;
    }
    if (!response.ok) return;
    main.innerHTML = await response.text();
    for (const details of main.querySelectorAll("details")) {
      if (open.has(details.id || details.dataset.file || details.className)) details.open = true;
    }
    tick();
    loadReport();
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  }

  const feed = new EventSource("/api/v1/events" + (incident ? "?incident=" + encodeURIComponent(incident) : ""));
  feed.addEventListener("hello", () => {
    setLive("live", "live");
    schedule();
  });
  feed.addEventListener("incident", schedule);
  feed.addEventListener("error", () => {
    setLive("down", "reconnecting…");
    if (feed.readyState === EventSource.CLOSED) refresh(); // refused: a refresh leads to sign-in
  });
  setInterval(tick, 1000);
  loadReport();
})();
