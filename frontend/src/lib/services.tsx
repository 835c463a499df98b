// The app's services, created once in main.tsx and handed down by context
// (tests build their own).
import { createContext, useContext, useSyncExternalStore } from 'react';
import type { ApiClient } from '../api/client';
import type { Live, LiveStatus } from './live';
import type { Session, SessionState } from './session';

export interface Services {
  session: Session;
  api: ApiClient;
  live: Live;
}

export const ServicesContext = createContext<Services | null>(null);

export function useServices(): Services {
  const s = useContext(ServicesContext);
  if (!s) throw new Error('ServicesContext missing');
  return s;
}

export const useApi = () => useServices().api;

export function useSession(): SessionState {
  const { session } = useServices();
  return useSyncExternalStore(session.subscribe, session.getState);
}

/** useUser is the signed-in user; only for pages behind the session guard. */
export function useUser() {
  const s = useSession();
  if (s.status !== 'authenticated') throw new Error('useUser outside an authenticated route');
  return s.user;
}

export function useLiveStatus(): LiveStatus {
  const { live } = useServices();
  return useSyncExternalStore(live.onStatus, live.getStatus);
}
