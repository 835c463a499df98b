import i18next, { type i18n } from 'i18next';
import { initReactI18next } from 'react-i18next';
import en from './locales/en.json';

export const resources = { en: { translation: en } } as const;

/** createI18n returns an initialised instance (English; more languages add a resource). */
export function createI18n(lng = 'en'): i18n {
  const inst = i18next.createInstance();
  void inst.use(initReactI18next).init({
    lng,
    fallbackLng: 'en',
    resources,
    interpolation: { escapeValue: false }, // React escapes
    initAsync: false,
  });
  return inst;
}
