// A Standard MIDI File writer (type 1) for what the page records: a conductor track with the
// tempo map and markers, then one track per part (the drummer, the machine) on channel 10.

import { saveBlob } from "./api.js";

function vlq(n) {
  n = Math.max(0, Math.round(n));
  const out = [n & 0x7f];
  n >>= 7;
  while (n > 0) {
    out.unshift((n & 0x7f) | 0x80);
    n >>= 7;
  }
  return out;
}

function text(s) {
  return [...new TextEncoder().encode(s.slice(0, 120))];
}

function meta(type, data) {
  return [0xff, type, ...vlq(data.length), ...data];
}

// events: [[tick, order, bytes]]; sorted by tick (then order: note-offs before note-ons)
function chunk(events) {
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const body = [];
  let now = 0;
  for (const [tick, , bytes] of events) {
    const t = Math.max(0, Math.round(tick));
    body.push(...vlq(t - now), ...bytes);
    now = t;
  }
  body.push(0x00, ...meta(0x2f, []));
  const n = body.length;
  return [0x4d, 0x54, 0x72, 0x6b, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, ...body];
}

// tempos: [[tick, bpm]]; markers: [[tick, text]];
// tracks: [{name, channel (0-based), notes: [[tick, pitch, velocity 1..127, duration ticks]]}]
export function writeMidi({ tpq = 480, tempos = [[0, 120]], markers = [], tracks = [], title = "" }) {
  const cond = [[0, 0, meta(0x58, [4, 2, 24, 8])]];
  if (title) cond.push([0, 0, meta(0x03, text(title))]);
  for (const [tick, bpm] of tempos) {
    const us = Math.round(60e6 / bpm);
    cond.push([tick, 1, meta(0x51, [(us >> 16) & 0xff, (us >> 8) & 0xff, us & 0xff])]);
  }
  for (const [tick, s] of markers) cond.push([tick, 2, meta(0x06, text(s))]);
  const chunks = [chunk(cond)];
  for (const tr of tracks) {
    const ch = tr.channel ?? 9;
    const ev = [[0, 0, meta(0x03, text(tr.name || ""))]];
    for (const [tick, pitch, vel, dur] of tr.notes) {
      ev.push([tick, 2, [0x90 | ch, pitch & 0x7f, Math.max(1, Math.min(127, vel))]]);
      ev.push([tick + Math.max(1, dur), 1, [0x80 | ch, pitch & 0x7f, 0]]);
    }
    chunks.push(chunk(ev));
  }
  const n = chunks.length;
  const header = [0x4d, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 1, (n >> 8) & 0xff, n & 0xff, (tpq >> 8) & 0xff, tpq & 0xff];
  return new Uint8Array([...header, ...chunks.flat()]);
}

export function saveBytes(bytes, filename, type = "audio/midi") {
  saveBlob(new Blob([bytes], { type }), filename);
}
