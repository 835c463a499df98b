import { useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { keys } from './queries';
import { useServices } from './services';

/**
 * useLiveSync keeps the stream open while signed in and refreshes what an
 * event touches: the ticket, its thread, files, survey and history, and (at most
 * every 300 ms) the ticket lists.
 */
export function useLiveSync(enabled: boolean) {
  const { live } = useServices();
  const qc = useQueryClient();
  useEffect(() => {
    if (!enabled) return;
    let listTimer: ReturnType<typeof setTimeout> | null = null;
    const offEvent = live.subscribe((ev) => {
      const id = ev.ticket_id;
      void qc.invalidateQueries({ queryKey: keys.ticket(id) });
      if (ev.type === 'comment.added') void qc.invalidateQueries({ queryKey: keys.comments(id) });
      if (ev.type === 'comment.added' || ev.type === 'attachment.added') void qc.invalidateQueries({ queryKey: keys.attachments(id) });
      if (ev.type === 'ticket.status_changed') void qc.invalidateQueries({ queryKey: keys.csat(id) });
      void qc.invalidateQueries({ queryKey: keys.audit(id) });
      listTimer ??= setTimeout(() => {
        listTimer = null;
        void qc.invalidateQueries({ queryKey: keys.tickets });
      }, 300);
    });
    const offReset = live.onReset(() => void qc.invalidateQueries());
    live.start();
    return () => {
      offEvent();
      offReset();
      if (listTimer) clearTimeout(listTimer);
      live.stop();
    };
  }, [enabled, live, qc]);
}
