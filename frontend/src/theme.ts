import { Alert, Button, Modal, Notification, createTheme, type MantineThemeOverride, type CSSVariablesResolver, type MantineColorsTuple } from '@mantine/core';

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
  primaryShade: { light: 5, dark: 5 },
  autoContrast: true,
  // Mantine judges lightness of the light-scheme shade; below this, white text.
  luminanceThreshold: 0.25,
  colors: { gold, dark },
  black: '#000000',
  fontFamily: 'Inter, ui-sans-serif, system-ui, sans-serif',
  headings: {
    fontFamily: 'Cinzel, ui-serif, Georgia, serif',
    fontWeight: '700',
  },
  defaultRadius: 'md',
  cursorType: 'pointer',
  // An explicit colour lets autoContrast pick black text on gold.
  components: { Button: Button.extend({ defaultProps: { color: 'gold' } }) },
});

/** withLabels adds the translated labels of Mantine's icon-only close buttons. */
export function withLabels(base: MantineThemeOverride, close: string): MantineThemeOverride {
  return {
    ...base,
    components: {
      ...base.components,
      Notification: Notification.extend({ defaultProps: { closeButtonProps: { 'aria-label': close } } }),
      Alert: Alert.extend({ defaultProps: { closeButtonLabel: close } }),
      Modal: Modal.extend({ defaultProps: { closeButtonProps: { 'aria-label': close } } }),
    },
  };
}

// Light theme: Mantine's light and outline variants colour text with shade
// 6, under 4.5:1 on white; these darker ones pass.
const lightText = Object.fromEntries(Object.entries({
  blue: '#1e40af', cyan: '#155e75', violet: '#5b21b6', orange: '#9a3412', green: '#166534', red: '#991b1b', gray: '#404040',
}).flatMap(([c, v]) => [[`--mantine-color-${c}-outline`, v], [`--mantine-color-${c}-light-color`, v], [`--mantine-color-${c}-text`, v]]));

export const cssVariablesResolver: CSSVariablesResolver = () => ({
  // Gold is light: text on filled gold is black (white fails contrast).
  variables: { '--atum-gold': '#eab308', '--atum-gold-bright': '#fbbf24', '--mantine-primary-color-contrast': '#000000' },
  // Light theme: gold is too light for text on white, so text-coloured
  // variants (outline, light, subtle, anchors) use the dark amber shade.
  light: {
    '--mantine-color-body': '#fafaf9',
    '--mantine-color-dimmed': '#57534e',
    '--mantine-color-gold-text': '#854d0e',
    '--mantine-color-gold-outline': '#854d0e',
    '--mantine-color-gold-light-color': '#854d0e',
    '--mantine-color-anchor': '#854d0e',
    ...lightText,
  },
  dark: {
    '--mantine-color-body': '#000000',
    '--mantine-color-default': '#111111',
    '--mantine-color-default-border': '#2a2a2a',
  },
});
