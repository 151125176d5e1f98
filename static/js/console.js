// traysvc request console: optional enhancements. The form works without this file.
(() => {
  "use strict";
  const form = document.getElementById("console-form");
  if (!form) return;
  const service = form.querySelector("#id_service");
  const auth = form.querySelector("#id_authentication");
  const path = form.querySelector("#id_path");

  // Only the authentications made for the chosen service are offered.
  function filterAuthentications() {
    if (!service || !auth) return;
    const chosen = service.value;
    const picked = service.options[service.selectedIndex];
    const connector = picked ? picked.dataset.connector : "";
    let selectedVisible = false;
    for (const option of auth.options) {
      if (!option.value) continue;
      const fits = option.dataset.service === chosen ||
        (!option.dataset.service && !!connector && option.dataset.connector === connector);
      option.hidden = !fits;
      option.disabled = !fits;
      if (fits && option.selected) selectedVisible = true;
    }
    if (!selectedVisible) {
      const first = Array.from(auth.options).find((o) => o.value && !o.disabled);
      auth.value = first ? first.value : "";
    }
    if (path) path.setAttribute("list", "endpoints-" + chosen);
  }

  // Show only the body inputs the chosen body type uses.
  function showBodyInputs() {
    const checked = form.querySelector("input[name=body_type]:checked");
    const type = checked ? checked.value : "none";
    for (const block of form.querySelectorAll("[data-body-types]")) {
      block.hidden = !block.dataset.bodyTypes.split(" ").includes(type);
    }
  }

  if (service) service.addEventListener("change", filterAuthentications);
  form.addEventListener("change", (event) => {
    if (event.target.name === "body_type") showBodyInputs();
  });
  filterAuthentications();
  showBodyInputs();

  // A refused or invalid call (404/422) still has a result panel worth showing.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if ((status === 404 || status === 422) && event.detail.target.id === "result") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
