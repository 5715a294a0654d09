/**
 * Filenames arrive from clients and end up in S3 keys, Content-Disposition headers, CSV
 * cells and logs. Keep what a person would recognise (unicode letters, emoji, spaces), drop
 * what can hurt: path components, control and bidi-override characters, over-long names.
 */
const MAX_FILENAME_BYTES = 200;
// C0/C1 controls, DEL, bidi embeddings/overrides/isolates (Trojan Source), BOM.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\ufeff]/gu;

export function sanitizeFilename(input: string, fallback = 'upload'): string {
  // Lone UTF-16 surrogates (a JSON "\ud800") are not text: they would break URL encoding.
  const wellFormed = input.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  let name = wellFormed.normalize('NFC').replace(UNSAFE, '');
  // Only the last path component counts, whichever separator the client used.
  name = name.split(/[\\/]/).pop() ?? '';
  name = name.replace(/\s+/g, ' ').trim();
  // No dot-only names ("." / "..") and no hidden files.
  name = name.replace(/^\.+/, '').trim();
  if (!name) name = fallback;
  return truncateUtf8(name, MAX_FILENAME_BYTES);
}

/** Cuts a name to at most maxBytes of UTF-8, keeping its extension and whole code points. */
function truncateUtf8(name: string, maxBytes: number): string {
  if (Buffer.byteLength(name) <= maxBytes) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 10 ? name.slice(dot) : '';
  const budget = maxBytes - Buffer.byteLength(ext);
  let out = '';
  for (const ch of name.slice(0, name.length - ext.length)) {
    if (Buffer.byteLength(out + ch) > budget) break;
    out += ch;
  }
  return out + ext;
}

/** S3 event keys are URL-encoded, with `+` for spaces. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}
