// Swagger UI (swagger-ui-dist from npm) on the portal's API page (templates/api_docs.html), with no inline script:
// the schema URL and settings come from data-* attributes. Requests that change something carry the CSRF token of
// the logged-in session, as the portal's own pages do.
//
// The page is the portal's: its <main>, its <h1> and introduction. Swagger UI's own layout would add a second
// <main> and a title of its own, so it is drawn here with "PortalLayout": Swagger's parts (errors, authorize,
// filter, operations, schemas) under a <h2>, without its info block (the page's introduction says the same).
// Deep links are off: they put a link inside each operation's toggle button (a control inside a control).
(function () {
  "use strict";
  const box = document.getElementById("swagger-ui");
  if (!box || !window.SwaggerUIBundle) return;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
  let settings = {};
  try { settings = JSON.parse(box.dataset.settings || "{}"); } catch (e) { settings = {}; }

  function PortalLayoutPlugin(system) {
    const h = system.React.createElement;
    function PortalLayout(props) {
      const get = props.getComponent;
      const Errors = get("errors", true);
      const status = props.specSelectors.loadingStatus();
      if (status === "loading") return h("p", { className: "muted", "aria-busy": "true" }, "Loading the API description…");
      if (status === "failed" || status === "failedConfig" || !props.specSelectors.specStr()) {
        return h("div", { className: "swagger-ui" }, h("p", { className: "msg msg-error" },
          "The API description could not be loaded."), h(Errors));
      }
      const Authorize = get("AuthorizeBtnContainer", true);
      return h("div", { className: "swagger-ui" },
        h(get("SvgAssets")),
        h(Errors),
        h("h2", null, "Endpoints"),
        props.specSelectors.securityDefinitions() ? h("div", { className: "scheme-container" }, h(Authorize)) : null,
        h(get("FilterContainer", true)),
        h("div", { id: "operations" }, h(get("operations", true)), h(get("Models", true))));
    }
    return { components: { PortalLayout } };
  }

  box.textContent = "";
  window.SwaggerUIBundle(Object.assign({}, settings, {
    url: box.dataset.schemaUrl,
    domNode: box,
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [PortalLayoutPlugin],
    layout: "PortalLayout",
    deepLinking: false,
    requestInterceptor: (request) => {
      if (!["GET", "HEAD", undefined].includes(request.method) && csrf) request.headers[box.dataset.csrfHeader] = csrf;
      return request;
    },
  }));
})();
