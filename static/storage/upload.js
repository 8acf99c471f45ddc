// Upload a disk image as a new volume, in pieces: POST {size} makes the volume and the upload's job, then each
// piece (16 MiB, or the server's max_piece) is PUT in order at ?offset=<bytes sent so far> (static/js/pieces.js:
// one piece in flight, retried from where the server stands). The bar follows the bytes acknowledged. If the
// upload fails, the unfinished upload is deleted (DELETE), so no half-written volume stays behind.
(function () {
  "use strict";
  const PIECE = 16 * 1024 * 1024;
  const form = document.getElementById("volume-upload");
  if (!form) return;
  const { call, sendInPieces, showOn } = window.kvmwebPieces;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";

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
      const begun = await call(url, { method: "POST", body: JSON.stringify({ size: file.size }),
        headers: Object.assign({ "Content-Type": "application/json" }, headers) });
      started = true;
      const state = await sendInPieces(file, {
        piece: Math.min(PIECE, begun.max_piece || PIECE),
        send: (offset, blob) => call(`${url}?offset=${offset}`, { method: "PUT", body: blob,
          headers: Object.assign({ "Content-Type": "application/octet-stream" }, headers) }),
        next: (answer) => answer.offset,
        where: async () => (await call(url)).offset,
        progress: showOn(bar, status, file.size),
      });
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
