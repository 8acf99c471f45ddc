// Form controls that act when they change, declared in the markup (no inline onchange: Content-Security-Policy).
//   <select data-autosubmit>            submits its form (a filter);
//   <select data-reload-param="host">   reloads the page with ?host=<the new value> (a form whose choices depend
//                                        on that value, like the New VM wizard's host).
(function () {
  "use strict";
  document.addEventListener("change", (event) => {
    const el = event.target;
    if (!(el instanceof HTMLElement)) return;
    if (el.dataset.reloadParam) {
      const url = new URL(window.location.href);
      url.searchParams.set(el.dataset.reloadParam, el.value);
      window.location.assign(url);
    } else if ("autosubmit" in el.dataset && el.form) {
      el.form.requestSubmit();
    }
  });
})();
