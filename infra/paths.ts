import { fileURLToPath } from 'node:url';

/** The repository root, wherever the CDK app runs from (tsx, vitest, the cdk CLI in infra/). */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** An absolute path inside the repository. */
export const repoPath = (relative: string): string => fileURLToPath(new URL(`../${relative}`, import.meta.url));
