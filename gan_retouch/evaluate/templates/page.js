// gan-retouch comparison page: sorting, pagination, before/after sliders and the 100% zoom viewer.
(function () {
  "use strict";
  const table = document.getElementById("image-table");
  const body = table.tBodies[0];
  const pagers = [document.getElementById("pager"), document.getElementById("pager-bottom")];
  const pageSize = Number(pagers[0].dataset.pageSize) || 50;
  const modelSelect = document.getElementById("sort-model");
  let page = 0;
  let sort = { key: "index", descending: false };

  function rows() { return Array.from(body.rows); }

  function value(row, key) {
    if (key === "index") return Number(row.dataset.index);
    const model = modelSelect ? modelSelect.value : "0";
    const number = parseFloat(row.getAttribute("data-m" + model + "-" + key));
    return Number.isNaN(number) ? null : number;
  }

  function showPage(index) {
    const all = rows();
    const pages = Math.max(1, Math.ceil(all.length / pageSize));
    page = Math.min(Math.max(0, index), pages - 1);
    all.forEach((row, i) => { row.hidden = Math.floor(i / pageSize) !== page; });
    pagers.forEach((pager) => {
      pager.replaceChildren();
      if (pages < 2) return;
      for (let p = 0; p < pages; p++) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = String(p + 1);
        button.title = "images " + (p * pageSize + 1) + "-" + Math.min(all.length, (p + 1) * pageSize);
        if (p === page) button.className = "current";
        button.addEventListener("click", () => showPage(p));
        pager.appendChild(button);
      }
    });
  }

  function sortBy(key, descending) {
    sort = { key: key, descending: descending };
    const sorted = rows().sort((a, b) => {
      const x = value(a, key), y = value(b, key);
      if (x === null && y === null) return Number(a.dataset.index) - Number(b.dataset.index);
      if (x === null) return 1;  // undefined values (e.g. no mask) go last
      if (y === null) return -1;
      return descending ? y - x : x - y;
    });
    sorted.forEach((row) => body.appendChild(row));
    table.querySelectorAll(".sortable").forEach((th) => {
      th.classList.toggle("sorted-desc", th.dataset.sort === key && descending);
      th.classList.toggle("sorted-asc", th.dataset.sort === key && !descending);
    });
    showPage(0);
  }

  table.querySelectorAll(".sortable").forEach((header) => {
    const toggle = () => {
      const best = header.dataset.higher === "1";  // first click: best first
      sortBy(header.dataset.sort, sort.key === header.dataset.sort ? !sort.descending : best);
    };
    header.addEventListener("click", toggle);
    header.addEventListener("keydown", (event) => { if (event.key === "Enter") toggle(); });
  });
  if (modelSelect) modelSelect.addEventListener("change", () => sortBy(sort.key, sort.descending));

  table.querySelectorAll("input.slider").forEach((slider) => {
    const compare = slider.previousElementSibling;
    slider.addEventListener("input", () => compare.style.setProperty("--pos", slider.value + "%"));
  });

  // 100% viewer: the clicked image at its natural size, with the row's other images one key away.
  const zoom = document.getElementById("zoom");
  const view = document.getElementById("zoom-view");
  const zoomImage = document.getElementById("zoom-image");
  const buttons = document.getElementById("zoom-buttons");
  let choices = [];
  let current = 0;

  function select(index) {
    current = (index + choices.length) % choices.length;
    zoomImage.src = choices[current].src;
    zoomImage.alt = choices[current].label;
    Array.from(buttons.children).forEach((b, i) => b.classList.toggle("current", i === current));
  }

  function open(image, event) {
    const row = image.closest("tr");
    choices = Array.from(row.querySelectorAll("img.zoomable")).map((img) => ({ src: img.src, label: img.dataset.label }));
    document.getElementById("zoom-title").textContent = row.dataset.name;
    buttons.replaceChildren(...choices.map((choice, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = (i + 1) + " " + choice.label;
      button.addEventListener("click", () => select(i));
      return button;
    }));
    select(choices.findIndex((c) => c.src === image.src));
    zoom.hidden = false;
    const box = image.getBoundingClientRect();
    const fx = (event.clientX - box.left) / box.width, fy = (event.clientY - box.top) / box.height;
    const center = () => {
      view.scrollLeft = fx * zoomImage.naturalWidth - view.clientWidth / 2;
      view.scrollTop = fy * zoomImage.naturalHeight - view.clientHeight / 2;
    };
    if (zoomImage.complete) center(); else zoomImage.addEventListener("load", center, { once: true });
  }

  table.addEventListener("click", (event) => {
    const target = event.target.closest(".compare") ? event.target.closest(".compare").querySelector("img.after") : event.target;
    if (target && target.classList && target.classList.contains("zoomable")) open(target, event);
  });
  document.getElementById("zoom-close").addEventListener("click", () => { zoom.hidden = true; });
  document.addEventListener("keydown", (event) => {
    if (zoom.hidden) return;
    if (event.key === "Escape") zoom.hidden = true;
    else if (event.key === "ArrowRight") select(current + 1);
    else if (event.key === "ArrowLeft") select(current - 1);
    else if (/^[1-9]$/.test(event.key) && Number(event.key) <= choices.length) select(Number(event.key) - 1);
  });

  showPage(0);
})();
