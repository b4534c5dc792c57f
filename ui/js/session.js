// The signed-in session: the bearer token lives in sessionStorage only (gone when the tab
// closes, never in a URL or a cookie), with the moment it expires.

const TOKEN_KEY = 'ragd.token';
const EXPIRES_KEY = 'ragd.token_expires_at';

export function token() {
  const value = sessionStorage.getItem(TOKEN_KEY);
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
  if (!value) return null;
  if (expiresAt && Date.now() >= expiresAt) {
    clear();
    return null;
  }
  return value;
}

/** Keeps a token from /auth/token; `expiresIn` is in seconds. */
export function save(accessToken, expiresIn) {
  sessionStorage.setItem(TOKEN_KEY, accessToken);
  if (Number.isFinite(expiresIn) && expiresIn > 0) {
    sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + expiresIn * 1000));
  } else {
    sessionStorage.removeItem(EXPIRES_KEY);
  }
}

export function clear() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRES_KEY);
}
