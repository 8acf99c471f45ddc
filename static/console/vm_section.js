// The Console section of a VM's page. The page loads none of noVNC: pressing "Console" imports console.js (and
// noVNC with it) and mounts the console inline. One listener on the document, so a re-rendered section needs no
// new script run.
let mounted = null;  // { root, console } of the inline console mounted last

async function openInline(button) {
  const section = button.closest("#console-section");
  const box = section && section.querySelector("#console-inline");
  const root = box && box.querySelector(".kvm-console");
  if (!root) return;
  box.hidden = false;
  const thumb = section.querySelector(".console-thumb");
  if (thumb) thumb.hidden = true;
  button.setAttribute("aria-expanded", "true");
  if (mounted && mounted.root === root) return;
  if (mounted) { mounted.console.stop(); mounted = null; }  // the section was re-rendered: drop the old console
  button.setAttribute("aria-busy", "true");
  try {
    const { mountConsole } = await import(button.dataset.module);
    mounted = { root, console: mountConsole(root) };
    window.kvmConsole = mounted.console;
  } catch (err) {
    const state = root.querySelector(".console-state");
    state.dataset.state = "refused";
    state.textContent = `The console could not be loaded (${err.message}): reload the page.`;
  } finally {
    button.removeAttribute("aria-busy");
  }
}

document.addEventListener("click", (ev) => {
  const button = ev.target.closest && ev.target.closest("#console-open-inline");
  if (button) openInline(button);
});
