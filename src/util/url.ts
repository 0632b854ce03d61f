/** Secrets in URLs: where a URL carries one (refused at config check), and URLs fit to print. */

const SECRET_PARAM = /pass|secret|token|key/i;

/** Does a URL carry a secret (user info, a password-like query parameter)? Says where, not what. */
export function urlCredentials(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.password) return 'a user and password before @';
  if (u.username) return 'user info before @';
  for (const k of u.searchParams.keys()) if (SECRET_PARAM.test(k)) return `query parameter ${k}`;
  return undefined;
}

/** A URL fit to print: user info and password-like query values replaced by `***`. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(unparsable URL)';
  }
  if (u.username) u.username = '***';
  if (u.password) u.password = '***';
  for (const k of [...u.searchParams.keys()]) if (SECRET_PARAM.test(k)) u.searchParams.set(k, '***');
  return u.toString();
}

/** A text (a backend's description, say) with every URL in it redacted. */
export function redactUrlsIn(text: string): string {
  return text.split(' ').map((w) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(w) ? redactUrl(w) : w)).join(' ');
}
