// Talking to the flatgroove server: JSON in, JSON out, errors as readable messages.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function check(res) {
  if (res.ok) return res;
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch (_) { /* not JSON: keep the status line */ }
  throw new ApiError(res.status, detail);
}

export async function get(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  return (await check(res)).json();
}

export async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  return (await check(res)).json();
}

export async function upload(path, file, fields = {}) {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  const res = await fetch(path, { method: "POST", body: form });
  return (await check(res)).json();
}

// POST for a file (MIDI export) and hand it to the browser as a download.
export async function download(path, body, filename) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const blob = await (await check(res)).blob();
  saveBlob(blob, filename);
  return blob.size;
}

// Only the latest call matters (a slider): one request in flight, the newest one queued.
export function latest(fn) {
  let running = false;
  let queued = null;
  const run = async (args) => {
    running = true;
    try {
      await fn(...args);
    } finally {
      running = false;
      if (queued) {
        const next = queued;
        queued = null;
        run(next);
      }
    }
  };
  return (...args) => {
    if (running) queued = args;
    else run(args);
  };
}

// Hand a Blob to the browser as a download named `filename`.
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
