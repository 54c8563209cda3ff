// Copy buttons for the commands a page shows (progressive enhancement: without
// JavaScript the commands are still plain, selectable text). Loaded with
// <script src defer>; the CSP forbids inline script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) {
    return;
  }
  for (const block of document.querySelectorAll("pre.command")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-button secondary";
    button.textContent = "Copy";
    const status = document.createElement("span");
    status.className = "copy-status";
    status.setAttribute("role", "status");
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(block.innerText.trim());
        status.textContent = "Copied.";
      } catch {
        status.textContent = "Could not copy: select the text instead.";
      }
      setTimeout(() => { status.textContent = ""; }, 3000);
    });
    const bar = document.createElement("div");
    bar.className = "copy-bar";
    bar.append(button, status);
    block.after(bar);
  }
});
