import '@mantine/core/styles/Typography.css';
import { Typography } from '@mantine/core';
import DOMPurify from 'dompurify';
import { useMemo } from 'react';

// The server already sanitised the markup (bluemonday); this second pass in
// the browser keeps a bug there from becoming script here. Images are
// dropped: the CSP would block a remote one anyway.
const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

export function sanitize(html: string): string {
  return purify.sanitize(html, { FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'iframe'], FORBID_ATTR: ['style', 'class', 'id'] });
}

/** RichText shows a comment's sanitised HTML. */
export function RichText({ html, testId }: { html: string; testId?: string }) {
  const safe = useMemo(() => sanitize(html), [html]);
  return <Typography className="atum-rich" data-testid={testId} fz="sm" dangerouslySetInnerHTML={{ __html: safe }} />;
}
