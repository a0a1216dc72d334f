// npm's install step for the packed package. The package carries an addon
// prebuilt at prepack (native/prebuilds/); only when none fits this machine
// (another platform, architecture or C library, or a glibc older than the
// one it was built against) is it built here from the sources the package
// also carries: the kernel library (lkl-build/build.sh, minutes) and then
// the addon (node-gyp, which npm provides to install scripts).
// In a checkout this does nothing: scripts/setup.sh builds everything
// there, and npm ci must work before the kernel library exists.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// The TypeScript sources are in a checkout, never in the package (dist/ only).
if (existsSync(join(root, 'src'))) process.exit(0);

const native = join(root, 'native');

/** Why no prebuilt addon can be used here, or undefined when one can. */
function prebuiltUnusable() {
  let file;
  try {
    file = createRequire(import.meta.url)('node-gyp-build').path(native);
  } catch (e) {
    return e.message.trim();
  }
  // Loaded in a child: the addon starts threads of its own when loaded.
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (r.status !== 0) return `${file} does not load here: ${r.stderr.trim()}`;
  return undefined;
}

function run(command, args) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    const how = r.error ? r.error.message : `exit status ${r.status ?? r.signal}`;
    console.error(
      `lklfs: building from source failed (${command} ${args.join(' ')}: ${how}). ` +
        'It needs a C compiler and the kernel build tools; see "Installing" in README.md.',
    );
    process.exit(1);
  }
}

const why = prebuiltUnusable();
if (why !== undefined) {
  console.error(`lklfs: no usable prebuilt addon (${why}); building it from source`);
  run('bash', ['lkl-build/build.sh']);
  run('node-gyp', ['rebuild', '--directory', 'native']);
}
