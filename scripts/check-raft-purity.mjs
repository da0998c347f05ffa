#!/usr/bin/env node
// Keeps the Raft core pure (shared/DESIGN.md: "The Raft core is a pure,
// deterministic state machine"): no clock, no randomness but the injected Rng,
// no timers, no I/O, and no imports from outside src/raft.
//
// Usage: node scripts/check-raft-purity.mjs [dir]   (default: src/raft)
// Exits 1 and prints file:line for every violation. No dependencies.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const coreDir = resolve(root, process.argv[2] ?? 'src/raft');

/** Forbidden uses, tested against code with comments and string contents removed. */
const FORBIDDEN = [
  [/\bMath\s*\.\s*random\b/, 'Math.random: take randomness from the injected Rng'],
  [/\bDate\s*\.\s*now\b/, 'Date.now: the core never reads a clock (time is tick())'],
  [/\bnew\s+Date\b/, 'new Date: the core never reads a clock (time is tick())'],
  [/\bperformance\s*\.\s*now\b/, 'performance.now: the core never reads a clock (time is tick())'],
  [/\bsetTimeout\b/, 'setTimeout: the core has no timers (time is tick())'],
  [/\bsetInterval\b/, 'setInterval: the core has no timers (time is tick())'],
  [/(?<![.\w$])fetch\s*\(/, 'fetch(: the core does no I/O (messages leave through Ready)'],
  [/(?<![.\w$])crypto\s*\./, 'crypto.: take randomness from the injected Rng'],
];

/** Import specifiers: static `from '...'`, side-effect `import '...'`, dynamic `import('...')`, `require('...')`. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])([^'"]+)\1/g;

function listTs(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTs(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/**
 * Blanks comments and the contents of string and template literals, keeping
 * line breaks (so line numbers stay right) and quotes (so specifiers can be
 * recovered from the original line). Template `${...}` bodies stay code.
 */
function stripCommentsAndStrings(src) {
  let out = '';
  let i = 0;
  const templateDepth = []; // brace depth at which each open `${` returns to its template
  let braces = 0;
  const blank = (s) => s.replace(/[^\n]/g, ' ');
  while (i < src.length) {
    const c = src[i];
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      const end = src.indexOf('\n', i);
      const stop = end === -1 ? src.length : end;
      out += blank(src.slice(i, stop));
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end === -1 ? src.length : end + 2;
      out += blank(src.slice(i, stop));
      i = stop;
    } else if (c === "'" || c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== '\n') j += src[j] === '\\' ? 2 : 1;
      out += c + blank(src.slice(i + 1, j)) + (src[j] === c ? c : '');
      i = src[j] === c ? j + 1 : j;
    } else if (c === '`' || (c === '}' && templateDepth.length > 0 && templateDepth.at(-1) === braces)) {
      // Inside a template literal (a fresh one, or resuming after a `${...}`).
      if (c === '}') templateDepth.pop();
      out += c;
      let j = i + 1;
      while (j < src.length && src[j] !== '`' && !(src[j] === '$' && src[j + 1] === '{')) j += src[j] === '\\' ? 2 : 1;
      out += blank(src.slice(i + 1, j));
      if (src[j] === '$') {
        templateDepth.push(braces);
        out += '${';
        i = j + 2;
      } else {
        out += src[j] ?? '';
        i = j + 1;
      }
    } else {
      if (c === '{') braces++;
      else if (c === '}') braces--;
      out += c;
      i++;
    }
  }
  return out;
}

function isInsideCore(file, specifier) {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return false;
  const target = resolve(dirname(file), specifier);
  return target === coreDir || target.startsWith(coreDir + sep);
}

const violations = [];
const files = listTs(coreDir);
for (const file of files) {
  const rel = relative(root, file);
  const original = readFileSync(file, 'utf8').split('\n');
  const code = stripCommentsAndStrings(readFileSync(file, 'utf8')).split('\n');
  code.forEach((line, n) => {
    for (const [re, why] of FORBIDDEN) if (re.test(line)) violations.push(`${rel}:${n + 1}: ${why}`);
    // Specifiers: find import sites in the stripped code, read the text from the original line.
    if (!/\b(?:from|import|require)\b/.test(line)) return;
    for (const m of (original[n] ?? '').matchAll(SPECIFIER)) {
      const at = m.index ?? 0;
      if (code[n]?.slice(at, at + 4).trim() === '') continue; // the match sits inside a comment or string
      const spec = m[2];
      if (!isInsideCore(file, spec)) {
        violations.push(`${rel}:${n + 1}: import '${spec}': src/raft imports only relative paths inside src/raft`);
      }
    }
  });
}

if (violations.length > 0) {
  console.error(`check-raft-purity: ${violations.length} violation(s) in ${relative(root, coreDir)}:`);
  for (const v of violations) console.error(`  ${v}`);
  process.exit(1);
}
console.log(`check-raft-purity: ${files.length} files in ${relative(root, coreDir)} are pure`);
