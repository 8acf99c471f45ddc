// Streamed ISO upload: the file is sent in pieces (8 MiB), in order, each PUT to /api/v1/isos/<id>/content/?offset=N.
// Only one piece is in flight; the browser never reads the whole file into memory; the bar shows bytes acknowledged.
// A piece that fails on the way (network, server busy) is retried a few times from where the server says it stands;
// a refusal (bad request, permission, no room) ends the upload, and the unfinished file is deleted.
(function () {
  "use strict";
  const PIECE = 8 * 1024 * 1024;
  const TRIES = 4;
  const form = document.getElementById("iso-upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  const mib = (bytes) => (bytes / 1048576).toFixed(1) + " MiB";

  async function call(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      const fields = body.fields ? " " + Object.values(body.fields).flat().join(" ") : "";
      const err = new Error((body.detail || response.statusText) + fields);
      err.status = response.status;
      throw err;
    }
    return body;
  }

  // Worth another try: no answer at all, a server error, or a piece the server did not expect (409: it says where
  // the upload stands, e.g. after an answer that got lost).
  const retryable = (err) => !err.status || err.status >= 500 || err.status === 409;

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = document.getElementById("upload-file").files[0];
    if (!file) return;
    const host = document.getElementById("upload-host").value;
    const api = form.dataset.api;
    const headers = { "X-CSRFToken": csrf };
    bar.hidden = false; bar.value = 0;
    form.querySelector("button").disabled = true;
    let iso;
    try {
      iso = await call(api, { method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, headers),
        body: JSON.stringify({ host: Number(host), name: file.name, size: file.size }) });
      const started = performance.now();
      let offset = 0;
      let failures = 0;
      while (offset < file.size) {
        const piece = file.slice(offset, Math.min(offset + PIECE, file.size));
        try {
          iso = await call(api + iso.id + "/content/?offset=" + offset, { method: "PUT",
            headers: Object.assign({ "Content-Type": "application/octet-stream" }, headers), body: piece });
          offset = iso.uploaded;
          failures = 0;
        } catch (err) {
          if (!retryable(err) || ++failures >= TRIES) throw err;
          status.textContent = "Trouble sending a piece (" + err.message + "); trying again…";
          await new Promise((done) => setTimeout(done, 500 * failures));
          offset = (await call(api + iso.id + "/")).uploaded;  // where the server says the upload stands
          continue;
        }
        bar.value = Math.round(100 * offset / file.size);
        const rate = offset / Math.max((performance.now() - started) / 1000, 0.001);
        status.textContent = "Uploaded " + mib(offset) + " of " + mib(file.size) + " (" + mib(rate) + "/s)";
      }
      status.textContent = file.name + " is in the library.";
      form.dataset.done = iso.id;
      setTimeout(() => location.reload(), 300);
    } catch (err) {
      status.textContent = "Upload failed: " + err.message;
      form.dataset.failed = "1";
      if (iso) call(api + iso.id + "/", { method: "DELETE", headers: headers }).catch(() => {});
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
})();
