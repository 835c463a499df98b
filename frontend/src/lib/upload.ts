// Uploads with progress: fetch cannot report upload progress, so this one
// call uses XMLHttpRequest (same origin, bearer token, multipart part
// "file"). Downloads go through the API client (bearer token) to a blob.
import { ApiError, isProblem, unwrap, type ApiClient, type Attachment } from '../api/client';

export function uploadFile(
  file: File,
  token: string | null,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
  url = '/api/v1/attachments', // or a ticket's /api/v1/tickets/{id}/attachments
): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* empty or not JSON */
      }
      if (xhr.status === 201) {
        onProgress(1);
        resolve(body as Attachment);
      } else {
        reject(new ApiError(xhr.status, isProblem(body) ? body : { type: 'about:blank', title: xhr.statusText, status: xhr.status }));
      }
    };
    xhr.onerror = () => reject(new TypeError('network error'));
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort());
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

export function formatBytes(n: number, lng: string): string {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return new Intl.NumberFormat(lng, { style: 'unit', unit: units[i], unitDisplay: 'narrow', maximumFractionDigits: 1 }).format(n);
}

/**
 * downloadAttachment fetches a file with the session's token (a plain link
 * would carry none) and hands it to the browser as a download.
 */
export async function downloadAttachment(api: ApiClient, a: { id: string; filename: string }): Promise<void> {
  const blob = await unwrap(api.GET('/api/v1/attachments/{attachmentID}', { params: { path: { attachmentID: a.id } }, parseAs: 'blob' }));
  const url = URL.createObjectURL(blob as Blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = a.filename;
  link.rel = 'noopener';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
