// The workload page's terminal: a shell in the container over Berth's
// WebSocket, drawn by xterm.js (served from /static/vendor/, pinned in
// web/package-lock.json). Progressive enhancement: without JavaScript, or in a
// build without xterm.js, the page keeps the kubectl command and says why.
// Frames: keystrokes go as binary, the terminal size as text {"cols","rows"};
// output comes back as binary, Berth's own notices as text.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("[data-shell-socket]");
  if (!panel) {
    return;
  }
  const status = panel.querySelector("[data-shell-status]");
  const open = panel.querySelector("[data-shell-open]");
  const screen = panel.querySelector("[data-shell-terminal]");
  panel.hidden = false;
  if (typeof window.Terminal !== "function") {
    open.disabled = true;
    status.textContent =
      "The terminal is unavailable in this build of Berth: use the kubectl command above.";
    return;
  }
  const encoder = new TextEncoder();
  let socket = null;

  open.addEventListener("click", () => {
    if (socket) {
      return;
    }
    open.disabled = true;
    status.textContent = "Opening a shell…";
    screen.replaceChildren();
    const terminal = new window.Terminal({ convertEol: false, cursorBlink: true, rows: 24, cols: 80 });
    terminal.open(screen);
    const url = new URL(panel.dataset.shellSocket, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    const sendSize = () => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ cols: terminal.cols, rows: terminal.rows }));
      }
    };
    socket.addEventListener("open", () => {
      status.textContent = "Connected.";
      sendSize();
      terminal.focus();
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") {
        terminal.write(`\r\n\x1b[1m${event.data}\x1b[0m\r\n`);
        status.textContent = event.data;
      } else {
        terminal.write(new Uint8Array(event.data));
      }
    });
    socket.addEventListener("close", () => {
      socket = null;
      open.disabled = false;
      open.textContent = "Open another shell";
      if (status.textContent === "Connected." || status.textContent === "Opening a shell…") {
        status.textContent = "The shell closed.";
      }
    });
    terminal.onData((data) => {
      if (socket && socket.readyState === WebSocket.OPEN) {
        socket.send(encoder.encode(data));
      }
    });
    terminal.onResize(sendSize);
  });
});
