/**
 * Fetches files out of Debian packages for tests (cli/debian.ts does the
 * work), cached under `.cache/debian/<pkg>/` at the repository root.
 */
import { resolve } from 'node:path';
import { fetchDebianFile as fetchSync } from '../../cli/debian';

/** Repository root (test/helpers/../..). */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/**
 * Returns the host path of `pathInPackage` (e.g. "/usr/lib/grub-xen/grub-x86_64-xen.bin")
 * from Debian package `pkg`, downloading and extracting it on first use.
 * @throws Error naming the package and the reason when it cannot be fetched.
 */
export async function fetchDebianFile(pkg: string, pathInPackage: string): Promise<string> {
  return fetchSync(REPO_ROOT, pkg, pathInPackage);
}

/**
 * Like {@link fetchDebianFile}, but when the package cannot be fetched and
 * process.env.CI is not set, skips the calling mocha test (with a message on
 * stderr) instead of failing. Under CI the error is thrown.
 */
export async function fetchDebianFileOrSkip(
  ctx: Mocha.Context,
  pkg: string,
  pathInPackage: string,
): Promise<string> {
  try {
    return await fetchDebianFile(pkg, pathInPackage);
  } catch (e) {
    if (process.env.CI) throw e;
    console.error(`skipping: ${(e as Error).message}`);
    ctx.skip();
    throw e; // not reached
  }
}
