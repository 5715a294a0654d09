import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_SIZES,
  ImageError,
  makeThumbnails,
  parseSizes,
  type RenderedThumbnail,
  type ThumbnailResult,
} from '../../job-types/thumbnail/core';
import {
  animatedGif,
  cornerMarked,
  fromRaw,
  photoJpeg,
  photoLikeRaw,
  photoWithAlphaRaw,
  pngBomb,
  solid,
} from './fixtures/images';

// ---------------------------------------------------------------------------------------------
// helpers

async function pixelAt(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  const o = (y * info.width + x) * info.channels;
  return Array.from(data.subarray(o, o + info.channels));
}

/** Which of red / green / blue a pixel is (asserting it is clearly one of them). */
function primary([r, g, b]: number[]): 'red' | 'green' | 'blue' {
  const max = Math.max(r, g, b);
  expect(max, `pixel ${r},${g},${b}`).toBeGreaterThan(150);
  const others = [r, g, b].filter((v) => v !== max);
  expect(Math.max(...others, 0), `pixel ${r},${g},${b}`).toBeLessThan(100);
  return max === r ? 'red' : max === g ? 'green' : 'blue';
}

function byName(result: ThumbnailResult, name: string, format: RenderedThumbnail['format']): RenderedThumbnail {
  const out = result.outputs.find((o) => o.name === name && o.format === format);
  expect(out, `${name}.${format}`).toBeDefined();
  return out!;
}

/** Checks every output really is what it claims (decodes it) and has no metadata. */
async function checkOutputs(result: ThumbnailResult): Promise<void> {
  for (const out of result.outputs) {
    const meta = await sharp(out.data).metadata();
    expect(meta.format, `${out.name}.${out.ext}`).toBe(out.format);
    expect([meta.width, meta.height], `${out.name}.${out.ext}`).toEqual([out.width, out.height]);
    expect(out.bytes).toBe(out.data.length);
    expect(out.contentType).toBe(`image/${out.format}`);
    expect(out.ext).toBe({ jpeg: 'jpg', webp: 'webp', png: 'png' }[out.format]);
    expect(meta.space).toBe('srgb');
    expect(meta.exif, `${out.name}.${out.ext} exif`).toBeUndefined();
    expect(meta.xmp, `${out.name}.${out.ext} xmp`).toBeUndefined();
    expect(meta.iptc, `${out.name}.${out.ext} iptc`).toBeUndefined();
    expect(meta.icc, `${out.name}.${out.ext} icc`).toBeUndefined();
    expect(meta.pages ?? 1).toBe(1);
  }
}

