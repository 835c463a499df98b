import { fireEvent, screen } from '@testing-library/react';
import { useState } from 'react';
import { describe, expect, it, vi } from 'vitest';
import { renderUI } from '../test/render';
import { BusinessHoursEditor, compact, HolidaysEditor, openMinutes, scheduleErrors, withDay, type Holiday, type Schedule } from './BusinessHoursEditor';

function Harness({ initial, onChange }: { initial: Schedule; onChange: (s: Schedule) => void }) {
  const [v, setV] = useState(initial);
  return <BusinessHoursEditor value={v} onChange={(s) => { setV(s); onChange(s); }} />;
}

describe('BusinessHoursEditor', () => {
  it('opens a day with default hours and closes it again', () => {
    const spy = vi.fn();
    renderUI(<Harness initial={{}} onChange={spy} />);
    expect(screen.getByTestId('day-mon').getAttribute('data-open')).toBe('false');
    fireEvent.click(screen.getByRole('checkbox', { name: 'Monday' }));
    expect(spy).toHaveBeenLastCalledWith({ mon: [['09:00', '17:00']] });
    expect(screen.getByTestId('day-mon').getAttribute('data-open')).toBe('true');
    fireEvent.click(screen.getByRole('checkbox', { name: 'Monday' }));
    expect(compact(spy.mock.lastCall![0])).toEqual({});
  });

  it('edits intervals, adds a second one (a lunch break) and totals the week', () => {
    const spy = vi.fn();
    renderUI(<Harness initial={{ tue: [['09:00', '17:00']] }} onChange={spy} />);
    expect(screen.getByTestId('hours-total').textContent).toBe('8 h a week');
    fireEvent.change(screen.getByLabelText('Tuesday closes (interval 1)'), { target: { value: '12:00' } });
    expect(spy).toHaveBeenLastCalledWith({ tue: [['09:00', '12:00']] });
    fireEvent.click(screen.getByRole('button', { name: 'Add an interval on Tuesday' }));
    fireEvent.change(screen.getByLabelText('Tuesday opens (interval 2)'), { target: { value: '13:00' } });
    fireEvent.change(screen.getByLabelText('Tuesday closes (interval 2)'), { target: { value: '17:00' } });
    expect(spy).toHaveBeenLastCalledWith({ tue: [['09:00', '12:00'], ['13:00', '17:00']] });
    expect(screen.getByTestId('hours-total').textContent).toBe('7 h a week');
    fireEvent.click(screen.getByRole('button', { name: 'Remove Tuesday interval 1' }));
    expect(spy).toHaveBeenLastCalledWith({ tue: [['13:00', '17:00']] });
  });

  it('offers office hours and around-the-clock presets', () => {
    const spy = vi.fn();
    renderUI(<Harness initial={{}} onChange={spy} />);
    fireEvent.click(screen.getByRole('button', { name: 'Mon–Fri 9–17' }));
    const office = spy.mock.lastCall![0] as Schedule;
    expect(Object.keys(office)).toEqual(['mon', 'tue', 'wed', 'thu', 'fri']);
    expect(openMinutes(office)).toBe(40 * 60);
    fireEvent.click(screen.getByRole('button', { name: 'Every day, all day' }));
    expect(openMinutes(spy.mock.lastCall![0])).toBe(7 * 24 * 60);
  });

  it('flags malformed and empty intervals; an overnight interval is valid', () => {
    expect(scheduleErrors({ mon: [['9', '17:00']] })).toEqual({ 'mon.0.start': 'HH:MM' });
    expect(scheduleErrors({ mon: [['09:00', '09:00']] })).toEqual({ 'mon.0.end': 'same' });
    expect(scheduleErrors({ sat: [['22:00', '06:00']], sun: [['00:00', '24:00']] })).toEqual({});
    expect(openMinutes({ sat: [['22:00', '06:00']] })).toBe(8 * 60);
  });
});

describe('HolidaysEditor', () => {
  it('tells one-off dates from yearly ones', () => {
    expect(withDay({ date: '2026-12-24', name: 'Eve' }, '12-25')).toEqual({ yearly: '12-25', name: 'Eve' });
    expect(withDay({ yearly: '12-25' }, '2026-12-31')).toEqual({ date: '2026-12-31' });
    const spy = vi.fn();
    function H() {
      const [v, setV] = useState<Holiday[]>([]);
      return <HolidaysEditor value={v} onChange={(h) => { setV(h); spy(h); }} />;
    }
    renderUI(<H />);
    fireEvent.click(screen.getByRole('button', { name: 'Add a holiday' }));
    fireEvent.change(screen.getByLabelText('Holiday 1 date'), { target: { value: '01-01' } });
    fireEvent.change(screen.getByLabelText('Holiday 1 name'), { target: { value: 'New Year' } });
    expect(spy).toHaveBeenLastCalledWith([{ yearly: '01-01', name: 'New Year' }]);
  });
});
