/**
 * The pure thumbnail core: bytes in, thumbnails out. No AWS, no I/O.
 *
 * Pipeline (one decode, every output):
 *  1. sniff the magic bytes: only JPEG, PNG, WebP, GIF, TIFF and AVIF ever reach a decoder
 *     (SVG, PDF, BMP, HEIC, text... are rejected without being parsed);
 *  2. read the header with sharp (`metadata()`, no pixel decoding): format, dimensions,
 *     EXIF orientation; enforce the pixel limit here, before anything is allocated;
 *  3. decode once: auto-orient, convert to sRGB 8-bit, and resize (with JPEG/WebP
 *     shrink-on-load) straight to the largest size needed, into a raw RGB(A) buffer;
 *  4. from that raw buffer, resize to every other size (once per distinct size) and encode
 *     JPEG + WebP (or PNG + WebP when the image really uses transparency), all concurrently.
 *
 * Outputs carry no metadata (sharp strips EXIF/GPS/XMP/IPTC/ICC unless asked to keep
 * them, and the raw intermediate carries none anyway); pixels are sRGB.
 */
import sharp from 'sharp';

export interface ThumbnailSpec {
  name: string;
  /** Longest edge, in pixels. */
  edge: number;
}

export const DEFAULT_SIZES: ThumbnailSpec[] = [
  { name: 'small', edge: 160 },
  { name: 'medium', edge: 640 },
  { name: 'large', edge: 1280 },
];

export interface ThumbnailOptions {
  sizes?: ThumbnailSpec[];
  /** Largest accepted input, in pixels (width x height), checked from the header. Default 100 MP. */
  maxPixels?: number;
  /** JPEG quality 1-100, default 80. */
  jpegQuality?: number;
  /** WebP quality 1-100, default 80. */
  webpQuality?: number;
  /** WebP encoder effort 0-6 (speed/size trade-off), default 4 (libwebp's default). */
  webpEffort?: number;
}

export interface RenderedThumbnail {
  name: string;
  format: 'jpeg' | 'webp' | 'png';
  ext: 'jpg' | 'webp' | 'png';
  contentType: string;
  width: number;
  height: number;
  bytes: number;
  data: Buffer;
}

export interface ThumbnailResult {
  input: {
    /** Detected from the bytes: jpeg, png, webp, gif, tiff or avif. */
    format: string;
    /** Dimensions after EXIF orientation (a portrait photo stored landscape reports portrait). */
    width: number;
    height: number;
    bytes: number;
    /** True when the image has an alpha channel that is actually used (some pixel not opaque). */
    hasAlpha: boolean;
  };
  outputs: RenderedThumbnail[];
}

export type ImageErrorCode = 'unsupported_format' | 'image_too_large' | 'empty_file' | 'corrupt_image';

/** A problem with the input itself: retrying cannot help. */
export class ImageError extends Error {
  readonly code: ImageErrorCode;
  readonly permanent = true;

  constructor(code: ImageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageError';
    this.code = code;
  }
}

export const DEFAULT_MAX_PIXELS = 100_000_000;
export const DEFAULT_JPEG_QUALITY = 80;
export const DEFAULT_WEBP_QUALITY = 80;
export const DEFAULT_WEBP_EFFORT = 4;
/** Upper bound for a configured thumbnail edge. */
export const MAX_EDGE = 8192;

const SIZE_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/i;

/**
 * Parses "small:160,medium:640,large:1280" (whitespace around items is ignored).
 * Names: 1-32 chars of letters, digits, '-' and '_' (they end up in S3 keys), unique.
 * Edges: integers from 1 to 8192.
 */
export function parseSizes(spec: string): ThumbnailSpec[] {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new Error('Invalid thumbnail sizes: empty specification (expected e.g. "small:160,medium:640,large:1280")');
  }
  const sizes = spec.split(',').map((item, i) => {
    const part = item.trim();
    const m = /^([^:\s]+)\s*:\s*(\S+)$/.exec(part);
    if (!m) {
      throw new Error(`Invalid thumbnail sizes: item ${i + 1} "${part}" is not of the form name:edge (e.g. "small:160")`);
    }
    const [, name, edgeText] = m;
    if (!/^\d+$/.test(edgeText)) {
      throw new Error(`Invalid thumbnail sizes: edge of "${name}" must be a positive integer, got "${edgeText}"`);
    }
    return { name, edge: Number(edgeText) };
  });
  validateSizes(sizes);
  return sizes;
}

