// Upload a disk image as a new volume: the file goes as the request body (streamed by the browser), the server
// passes it to libvirt chunk by chunk. The progress bar follows the bytes sent.
(function () {
  const form = document.getElementById("volume-upload");
  if (!form) return;
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.elements.file.files[0];
    const name = form.elements.name.value.trim();
    if (!file || !name) return;
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", form.dataset.urlTemplate.replace("__name__", encodeURIComponent(name)));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading…";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        bar.value = Math.floor((100 * e.loaded) / e.total);
        status.textContent = `Uploading… ${bar.value}%`;
      }
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (_e) { /* not JSON */ }
      if (xhr.status === 201) {
        bar.value = 100;
        status.textContent = `Uploaded ${body.name} (${body.format}).`;
        window.setTimeout(() => window.location.reload(), 800);
      } else {
        status.textContent = body.detail || `The upload failed (${xhr.status}).`;
      }
    };
    xhr.onerror = () => { status.textContent = "The upload failed: the connection broke."; };
    xhr.send(file);
  });
})();
