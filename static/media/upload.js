// Streamed ISO upload: the file is sent in pieces (8 MiB), in order, each PUT to /api/v1/isos/<id>/content/?offset=N.
// Only one piece is in flight; the browser never reads the whole file into memory; the bar shows bytes acknowledged.
(function () {
  "use strict";
  const PIECE = 8 * 1024 * 1024;
  const form = document.getElementById("iso-upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];

  async function call(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      const fields = body.fields ? " " + Object.values(body.fields).flat().join(" ") : "";
      throw new Error((body.detail || response.statusText) + fields);
    }
    return body;
  }

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
      for (let offset = 0; offset < file.size; offset += PIECE) {
        const piece = file.slice(offset, Math.min(offset + PIECE, file.size));
        await call(api + iso.id + "/content/?offset=" + offset, { method: "PUT",
          headers: Object.assign({ "Content-Type": "application/octet-stream" }, headers), body: piece });
        bar.value = Math.round(100 * Math.min(offset + PIECE, file.size) / file.size);
        status.textContent = "Uploaded " + Math.min(offset + PIECE, file.size) + " of " + file.size + " bytes";
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
