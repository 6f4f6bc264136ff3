/**
 * Files out of Debian packages (Debian's PV GRUB, Debian's kernel), fetched
 * with `apt-get download` and extracted with `dpkg-deb`, cached under the
 * repository's git-ignored `.cache/debian/`. Used by the CLI's default
 * guest, the benchmarks and the tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Returns the host path of `pathInPackage` (e.g. "/usr/lib/grub-xen/grub-x86_64-xen.bin")
 * from Debian package `pkg`, downloading it with `apt-get download` into
 * `<repoRoot>/.cache/debian/<pkg>/` (git-ignored) and extracting just that
 * file on first use.
 *
 * @throws Error naming the package and the reason when apt-get/dpkg-deb fail or the
 *   file is not in the package.
 */
export function fetchDebianFile(repoRoot: string, pkg: string, pathInPackage: string): string {
  if (!/^[a-z0-9][a-z0-9+.-]*$/.test(pkg)) throw new Error(`invalid Debian package name '${pkg}'`);
  const dir = join(repoRoot, '.cache', 'debian', pkg);
  const root = join(dir, 'root');
  const member = pathInPackage.replace(/^\/+/, '');
  const target = join(root, member);
  if (existsSync(target)) return target;
  mkdirSync(dir, { recursive: true });
  let deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (!deb) {
    const tmp = join(dir, `tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      execFileSync('apt-get', ['download', pkg], { cwd: tmp, stdio: 'pipe', timeout: 600_000 });
      const got = readdirSync(tmp).find((f) => f.endsWith('.deb'));
      if (!got) throw new Error('apt-get download produced no .deb file');
      renameSync(join(tmp, got), join(dir, got));
      deb = got;
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(
        `cannot fetch Debian package '${pkg}' with apt-get download: ${err.stderr?.toString().trim() || err.message}`,
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  // Extract only the requested file (kernel packages are large).
  mkdirSync(root, { recursive: true });
  try {
    execFileSync(
      'sh',
      ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "./$3"', 'sh', join(dir, deb), root, member],
      {
        stdio: 'pipe',
        timeout: 600_000,
      },
    );
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(
      `cannot extract ${pathInPackage} from Debian package '${pkg}' (${deb}): ${err.stderr?.toString().trim() || err.message}`,
    );
  }
  if (!existsSync(target)) throw new Error(`Debian package '${pkg}' has no file ${pathInPackage}`);
  return target;
}
