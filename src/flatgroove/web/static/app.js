// flatgroove's page: loads the model's facts, the built-in grooves and the latent map, then
// runs one of three views over the shared map: Explore (paths, no engine), Pad (a 2-D blend
// of four corners) and Jam (live).

import { get } from "./api.js";
import { Explorer } from "./explorer.js";
import { JamView } from "./jam.js";
import { LatentMap, markSvg } from "./map.js";
import { Pad } from "./pad.js";
import { Player } from "./synth.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["explore", "pad", "jam"];
const HINTS = {
  explore: "click a groove or anywhere: target · shift-click: source",
  pad: "click a groove or anywhere: fills the lit corner of the pad, then the next",
  jam: "click a groove or anywhere: the machine's target · D drummer · M machine · T target",
};
const MODES = { Digit1: "answer", Digit2: "accompany", Digit3: "morph" };

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
    this.map.onPick = (sel, e) => {
      if (sel.far) {
        this.toast(`That spot is ${sel.far.distance.toFixed(2)} from the nearest groove in the data; `
          + `the model only guesses out there (rolls, silence). Took the point in that direction at the `
          + `edge of the data instead (${sel.far.reach.toFixed(2)} from it).`, "info");
      }
      if (this.view === "jam") this.jam.pick(sel);
      else if (this.view === "pad") this.pad.pick(sel);
      else this.explorer.pick(sel, e);
    };
    this.explorer = new Explorer(this);
    this.pad = new Pad(this);
    this.jam = new JamView(this);
    this.jam.init();
    for (const b of document.querySelectorAll(".tab")) {
      b.addEventListener("click", () => this.show(b.dataset.view));
    }
    document.addEventListener("keydown", (e) => this.key(e));
    const mapData = get("/api/map").then((d) => this.setMap(d));
    await Promise.all([this.explorer.init(), this.pad.init()]);
    await mapData;
    this.explorer.updateMap();
    const want = location.hash.slice(1);
    if (VIEWS.includes(want)) this.show(want);
  }

  // The keyboard, as on a drum machine: Space plays / stops (explore, pad) or listens (jam);
  // arrows move α (shift: finely) or the pad's puck; 1 2 3 pick the jam's mode; R records.
  key(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest && t.closest("input, select, textarea")) return;
    if (e.code === "Space") {
      if (t.closest && t.closest("button")) return; // a focused button takes its own Space
      e.preventDefault();
      if (this.view === "jam") this.jam.toggleListen();
      else if (this.player.playing) this.player.stop();
      else if (this.view === "pad") this.pad.play();
      else this.explorer.playGroove();
      return;
    }
    const step = e.shiftKey ? 0.01 : 0.05;
    const arrows = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (arrows[e.code]) {
      const [dx, dy] = arrows[e.code];
      if (this.view === "pad") this.pad.nudge(dx, dy);
      else if (!dx) return; // up / down: leave the page's scrolling alone
      else if (this.view === "jam") this.jam.nudgeAlpha(dx);
      else this.explorer.setAlpha(Math.round((this.explorer.alpha + dx) * 100) / 100);
      e.preventDefault();
      return;
    }
    if (MODES[e.code] && this.view === "jam") {
      e.preventDefault();
      this.jam.setMode(MODES[e.code]);
    } else if (e.code === "KeyR" && this.view === "jam") {
      e.preventDefault();
      this.jam.toggleRecord();
    }
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
    // Hover a style to see it alone on the map; click to keep it so (click again: all).
    let pinned = null;
    d.style_names.forEach((s, i) => {
      const el = document.createElement("button");
      el.className = "legend-item";
      el.dataset.style = String(i);
      el.title = `${s}: hover to see it alone, click to keep it so`;
      el.innerHTML = `${markSvg(i)}${s}`;
      el.addEventListener("mouseenter", () => pinned === null && this.map.setFocusStyle(i));
      el.addEventListener("mouseleave", () => pinned === null && this.map.setFocusStyle(null));
      el.addEventListener("click", () => {
        pinned = pinned === i ? null : i;
        legend.querySelectorAll(".legend-item").forEach((b) => b.classList.toggle("on", Number(b.dataset.style) === pinned));
        this.map.setFocusStyle(pinned);
      });
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
    for (const v of VIEWS) $(`view-${v}`).hidden = view !== v;
    this.player.stop();
    $("map-hint").textContent = HINTS[view];
    if (view === "jam") {
      this.jam.activate();
    } else {
      this.jam.deactivate();
      if (view === "pad") {
        this.pad.draw();
        this.pad.updateMap();
      } else {
        this.explorer.updateMap();
      }
    }
    history.replaceState(null, "", view === "explore" ? "#" : `#${view}`);
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
