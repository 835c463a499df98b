import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderUI } from '../test/render';
import { PriorityBadge, StatusBadge } from './Badges';

describe('badges', () => {
  it('label statuses and priorities in words', () => {
    renderUI(<><StatusBadge status="waiting_customer" /><PriorityBadge priority="critical" /></>);
    expect(screen.getByText('Waiting for customer')).toBeTruthy();
    expect(screen.getByText('Critical')).toBeTruthy();
  });
});
