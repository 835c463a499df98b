// The rich-text editor of replies and knowledge-base articles (TipTap
// through @mantine/tiptap). It is its own chunk, loaded only where someone
// writes (ReplyBox, the article editor), so the portal's first page carries
// none of ProseMirror. The HTML it produces is sanitised by the server
// (bluemonday); the plain text goes along for e-mail and search.
import '@mantine/core/styles/Typography.css';
import '@mantine/tiptap/styles.css';
import { Link, RichTextEditor } from '@mantine/tiptap';
import { Extension } from '@tiptap/core';
import { Placeholder } from '@tiptap/extensions';
import { useEditor } from '@tiptap/react';
import StarterKit from '@tiptap/starter-kit';
import { forwardRef, useEffect, useImperativeHandle, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { styleNonce } from '../lib/nonce';

/** Draft is what the composer holds: the markup and its plain text. */
export interface Draft {
  html: string;
  text: string;
}

export const emptyDraft: Draft = { html: '', text: '' };

export interface RichEditorHandle {
  focus(): void;
}

export interface RichEditorProps {
  value: Draft;
  onChange: (d: Draft) => void;
  onSubmit: () => void;
  label: string;
  placeholder?: string;
  internal?: boolean;
}

/** draftOf reads the editor's content; an editor holding only empty paragraphs is empty. */
function draftOf(editor: { getHTML(): string; getText(o?: { blockSeparator?: string }): string; isEmpty: boolean }): Draft {
  const text = editor.getText({ blockSeparator: '\n\n' }).trim();
  return editor.isEmpty || !text ? emptyDraft : { html: editor.getHTML(), text };
}

const attributes = (label: string) => ({ 'aria-label': label, role: 'textbox', 'aria-multiline': 'true', 'data-testid': 'reply-editor' });

const RichEditor = forwardRef<RichEditorHandle, RichEditorProps>(function RichEditor(
  { value, onChange, onSubmit, label, placeholder, internal }, ref,
) {
  const { t } = useTranslation();
  // The latest callbacks, read by the editor's handlers (created once).
  const cb = useRef({ onChange, onSubmit, placeholder: placeholder ?? '' });
  cb.current = { onChange, onSubmit, placeholder: placeholder ?? '' };
  const emitted = useRef(value.html);

  // Extensions are made once: new ones on a render would rebuild the editor.
  const [extensions] = useState(() => [
    StarterKit.configure({ link: false, heading: { levels: [3, 4] } }),
    Link.configure({ openOnClick: false, autolink: true, protocols: ['http', 'https', 'mailto'] }),
    Placeholder.configure({ placeholder: () => cb.current.placeholder }),
    Extension.create({
      name: 'atumSubmit',
      addKeyboardShortcuts: () => ({
        'Mod-Enter': () => {
          cb.current.onSubmit();
          return true;
        },
      }),
    }),
  ]);
  const editor = useEditor({
    extensions,
    // TipTap adds its base <style>; the CSP allows it only with the nonce.
    injectNonce: styleNonce() || undefined,
    content: value.html || '',
    editorProps: { attributes: attributes(label) },
    onUpdate: ({ editor: e }) => {
      const d = draftOf(e);
      emitted.current = d.html;
      cb.current.onChange(d);
    },
  }, []);

  // A draft changed from outside (cleared after sending, a canned response
  // inserted): show it. The editor's own updates come back equal and are
  // left alone, so the cursor never jumps.
  useEffect(() => {
    if (!editor || value.html === emitted.current) return;
    emitted.current = value.html;
    editor.commands.setContent(value.html || '', { emitUpdate: false });
  }, [editor, value.html]);

  // The mode changes the label (reply or internal note).
  useEffect(() => {
    editor?.setOptions({ editorProps: { attributes: attributes(label) } });
  }, [editor, label]);

  useImperativeHandle(ref, () => ({ focus: () => editor?.commands.focus('end') }), [editor]);

  return (
    <RichTextEditor editor={editor} className="atum-editor" data-internal={internal ? 'true' : 'false'}
      labels={{
        boldControlLabel: t('editor.bold'), italicControlLabel: t('editor.italic'), strikeControlLabel: t('editor.strike'),
        codeControlLabel: t('editor.code'), codeBlockControlLabel: t('editor.codeBlock'), bulletListControlLabel: t('editor.bulletList'),
        orderedListControlLabel: t('editor.orderedList'), linkControlLabel: t('editor.link'), unlinkControlLabel: t('editor.unlink'),
        blockquoteControlLabel: t('editor.quote'), linkEditorInputLabel: t('editor.linkUrl'), linkEditorInputPlaceholder: 'https://',
        linkEditorSave: t('action.save'), linkEditorExternalLink: t('editor.newTab'), linkEditorInternalLink: t('editor.sameTab'),
        undoControlLabel: t('editor.undo'), redoControlLabel: t('editor.redo'),
      }}>
      <RichTextEditor.Toolbar>
        <RichTextEditor.ControlsGroup>
          <RichTextEditor.Bold />
          <RichTextEditor.Italic />
          <RichTextEditor.Strikethrough />
          <RichTextEditor.Code />
        </RichTextEditor.ControlsGroup>
        <RichTextEditor.ControlsGroup>
          <RichTextEditor.BulletList />
          <RichTextEditor.OrderedList />
          <RichTextEditor.Blockquote />
          <RichTextEditor.CodeBlock />
        </RichTextEditor.ControlsGroup>
        <RichTextEditor.ControlsGroup>
          <RichTextEditor.Link />
          <RichTextEditor.Unlink />
        </RichTextEditor.ControlsGroup>
      </RichTextEditor.Toolbar>
      <RichTextEditor.Content />
    </RichTextEditor>
  );
});

export default RichEditor;
