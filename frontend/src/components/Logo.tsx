import { useId } from 'react';
import { Group, Text } from '@mantine/core';

/** SunDisc is the ATUM mark: the sun disc of Atum rising over the horizon. */
export function SunDisc({ size = 32, title }: { size?: number; title?: string }) {
  const id = useId();
  const grad = `${id}-g`;
  return (
    <svg width={size} height={size} viewBox="0 0 64 64" role={title ? 'img' : undefined}
      aria-hidden={title ? undefined : true} aria-label={title}>
      <defs>
        <radialGradient id={grad} cx="0.4" cy="0.35" r="0.75">
          <stop offset="0" stopColor="#fef3c7" />
          <stop offset="0.45" stopColor="#fbbf24" />
          <stop offset="1" stopColor="#a16207" />
        </radialGradient>
      </defs>
      <g stroke="#eab308" strokeWidth="2.5" strokeLinecap="round">
        {Array.from({ length: 9 }, (_, i) => {
          const a = Math.PI + (i * Math.PI) / 8;
          const x1 = 32 + Math.cos(a) * 21, y1 = 36 + Math.sin(a) * 21;
          const x2 = 32 + Math.cos(a) * 28, y2 = 36 + Math.sin(a) * 28;
          return <line key={i} x1={x1.toFixed(2)} y1={y1.toFixed(2)} x2={x2.toFixed(2)} y2={y2.toFixed(2)} />;
        })}
      </g>
      <circle cx="32" cy="36" r="16" fill={`url(#${grad})`} />
      <circle cx="32" cy="36" r="16" fill="none" stroke="#fde68a" strokeOpacity="0.5" strokeWidth="1" />
      <rect x="6" y="44" width="52" height="3" rx="1.5" fill="#eab308" />
      <rect x="14" y="50" width="36" height="2.5" rx="1.25" fill="#ca8a04" />
      <rect x="22" y="55.5" width="20" height="2" rx="1" fill="#a16207" />
    </svg>
  );
}

/** Wordmark is the mark with "ATUM DESK" in Cinzel. */
export function Wordmark({ size = 32 }: { size?: number }) {
  return (
    <Group gap={10} wrap="nowrap" className="atum-wordmark">
      <SunDisc size={size} />
      <Text component="span" ff="heading" fw={700} fz={size * 0.6} lts={2} c="var(--atum-accent-text)">
        ATUM <Text component="span" inherit c="var(--atum-strong)">DESK</Text>
      </Text>
    </Group>
  );
}
