// The reviewer page's drop zone: a file dropped on it becomes the form's chosen file. The
// file input stays the real, keyboard-usable control; this only adds dropping.
"use strict";

(function () {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("bundle");
  if (!zone || !input) return;
  const help = document.getElementById("drop-help");
  const over = (on) => (event) => { event.preventDefault(); zone.classList.toggle("over", on); };
  zone.addEventListener("dragenter", over(true));
  zone.addEventListener("dragover", over(true));
  zone.addEventListener("dragleave", over(false));
  zone.addEventListener("drop", (event) => {
    over(false)(event);
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || files.length !== 1) {
      if (help) help.textContent = "Drop exactly one bundle file.";
      return;
    }
    input.files = files;
    if (help) help.textContent = `Chosen: ${files[0].name}`;
  });
})();
