// Define-a-network form: a bridged network has no addresses of its own, so hide the address fields for it.
(function () {
  const form = document.getElementById("network-form");
  if (!form) return;
  const addressFields = ["subnet", "gateway", "dhcp_start", "dhcp_end", "hosts", "domain"];
  function update() {
    const mode = (form.querySelector("input[name=mode]:checked") || {}).value;
    for (const name of addressFields) {
      const label = form.querySelector(".field-" + name);
      if (label) label.hidden = mode === "bridge";
    }
  }
  form.addEventListener("change", update);
  update();
})();
