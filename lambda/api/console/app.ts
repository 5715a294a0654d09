/**
 * The offload console: one page, plain TypeScript over the DOM (no framework: the page is a
 * form, three lists and a table, and ~10 KB of script does it), bundled by esbuild at synth
 * and served by the API itself (`GET /`, `GET /console/app.js`, `GET /console/app.css`).
 * It talks only to the API (with the key the person typed, kept in sessionStorage and never
 * put in a URL) and to the storage URLs the API presigns (uploads, thumbnails, downloads).
 *
 * Live updates: one `GET /jobs` for the page shown every few seconds while the tab is
 * visible (one request per refresh, never one per job), queues every 15 s.
 */
import { JOB_STATUSES } from '../../shared/contract';
import type { JobView } from '../../shared/model';
import type { QueueStats } from './types';

const KEY_STORAGE = 'offload.apiKey';
const JOBS_EVERY_MS = 3000;
const QUEUES_EVERY_MS = 15000;
const PAGE_SIZE = 10;
const CANCELLABLE = new Set(['awaiting_upload', 'queued', 'processing']);

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) ?? '',
  /** Cursors of the pages before the one shown ('' = the newest). */
  pages: [''] as string[],
  nextCursor: null as string | null,
  jobsTimer: 0,
  queuesTimer: 0,
};

function say(text: string): void {
  $('status').textContent = text;
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(new URL(path, document.baseURI), {
    method,
    headers: { 'x-api-key': state.key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: reported below by status
  }
  if (!res.ok) throw new ApiError(res.status, json?.error?.code ?? 'error', json?.error?.message ?? `HTTP ${res.status}`);
  return json as T;
}

function fail(err: unknown): void {
  if (err instanceof ApiError && err.status === 403) {
    say('That API key was refused. Enter a valid key.');
    stop();
    $('app').hidden = true;
    return;
  }
  say(err instanceof Error ? err.message : String(err));
}

// ---------------------------------------------------------------------------------- key

function start(): void {
  $('app').hidden = false;
  say('');
  void refreshJobs();
  void refreshQueues();
}

function stop(): void {
  window.clearTimeout(state.jobsTimer);
  window.clearTimeout(state.queuesTimer);
}

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('api-key');
  state.key = input.value.trim();
  input.value = '';
  sessionStorage.setItem(KEY_STORAGE, state.key);
  stop();
  start();
});

$('forget-key').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = '';
  stop();
  $('app').hidden = true;
  say('Key forgotten.');
});

// ------------------------------------------------------------------------------- uploads

function uploadFiles(files: FileList | File[]): void {
  for (const file of Array.from(files)) void uploadOne(file);
}

async function uploadOne(file: File): Promise<void> {
  const bar = el('progress', { max: '100', value: '0', 'aria-label': `upload of ${file.name}` });
  const note = el('span', {}, 'starting');
  $('uploads').append(el('li', {}, el('span', {}, file.name), bar, note));
  try {
    const priority = $<HTMLSelectElement>('priority').value;
    const created = await api<{ jobId: string; uploadUrl: string; headers: Record<string, string> }>('POST', 'uploads', {
      filename: file.name,
      contentType: file.type || 'application/octet-stream',
      size: file.size,
      ...(priority === 'high' ? { priority } : {}),
    });
    await put(created.uploadUrl, created.headers, file, (pct) => {
      bar.value = pct;
      note.textContent = `${pct} %`;
    });
    bar.value = 100;
    note.textContent = `uploaded: job ${created.jobId.slice(0, 8)}`;
    void refreshJobs();
  } catch (err) {
    note.textContent = err instanceof Error ? err.message : String(err);
    note.className = 'error';
  }
}

/** PUT to a presigned URL with progress (fetch has no upload progress; XMLHttpRequest does). */
function put(url: string, headers: Record<string, string>, file: File, progress: (pct: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    // The browser sets Content-Length itself.
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'content-length') xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && progress(Math.floor((e.loaded / e.total) * 100));
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`upload refused (HTTP ${xhr.status})`)));
    xhr.onerror = () => reject(new Error('upload failed (network)'));
    xhr.send(file);
  });
}

const drop = $('drop');
$<HTMLInputElement>('files').addEventListener('change', (e) => {
  const input = e.target as HTMLInputElement;
  if (input.files) uploadFiles(input.files);
  input.value = '';
});
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer?.files) uploadFiles(e.dataTransfer.files);
});

// ------------------------------------------------------------------------------- reports

const today = new Date().toISOString().slice(0, 10);
$<HTMLInputElement>('from').value = today;
$<HTMLInputElement>('to').value = today;
$('report-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const formats = Array.from(document.querySelectorAll<HTMLInputElement>('input[name=format]:checked')).map((c) => c.value);
  api<{ jobId: string }>('POST', 'reports', { from: $<HTMLInputElement>('from').value, to: $<HTMLInputElement>('to').value, formats })
    .then((r) => {
      say(`Report requested: job ${r.jobId.slice(0, 8)}`);
      state.pages = [''];
      return refreshJobs();
    })
    .catch(fail);
});

// ---------------------------------------------------------------------------------- jobs

