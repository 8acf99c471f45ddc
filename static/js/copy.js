// A "Copy" button, declared in the markup: <button type="button" data-copy="#element-id"> copies that element's
// value (an input, a textarea) or its text, then says so on the button for a moment.
(function () {
  "use strict";

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const text = "value" in source ? source.value : source.textContent;
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(text.trim());
      button.textContent = "Copied";
    } catch (err) {
      source.select && source.select();  // no clipboard (plain http): select it for Ctrl+C
      button.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => { button.textContent = label; }, 2000);
  });
})();
