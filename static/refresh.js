// Reloads a workload page every few seconds while it is starting, so its
// progress shows without a click (progressive enhancement: without JavaScript
// the page offers a reload link). The person can stop it (WCAG 2.2.1), and it
// never reloads while they are typing in a field or have text selected.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const note = document.getElementById("auto-refresh");
  if (!note) {
    return;
  }
  const seconds = Number(note.dataset.seconds) || 5;
  let timer = null;
  const busy = () => {
    const active = document.activeElement;
    const typing = active && ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName);
    const selecting = String(window.getSelection() || "") !== "";
    return typing || selecting;
  };
  const schedule = () => {
    timer = setTimeout(() => {
      if (busy()) {
        schedule();
      } else {
        window.location.reload();
      }
    }, seconds * 1000);
  };
  const stop = document.createElement("button");
  stop.type = "button";
  stop.className = "copy-button secondary";
  stop.textContent = "Stop reloading";
  stop.addEventListener("click", () => {
    clearTimeout(timer);
    note.textContent = "Reloading stopped.";
  });
  note.textContent = `This page reloads itself every ${seconds} seconds until it is done. `;
  note.append(stop);
  schedule();
});