async function expectImageError(p: Promise<unknown>, code: ImageError['code']): Promise<ImageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ImageError(${code})`).toBeInstanceOf(ImageError);
  const ie = err as ImageError;
  expect(ie.code, ie.message).toBe(code);
  expect(ie.permanent).toBe(true);
  expect(ie.message.length).toBeGreaterThan(5);
  return ie;
}

// ---------------------------------------------------------------------------------------------

describe('parseSizes', () => {
  it('parses the default specification', () => {
    expect(parseSizes('small:160,medium:640,large:1280')).toEqual(DEFAULT_SIZES);
    expect(DEFAULT_SIZES).toEqual([
      { name: 'small', edge: 160 },
      { name: 'medium', edge: 640 },
      { name: 'large', edge: 1280 },
    ]);
  });

  it('tolerates whitespace and keeps the given order', () => {
    expect(parseSizes(' thumb : 100 , hero_2x:2048 ')).toEqual([
      { name: 'thumb', edge: 100 },
      { name: 'hero_2x', edge: 2048 },
    ]);
    expect(parseSizes('one:1')).toEqual([{ name: 'one', edge: 1 }]);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['small', /name:edge/],
    ['small:160,', /name:edge/],
    ['small:160,,large:1280', /name:edge/],
    ['small:abc', /positive integer/],
    ['small:-5', /positive integer/],
    ['small:1.5', /positive integer/],
    ['small:0', /from 1 to 8192/],
    ['small:100000', /from 1 to 8192/],
    ['small:160,small:320', /duplicate/],
    ['a/b:160', /name/],
    ['../x:160', /name/],
    ['small:160:3', /positive integer/],
  ])('rejects %j', (spec, message) => {
    expect(() => parseSizes(spec)).toThrow(message);
  });

  it('validates sizes passed as options too (a plain Error, not an ImageError)', async () => {
    const png = await solid(10, 10, '#123456').png().toBuffer();
    await expect(makeThumbnails(png, { sizes: [] })).rejects.toThrow(/at least one size/);
    await expect(makeThumbnails(png, { sizes: [{ name: 'x', edge: 0 }] })).rejects.toThrow(/edge/);
    await expect(makeThumbnails(png, { sizes: [{ name: 'x', edge: 0 }] })).rejects.not.toBeInstanceOf(ImageError);
  });
});

describe('sizes and geometry', () => {
  let portrait: ThumbnailResult;
  let photo: Buffer;

  beforeAll(async () => {
    // A realistic 12 MP camera JPEG, stored landscape with EXIF orientation 6 (shot in portrait).
    photo = await photoJpeg(4000, 3000, { orientation: 6 });
    portrait = await makeThumbnails(photo);
  });

  it('reports the oriented input dimensions and the detected format', () => {
    expect(photo.length).toBeGreaterThan(1_000_000); // compresses like a photo
    expect(portrait.input).toEqual({ format: 'jpeg', width: 3000, height: 4000, bytes: photo.length, hasAlpha: false });
  });

  it('renders JPEG + WebP for each size, longest edge 160/640/1280, aspect ratio kept', async () => {
    expect(portrait.outputs.map((o) => `${o.name}.${o.ext}`)).toEqual([
      'small.jpg',
      'small.webp',
      'medium.jpg',
      'medium.webp',
      'large.jpg',
      'large.webp',
    ]);
    const expected: Record<string, [number, number]> = { small: [120, 160], medium: [480, 640], large: [960, 1280] };
    for (const out of portrait.outputs) {
      expect([out.width, out.height], out.name).toEqual(expected[out.name]);
    }
    await checkOutputs(portrait);
    // bigger sizes are bigger files
    const jpgs = ['small', 'medium', 'large'].map((n) => byName(portrait, n, 'jpeg').bytes);
    expect(jpgs[0]).toBeLessThan(jpgs[1]);
    expect(jpgs[1]).toBeLessThan(jpgs[2]);
  });

  it('keeps odd aspect ratios (rounding like fit: inside)', async () => {
    const img = await fromRaw(await photoLikeRaw(1700, 300, 5)).png().toBuffer();
    const r = await makeThumbnails(img, { sizes: [{ name: 'a', edge: 640 }, { name: 'b', edge: 160 }] });
    expect([byName(r, 'a', 'jpeg').width, byName(r, 'a', 'jpeg').height]).toEqual([640, 113]); // 300*640/1700 = 112.9
    expect([byName(r, 'b', 'webp').width, byName(r, 'b', 'webp').height]).toEqual([160, 28]); // 28.2
    // the same as sharp's own fit: inside
    const ref = await sharp(img).resize(640, 640, { fit: 'inside' }).toBuffer({ resolveWithObject: true });
    expect([ref.info.width, ref.info.height]).toEqual([640, 113]);
  });

  it('never upscales: a 100x50 image gives 100x50 outputs for every size', async () => {
    const img = await fromRaw(await photoLikeRaw(100, 50, 3)).jpeg().toBuffer();
    const r = await makeThumbnails(img);
    expect(r.outputs).toHaveLength(6);
    for (const out of r.outputs) expect([out.width, out.height]).toEqual([100, 50]);
    await checkOutputs(r);
  });

  it('handles a 1x1 image', async () => {
    const img = await solid(1, 1, '#ff0000').png().toBuffer();
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format: 'png', width: 1, height: 1, hasAlpha: false });
    expect(r.outputs).toHaveLength(6);
    for (const out of r.outputs) expect([out.width, out.height]).toEqual([1, 1]);
    expect(primary(await pixelAt(byName(r, 'small', 'jpeg').data, 0, 0))).toBe('red');
    await checkOutputs(r);
  });

  it('handles extreme aspect ratios without a zero dimension', async () => {
    const img = await solid(5000, 2, '#00ff00').png().toBuffer();
    const r = await makeThumbnails(img);
    expect([byName(r, 'small', 'jpeg').width, byName(r, 'small', 'jpeg').height]).toEqual([160, 1]);
    expect([byName(r, 'large', 'webp').width, byName(r, 'large', 'webp').height]).toEqual([1280, 1]);
  });

  it('applies custom sizes and qualities', async () => {
    const r = await makeThumbnails(photo, { sizes: [{ name: 'tiny', edge: 64 }], jpegQuality: 30, webpQuality: 30 });
    expect(r.outputs.map((o) => `${o.name}.${o.ext}:${o.width}x${o.height}`)).toEqual(['tiny.jpg:48x64', 'tiny.webp:48x64']);
    const hq = await makeThumbnails(photo, { sizes: [{ name: 'tiny', edge: 64 }], jpegQuality: 95, webpQuality: 95 });
    expect(r.outputs[0].bytes).toBeLessThan(hq.outputs[0].bytes);
    expect(r.outputs[1].bytes).toBeLessThan(hq.outputs[1].bytes);
  });
});

describe('EXIF orientation', () => {
  // Where the stored top-left (red) and top-right (green) blocks must appear once oriented.
  const expected: Record<number, [string, string]> = {
    1: ['TL', 'TR'],
    2: ['TR', 'TL'], // mirrored
    3: ['BR', 'BL'], // rotated 180
    4: ['BL', 'BR'], // flipped
    5: ['TL', 'BL'], // transposed
    6: ['TR', 'BR'], // rotated 90 CW
    7: ['BR', 'TR'], // transversed
    8: ['BL', 'TL'], // rotated 90 CCW
  };

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i: oriented dimensions and rotated pixels', async (orientation) => {
    const input = await cornerMarked(240, 160).withMetadata({ orientation }).jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(input).metadata()).orientation).toBe(orientation);
    const r = await makeThumbnails(input, { sizes: [{ name: 'full', edge: 1000 }, { name: 'half', edge: 120 }] });
    const swapped = orientation >= 5;
    const [w, h] = swapped ? [160, 240] : [240, 160];
    expect([r.input.width, r.input.height]).toEqual([w, h]);
    for (const format of ['jpeg', 'webp'] as const) {
      for (const [name, scale] of [
        ['full', 1],
        ['half', 0.5],
      ] as const) {
        const out = byName(r, name, format);
        expect([out.width, out.height]).toEqual([w * scale, h * scale]);
        const inset = 6 * scale;
        const corners: Record<string, [number, number]> = {
          TL: [inset, inset],
          TR: [out.width - 1 - inset, inset],
          BL: [inset, out.height - 1 - inset],
          BR: [out.width - 1 - inset, out.height - 1 - inset],
        };
        const [redAt, greenAt] = expected[orientation];
        const seen: Record<string, string> = {};
        for (const [corner, [x, y]] of Object.entries(corners)) seen[corner] = primary(await pixelAt(out.data, x, y));
        const want = { TL: 'blue', TR: 'blue', BL: 'blue', BR: 'blue', [redAt]: 'red', [greenAt]: 'green' };
        expect(seen, `${name}.${format}`).toEqual(want);
      }
    }
    await checkOutputs(r); // and no Orientation tag left behind
  });
});

describe('input formats', () => {
  it('opaque PNG -> JPEG + WebP', async () => {
    const img = await fromRaw(await photoLikeRaw(800, 600, 7)).png().toBuffer();
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format: 'png', width: 800, height: 600, hasAlpha: false });
    expect(r.outputs.map((o) => o.format)).toEqual(['jpeg', 'webp', 'jpeg', 'webp', 'jpeg', 'webp']);
    await checkOutputs(r);
  });

  it('PNG with transparency -> PNG + WebP, transparency kept', async () => {
    const img = await fromRaw(await photoWithAlphaRaw(900, 600)).png().toBuffer();
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format: 'png', width: 900, height: 600, hasAlpha: true });
    expect(r.outputs.map((o) => `${o.name}.${o.ext}`)).toEqual([
      'small.png',
      'small.webp',
      'medium.png',
      'medium.webp',
      'large.png',
      'large.webp',
    ]);
    expect(r.outputs.map((o) => o.contentType)).toEqual(['image/png', 'image/webp', 'image/png', 'image/webp', 'image/png', 'image/webp']);
    await checkOutputs(r);
    for (const out of r.outputs) {
      const meta = await sharp(out.data).metadata();
      expect(meta.hasAlpha, `${out.name}.${out.ext}`).toBe(true);
      expect((await pixelAt(out.data, 0, 0))[3], 'corner transparent').toBe(0);
      expect((await pixelAt(out.data, out.width >> 1, out.height >> 1))[3], 'centre opaque').toBe(255);
    }
  });

  it('an alpha channel that is fully opaque does not count as transparency', async () => {
    const img = await fromRaw(await photoLikeRaw(400, 300, 8))
      .ensureAlpha(1)
      .png()
      .toBuffer();
    expect((await sharp(img).metadata()).hasAlpha).toBe(true);
    const r = await makeThumbnails(img);
    expect(r.input.hasAlpha).toBe(false);
    expect(r.outputs.map((o) => o.format)).toEqual(['jpeg', 'webp', 'jpeg', 'webp', 'jpeg', 'webp']);
    for (const out of r.outputs) expect((await sharp(out.data).metadata()).hasAlpha).toBe(false);
  });

  it('16-bit PNG', async () => {
    const img = await solid(300, 200, '#ff0000').toColourspace('rgb16').png().toBuffer();
    const meta = await sharp(img).metadata();
    expect([meta.depth, meta.bitsPerSample]).toEqual(['ushort', 16]);
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format: 'png', width: 300, height: 200 });
    await checkOutputs(r);
    for (const out of r.outputs) {
      expect((await sharp(out.data).metadata()).depth).toBe('uchar');
      expect(primary(await pixelAt(out.data, 10, 10))).toBe('red');
    }
  });

  it('palette PNG, opaque and with transparency', async () => {
    const opaque = await fromRaw(await photoLikeRaw(320, 240, 9)).png({ palette: true }).toBuffer();
    expect((await sharp(opaque).metadata()).isPalette).toBe(true);
    const r1 = await makeThumbnails(opaque);
    expect(r1.outputs.map((o) => o.format)).toEqual(['jpeg', 'webp', 'jpeg', 'webp', 'jpeg', 'webp']);
    await checkOutputs(r1);

    const transparent = await fromRaw(await photoWithAlphaRaw(320, 240, 10)).png({ palette: true }).toBuffer();
    const meta = await sharp(transparent).metadata();
    expect([meta.isPalette, meta.hasAlpha]).toEqual([true, true]);
    const r2 = await makeThumbnails(transparent);
    expect(r2.input.hasAlpha).toBe(true);
    expect(r2.outputs.map((o) => o.format)).toEqual(['png', 'webp', 'png', 'webp', 'png', 'webp']);
    await checkOutputs(r2);
  });

  it('greyscale JPEG -> sRGB outputs', async () => {
    const img = await fromRaw(await photoLikeRaw(300, 200, 11)).toColourspace('b-w').jpeg().toBuffer();
    expect((await sharp(img).metadata()).space).toBe('b-w');
    const r = await makeThumbnails(img);
    await checkOutputs(r);
  });

  it('CMYK JPEG -> sRGB outputs with the right colours', async () => {
    const img = await solid(400, 300, '#ff0000').toColourspace('cmyk').jpeg().toBuffer();
    const meta = await sharp(img).metadata();
    expect([meta.space, meta.channels]).toEqual(['cmyk', 4]);
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format: 'jpeg', width: 400, height: 300, hasAlpha: false });
    await checkOutputs(r); // space srgb
    for (const out of r.outputs) {
      expect((await sharp(out.data).metadata()).channels).toBe(3);
      expect(primary(await pixelAt(out.data, 5, 5))).toBe('red'); // not inverted, not CMY garbage
    }
  });

  it('an embedded colour profile is applied (converted to sRGB), then dropped', async () => {
    // sRGB pure green converted to Display P3 values, with the P3 profile embedded:
    // read without colour management it would be about (117, 251, 76).
    const img = await solid(200, 200, '#00ff00').withIccProfile('p3').jpeg({ quality: 95 }).toBuffer();
    const meta = await sharp(img).metadata();
    expect(meta.hasProfile).toBe(true);
    const [r0, g0, b0] = await pixelAt(await sharp(img, { ignoreIcc: true }).png().toBuffer(), 100, 100);
    expect(r0).toBeGreaterThan(60); // the stored values really are P3
    expect(g0).toBeGreaterThan(200);
    const r = await makeThumbnails(img);
    await checkOutputs(r); // no ICC in outputs
    const [r1, g1, b1] = await pixelAt(byName(r, 'small', 'jpeg').data, 80, 80);
    expect(r1).toBeLessThan(30);
    expect(g1).toBeGreaterThan(220);
    expect(b1).toBeLessThan(40);
    expect(b0).toBeGreaterThan(b1);
  });

  it('progressive JPEG', async () => {
    const img = await photoJpeg(1600, 1200, { progressive: true, seed: 12 });
    expect((await sharp(img).metadata()).isProgressive).toBe(true);
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format: 'jpeg', width: 1600, height: 1200 });
    expect([byName(r, 'large', 'jpeg').width, byName(r, 'large', 'jpeg').height]).toEqual([1280, 960]);
    await checkOutputs(r);
  });

  it.each([
    ['webp', (s: sharp.Sharp) => s.webp({ quality: 90 })],
    ['webp', (s: sharp.Sharp) => s.webp({ lossless: true })],
    ['tiff', (s: sharp.Sharp) => s.tiff({ compression: 'lzw' })],
    ['tiff', (s: sharp.Sharp) => s.tiff({ compression: 'jpeg' })],
    ['avif', (s: sharp.Sharp) => s.avif({ quality: 60, effort: 0 })],
  ])('%s input', async (format, encode) => {
    const img = await encode(fromRaw(await photoLikeRaw(700, 500, 13))).toBuffer();
    const r = await makeThumbnails(img);
    expect(r.input).toMatchObject({ format, width: 700, height: 500, hasAlpha: false, bytes: img.length });
    expect(r.outputs.map((o) => `${o.name}.${o.ext}:${o.width}x${o.height}`)).toEqual([
      'small.jpg:160x114',
      'small.webp:160x114',
      'medium.jpg:640x457',
      'medium.webp:640x457',
      'large.jpg:700x500',
      'large.webp:700x500',
    ]);
    await checkOutputs(r);
  });

  it('WebP and AVIF with transparency -> PNG + WebP', async () => {
    for (const encode of [(s: sharp.Sharp) => s.webp(), (s: sharp.Sharp) => s.avif({ effort: 0 })]) {
      const img = await encode(fromRaw(await photoWithAlphaRaw(300, 200, 14))).toBuffer();
      const r = await makeThumbnails(img);
      expect(r.input.hasAlpha).toBe(true);
      expect(r.outputs.map((o) => o.format)).toEqual(['png', 'webp', 'png', 'webp', 'png', 'webp']);
      await checkOutputs(r);
    }
  });

  it('animated GIF -> first frame only, not animated', async () => {
    const gif = await animatedGif(200, 100, ['#ff0000', '#00ff00', '#0000ff']);
    const meta = await sharp(gif).metadata();
    expect(meta.pages).toBe(3);
    const r = await makeThumbnails(gif);
    expect(r.input).toMatchObject({ format: 'gif', width: 200, height: 100, hasAlpha: false });
    expect(r.outputs.map((o) => `${o.name}.${o.ext}:${o.width}x${o.height}`)).toEqual([
      'small.jpg:160x80',
      'small.webp:160x80',
      'medium.jpg:200x100',
      'medium.webp:200x100',
      'large.jpg:200x100',
      'large.webp:200x100',
    ]);
    await checkOutputs(r); // pages 1
    for (const out of r.outputs) {
      expect((await sharp(out.data, { pages: -1 }).metadata()).pages ?? 1).toBe(1);
      expect(primary(await pixelAt(out.data, 20, 20))).toBe('red');
      expect(primary(await pixelAt(out.data, 20, out.height - 5))).toBe('red'); // not frames stacked
    }
  });

  it('animated WebP -> first frame only', async () => {
    const frames = await Promise.all(['#0000ff', '#ff0000'].map((c) => solid(120, 90, c).png().toBuffer()));
    const webp = await sharp(frames, { join: { animated: true } }).webp().toBuffer();
    expect((await sharp(webp).metadata()).pages).toBe(2);
    const r = await makeThumbnails(webp);
    expect([r.input.width, r.input.height]).toEqual([120, 90]);
    for (const out of r.outputs) {
      expect([out.width, out.height]).toEqual([120, 90]);
      expect(primary(await pixelAt(out.data, 60, 80))).toBe('blue');
    }
    await checkOutputs(r);
  });
});

describe('metadata is stripped', () => {
  it('EXIF (camera, GPS), XMP and ICC from the input never reach an output', async () => {
    const input = await fromRaw(await photoLikeRaw(1000, 750, 15))
      .withExif({
        IFD0: { Make: 'SpyCam', Model: 'X1', Copyright: 'someone' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 2650/100', GPSLongitudeRef: 'W', GPSLongitude: '0/1 7/1 3940/100' },
      })
      .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
      .withIccProfile('srgb')
      .jpeg()
      .toBuffer();
    const meta = await sharp(input).metadata();
    expect(meta.exif?.includes('SpyCam')).toBe(true);
    expect(meta.exif?.includes(Buffer.from([0x25, 0x88])), 'GPS IFD pointer (tag 0x8825)').toBe(true);
    expect(meta.exif?.includes('N\0')).toBe(true);
    expect(meta.xmp).toBeDefined();
    expect(meta.icc).toBeDefined();

    const r = await makeThumbnails(input);
    await checkOutputs(r); // exif, xmp, iptc, icc all undefined
    for (const out of r.outputs) {
      expect(out.data.includes('SpyCam'), `${out.name}.${out.ext}`).toBe(false);
      expect(out.data.includes('Exif\0'), `${out.name}.${out.ext}`).toBe(false);
    }
  });
});

describe('errors', () => {
  it('empty buffer -> empty_file', async () => {
    await expectImageError(makeThumbnails(Buffer.alloc(0)), 'empty_file');
  });

  it.each([
    ['text', Buffer.from('hello, this is not an image\n'.repeat(20))],
    ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251))],
    ['a single byte', Buffer.from([0xff])],
    ['JSON', Buffer.from('{"image": "nope"}')],
    ['PDF', Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n')],
    ['BMP', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)])],
    ['ZIP', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0])],
  ])('%s -> unsupported_format', async (_label, buf) => {
    await expectImageError(makeThumbnails(buf), 'unsupported_format');
  });

  it('SVG -> unsupported_format (never rendered: scripts, external entities)', async () => {
    const svg = Buffer.from(
      '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' +
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><text y="20">&xxe;</text>' +
        '<script>alert(1)</script><rect width="100" height="100" fill="red"/></svg>',
    );
    // sharp itself would happily render an SVG
    expect((await sharp(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')).metadata()).format).toBe('svg');
    await expectImageError(makeThumbnails(svg), 'unsupported_format');
    await expectImageError(makeThumbnails(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), 'unsupported_format');
    // with a BOM and leading whitespace too
    await expectImageError(makeThumbnails(Buffer.from('\ufeff  <svg xmlns="http://www.w3.org/2000/svg"/>')), 'unsupported_format');
  });

  it('truncated JPEG -> corrupt_image (not a grey bottom half)', async () => {
    const jpg = await photoJpeg(1200, 900, { seed: 16 });
    for (const frac of [0.2, 0.5, 0.9, 0.99]) {
      await expectImageError(makeThumbnails(jpg.subarray(0, Math.floor(jpg.length * frac))), 'corrupt_image');
    }
    await expectImageError(makeThumbnails(jpg.subarray(0, 3)), 'corrupt_image'); // magic only
    await expectImageError(makeThumbnails(jpg.subarray(0, 200)), 'corrupt_image'); // header cut
  });

  it('truncated or damaged PNG -> corrupt_image', async () => {
    const png = await fromRaw(await photoLikeRaw(600, 400, 17)).png().toBuffer();
    for (const frac of [0.1, 0.5, 0.95]) {
      await expectImageError(makeThumbnails(png.subarray(0, Math.floor(png.length * frac))), 'corrupt_image');
    }
    await expectImageError(makeThumbnails(png.subarray(0, 20)), 'corrupt_image');
    const damaged = Buffer.from(png);
    for (let i = damaged.length >> 1; i < (damaged.length >> 1) + 500; i++) damaged[i] ^= 0xa5;
    await expectImageError(makeThumbnails(damaged), 'corrupt_image');
  });

  it('truncated GIF, WebP, TIFF and AVIF -> corrupt_image', async () => {
    const base = () => fromRaw({ data: Buffer.alloc(200 * 150 * 3, 99), width: 200, height: 150, channels: 3 });
    const files = [
      await base().gif().toBuffer(),
      await fromRaw(await photoLikeRaw(200, 150, 18)).webp().toBuffer(),
      await base().tiff().toBuffer(),
      await fromRaw(await photoLikeRaw(200, 150, 19)).avif({ effort: 0 }).toBuffer(),
    ];
    for (const file of files) {
      await expectImageError(makeThumbnails(file.subarray(0, Math.floor(file.length * 0.6))), 'corrupt_image');
    }
  });

  it('decompression bomb (tiny PNG declaring 30000x30000) -> image_too_large, from the header alone (no pixel decoded)', async () => {
    const bomb = pngBomb(30000, 30000);
    expect(bomb.length).toBeLessThan(2000);
    const meta = await sharp(bomb, { limitInputPixels: false }).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 30000, 30000]);
    // Refused before any pixel pipeline runs: the header read (metadata) is all that happens,
    // nothing is decoded or encoded (toBuffer runs every sharp pipeline; stats and toFile too).
    const proto = Object.getPrototypeOf(sharp()) as sharp.Sharp;
    const metadata = vi.spyOn(proto, 'metadata');
    const pipelines = (['toBuffer', 'toFile', 'stats'] as const).map((m) => vi.spyOn(proto, m));
    try {
      const err = await expectImageError(makeThumbnails(bomb), 'image_too_large');
      expect(err.message).toMatch(/30000x30000/);
      expect(metadata).toHaveBeenCalledTimes(1);
      for (const p of pipelines) expect(p).not.toHaveBeenCalled();
    } finally {
      metadata.mockRestore();
      pipelines.forEach((p) => p.mockRestore());
    }
  });

  it('a lower maxPixels applies, checked against the header', async () => {
    const img = await fromRaw(await photoLikeRaw(400, 300, 20)).jpeg().toBuffer(); // 120 000 px
    await expectImageError(makeThumbnails(img, { maxPixels: 119_999 }), 'image_too_large');
    const ok = await makeThumbnails(img, { maxPixels: 120_000 });
    expect(ok.outputs).toHaveLength(6);
    // the bomb's rows (under a raised limit) are not decoded either: its data is truncated
    await expectImageError(makeThumbnails(pngBomb(2000, 2000), { maxPixels: 1_000_000 }), 'image_too_large');
    await expectImageError(makeThumbnails(pngBomb(2000, 2000)), 'corrupt_image');
  });

  it('ImageError is an Error with a code and permanent = true', () => {
    const e = new ImageError('corrupt_image', 'bad');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ImageError');
    expect([e.code, e.permanent, e.message]).toEqual(['corrupt_image', true, 'bad']);
  });
});
