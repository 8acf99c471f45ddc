// The text console's page (/console/<uuid>/text/): the guest's serial port in xterm.js, connected at once.
import { mountTerminal } from "./terminal.js";

const root = document.querySelector(".kvm-terminal");
if (root) window.kvmTerminal = mountTerminal(root);
