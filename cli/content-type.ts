import * as path from 'node:path';

/** Extension -> the content type the API accepts. Anything else is sent as octet-stream (and refused by the API with 415). */
const TYPES: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.jpe': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.avif': 'image/avif',
};

export const FALLBACK_CONTENT_TYPE = 'application/octet-stream';

export function contentTypeFor(file: string): string {
  return TYPES[path.extname(file).toLowerCase()] ?? FALLBACK_CONTENT_TYPE;
}
