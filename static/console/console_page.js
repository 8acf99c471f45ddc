// The console's own page (/console/<uuid>/): the graphical console, connected at once.
import { mountConsole } from "./console.js";

const root = document.querySelector(".kvm-console");
if (root) window.kvmConsole = mountConsole(root);
