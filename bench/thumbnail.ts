/**
 * Thumbnail benchmark: ms per image for
 *  - ours: `makeThumbnails` (validation, sniffing, header checks, one decode, 6 outputs);
 *  - bare sharp: a hand-tuned sharp pipeline producing the same outputs (same sizes, formats,
 *    encoder settings) with none of the checks: the yardstick (target: ours <= 1.10x);
 *  - jimp (pure JS): the same sizes in the primary format only (JPEG, or PNG for transparent
 *    images), since jimp has no WebP encoder (target: ours >= 10x faster).
 *
 * Runs are interleaved (ours, bare, bare, ours, ...) after a warm-up, and medians are taken,
 * so the ratios come from the same process under the same conditions.
 *
 *   npx tsx bench/thumbnail.ts [--photo path/to/photo.jpg] [--iterations 10]
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Jimp } from 'jimp';
import sharp from 'sharp';
import {
  DEFAULT_JPEG_QUALITY,
  DEFAULT_SIZES,
  DEFAULT_WEBP_EFFORT,
  DEFAULT_WEBP_QUALITY,
  makeThumbnails,
} from '../job-types/thumbnail/core';
import { fromRaw, photoLikeRaw, photoWithAlphaRaw } from '../test/unit/fixtures/images';

export interface ThumbnailBenchImage {
  name: string;
  width: number;
  height: number;
  bytes: number;
  oursMs: number;
  bareSharpMs: number;
  jimpMs: number;
  /** oursMs / bareSharpMs: 1.00 means no overhead; the target is <= 1.10. */
  ratioVsSharp: number;
  /** jimpMs / oursMs: how many times faster than jimp; the target is >= 10. */
  ratioVsJimp: number;
  /** What jimp produced (it cannot encode WebP, so it does half of our work). */
  jimpOutputs: string;
  /** Extra, for an equal-work comparison: sharp producing only what jimp produces. */
  sharpJimpWorkMs: number;
  /** jimpMs / sharpJimpWorkMs: jimp vs sharp on the same work. */
  sameWorkRatioVsJimp: number;
}

export interface ThumbnailBenchResult {
  images: ThumbnailBenchImage[];
  /** Means over the images of the per-image medians (ms per image). */
  oursMs: number;
  bareSharpMs: number;
  jimpMs: number;
  ratioVsSharp: number;
  ratioVsJimp: number;
}

interface BareOutput {
  name: string;
  format: 'jpeg' | 'png' | 'webp';
  width: number;
  height: number;
  data: Buffer;
}

const EDGES = DEFAULT_SIZES;
const JPEG = { quality: DEFAULT_JPEG_QUALITY, chromaSubsampling: '4:2:0' } as const;
const WEBP = { quality: DEFAULT_WEBP_QUALITY, effort: DEFAULT_WEBP_EFFORT } as const;
const PNG = { compressionLevel: 6, adaptiveFiltering: true } as const;

/**
 * The yardstick: the fastest way found to produce the same six outputs with sharp alone.
 * One decode (auto-oriented, shrink-on-load) to a raw buffer at the largest size; every
 * smaller size resized once from it; all encodes concurrent. No sniffing, no header read,
 * no validation, no alpha scan (the alpha channel's presence decides PNG vs JPEG).
 */
