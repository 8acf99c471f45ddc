// Upload from a media library page (ISOs, disk images): POST {host, name, size, ...the form's [data-field] inputs}
// to the form's data-api makes the file's row and its job, then the file goes in 16 MiB pieces (the server's
// MAX_PIECE), each PUT to <api><id>/content/?offset=N (static/js/pieces.js: in order, one in flight, retried from
// where the server stands). If the upload fails (a disk image the server refuses at its last piece, too), the
// unfinished file is deleted.
(function () {
  "use strict";
  const PIECE = 16 * 1024 * 1024;
  const form = document.getElementById("iso-upload") || document.getElementById("image-upload");
  if (!form) return;
  const { call, sendInPieces, showOn } = window.kvmwebPieces;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];

  // what else the form asks (e.g. an image's OS): inputs marked data-field, by name
  const extra = () => Object.fromEntries(Array.from(form.querySelectorAll("[data-field]"))
    .map((el) => [el.name, el.type === "checkbox" ? el.checked : el.value]));

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
        body: JSON.stringify(Object.assign(extra(), { host: Number(host), name: file.name, size: file.size })) });
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
