// The docs stay true to the tree: docs/internals.md's folder table names exactly the repository's
// folders, and every relative link of README.md and docs/ reaches a file (and a heading, when it
// names one). Reads the source checkout, not dist/.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INTERNALS = join(ROOT, 'docs', 'internals.md');
/** Never part of the tree: git's own folder, and Python's bytecode caches beside any module it ran. */
const ALWAYS_SKIPPED = new Set(['.git', '__pycache__']);

/** The folder patterns of .gitignore ("name/" anywhere, "a/b/" from the root), as path tests. */
function ignoredFolders(): ((path: string) => boolean)[] {
  const file = join(ROOT, '.gitignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!') && l.endsWith('/'))
    .map((pattern) => {
      const body = pattern.replace(/^\/|\/$/g, '');
      const glob = new RegExp(`^${body.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
      const anchored = pattern.slice(0, -1).includes('/');
      return (path: string) => (anchored ? glob.test(path) : glob.test(path.slice(path.lastIndexOf('/') + 1)));
    });
}

/** Every folder of the checkout as "a/b", except ignored ones. */
function treeFolders(): string[] {
  const ignored = ignoredFolders();
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || ALWAYS_SKIPPED.has(entry.name)) continue;
      const path = relative(ROOT, join(dir, entry.name)).split(sep).join('/');
      if (ignored.some((isIgnored) => isIgnored(path))) continue;
      found.push(path);
      walk(join(dir, entry.name));
    }
  };
  walk(ROOT);
  return found.sort();
}

/** The lines of a markdown file outside fenced code blocks. */
function proseLines(markdown: string): string[] {
  let fenced = false;
  return markdown.split('\n').filter((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** The section of a markdown file under a level-2 heading, up to the next one. */
function section(markdown: string, heading: string): string[] {
  const lines = proseLines(markdown);
  const start = lines.indexOf(`## ${heading}`);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The folders the table of docs/internals.md names ("| `a/b/` | what it holds |"), as "a/b". */
function tableFolders(): { folder: string; holds: string }[] {
  return section(readFileSync(INTERNALS, 'utf8'), 'Folders')
    .map((line) => /^\|\s*`([^`]+)\/`\s*\|\s*(.*?)\s*\|\s*$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ folder: m[1]!, holds: m[2]! }));
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

/** The anchors of a markdown file's headings, with GitHub's "-1", "-2" for repeated ones. */
function anchorsOf(file: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of proseLines(readFileSync(file, 'utf8'))) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** README.md and every markdown page under docs/. */
function markdownPages(): string[] {
  const pages = [join(ROOT, 'README.md')];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name.endsWith('.md')) pages.push(join(dir, entry.name));
    }
  };
  if (existsSync(join(ROOT, 'docs'))) walk(join(ROOT, 'docs'));
  return pages;
}

/** Relative link targets of a page's prose (code spans and blocks are not links). */
function relativeLinks(file: string): string[] {
  const prose = proseLines(readFileSync(file, 'utf8')).join('\n').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

test('every folder of the repository is in the folder table of docs/internals.md', (t) => {
  const documented = new Set(tableFolders().map((r) => r.folder));
  const missing = treeFolders().filter((f) => !documented.has(f));
  t.deepEqual(missing, [], `add these folders to the table under "## Folders" in docs/internals.md (or to .gitignore if they are not part of the project): ${missing.join(', ')}`);
});

test('the folder table of docs/internals.md names only folders that exist, each once, each with what it holds', (t) => {
  const rows = tableFolders();
  t.true(rows.length > 0, 'docs/internals.md has no folder table under "## Folders"');
  const tree = new Set(treeFolders());
  t.deepEqual(rows.filter((r) => !tree.has(r.folder)).map((r) => r.folder), [], 'docs/internals.md names folders that are not in the tree');
  t.deepEqual(rows.map((r) => r.folder).filter((f, i, all) => all.indexOf(f) !== i), [], 'folders named twice');
  t.deepEqual(rows.filter((r) => r.holds === '').map((r) => r.folder), [], 'folders without a description');
});

test('every relative link in README.md and docs/ points to an existing file and heading', (t) => {
  const broken: string[] = [];
  for (const page of markdownPages()) {
    for (const link of relativeLinks(page)) {
      const [path, anchor] = link.split('#', 2) as [string, string | undefined];
      const target = path === '' ? page : resolve(dirname(page), decodeURIComponent(path));
      const where = `${relative(ROOT, page)} → ${link}`;
      if (!existsSync(target)) broken.push(`${where}: no such file`);
      else if (anchor !== undefined && statSync(target).isFile() && target.endsWith('.md') && !anchorsOf(target).has(anchor)) {
        broken.push(`${where}: no heading with that anchor`);
      }
    }
  }
  t.deepEqual(broken, []);
});

test('README.md stays a short page for newcomers: at most 200 lines', (t) => {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').trimEnd().split('\n').length;
  t.true(lines <= 200, `README.md has ${lines} lines; move details to a page under docs/`);
});