export async function bareSharpThumbnails(input: Buffer): Promise<BareOutput[]> {
  const { data, raw } = await decodeLargest(input);
  const alpha = raw.channels === 4;
  const encodeBoth = (pixels: Buffer, r: typeof raw, name: string): Promise<BareOutput[]> =>
    Promise.all([
      (alpha ? sharp(pixels, { raw: r }).png(PNG) : sharp(pixels, { raw: r }).jpeg(JPEG))
        .toBuffer()
        .then((d): BareOutput => ({ name, format: alpha ? 'png' : 'jpeg', width: r.width, height: r.height, data: d })),
      sharp(pixels, { raw: r })
        .webp(WEBP)
        .toBuffer()
        .then((d): BareOutput => ({ name, format: 'webp', width: r.width, height: r.height, data: d })),
    ]);
  const perSize = await Promise.all(
    EDGES.map(async ({ name, edge }) => {
      if (edge >= Math.max(raw.width, raw.height)) return encodeBoth(data, raw, name);
      const r = await sharp(data, { raw })
        .resize(edge, edge, { fit: 'inside' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return encodeBoth(r.data, { width: r.info.width, height: r.info.height, channels: r.info.channels }, name);
    }),
  );
  return perSize.flat();
}

/** jimp 1.6: decode (auto-oriented), then each size in the primary format. */
export async function jimpThumbnails(input: Buffer, alpha: boolean): Promise<Buffer[]> {
  const image = await Jimp.read(input);
  const out: Buffer[] = [];
  for (const { edge } of EDGES) {
    const copy = image.clone();
    if (Math.max(copy.width, copy.height) > edge) copy.scaleToFit({ w: edge, h: edge });
    out.push(alpha ? await copy.getBuffer('image/png') : await copy.getBuffer('image/jpeg', { quality: DEFAULT_JPEG_QUALITY }));
  }
  return out;
}

/** sharp doing jimp's share of the work: the primary-format outputs only, no WebP. */
async function sharpJimpWork(input: Buffer): Promise<Buffer[]> {
  const { data, raw } = await decodeLargest(input);
  return Promise.all(
    EDGES.map(({ edge }) => {
      const img = sharp(data, { raw }).resize(edge, edge, { fit: 'inside', withoutEnlargement: true });
      return (raw.channels === 4 ? img.png(PNG) : img.jpeg(JPEG)).toBuffer();
    }),
  );
}

/** One decode, auto-oriented and shrunk on load to the largest thumbnail size, as raw pixels. */
async function decodeLargest(input: Buffer): Promise<{ data: Buffer; raw: { width: number; height: number; channels: 1 | 2 | 3 | 4 } }> {
  const largest = Math.max(...EDGES.map((s) => s.edge));
  const { data, info } = await sharp(input, { failOn: 'error' })
    .autoOrient()
    .resize(largest, largest, { fit: 'inside', withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, raw: { width: info.width, height: info.height, channels: info.channels } };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

/** The same outputs? (names, formats, dimensions within 1 px of rounding) */
async function checkSameOutputs(name: string, input: Buffer): Promise<void> {
  const ours = await makeThumbnails(input);
  const bare = await bareSharpThumbnails(input);
  const key = (o: { name: string; format: string }): string => `${o.name}.${o.format}`;
  const a = ours.outputs.map(key).sort();
  const b = bare.map(key).sort();
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${name}: outputs differ: ${a} vs ${b}`);
  for (const o of ours.outputs) {
    const m = bare.find((x) => key(x) === key(o))!;
    if (Math.abs(m.width - o.width) > 1 || Math.abs(m.height - o.height) > 1) {
      throw new Error(`${name}: ${key(o)} is ${o.width}x${o.height} (ours) vs ${m.width}x${m.height} (bare)`);
    }
  }
}

export async function benchThumbnail(opts: { photoPath?: string; iterations?: number; jimpIterations?: number } = {}): Promise<ThumbnailBenchResult> {
  const iterations = opts.iterations ?? 10;
  const jimpIterations = opts.jimpIterations ?? 2;

  const inputs: { name: string; data: Buffer }[] = [];
  // A 12 MP photo-like JPEG (~4.4 MB at quality 90, like a phone photo).
  const photo = await photoLikeRaw(4240, 2832, 42);
  inputs.push({ name: 'photo-4240x2832.jpg', data: await fromRaw(photo).jpeg({ quality: 90 }).toBuffer() });
  // A 6 MP PNG with real transparency (outputs PNG + WebP).
  const cutout = await photoWithAlphaRaw(3000, 2000, 43);
  inputs.push({ name: 'alpha-3000x2000.png', data: await fromRaw(cutout).png().toBuffer() });
  if (opts.photoPath) inputs.push({ name: basename(opts.photoPath), data: readFileSync(opts.photoPath) });

  const images: ThumbnailBenchImage[] = [];
  for (const { name, data } of inputs) {
    await checkSameOutputs(name, data); // also the warm-up of both pipelines
    const meta = await makeThumbnails(data, { sizes: [{ name: 'x', edge: 8 }] });
    // warm-up
    await makeThumbnails(data);
    await bareSharpThumbnails(data);

    const ours: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < iterations; i++) {
      // alternate who goes first, so neither always runs on a cooler/warmer machine
      if (i % 2 === 0) {
        ours.push(await time(() => makeThumbnails(data)));
        bare.push(await time(() => bareSharpThumbnails(data)));
      } else {
        bare.push(await time(() => bareSharpThumbnails(data)));
        ours.push(await time(() => makeThumbnails(data)));
      }
    }
    const jimp: number[] = [];
    await jimpThumbnails(data, meta.input.hasAlpha); // warm-up (JIT)
    for (let i = 0; i < jimpIterations; i++) jimp.push(await time(() => jimpThumbnails(data, meta.input.hasAlpha)));
    const jimpWork: number[] = [];
    await sharpJimpWork(data);
    for (let i = 0; i < Math.max(3, jimpIterations); i++) jimpWork.push(await time(() => sharpJimpWork(data)));

    const oursMs = median(ours);
    const bareSharpMs = median(bare);
    const jimpMs = median(jimp);
    images.push({
      name,
      width: meta.input.width,
      height: meta.input.height,
      bytes: data.length,
      oursMs: round(oursMs),
      bareSharpMs: round(bareSharpMs),
      jimpMs: round(jimpMs),
      ratioVsSharp: round(oursMs / bareSharpMs, 3),
      ratioVsJimp: round(jimpMs / oursMs, 1),
      jimpOutputs: `${EDGES.length} x ${meta.input.hasAlpha ? 'png' : 'jpeg'}`,
      sharpJimpWorkMs: round(median(jimpWork)),
      sameWorkRatioVsJimp: round(jimpMs / median(jimpWork), 1),
    });
  }

  const mean = (f: (i: ThumbnailBenchImage) => number): number => images.reduce((s, i) => s + f(i), 0) / images.length;
  const oursMs = mean((i) => i.oursMs);
  const bareSharpMs = mean((i) => i.bareSharpMs);
  const jimpMs = mean((i) => i.jimpMs);
  return {
    images,
    oursMs: round(oursMs),
    bareSharpMs: round(bareSharpMs),
    jimpMs: round(jimpMs),
    ratioVsSharp: round(oursMs / bareSharpMs, 3),
    ratioVsJimp: round(jimpMs / oursMs, 1),
  };
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (require.main === module) {
  const iterations = argValue('--iterations');
  benchThumbnail({ photoPath: argValue('--photo'), iterations: iterations ? Number(iterations) : undefined })
    .then((result) => console.log(JSON.stringify(result, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
