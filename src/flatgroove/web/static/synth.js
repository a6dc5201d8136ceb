// A small drum kit synthesised with Web Audio (oscillators and noise), and a step player
// that schedules ahead on the audio clock so grooves play in time, micro-timing included.

const NOISE_SECONDS = 1.5;

export class Kit {
  constructor(ctx) {
    this.ctx = ctx;
    this.played = 0; // hits scheduled so far (for the tests)
    this.out = ctx.createGain();
    this.out.gain.value = 0.8;
    const comp = ctx.createDynamicsCompressor();
    comp.threshold.value = -12;
    comp.ratio.value = 4;
    this.out.connect(comp).connect(ctx.destination);
    const n = Math.floor(ctx.sampleRate * NOISE_SECONDS);
    this.noise = ctx.createBuffer(1, n, ctx.sampleRate);
    const d = this.noise.getChannelData(0);
    let seed = 12345; // deterministic noise: the same groove always sounds the same
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      d[i] = (seed / 0x3fffffff) - 1;
    }
  }

  env(t, peak, decay, attack = 0.001) {
    const g = this.ctx.createGain();
    g.gain.setValueAtTime(0.0001, t);
    g.gain.exponentialRampToValueAtTime(Math.max(peak, 0.0002), t + attack);
    g.gain.exponentialRampToValueAtTime(0.0001, t + attack + decay);
    g.connect(this.out);
    return g;
  }

  noiseSrc(t, dur) {
    const s = this.ctx.createBufferSource();
    s.buffer = this.noise;
    s.start(t, Math.random() * 0.5);
    s.stop(t + dur);
    return s;
  }

  tone(t, type, f0, f1, sweep, peak, decay) {
    const o = this.ctx.createOscillator();
    o.type = type;
    o.frequency.setValueAtTime(f0, t);
    o.frequency.exponentialRampToValueAtTime(f1, t + sweep);
    o.connect(this.env(t, peak, decay));
    o.start(t);
    o.stop(t + decay + 0.05);
  }

  filtered(t, type, freq, q, peak, decay) {
    const f = this.ctx.createBiquadFilter();
    f.type = type;
    f.frequency.value = freq;
    f.Q.value = q;
    this.noiseSrc(t, decay + 0.05).connect(f).connect(this.env(t, peak, decay));
  }

  metal(t, base, peak, decay) {
    // Square waves at inharmonic ratios through a high-pass: the classic analogue cymbal.
    const hp = this.ctx.createBiquadFilter();
    hp.type = "highpass";
    hp.frequency.value = 7000;
    const g = this.env(t, peak, decay);
    hp.connect(g);
    for (const r of [2, 3, 4.16, 5.43, 6.79, 8.21]) {
      const o = this.ctx.createOscillator();
      o.type = "square";
      o.frequency.value = base * r;
      o.connect(hp);
      o.start(t);
      o.stop(t + decay + 0.05);
    }
  }

  // drum: 0 kick, 1 snare, 2 closed hh, 3 open hh, 4-6 toms, 7 crash, 8 ride; vel in 0..1
  play(drum, t, vel) {
    this.played += 1;
    const v = Math.pow(Math.max(0.05, Math.min(1, vel)), 1.4);
    switch (drum) {
      case 0:
        this.tone(t, "sine", 160, 45, 0.09, 1.0 * v, 0.38);
        this.filtered(t, "lowpass", 1200, 0.7, 0.12 * v, 0.02);
        break;
      case 1:
        this.tone(t, "triangle", 220, 160, 0.05, 0.45 * v, 0.1);
        this.filtered(t, "bandpass", 1900, 0.8, 0.7 * v, 0.17);
        this.filtered(t, "highpass", 5000, 0.7, 0.25 * v, 0.09);
        break;
      case 2:
        this.filtered(t, "highpass", 7500, 0.9, 0.35 * v, 0.045);
        this.metal(t, 40, 0.05 * v, 0.04);
        break;
      case 3:
        this.filtered(t, "highpass", 7000, 0.9, 0.3 * v, 0.32);
        this.metal(t, 40, 0.05 * v, 0.3);
        break;
      case 4:
      case 5:
      case 6: {
        const f = [95, 130, 175][drum - 4];
        this.tone(t, "sine", f * 1.5, f, 0.12, 0.8 * v, 0.34);
        this.filtered(t, "lowpass", 900, 0.7, 0.06 * v, 0.04);
        break;
      }
      case 7:
        this.filtered(t, "highpass", 4500, 0.7, 0.35 * v, 1.3);
        this.metal(t, 47, 0.06 * v, 1.1);
        break;
      case 8:
        this.filtered(t, "bandpass", 8500, 1.5, 0.18 * v, 0.45);
        this.metal(t, 52, 0.05 * v, 0.6);
        break;
      default:
        break;
    }
  }
}

