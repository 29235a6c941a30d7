/* The report's few controls: expand or collapse every cell, open the cell a link goes to. */
(function () {
  document.documentElement.className += " js";
  document.querySelectorAll("button[data-open]").forEach(function (button) {
    button.addEventListener("click", function () {
      var open = button.getAttribute("data-open") === "1";
      document.querySelectorAll(".cell > details").forEach(function (d) { d.open = open; });
    });
  });
  document.querySelectorAll(".strip a, .verdict a").forEach(function (a) {
    a.addEventListener("click", function () {
      var target = document.getElementById(a.getAttribute("href").slice(1));
      var details = target && target.querySelector("details");
      if (details) { details.open = true; }
    });
  });
})();
