// Entry point: decides between the sign-in form and the workspace, and wires the parts.
import { $ } from './dom.js';
import { api, onUnauthorized } from './api.js';
import * as session from './session.js';
import { initAuth, showSignIn } from './auth.js';
import { initDocuments, startDocuments, stopDocuments } from './documents.js';
import { initChat, startChat, stopChat } from './chat.js';
import { initDialogs } from './dialogs.js';
import { initNotice, hideNotice } from './notice.js';

function enterWorkspace(user) {
  hideNotice();
  $('account-email').textContent = user.email;
  $('account').hidden = false;
  $('auth-view').hidden = true;
  $('app-view').hidden = false;
  startDocuments();
  startChat();
  $('prompt').focus();
}

function leaveWorkspace(message) {
  session.clear();
  stopDocuments();
  stopChat();
  showSignIn(message);
}

async function resume() {
  if (!session.token()) {
    showSignIn();
    return;
  }
  try {
    enterWorkspace(await api.me());
  } catch (error) {
    if (error.status !== 401) leaveWorkspace('Could not restore your session. Please sign in.');
  }
}

function init() {
  initNotice();
  initDialogs();
  initDocuments();
  initChat();
  initAuth(resume);
  onUnauthorized(() => leaveWorkspace('Your session has expired. Please sign in again.'));
  $('logout').addEventListener('click', () => leaveWorkspace(''));
  resume();
}

init();
