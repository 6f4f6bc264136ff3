/**
 * pvscope debug adapter entry point (bundled to dist/debug-adapter.js).
 *
 *   node dist/debug-adapter.js                 one session on stdin/stdout
 *   node dist/debug-adapter.js --server=4711   TCP server on 127.0.0.1:4711, one session per connection
 *
 * The engine comes from engine/machine.ts. For the adapter's own tests only,
 * the environment variable PVSCOPE_TEST_MACHINE_MODULE may name a module
 * exporting `createMachine(config)` that replaces the engine.
 */
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { createMachine } from '../engine/machine';
import { PvscopeSession, type MachineFactory } from './session';

function machineFactory(): MachineFactory {
  const testModule = process.env.PVSCOPE_TEST_MACHINE_MODULE;
  if (testModule) {
    const req = createRequire(__filename);
    const mod = req(testModule) as { createMachine?: MachineFactory };
    if (typeof mod.createMachine !== 'function')
      throw new Error(`${testModule} does not export createMachine`);
    return mod.createMachine;
  }
  return createMachine;
}

function newSession(): PvscopeSession {
  return new PvscopeSession({ createMachine: machineFactory });
}

const serverArg = process.argv.slice(2).find((a) => a.startsWith('--server='));
if (serverArg) {
  const port = Number(serverArg.slice('--server='.length));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`pvscope debug adapter: bad port in ${serverArg}\n`);
    process.exit(2);
  }
  const server = createServer((socket) => {
    const session = newSession();
    session.setRunAsServer(true);
    socket.on('error', () => socket.destroy());
    session.start(socket, socket);
  });
  server.listen(port, '127.0.0.1', () => {
    const addr = server.address();
    process.stderr.write(
      `pvscope debug adapter listening on 127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}\n`,
    );
  });
} else {
  const session = newSession();
  process.on('SIGTERM', () => session.shutdown());
  session.start(process.stdin, process.stdout);
}
