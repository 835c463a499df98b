import { afterEach, describe, expect, it, vi } from 'vitest';
import { Live } from './live';

class FakeES {
  static all: FakeES[] = [];
  url: string;
  closed = false;
  onmessage: ((e: MessageEvent) => void) | null = null;
  onerror: (() => void) | null = null;
  private handlers = new Map<string, ((e: Event) => void)[]>();
  constructor(url: string) {
    this.url = url;
    FakeES.all.push(this);
  }
  addEventListener(type: string, fn: (e: Event) => void) {
    this.handlers.set(type, [...(this.handlers.get(type) ?? []), fn]);
  }
  close() {
    this.closed = true;
  }
  emit(type: string, data = '', lastEventId = '') {
    const e = new MessageEvent(type, { data, lastEventId });
    if (type === 'message') this.onmessage?.(e);
    else this.handlers.get(type)?.forEach((f) => f(e));
  }
}

afterEach(() => {
  FakeES.all = [];
  vi.useRealTimers();
});

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('Live', () => {
  it('delivers events and resumes after an error from the last event id with a fresh token', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    let n = 0;
    const live = new Live({ token: async () => `t${++n}`, open: (u) => new FakeES(u) as unknown as EventSource });
    const got: string[] = [];
    live.subscribe((ev) => got.push(ev.type));
    live.start();
    await vi.advanceTimersByTimeAsync(0);
    const first = FakeES.all[0];
    expect(first.url).toBe('/api/v1/stream?access_token=t1');
    first.emit('ready', '{"status":"live"}');
    expect(live.getStatus()).toBe('live');
    first.emit('message', JSON.stringify({ type: 'comment.added', ticket_id: 'x' }), 'k1-7');

    first.onerror?.();
    expect(first.closed).toBe(true);
    expect(live.getStatus()).toBe('down');
    await vi.advanceTimersByTimeAsync(600);
    const second = FakeES.all[1];
    expect(second.url).toBe('/api/v1/stream?access_token=t2&last_event_id=k1-7');
    second.emit('ready', '{"status":"resumed"}');
    expect(live.getStatus()).toBe('live');
    expect(got).toEqual(['comment.added']);
    live.stop();
    expect(second.closed).toBe(true);
    expect(live.getStatus()).toBe('off');
  });

  it('tells listeners to refetch on reset', async () => {
    const live = new Live({ token: async () => 't', open: (u) => new FakeES(u) as unknown as EventSource });
    const reset = vi.fn();
    live.onReset(reset);
    live.start();
    await tick();
    FakeES.all[0].emit('reset');
    expect(reset).toHaveBeenCalledOnce();
    live.stop();
  });
});
