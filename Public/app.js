// Small progressive enhancements; every page works without this file.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

// The segment builder: a changed menu (field, condition, AND/OR) refreshes the rules and the count at once;
// without JavaScript the "Update the count" button does the same.
document.addEventListener("change", function (event) {
  var target = event.target;
  if (!target.hasAttribute || !target.hasAttribute("data-refresh")) return;
  var button = document.getElementById("refresh-button");
  if (button) button.click();
});

// The import mapping: the list of columns that will not be imported follows the menus.
document.addEventListener("change", function (event) {
  if (!event.target.hasAttribute || !event.target.hasAttribute("data-mapping")) return;
  var names = [];
  document.querySelectorAll("select[data-mapping]").forEach(function (select) {
    if (select.value !== "") return;
    var label = document.querySelector('label[for="' + select.id + '"]');
    names.push(label ? label.getAttribute("data-column-name") : select.id);
  });
  var box = document.getElementById("unmapped");
  var list = document.getElementById("unmapped-names");
  if (!box || !list) return;
  list.textContent = names.join(", ");
  box.hidden = names.length === 0;
});

// The bulk form: only the chosen action's inputs are shown; without JavaScript, "Show its options" asks the server.
document.querySelectorAll("[data-without-js]").forEach(function (el) { el.hidden = true; });
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target.hasAttribute && target.hasAttribute("data-action-menu")) {
    document.querySelectorAll("[data-actions]").forEach(function (el) {
      el.hidden = el.getAttribute("data-actions").split(" ").indexOf(target.value) < 0;
    });
  }
  // A field chosen in the last visible row opens the next one.
  if (target.hasAttribute && target.hasAttribute("data-field-menu") && target.value !== "") {
    var row = target.closest("[data-field-row]");
    var next = row && document.querySelector('[data-field-row="' + (parseInt(row.getAttribute("data-field-row"), 10) + 1) + '"]');
    if (next) next.hidden = false;
  }
});

// "Copy link" buttons copy their field; without JavaScript they stay hidden and the field can be selected by hand.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    if (navigator.clipboard) navigator.clipboard.writeText(field.value);
    else document.execCommand("copy");
    button.textContent = "Copied";
  });
});
