/**
 * The passkey pages' script, served from /assets/ after @simplewebauthn/browser's prebuilt bundle
 * (which defines `SimpleWebAuthnBrowser`; the CSP allows scripts from 'self' only). On the sign-in
 * page it shows "Sign in with a passkey"; on the security page, the form that adds one. Both ask
 * Deputy for options, hand them to the browser's WebAuthn, and send the answer back as JSON with
 * the page's CSRF token in `X-CSRF-Token`. A browser without WebAuthn (or without script) never
 * sees the buttons; the password form works as before.
 */
export const PASSKEY_SCRIPT = `'use strict';
(function () {
  var lib = window.SimpleWebAuthnBrowser;
  if (!lib || !window.fetch || !lib.browserSupportsWebAuthn()) return;

  function post(path, csrf, body) {
    return fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf, accept: 'application/json' },
      body: JSON.stringify(body)
    }).then(function (answer) {
      return answer.json().catch(function () { return {}; }).then(function (json) {
        if (!answer.ok) throw new Error(json.message || 'Deputy refused (' + answer.status + ').');
        return json;
      });
    });
  }
  function say(status, text) {
    status.textContent = text;
    status.hidden = !text;
  }
  function browserWords(err) {
    // A person who closes the browser's dialog gets NotAllowedError: nothing went wrong.
    if (err && err.name === 'NotAllowedError') return 'The passkey request was cancelled or timed out.';
    return (err && err.message) || 'Something went wrong.';
  }

  var signIn = document.getElementById('passkey-sign-in');
  if (signIn) {
    var signInStatus = document.getElementById('passkey-status');
    var form = document.querySelector('form[action="/login"]');
    var csrf = form.querySelector('input[name="csrf_token"]').value;
    var returnTo = form.querySelector('input[name="return_to"]').value;
    signIn.hidden = false;
    signIn.closest('section').hidden = false;
    signIn.addEventListener('click', function () {
      signIn.disabled = true;
      say(signInStatus, '');
      post('/login/passkey/options', csrf, {})
        .then(function (answer) { return lib.startAuthentication({ optionsJSON: answer.options }); })
        .then(function (response) {
          return post('/login/passkey', csrf, { response: response, return_to: returnTo });
        })
        .then(function (answer) { window.location.assign(answer.redirect); })
        .catch(function (err) {
          say(signInStatus, browserWords(err));
          signIn.disabled = false;
        });
    });
  }

  var register = document.getElementById('passkey-register');
  if (register) {
    var registerStatus = document.getElementById('passkey-register-status');
    var token = register.querySelector('input[name="csrf_token"]').value;
    register.hidden = false;
    var unsupported = document.getElementById('passkey-unsupported');
    if (unsupported) unsupported.hidden = true;
    register.addEventListener('submit', function (event) {
      event.preventDefault();
      var button = register.querySelector('button');
      var name = register.querySelector('input[name="name"]').value;
      button.disabled = true;
      say(registerStatus, '');
      post('/account/security/passkeys/options', token, {})
        .then(function (answer) { return lib.startRegistration({ optionsJSON: answer.options }); })
        .then(function (response) {
          return post('/account/security/passkeys', token, { name: name, response: response });
        })
        .then(function () { window.location.assign('/account/security?added'); })
        .catch(function (err) {
          say(registerStatus, browserWords(err));
          button.disabled = false;
        });
    });
  }
})();
`
