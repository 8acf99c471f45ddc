// Sending a file in pieces, in order, one piece in flight: the browser never reads the whole file into memory and
// the web process never holds more than one piece (the server streams a piece into libvirt as it arrives where it
// can: kvmweb/core/asgi.py). Used by the media libraries' and the storage pools' uploads.
//
// A piece that fails on the way (no answer, a server error, or 409: the server did not expect that offset, e.g.
// after an answer got lost) is sent again from where the server says the upload stands, a few times; any other
// refusal ends the upload (the caller then deletes the unfinished file).
(function () {
  "use strict";
  const TRIES = 4;

  // fetch() with the session cookie; JSON in and out; an error carries the server's message and HTTP status.
  async function call(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      const fields = body.fields ? " " + Object.values(body.fields).flat().join(" ") : "";
      const err = new Error((body.detail || response.status + " " + response.statusText) + fields);
      err.status = response.status;
      throw err;
    }
    return body;
  }

  const retryable = (err) => !err.status || err.status >= 500 || err.status === 409;
  // Sizes as the portal writes them everywhere (kvmweb.hypervisor.human, the |bytes filter): binary units, at
  // most two decimals, trailing zeros dropped: 1536 → "1.5 KiB", 20983808 → "20.01 MiB".
  function human(bytes) {
    let value = Number(bytes) || 0;
    for (const unit of ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]) {
      if (Math.abs(value) < 1024 || unit === "PiB") return value.toFixed(2).replace(/\.?0+$/, "") + " " + unit;
      value /= 1024;
    }
    return bytes + " B";
  }

  // send(offset, blob) → the server's answer; next(answer) → the next offset; where() → the offset the server
  // has; progress(offset, bytesPerSecond, note). Resolves to the last answer.
  async function sendInPieces(file, { piece, send, next, where, progress }) {
    const started = performance.now();
    let offset = 0;
    let failures = 0;
    let answer = null;
    while (offset < file.size) {
      try {
        answer = await send(offset, file.slice(offset, Math.min(offset + piece, file.size)));
        offset = next(answer);
        failures = 0;
      } catch (err) {
        if (!retryable(err) || ++failures >= TRIES) throw err;
        progress(offset, 0, "Trouble sending a piece (" + err.message + "); trying again…");
        await new Promise((done) => setTimeout(done, 500 * failures));
        offset = await where();
        continue;
      }
      progress(offset, offset / Math.max((performance.now() - started) / 1000, 0.001), "");
    }
    return answer;
  }

  // The usual progress display: a <progress> bar and a status line.
  function showOn(bar, status, size) {
    return (offset, rate, note) => {
      bar.value = Math.floor((100 * offset) / size);
      status.textContent = note || "Sent " + human(offset) + " of " + human(size) + " (" + human(rate) + "/s)";
    };
  }

  window.kvmwebPieces = { call, sendInPieces, showOn, human };
})();
