/**
 * The approvals pages' one script, served from /assets/ (the CSP allows scripts from 'self'
 * only). It listens to /approvals/events (server-sent events): the inbox refreshes its lists in
 * place when a request arrives or is decided; a request page reloads when its request is decided
 * elsewhere. Without it the pages still work, with their reload link.
 */
export const INBOX_SCRIPT = `'use strict';
(function () {
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var status = document.getElementById('live-status');
  var shown = document.getElementById('approval');
  if (!status && !shown) return;
  var source = new EventSource('/approvals/events');
  var refreshing = false;
  var again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch('/approvals', { credentials: 'same-origin', headers: { accept: 'text/html' } })
      .then(function (answer) {
        if (!answer.ok) throw new Error('status ' + answer.status);
        return answer.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, 'text/html');
        ['pending', 'history'].forEach(function (id) {
          var fresh = page.getElementById(id);
          var old = document.getElementById(id);
          if (fresh && old) old.replaceWith(document.adoptNode(fresh));
        });
      })
      .catch(function () {
        if (status) status.textContent = 'Could not refresh; reload the page.';
      })
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }
  source.addEventListener('approval', function (event) {
    var signal;
    try { signal = JSON.parse(event.data); } catch (e) { return; }
    if (shown) {
      if (signal.id === shown.getAttribute('data-approval') && signal.event !== 'requested' &&
          shown.getAttribute('data-status') === 'pending') window.location.reload();
      return;
    }
    if (signal.event !== 'requested') {
      var items = document.querySelectorAll('#pending [data-approval]');
      for (var i = 0; i < items.length; i++)
        if (items[i].getAttribute('data-approval') === signal.id) items[i].remove();
    }
    refresh();
  });
  // Once listening (again), catch up on whatever happened since the page was rendered.
  source.addEventListener('ready', function () {
    if (status) status.textContent = 'Live: new requests appear here as they arrive.';
    if (!shown) refresh();
  });
  source.addEventListener('error', function () {
    if (status) status.textContent = 'Reconnecting…';
  });
})();
`
