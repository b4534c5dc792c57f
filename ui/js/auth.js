// Sign in and account creation: one form that switches between the two.
import { $ } from './dom.js';
import { api, describe } from './api.js';
import * as session from './session.js';

let mode = 'signin';

function setMode(next) {
  mode = next;
  const creating = mode === 'register';
  $('auth-title').textContent = creating ? 'Create an account' : 'Sign in';
  $('auth-submit').textContent = creating ? 'Create account' : 'Sign in';
  $('auth-switch').textContent = creating ? 'I already have an account' : 'Create an account';
  $('auth-password').autocomplete = creating ? 'new-password' : 'current-password';
  $('auth-password-hint').hidden = !creating;
  $('auth-error').textContent = '';
}

/** Checks the form before sending it: the server checks again, this only saves a round trip. */
function invalidField(email, password) {
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) return ['auth-email', 'Enter a valid email address.'];
  if (mode === 'register' && password.length < 8) {
    return ['auth-password', 'The password needs at least 8 characters.'];
  }
  if (password.length === 0) return ['auth-password', 'Enter your password.'];
  return null;
}

/** `onSignedIn()` runs once a token is saved. */
export function initAuth(onSignedIn) {
  $('auth-switch').addEventListener('click', () => {
    setMode(mode === 'signin' ? 'register' : 'signin');
    $('auth-email').focus();
  });
  $('auth-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const email = $('auth-email').value.trim();
    const password = $('auth-password').value;
    const errorText = $('auth-error');
    for (const id of ['auth-email', 'auth-password']) $(id).removeAttribute('aria-invalid');
    const invalid = invalidField(email, password);
    if (invalid) {
      errorText.textContent = invalid[1];
      $(invalid[0]).setAttribute('aria-invalid', 'true');
      $(invalid[0]).focus();
      return;
    }
    const submit = $('auth-submit');
    submit.disabled = true;
    errorText.textContent = '';
    try {
      if (mode === 'register') await api.register(email, password);
      const token = await api.login(email, password);
      session.save(token.access_token, token.expires_in);
      $('auth-password').value = '';
      setMode('signin');
      onSignedIn();
    } catch (error) {
      errorText.textContent = describe(error);
    } finally {
      submit.disabled = false;
    }
  });
}

/** Shows the sign-in form, with `message` (e.g. "session expired") if given. */
export function showSignIn(message = '') {
  setMode('signin');
  $('auth-error').textContent = message;
  $('auth-view').hidden = false;
  $('app-view').hidden = true;
  $('account').hidden = true;
  $('auth-email').focus();
}