function validateSizes(sizes: ThumbnailSpec[]): void {
  if (!Array.isArray(sizes) || sizes.length === 0) {
    throw new Error('Invalid thumbnail sizes: at least one size is required');
  }
  const seen = new Set<string>();
  for (const { name, edge } of sizes) {
    if (typeof name !== 'string' || !SIZE_NAME.test(name)) {
      throw new Error(
        `Invalid thumbnail sizes: name "${name}" must be 1-32 letters, digits, '-' or '_' (starting with a letter or digit)`,
      );
    }
    if (seen.has(name.toLowerCase())) {
      throw new Error(`Invalid thumbnail sizes: duplicate name "${name}"`);
    }
    seen.add(name.toLowerCase());
    if (!Number.isInteger(edge) || edge < 1 || edge > MAX_EDGE) {
      throw new Error(`Invalid thumbnail sizes: edge of "${name}" must be an integer from 1 to ${MAX_EDGE}, got ${edge}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Format detection

type Sniffed = 'jpeg' | 'png' | 'gif' | 'webp' | 'tiff' | 'heif';

const HEIF_BRANDS = new Set(['avif', 'avis', 'mif1', 'msf1', 'miaf', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif2']);

function startsWith(buf: Buffer, bytes: number[], offset = 0): boolean {
  if (buf.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (buf[offset + i] !== bytes[i]) return false;
  return true;
}

/** Whitelist by magic bytes; anything else never reaches a decoder. */
function sniff(buf: Buffer): Sniffed | undefined {
  if (startsWith(buf, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(buf, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (buf.length >= 6 && (buf.toString('latin1', 0, 6) === 'GIF87a' || buf.toString('latin1', 0, 6) === 'GIF89a')) return 'gif';
  if (buf.length >= 12 && buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  // TIFF and BigTIFF, little and big endian
  if (startsWith(buf, [0x49, 0x49, 0x2a, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(buf, [0x49, 0x49, 0x2b, 0x00]) || startsWith(buf, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  // ISO-BMFF: [size]ftyp[major brand][minor version][compatible brands...]
  if (buf.length >= 16 && buf.toString('latin1', 4, 8) === 'ftyp') {
    const boxSize = buf.readUInt32BE(0);
    const end = Math.min(buf.length, boxSize >= 16 ? boxSize : 16);
    if (HEIF_BRANDS.has(buf.toString('latin1', 8, 12))) return 'heif';
    for (let o = 16; o + 4 <= end; o += 4) if (HEIF_BRANDS.has(buf.toString('latin1', o, o + 4))) return 'heif';
  }
  return undefined;
}

const SNIFFED_NAMES: Record<Sniffed, string> = {
  jpeg: 'jpeg',
  png: 'png',
  gif: 'gif',
  webp: 'webp',
  tiff: 'tiff',
  heif: 'avif',
};

// ---------------------------------------------------------------------------------------------
// Error classification

/** libvips/loader messages that mean "these bytes cannot be decoded". */
const CORRUPT =
  /corrupt|premature end|truncated|not enough data|unexpected end|read error|invalid|bad |no image|out of order|decod|incorrect|unsupported|unknown|not defined|VipsJpeg|jpeg|png|gif|webp|tiff|heif|VipsForeignLoad/i;
/** Resource problems are transient: let them propagate as plain errors. */
const RESOURCE = /memory|ENOMEM|alloc|EMFILE|too many open files|thread/i;

function classifyDecodeError(err: unknown, format: Sniffed): Error {
  if (!(err instanceof Error)) return new Error(String(err));
  if (err instanceof ImageError) return err;
  const msg = err.message;
  if (/exceeds pixel limit/i.test(msg)) {
    return new ImageError('image_too_large', `Image exceeds the pixel limit`, { cause: err });
  }
  if (/Input Buffer is empty/i.test(msg)) return new ImageError('empty_file', 'The file is empty', { cause: err });
  const name = SNIFFED_NAMES[format];
  if (/contains unsupported image format/i.test(msg)) {
    // The magic bytes matched, yet libvips cannot identify the file: for TIFF this is what a
    // truncated file (IFD at the end) looks like. A HEIF container libvips does not know is a format issue.
    return format === 'heif'
      ? new ImageError('unsupported_format', 'Unsupported HEIF image variant', { cause: err })
      : new ImageError('corrupt_image', `The ${name} image is corrupt or truncated (unreadable header)`, { cause: err });
  }
  if (format === 'heif' && /unsupported codec|no decoding plugin|unsupported feature|hevc/i.test(msg)) {
    return new ImageError('unsupported_format', `Unsupported HEIF image (only AVIF is supported): ${summary(msg)}`, { cause: err });
  }
  if (RESOURCE.test(msg)) return err;
  if (CORRUPT.test(msg)) {
    return new ImageError('corrupt_image', `The ${name} image is corrupt or truncated: ${summary(msg)}`, { cause: err });
  }
  return err;
}

/** The most telling line of a libvips error (they repeat, and start with I/O noise like "source: bad seek"). */
function summary(msg: string): string {
  const lines = msg.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const line = lines.find((l) => !/^source: bad seek/i.test(l)) ?? lines[0] ?? msg;
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

// ---------------------------------------------------------------------------------------------
// Geometry

interface Dims {
  width: number;
  height: number;
}

/** Fit inside edge x edge, keep the aspect ratio, never upscale (same rounding as sharp's fit: inside). */
function fitInside(src: Dims, edge: number): Dims {
  const longest = Math.max(src.width, src.height);
  if (longest <= edge) return { width: src.width, height: src.height };
  if (src.width >= src.height) {
    return { width: edge, height: Math.max(1, Math.round((src.height * edge) / src.width)) };
  }
  return { width: Math.max(1, Math.round((src.width * edge) / src.height)), height: edge };
}

/** Does a 4-channel uchar raw buffer have any pixel that is not fully opaque? */
function usesAlpha(data: Buffer, channels: number): boolean {
  if (channels !== 4 && channels !== 2) return false;
  for (let i = channels - 1; i < data.length; i += channels) {
    if (data[i] !== 255) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// The core

/** 'error' rejects truncated and undecodable data, but tolerates the benign warnings many camera
 * JPEGs trigger (e.g. Samsung's "Invalid SOS parameters"), which sharp's default 'warning' rejects. */
const FAIL_ON = 'error' as const;

const CONTENT_TYPES = { jpeg: 'image/jpeg', webp: 'image/webp', png: 'image/png' } as const;
const EXTS = { jpeg: 'jpg', webp: 'webp', png: 'png' } as const;

type OutFormat = keyof typeof CONTENT_TYPES;

export async function makeThumbnails(input: Buffer, options: ThumbnailOptions = {}): Promise<ThumbnailResult> {
  const sizes = options.sizes ?? DEFAULT_SIZES;
  validateSizes(sizes);
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!Number.isInteger(maxPixels) || maxPixels < 1) throw new Error(`maxPixels must be a positive integer, got ${maxPixels}`);
  const jpegQuality = checkRange('jpegQuality', options.jpegQuality ?? DEFAULT_JPEG_QUALITY, 1, 100);
  const webpQuality = checkRange('webpQuality', options.webpQuality ?? DEFAULT_WEBP_QUALITY, 1, 100);
  const webpEffort = checkRange('webpEffort', options.webpEffort ?? DEFAULT_WEBP_EFFORT, 0, 6);

  if (!Buffer.isBuffer(input)) throw new TypeError('makeThumbnails: input must be a Buffer');
  if (input.length === 0) throw new ImageError('empty_file', 'The file is empty');

  // 1. Magic bytes: a whitelist, so SVG (scripts, external entities), PDF, BMP... never get parsed.
  const sniffed = sniff(input);
  if (!sniffed) {
    throw new ImageError('unsupported_format', 'Unsupported file type: expected a JPEG, PNG, WebP, GIF, TIFF or AVIF image');
  }
  const formatName = SNIFFED_NAMES[sniffed];

  // 2. Header only: no pixels are decoded, so a decompression bomb costs nothing here.
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (err) {
    throw classifyDecodeError(err, sniffed);
  }
  const allowed = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'];
  if (!allowed.includes(meta.format)) {
    throw new ImageError('unsupported_format', `Unsupported image format: ${meta.format}`);
  }
  if (meta.format === 'heif' && meta.compression !== 'av1') {
    // sharp's prebuilt libvips has no HEVC decoder (patents): HEIC cannot be decoded.
    throw new ImageError('unsupported_format', `Unsupported image format: HEIF/${meta.compression ?? 'unknown'} (HEIC); AVIF is supported`);
  }
  const rawWidth = meta.width;
  const rawHeight = meta.height;
  if (!(rawWidth > 0 && rawHeight > 0)) {
    throw new ImageError('corrupt_image', `The ${formatName} image has invalid dimensions ${rawWidth}x${rawHeight}`);
  }
  if (rawWidth * rawHeight > maxPixels) {
    throw new ImageError(
      'image_too_large',
      `Image is ${rawWidth}x${rawHeight} (${((rawWidth * rawHeight) / 1e6).toFixed(1)} MP), above the limit of ${(maxPixels / 1e6).toFixed(1)} MP`,
    );
  }
  const swap = (meta.orientation ?? 1) >= 5;
  const oriented: Dims = meta.autoOrient
    ? { width: meta.autoOrient.width, height: meta.autoOrient.height }
    : swap
      ? { width: rawHeight, height: rawWidth }
      : { width: rawWidth, height: rawHeight };

  // 3. The one decode: orient, sRGB 8-bit, shrink (on load where the codec allows) to the largest size needed.
  const targets = sizes.map((s) => ({ spec: s, dims: fitInside(oriented, s.edge) }));
  const largest = targets.reduce((a, b) => (b.dims.width * b.dims.height > a.dims.width * a.dims.height ? b : a)).dims;
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await sharp(input, {
      failOn: FAIL_ON,
      limitInputPixels: maxPixels,
      sequentialRead: true,
      autoOrient: true,
    })
      .resize(largest.width, largest.height, { fit: 'fill' })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw classifyDecodeError(err, sniffed);
  }
  const { data, info } = decoded;
  const hasAlpha = usesAlpha(data, info.channels);
  const dropAlpha = !hasAlpha && info.channels === 4;
  const raw = { width: info.width, height: info.height, channels: info.channels as 3 | 4 };
  const primary: OutFormat = hasAlpha ? 'png' : 'jpeg';

  // 4. Every output from the raw buffer, concurrently; identical dimensions are encoded once.
  const encode = (src: sharp.Sharp, format: OutFormat): Promise<Buffer> => {
    if (dropAlpha) src = src.removeAlpha();
    switch (format) {
      case 'jpeg':
        return src.jpeg({ quality: jpegQuality, chromaSubsampling: '4:2:0' }).toBuffer();
      case 'png':
        return src.png({ compressionLevel: 6, adaptiveFiltering: true }).toBuffer();
      case 'webp':
        return src.webp({ quality: webpQuality, effort: webpEffort }).toBuffer();
    }
  };
  const byDims = new Map<string, Promise<[Buffer, Buffer]>>();
  const render = (dims: Dims): Promise<[Buffer, Buffer]> => {
    const key = `${dims.width}x${dims.height}`;
    let p = byDims.get(key);
    if (!p) {
      p = (async () => {
        let pixels = data;
        let rawDims = raw;
        if (dims.width !== raw.width || dims.height !== raw.height) {
          // Resize once, encode twice from the result.
          const r = await sharp(data, { raw })
            .resize(dims.width, dims.height, { fit: 'fill' })
            .raw()
            .toBuffer({ resolveWithObject: true });
          pixels = r.data;
          rawDims = { width: r.info.width, height: r.info.height, channels: r.info.channels as 3 | 4 };
        }
        return Promise.all([
          encode(sharp(pixels, { raw: rawDims }), primary),
          encode(sharp(pixels, { raw: rawDims }), 'webp'),
        ]);
      })();
      byDims.set(key, p);
    }
    return p;
  };
  const rendered = await Promise.all(targets.map((t) => render(t.dims)));

  const outputs: RenderedThumbnail[] = [];
  targets.forEach((t, i) => {
    const [first, webp] = rendered[i];
    outputs.push(output(t.spec.name, primary, t.dims, first), output(t.spec.name, 'webp', t.dims, webp));
  });
  return {
    input: { format: formatName, width: oriented.width, height: oriented.height, bytes: input.length, hasAlpha },
    outputs,
  };
}

function output(name: string, format: OutFormat, dims: Dims, data: Buffer): RenderedThumbnail {
  return {
    name,
    format,
    ext: EXTS[format],
    contentType: CONTENT_TYPES[format],
    width: dims.width,
    height: dims.height,
    bytes: data.length,
    data,
  };
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}
