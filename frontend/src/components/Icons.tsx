// A few stroke icons drawn here rather than a whole icon package.
type P = { size?: number };
const base = (size: number) => ({
  width: size, height: size, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor',
  strokeWidth: 1.8, strokeLinecap: 'round' as const, strokeLinejoin: 'round' as const, 'aria-hidden': true,
});
export const IconInbox = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M4 13h4l2 3h4l2-3h4" /><path d="M5 5h14l1 8v6H4v-6z" /></svg>
);
export const IconList = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M9 6h11M9 12h11M9 18h11M4 6h.01M4 12h.01M4 18h.01" /></svg>
);
export const IconGauge = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M12 14l4-4" /><path d="M3.5 18a9 9 0 1 1 17 0z" /></svg>
);
export const IconPlus = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M12 5v14M5 12h14" /></svg>
);
export const IconUpload = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M12 16V4M7 9l5-5 5 5" /><path d="M4 16v4h16v-4" /></svg>
);
export const IconFile = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M14 3H6v18h12V7z" /><path d="M14 3v4h4" /></svg>
);
export const IconLock = ({ size = 18 }: P) => (
  <svg {...base(size)}><rect x="5" y="11" width="14" height="10" rx="2" /><path d="M8 11V7a4 4 0 0 1 8 0v4" /></svg>
);
export const IconAlert = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M12 3l10 18H2z" /><path d="M12 10v4M12 17h.01" /></svg>
);
export const IconSearch = ({ size = 18 }: P) => (
  <svg {...base(size)}><circle cx="11" cy="11" r="7" /><path d="M20 20l-4-4" /></svg>
);
export const IconTicket = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M3 8a2 2 0 0 0 0 4v4h18v-4a2 2 0 0 1 0-4V4H3z" /><path d="M13 4v16" strokeDasharray="2 2" /></svg>
);
export const IconBook = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M4 5a2 2 0 0 1 2-2h13v16H6a2 2 0 0 0-2 2z" /><path d="M4 21V5M8 7h7" /></svg>
);
export const IconSun = ({ size = 18 }: P) => (
  <svg {...base(size)}><circle cx="12" cy="12" r="4" /><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" /></svg>
);
export const IconMoon = ({ size = 18 }: P) => (
  <svg {...base(size)}><path d="M20 14.5A8 8 0 0 1 9.5 4a8 8 0 1 0 10.5 10.5z" /></svg>
);
