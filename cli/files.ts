import * as fs from 'node:fs';
import * as path from 'node:path';
import fg from 'fast-glob';

export interface ExpandedInputs {
  /** Files to upload, as the user named them (relative to cwd for glob matches), without duplicates. */
  files: string[];
  /** One message per argument that named nothing uploadable. */
  errors: string[];
}

/**
 * Files and globs -> files. An argument naming an existing file is taken as is (even if it
 * contains glob characters); otherwise a glob is expanded with fast-glob (files only, no
 * dot files unless the pattern says so). A missing file, a directory, or a glob that matches
 * nothing is an error for that argument; the others still count.
 */
export function expandInputs(args: readonly string[], cwd: string): ExpandedInputs {
  const files: string[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  const add = (file: string) => {
    const abs = path.resolve(cwd, file);
    if (seen.has(abs)) return;
    seen.add(abs);
    files.push(file);
  };
  for (const arg of args) {
    const stat = statOrUndefined(path.resolve(cwd, arg));
    if (stat?.isFile()) {
      add(arg);
      continue;
    }
    if (stat?.isDirectory()) {
      errors.push(`${arg}: is a directory (use a glob such as "${path.join(arg, '*.jpg')}")`);
      continue;
    }
    // Glob syntax wants forward slashes, also on Windows.
    const pattern = path.sep === '\\' ? arg.replace(/\\/g, '/') : arg;
    if (fg.isDynamicPattern(pattern)) {
      const matches = fg.sync(pattern, { cwd, onlyFiles: true, unique: true, followSymbolicLinks: true }).sort();
      if (matches.length === 0) errors.push(`${arg}: no files match`);
      matches.forEach(add);
      continue;
    }
    errors.push(`${arg}: no such file`);
  }
  return { files, errors };
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch {
    return undefined;
  }
}
