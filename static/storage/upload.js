// Upload a disk image as a new volume, in pieces: POST {size} makes the volume and the upload's job, then each
// 4 MiB piece is PUT in order at ?offset=<bytes sent so far> (one piece in flight; the browser never reads the
// whole file, the web process never holds more than one piece). The bar follows the bytes acknowledged.
// If a piece fails, the unfinished upload is deleted (DELETE), so no half-written volume stays behind.
(function () {
  "use strict";
  const PIECE = 4 * 1024 * 1024;
  const form = document.getElementById("volume-upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";

  async function call(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    const body = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.detail || `${response.status} ${response.statusText}`);
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    const name = form.elements.name.value.trim();
    if (!file || !name) return;
    const url = form.dataset.urlTemplate.replace("__name__", encodeURIComponent(name));
    const headers = { "X-CSRFToken": csrf };
    const button = form.querySelector("button[type=submit]");
    bar.hidden = false;
    bar.value = 0;
    button.disabled = true;
    status.textContent = "Starting the upload…";
    let started = false;
    try {
      let state = await call(url, { method: "POST", body: JSON.stringify({ size: file.size }),
        headers: Object.assign({ "Content-Type": "application/json" }, headers) });
      started = true;
      const piece = Math.min(PIECE, state.max_piece || PIECE);
      while (!state.complete) {
        const offset = state.offset;
        state = await call(`${url}?offset=${offset}`, { method: "PUT", body: file.slice(offset, offset + piece),
          headers: Object.assign({ "Content-Type": "application/octet-stream" }, headers) });
        bar.value = Math.floor((100 * state.offset) / state.size);
        status.textContent = `Uploading… ${bar.value}% (${state.offset} of ${state.size} bytes)`;
      }
      bar.value = 100;
      status.textContent = `Uploaded ${state.volume.name} (${state.volume.format}).`;
      window.setTimeout(() => window.location.reload(), 800);
    } catch (err) {
      status.textContent = `The upload failed: ${err.message}`;
      form.dataset.failed = "1";
      if (started) call(url, { method: "DELETE", headers: headers }).catch(() => {});
    } finally {
      button.disabled = false;
    }
  });
})();
