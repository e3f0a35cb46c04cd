/**
 * The console's policy editor script, served from /assets/ (the CSP allows scripts from 'self'
 * only). While the operator types, it sends the text (debounced) to the form's `data-validate`
 * endpoint with the session's CSRF token in `x-csrf-token`, lists the problems it answers (line,
 * column, message) in the live region named by `data-problems`, and marks the textarea
 * `aria-invalid`. Without it the page still works: the text is checked when it is saved.
 */
export const POLICY_EDITOR_SCRIPT = `'use strict';
(function () {
  if (!window.fetch || !window.JSON) return;
  var WAIT_MS = 400;
  function sentence(p) {
    return 'Line ' + p.line + ', column ' + p.column + ': ' +
      (p.policy_id ? 'policy ' + p.policy_id + ', ' : '') + p.message +
      (p.help ? ' (' + p.help + ')' : '');
  }
  Array.prototype.forEach.call(document.querySelectorAll('form[data-validate]'), function (form) {
    var text = form.querySelector('textarea[name="text"]');
    var csrf = form.querySelector('input[name="csrf_token"]');
    var idField = form.querySelector('input[name="id"]');
    var region = document.getElementById(form.getAttribute('data-problems') || '');
    if (!text || !csrf || !region) return;
    var status = region.querySelector('[data-check]');
    var list = region.querySelector('ul');
    var timer = null;
    var asked = 0;
    var shown = null;
    function show(problems, note) {
      // The region is live: the same answer again is not announced again.
      var key = JSON.stringify([problems, note]);
      if (key === shown) return;
      shown = key;
      list.textContent = '';
      problems.forEach(function (p) {
        var item = document.createElement('li');
        item.textContent = sentence(p);
        list.appendChild(item);
      });
      list.hidden = problems.length === 0;
      status.textContent = note;
      status.className = problems.length > 0 ? 'alert error' : 'muted';
      if (problems.length > 0) text.setAttribute('aria-invalid', 'true');
      else text.removeAttribute('aria-invalid');
    }
    function check() {
      var mine = ++asked;
      if (text.value.trim() === '') { show([], ''); return; }
      var body = { text: text.value };
      var id = form.getAttribute('data-policy-id') || (idField ? idField.value.trim() : '');
      if (id) body.id = id;
      fetch(form.getAttribute('data-validate'), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf.value },
        body: JSON.stringify(body)
      })
        .then(function (answer) {
          return answer.json().then(function (json) { return { ok: answer.ok, json: json }; });
        })
        .then(function (answer) {
          if (mine !== asked) return;
          if (!answer.ok) {
            show([], 'Not checked: ' + (answer.json.message || 'refused') + '.');
          } else if (answer.json.valid) {
            show([], 'No problems: the text is valid against the schema.');
          } else {
            var n = answer.json.problems.length;
            show(answer.json.problems, n === 1 ? '1 problem:' : n + ' problems:');
          }
        })
        .catch(function () {
          if (mine === asked) show([], 'Could not check the text; saving checks it.');
        });
    }
    function later() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(check, WAIT_MS);
    }
    text.addEventListener('input', later);
    if (idField) idField.addEventListener('input', later);
  });
})();
`