const LOOKAHEAD = 0.12; // seconds scheduled ahead of the audio clock
const TICK_MS = 25;

export class Player {
  constructor() {
    this.ctx = null;
    this.kit = null;
    this.timer = null;
    this.job = null;
    this.visual = [];
    this.raf = null;
  }

  // The AudioContext, created (and resumed) on first use, from a user gesture.
  ensure() {
    if (!this.ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      this.ctx = new AC({ latencyHint: "interactive" });
      this.kit = new Kit(this.ctx);
    }
    if (this.ctx.state !== "running") this.ctx.resume();
    return this.ctx;
  }

  get state() {
    return this.ctx ? this.ctx.state : "none";
  }

  get playing() {
    return this.job !== null;
  }

  // job: { groove(cycle) -> groove or null (null ends), tempo() -> BPM, onStep(cycle, step),
  // onEnd() }. A cycle is one 2-bar groove; the groove is asked for at every step, so a
  // change (the α slider) is heard within a step.
  start(job) {
    this.stop();
    const ctx = this.ensure();
    this.job = { ...job, cycle: 0, step: 0, t: ctx.currentTime + 0.06 };
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.tick();
    const draw = () => {
      const now = this.ctx.currentTime;
      let last = null;
      while (this.visual.length && this.visual[0].t <= now) last = this.visual.shift();
      if (last && this.job && this.job.onStep) this.job.onStep(last.cycle, last.step);
      if (last && last.end) this.finish();
      if (this.job) this.raf = requestAnimationFrame(draw);
    };
    this.raf = requestAnimationFrame(draw);
  }

  tick() {
    const j = this.job;
    if (!j) return;
    const now = this.ctx.currentTime;
    while (j.t - 0.5 * this.stepDur(j) < now + LOOKAHEAD) {
      const g = j.groove(j.cycle);
      if (!g) {
        this.visual.push({ t: j.t, cycle: j.cycle, step: -1, end: true });
        clearInterval(this.timer);
        this.timer = null;
        return;
      }
      const dur = this.stepDur(j, g);
      const s = j.step;
      for (let d = 0; d < 9; d++) {
        if (g.hits[s][d]) {
          const t = Math.max(now, j.t + g.offsets[s][d] * dur);
          this.kit.play(d, t, g.velocities[s][d]);
        }
      }
      this.visual.push({ t: j.t, cycle: j.cycle, step: s });
      j.t += dur;
      j.step += 1;
      if (j.step >= 32) {
        j.step = 0;
        j.cycle += 1;
      }
    }
  }

  stepDur(j, g) {
    const bpm = (j.tempo && j.tempo()) || (g && g.tempo) || 120;
    return 60 / bpm / 4;
  }

  finish() {
    const j = this.job;
    this.stop();
    if (j && j.onEnd) j.onEnd();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    if (this.raf) cancelAnimationFrame(this.raf);
    this.timer = null;
    this.raf = null;
    const j = this.job;
    this.job = null;
    this.visual = [];
    if (j && j.onStep) j.onStep(-1, -1);
  }

  // One note at an audio-clock time (the jam's stream).
  hit(drum, t, vel) {
    this.ensure();
    this.kit.play(drum, Math.max(this.ctx.currentTime, t), vel);
  }
}
