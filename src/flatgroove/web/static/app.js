// flatgroove's page: loads the model's facts, the built-in grooves and the latent map, then
// runs one of two views over the shared map: Explore (paths, no engine) and Jam (live).

import { get } from "./api.js";
import { Explorer } from "./explorer.js";
import { JamView } from "./jam.js";
import { LatentMap, STYLE_COLORS } from "./map.js";
import { Player } from "./synth.js";

const $ = (id) => document.getElementById(id);

class App {
  constructor() {
    this.view = "explore";
    this.player = new Player();
    this.map = new LatentMap($("map"), $("map-tip"));
    this.toastTimer = null;
  }

  toast(text, kind = "error") {
    const t = $("toast");
    t.textContent = text;
    t.className = `toast ${kind === "info" ? "info" : ""}`;
    t.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (t.hidden = true), kind === "info" ? 3000 : 6000);
  }

  async start() {
    const [info, grooves] = await Promise.all([get("/api/info"), get("/api/grooves")]);
    this.info = info;
    this.grooves = grooves;
    const m = info.model;
    $("model-info").innerHTML = `<b>${m.name}</b> · ${m.variant} · d = ${m.latent_dim}`;
    this.map.onPick = (sel, e) => (this.view === "jam" ? this.jam.pick(sel) : this.explorer.pick(sel, e));
    this.explorer = new Explorer(this);
    this.jam = new JamView(this);
    this.jam.init();
    for (const b of document.querySelectorAll(".tab")) {
      b.addEventListener("click", () => this.show(b.dataset.view));
    }
    // Space: play / stop (explore), listen / mute (jam), as on any drum machine.
    document.addEventListener("keydown", (e) => {
      if (e.code !== "Space" || e.target.closest("input, select, textarea, button")) return;
      e.preventDefault();
      if (this.view === "jam") this.jam.toggleListen();
      else if (this.player.playing) this.player.stop();
      else this.explorer.playGroove();
    });
    const mapData = get("/api/map").then((d) => this.setMap(d));
    await this.explorer.init();
    await mapData;
    this.explorer.updateMap();
    if (location.hash === "#jam") this.show("jam");
  }

  setMap(d) {
    this.map.setData(d);
    $("map-note").textContent = d.note;
    const axes = d.method === "pca" && d.explained
      ? ` · axes: PC1 ${(100 * d.explained[0]).toFixed(0)}%, PC2 ${(100 * d.explained[1]).toFixed(0)}% of variance`
      : d.method === "latent" ? " · axes: the latent space itself" : "";
    $("map-note").title = d.note + axes;
    const legend = $("legend");
    legend.innerHTML = "";
    d.style_names.forEach((s, i) => {
      const el = document.createElement("span");
      el.innerHTML = `<i style="background:${STYLE_COLORS[i % STYLE_COLORS.length]}"></i>${s}`;
      legend.appendChild(el);
    });
    const el = document.createElement("span");
    el.innerHTML = `<i style="background:#15171c;box-shadow:0 0 0 2px #e9e6df"></i>built-in groove`;
    legend.appendChild(el);
  }

  show(view) {
    if (view === this.view) return;
    this.view = view;
    for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.view === view);
    $("view-explore").hidden = view !== "explore";
    $("view-jam").hidden = view !== "jam";
    this.player.stop();
    if (view === "jam") {
      $("map-hint").textContent = "click a groove or anywhere: the machine's target · D drummer · M machine · T target";
      this.jam.activate();
    } else {
      $("map-hint").textContent = "click a groove or anywhere: target · shift-click: source";
      this.jam.deactivate();
      this.explorer.updateMap();
    }
    history.replaceState(null, "", view === "jam" ? "#jam" : "#");
  }
}

const app = new App();
window.flatgroove = app; // for the browser tests and the curious
app.start().then(
  () => document.body.setAttribute("data-ready", "1"),
  (err) => {
    app.toast(`could not start: ${err.message}`);
    document.body.setAttribute("data-ready", "error");
  },
);
