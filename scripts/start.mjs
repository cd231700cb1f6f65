// `npm start`: installs what is missing, then runs redis-server, redge-gateway and the Worker on
// 127.0.0.1 until Ctrl-C, and stops all of them.
import { startStack } from './lib/stack.mjs';
import { ensureToolchain, MissingPrerequisite } from './lib/toolchain.mjs';

const log = (message) => console.log(`[redge] ${message}`);

try {
  await ensureToolchain({ log });
  const stack = await startStack({ profile: 'release', log, echoWorker: process.argv.includes('--verbose') });
  log(`ready: open ${stack.worker.url}/ (health: ${stack.worker.url}/api/health)`);
  log('press Ctrl-C to stop everything');
  const stop = async () => {
    log('stopping');
    await stack.stop();
    process.exit(0);
  };
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  stack.worker.proc.exited.then(({ code }) => {
    log(`wrangler dev exited (code ${code}); stopping`);
    stop();
  });
} catch (error) {
  console.error(`[redge] ${error instanceof MissingPrerequisite ? 'missing prerequisite: ' : ''}${error.message}`);
  process.exit(1);
}
