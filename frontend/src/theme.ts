import { createTheme, type CSSVariablesResolver, type MantineColorsTuple } from '@mantine/core';

// ATUM gold: amber-400 (#fbbf24) to yellow-500 (#eab308) at the primary shade.
const gold: MantineColorsTuple = [
  '#fffbeb', '#fef3c7', '#fde68a', '#fcd34d', '#fbbf24', '#eab308', '#ca8a04', '#a16207', '#854d0e', '#713f12',
];

// Near-black neutrals: body #000, panels #111.
const dark: MantineColorsTuple = [
  '#ededed', '#c8c8c8', '#a6a6a6', '#8a8a8a', '#3a3a3a', '#262626', '#1a1a1a', '#111111', '#0b0b0b', '#050505',
];

export const theme = createTheme({
  primaryColor: 'gold',
  primaryShade: { light: 6, dark: 5 },
  autoContrast: true,
  luminanceThreshold: 0.4,
  colors: { gold, dark },
  black: '#000000',
  fontFamily: 'Inter, ui-sans-serif, system-ui, sans-serif',
  headings: {
    fontFamily: 'Cinzel, ui-serif, Georgia, serif',
    fontWeight: '700',
  },
  defaultRadius: 'md',
  cursorType: 'pointer',
});

export const cssVariablesResolver: CSSVariablesResolver = () => ({
  variables: { '--atum-gold': '#eab308', '--atum-gold-bright': '#fbbf24' },
  light: {},
  dark: {
    '--mantine-color-body': '#000000',
    '--mantine-color-default': '#111111',
    '--mantine-color-default-border': '#2a2a2a',
  },
});
