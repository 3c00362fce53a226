import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import net from 'node:net';

/** A child process we started and must stop: output goes to a log file, stop() waits for exit. */
export class ManagedProcess {
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  private exitHow?: string;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        this.exitHow = signal ? `signal ${signal}` : `code ${code}`;
        live.delete(this);
        resolve(this.exitCode);
      });
    });
    live.add(this);
  }

  static start(name: string, command: string, args: string[], opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string }): ManagedProcess {
    const fd = openSync(opts.logFile, 'a');
    try {
      // Own process group: a terminal's Ctrl-C reaches only our entry point, which stops
      // children in order (workers first, servers last) instead of all at once.
      const child = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', fd, fd], detached: true });
      return new ManagedProcess(name, child, opts.logFile);
    } finally {
      closeSync(fd);
    }
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** How it ended (`signal SIGKILL`, `code 1`), once it has. */
  get exitDescription(): string | undefined {
    return this.exitHow;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  waitForExit(): Promise<number | null> {
    return this.exited;
  }

  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const live = new Set<ManagedProcess>();

// Last line of defence: whatever way this process ends, it does not leave children behind.
process.once('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export async function canConnect(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export async function waitFor(what: string, check: () => Promise<boolean>, opts: { timeoutMs: number; proc?: ManagedProcess }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (opts.proc && !opts.proc.running) throw new Error(`${what}: process exited early; see ${opts.proc.logFile}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${opts.timeoutMs} ms${opts.proc ? `; see ${opts.proc.logFile}` : ''}`);
}
