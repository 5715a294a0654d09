/** Writes docs/openapi.json: the OpenAPI document of the built-in job types (`npm run openapi`). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { builtInJobTypes } from '../job-types';
import { openApiDocument } from '../lib/openapi';

const file = path.join(__dirname, '..', 'docs', 'openapi.json');
fs.writeFileSync(file, `${JSON.stringify(openApiDocument(builtInJobTypes.map((t) => t.definition)), null, 2)}\n`);
console.log(`wrote ${path.relative(process.cwd(), file)}`);
