/**
 * styleNonce is the CSP nonce the server puts into this meta tag per
 * response: every <style> element the app or a library adds must carry it,
 * so the CSP needs no 'unsafe-inline' for styles.
 */
export function styleNonce(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content ?? '';
}
