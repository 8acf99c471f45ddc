// ISO upload from the library page: POST {host, name, size} makes the medium and its job, then the file goes in
// 4 MiB pieces, each PUT to /api/v1/isos/<id>/content/?offset=N (static/js/pieces.js: in order, one in flight,
// retried from where the server stands). If the upload fails, the unfinished file is deleted.
(function () {
  "use strict";
  const PIECE = 4 * 1024 * 1024;
  const form = document.getElementById("iso-upload");
  if (!form) return;
  const { call, sendInPieces, showOn } = window.kvmwebPieces;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];

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
      await sendInPieces(file, {
        piece: PIECE,
        send: (offset, blob) => call(api + iso.id + "/content/?offset=" + offset, { method: "PUT", body: blob,
          headers: Object.assign({ "Content-Type": "application/octet-stream" }, headers) }),
        next: (answer) => answer.uploaded,
        where: async () => (await call(api + iso.id + "/")).uploaded,
        progress: showOn(bar, status, file.size),
      });
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
