/**
 * Bundles the dashboard (dashboard/) for the server to serve at /dashboard:
 * one minified, content-hashed JavaScript file (Preact, the package's
 * watchTasks client and graphql-ws's client included), its CSS, and
 * index.html linking both. `npm run build` runs it after tsc; tests call
 * buildDashboard themselves.
 *
 *   node dist/scripts/build-dashboard.js [outDir]    (or: npx tsx scripts/build-dashboard.ts)
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { build } from 'esbuild';
import { packageRoot } from '../src/package-root.js';
import { DASHBOARD_PATH } from '../src/server/dashboard-page-config.js';

/** The most compressed JavaScript the first load may fetch. */
export const FIRST_LOAD_BUDGET_BYTES = 200 * 1024;

export interface BuiltFile {
  name: string;
  bytes: number;
  gzipBytes: number;
}

export interface DashboardBuild {
  outDir: string;
  /** index.html, then the script, its stylesheet and the rest. */
  files: BuiltFile[];
  /** Compressed JavaScript fetched by the first load: the one bundle. */
  firstLoadGzipBytes: number;
}

const gzipAsync = promisify(gzip);

export async function buildDashboard(outDir: string = join(packageRoot(), 'dist', 'dashboard')): Promise<DashboardBuild> {
  const root = packageRoot();
  const source = join(root, 'dashboard');
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: [join(source, 'main.tsx')],
    tsconfig: join(source, 'tsconfig.json'),
    outdir: outDir,
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    sourcemap: 'linked',
    legalComments: 'linked',
    metafile: true,
    logLevel: 'silent',
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const script = outputs.find((name) => name.endsWith('.js'));
  const style = outputs.find((name) => name.endsWith('.css'));
  if (!script || !style) throw new Error(`the dashboard build wrote no script or stylesheet: ${outputs.join(', ')}`);

  const template = await readFile(join(source, 'index.html'), 'utf8');
  const html = template.replace('%SCRIPT%', `${DASHBOARD_PATH}/${script}`).replace('%STYLE%', `${DASHBOARD_PATH}/${style}`);
  await writeFile(join(outDir, 'index.html'), html);

  const order = ['index.html', script, style, ...outputs.filter((name) => name !== script && name !== style)];
  const files: BuiltFile[] = [];
  for (const name of order) {
    const body = await readFile(join(outDir, name));
    files.push({ name, bytes: body.length, gzipBytes: (await gzipAsync(body, { level: 9 })).length });
  }
  const firstLoadGzipBytes = files.find((file) => file.name === script)!.gzipBytes;
  if (firstLoadGzipBytes > FIRST_LOAD_BUDGET_BYTES) {
    throw new Error(
      `the dashboard's first load is ${firstLoadGzipBytes} bytes of gzipped JavaScript, over the ${FIRST_LOAD_BUDGET_BYTES} budget`,
    );
  }
  return { outDir, files, firstLoadGzipBytes };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const built = await buildDashboard(process.argv[2] ? resolve(process.argv[2]) : undefined);
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
  console.log(`Dashboard built in ${built.outDir}`);
  for (const file of built.files)
    console.log(`  ${file.name.padEnd(28)} ${kb(file.bytes).padStart(9)}  gzip ${kb(file.gzipBytes).padStart(8)}`);
  console.log(`First load: ${kb(built.firstLoadGzipBytes)} of gzipped JavaScript (budget ${kb(FIRST_LOAD_BUDGET_BYTES)})`);
}
