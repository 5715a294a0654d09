import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { definition as report } from '../../job-types/report/definition';
import { definition as thumbnail } from '../../job-types/thumbnail/definition';
import { openApiDocument } from '../../lib/openapi';

describe('docs/openapi.json', () => {
  it('is the document the zod schemas generate (run `npm run openapi` after changing a contract)', () => {
    const checkedIn = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'openapi.json'), 'utf8'));
    expect(checkedIn).toEqual(JSON.parse(JSON.stringify(openApiDocument([thumbnail, report]))));
  });
});
