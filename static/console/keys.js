// Text to keystrokes of a US keyboard, for "Paste as keys…". No noVNC here: the paste dialog uses it to say which
// characters cannot be typed before anything is sent.
//
// The guest receives key presses, not characters: each character becomes the key a US keyboard has for it (its
// KeyboardEvent.code, which noVNC turns into the scancode QEMU's extended key event carries), with Shift held for
// the characters that need it. Anything else (accented letters, other scripts, emoji, control characters) has no
// key on that keyboard and cannot be typed reliably, so it is skipped and listed.

const SYMBOLS = {
  " ": ["Space", false], "`": ["Backquote", false], "~": ["Backquote", true],
  "-": ["Minus", false], "_": ["Minus", true], "=": ["Equal", false], "+": ["Equal", true],
  "[": ["BracketLeft", false], "{": ["BracketLeft", true], "]": ["BracketRight", false], "}": ["BracketRight", true],
  "\\": ["Backslash", false], "|": ["Backslash", true], ";": ["Semicolon", false], ":": ["Semicolon", true],
  "'": ["Quote", false], "\"": ["Quote", true], ",": ["Comma", false], "<": ["Comma", true],
  ".": ["Period", false], ">": ["Period", true], "/": ["Slash", false], "?": ["Slash", true],
  "!": ["Digit1", true], "@": ["Digit2", true], "#": ["Digit3", true], "$": ["Digit4", true],
  "%": ["Digit5", true], "^": ["Digit6", true], "&": ["Digit7", true], "*": ["Digit8", true],
  "(": ["Digit9", true], ")": ["Digit0", true],
};

export const KEYSYM = {
  ctrl: 0xffe3, alt: 0xffe9, shift: 0xffe1, enter: 0xff0d, tab: 0xff09, f1: 0xffbe,
};

// One key stroke: the X keysym (for servers without QEMU's extended key events), the key's code, Shift or not.
function stroke(ch) {
  if (ch === "\n" || ch === "\r\n" || ch === "\r") return { ch, keysym: KEYSYM.enter, code: "Enter", shift: false };
  if (ch === "\t") return { ch, keysym: KEYSYM.tab, code: "Tab", shift: false };
  if (ch.length !== 1) return null;
  if (ch >= "a" && ch <= "z") return { ch, keysym: ch.charCodeAt(0), code: `Key${ch.toUpperCase()}`, shift: false };
  if (ch >= "A" && ch <= "Z") return { ch, keysym: ch.charCodeAt(0), code: `Key${ch}`, shift: true };
  if (ch >= "0" && ch <= "9") return { ch, keysym: ch.charCodeAt(0), code: `Digit${ch}`, shift: false };
  const sym = SYMBOLS[ch];
  return sym ? { ch, keysym: ch.charCodeAt(0), code: sym[0], shift: sym[1] } : null;
}

// How a character that cannot be typed is shown to a person: itself when it is visible, and its code point.
export function describeChar(ch) {
  const cp = ch.codePointAt(0);
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  const visible = !/[\p{C}\p{Z}]/u.test(ch);
  return visible ? `${ch} (${hex})` : hex;
}

// The plan for a text: the strokes to send, in order, and the characters skipped (each distinct one once, in the
// order they first appear, with how often it occurs).
export function planKeys(text) {
  const strokes = [];
  const skipped = new Map();
  // "\r\n" is one Enter; so is a lone "\r" or "\n". Iterating a string yields whole code points (emoji included).
  const chars = Array.from(text.replace(/\r\n?/g, "\n"));
  for (const ch of chars) {
    const s = stroke(ch);
    if (s) strokes.push(s);
    else skipped.set(ch, (skipped.get(ch) || 0) + 1);
  }
  return {
    strokes,
    skipped: Array.from(skipped, ([ch, count]) => ({ ch, count, label: describeChar(ch) })),
  };
}
