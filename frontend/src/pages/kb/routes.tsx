import { KbArticlePage, KnowledgeBase } from './Knowledge';

// The knowledge base's route components, per side.
export const PortalKb = () => <KnowledgeBase side="portal" />;
export const PortalKbArticle = () => <KbArticlePage side="portal" />;
export const DeskKb = () => <KnowledgeBase side="desk" />;
export const DeskKbArticle = () => <KbArticlePage side="desk" />;
