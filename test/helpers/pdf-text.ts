import { inflateSync } from 'node:zlib';

/**
 * The text drawn on a PDF's pages, good enough for the PDFs pdfkit writes with its
 * standard fonts: content streams are inflated, and the hex strings of `Tj`/`TJ` operators
 * decoded (WinAnsi, read as latin1). Text blocks are joined with newlines.
 */
export function pdfText(pdf: Buffer): string {
  const text: string[] = [];
  const raw = pdf.toString('latin1');
  const streams = /stream\r?\n([\s\S]*?)\r?\nendstream/g;
  for (let m = streams.exec(raw); m; m = streams.exec(raw)) {
    const body = Buffer.from(m[1], 'latin1');
    let content: string;
    try {
      content = inflateSync(body).toString('latin1');
    } catch {
      content = m[1];
    }
    const blocks = content.split(/\bBT\b/).slice(1);
    for (const block of blocks) {
      const parts: string[] = [];
      const ops = /\[((?:[^\]\\]|\\.)*)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj|\(((?:[^)\\]|\\.)*)\)\s*Tj/g;
      for (let o = ops.exec(block); o; o = ops.exec(block)) {
        if (o[1] !== undefined) {
          const pieces = /<([0-9a-fA-F]*)>|\(((?:[^)\\]|\\.)*)\)/g;
          for (let p = pieces.exec(o[1]); p; p = pieces.exec(o[1])) parts.push(p[1] !== undefined ? Buffer.from(p[1], 'hex').toString('latin1') : p[2]);
        } else if (o[2] !== undefined) {
          parts.push(Buffer.from(o[2], 'hex').toString('latin1'));
        } else {
          parts.push(o[3]);
        }
      }
      if (parts.length) text.push(parts.join(''));
    }
  }
  return text.join('\n');
}
