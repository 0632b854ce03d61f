/** Secrets in URLs: where a URL carries one (refused at config check), and URLs fit to print (origin and path). */

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

/**
 * Why a scanner's URL may not hold a query or a fragment, or undefined when it holds neither. Every
 * backend calls paths it builds on the URL's origin (Tenable: and path): nothing after `?` or `#` is
 * ever sent, so a value there is at best dead and at worst a secret (`?pw=`, `?auth=`) sitting in the
 * file; and no list of names catches every secret's name. Says where, never what.
 */
export function urlQueryProblem(url: string): string | undefined {
  const cut = /[?#]/.exec(url);
  if (!cut) return undefined;
  const what = cut[0] === '?' ? 'a query string (after ?)' : 'a fragment (after #)';
  return `${what} is refused (not shown): onsight calls the scanner's API at paths it builds and never sends a query or fragment given here: give the URL without it`;
}

/** A URL fit to print: its origin and path only (user info, query and fragment are never printed). */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(unparsable URL)';
  }
  // (an opaque origin, `mailto:`: the scheme alone)
  return u.origin === 'null' ? `${u.protocol}…` : `${u.origin}${u.pathname}`;
}

/** A text (a backend's description, say) with every URL in it redacted. */
export function redactUrlsIn(text: string): string {
  return text.split(' ').map((w) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(w) ? redactUrl(w) : w)).join(' ');
}
