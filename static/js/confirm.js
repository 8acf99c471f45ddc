// A question before a destructive action, declared in the markup: the Content-Security-Policy forbids inline
// handlers such as onsubmit="return confirm(...)".
//   <form method="post" data-confirm="Delete disk.qcow2? Its data is gone for good."> asks before it is sent;
//   <button type="submit" data-confirm="..."> asks for that button (its question wins over the form's);
//   <a href="..." data-confirm="...">, or any other element htmx sends a request from, asks on click.
// "Cancel" stops the event before anything else sees it (htmx too). Content htmx swaps in later works the same.
(function () {
  "use strict";

  function stop(event) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }

  document.addEventListener("submit", (event) => {
    const question = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
    if (question && !window.confirm(question)) stop(event);
  }, true);

  document.addEventListener("click", (event) => {
    const el = event.target.closest("[data-confirm]");
    if (!el || el.tagName === "FORM" || (el.form && el.type === "submit")) return; // forms ask when submitted
    if (!window.confirm(el.dataset.confirm)) stop(event);
  }, true);
})();
