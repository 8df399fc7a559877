// Swagger UI for /api/v1/docs: loaded as a file, since the page's Content-Security-Policy allows no inline script
"use strict";
window.addEventListener("load", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // no call to an outside validator
    persistAuthorization: false, // the token stays in this page's memory, not in localStorage
  });
});
