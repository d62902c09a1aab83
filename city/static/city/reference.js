// Starts Swagger UI on City's OpenAPI document (a file, not an inline script: the page's CSP allows only its own scripts).
window.addEventListener("load", function () {
  var root = document.getElementById("reference");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // Swagger UI would otherwise ask validator.swagger.io about the document
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    tryItOutEnabled: false,
  });
});