for (const s of JOB_STATUSES) $('status-filter').append(el('option', { value: s }, s));
for (const id of ['type-filter', 'status-filter']) {
  $(id).addEventListener('change', () => {
    state.pages = [''];
    void refreshJobs();
  });
}
$('newest').addEventListener('click', () => {
  state.pages = [''];
  void refreshJobs();
});
$('older').addEventListener('click', () => {
  if (!state.nextCursor) return;
  state.pages.push(state.nextCursor);
  void refreshJobs();
});

async function refreshJobs(): Promise<void> {
  window.clearTimeout(state.jobsTimer);
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const type = $<HTMLSelectElement>('type-filter').value;
  const status = $<HTMLSelectElement>('status-filter').value;
  if (type) q.set('type', type);
  if (status) q.set('status', status);
  const cursor = state.pages[state.pages.length - 1];
  if (cursor) q.set('cursor', cursor);
  try {
    const page = await api<{ jobs: JobView[]; nextCursor: string | null }>('GET', `jobs?${q}`);
    state.nextCursor = page.nextCursor;
    $<HTMLButtonElement>('older').disabled = !page.nextCursor;
    $<HTMLButtonElement>('newest').disabled = state.pages.length === 1;
    renderJobs(page.jobs);
  } catch (err) {
    fail(err);
    if (err instanceof ApiError && err.status === 403) return;
  }
  if (!document.hidden) state.jobsTimer = window.setTimeout(() => void refreshJobs(), JOBS_EVERY_MS);
}

function renderJobs(jobs: JobView[]): void {
  const list = $('jobs');
  // Keep a row whose content did not change (its images stay loaded, focus stays put).
  const old = new Map(Array.from(list.children).map((li) => [(li as HTMLElement).dataset.key, li]));
  const rows = jobs.map((job) => {
    const key = `${job.jobId}:${job.updatedAt}:${job.status}`;
    return old.get(key) ?? renderJob(job, key);
  });
  list.replaceChildren(...rows);
  if (jobs.length === 0) list.append(el('li', {}, 'No jobs yet.'));
}

function renderJob(job: JobView, key: string): HTMLElement {
  const head = el(
    'div',
    { class: 'job-head' },
    el('strong', {}, job.type),
    el('span', { class: `badge ${job.status}` }, job.status),
    el('code', { title: job.jobId }, job.jobId.slice(0, 8)),
  );
  const name = typeof job.input.filename === 'string' ? job.input.filename : job.params ? `${job.params.from} to ${job.params.to}` : '';
  const progress = job.progress && job.status === 'processing' ? ` · progress ${job.progress.done}${job.progress.total ? `/${job.progress.total}` : ''}` : '';
  const li = el('li', { 'data-key': key, 'data-job-id': job.jobId, 'data-status': job.status }, head);
  li.append(el('p', { class: 'meta' }, `${name}${name ? ' · ' : ''}attempts ${job.attempts}${progress} · ${new Date(job.createdAt).toLocaleString()}`));
  if (job.error) li.append(el('p', { class: 'error' }, `${job.error.code}: ${job.error.message}`));
  const images = job.outputs.filter((o) => o.contentType.startsWith('image/') && o.name === 'small' && o.format !== 'webp');
  if (images.length > 0) {
    li.append(el('div', { class: 'thumbs' }, ...images.map((o) => el('img', { src: o.url, alt: `thumbnail of ${name || job.jobId}`, width: String(o.width ?? ''), height: String(o.height ?? '') }))));
  }
  const files = job.outputs.filter((o) => !o.contentType.startsWith('image/'));
  if (files.length > 0) {
    li.append(el('div', { class: 'links' }, ...files.map((o) => el('a', { href: o.url, download: '' }, `Download ${o.format.toUpperCase()} (${Math.max(1, Math.round(o.bytes / 1024))} KB)`))));
  }
  if (CANCELLABLE.has(job.status)) {
    const cancel = el('button', { type: 'button', class: 'secondary' }, 'Cancel');
    cancel.addEventListener('click', () => {
      cancel.disabled = true;
      api('DELETE', `jobs/${job.jobId}`)
        .then(() => refreshJobs())
        .catch(fail);
    });
    li.append(cancel);
  }
  return li;
}

// -------------------------------------------------------------------------------- queues

async function refreshQueues(): Promise<void> {
  window.clearTimeout(state.queuesTimer);
  try {
    const { queues } = await api<{ queues: QueueStats[] }>('GET', 'queues');
    const filter = $<HTMLSelectElement>('type-filter');
    if (filter.options.length === 1) for (const q of queues) filter.append(el('option', { value: q.type }, q.type));
    $('queues').querySelector('tbody')!.replaceChildren(
      ...queues.map((q) =>
        el(
          'tr',
          {},
          el('th', { scope: 'row' }, q.type),
          el('td', {}, String(q.visible)),
          el('td', {}, String(q.inFlight)),
          el('td', {}, String(q.delayed)),
          el('td', {}, q.oldestAgeSeconds === null ? '–' : `${q.oldestAgeSeconds} s`),
          el('td', {}, String(q.deadLetters)),
        ),
      ),
    );
  } catch (err) {
    fail(err);
    if (err instanceof ApiError && err.status === 403) return;
  }
  if (!document.hidden) state.queuesTimer = window.setTimeout(() => void refreshQueues(), QUEUES_EVERY_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.key && !$('app').hidden) {
    void refreshJobs();
    void refreshQueues();
  }
});

if (state.key) start();
