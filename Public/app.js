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
