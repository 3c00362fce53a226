import { describeError } from './errors';
import type { Logger } from './log';
import type { ManagedProcess } from './processes';

/**
 * Keeps the services a dev stack started alive: when one dies (a crash, `kill -9`), says which
 * and how, and starts it again where its clients point (same ports, same data). A service that
 * dies more than `maxRestarts` times within `windowMs`, or cannot be started again, ends the
 * stack through `giveUp` with the reason, instead of leaving workers retrying forever.
 */
export class Supervisor {
  private stopping = false;

  constructor(
    private readonly log: Logger,
    private readonly giveUp: (reason: string) => void,
    private readonly opts: { maxRestarts: number; windowMs: number } = { maxRestarts: 3, windowMs: 60_000 },
  ) {}

  /** Watches `proc`; `restart` starts the service again and returns its new process. */
  watch(name: string, proc: ManagedProcess, restart: () => Promise<ManagedProcess>): void {
    const deaths: number[] = [];
    const arm = (p: ManagedProcess) => {
      void p.waitForExit().then(async () => {
        if (this.stopping) return;
        const now = Date.now();
        deaths.push(now);
        while (deaths.length && deaths[0]! < now - this.opts.windowMs) deaths.shift();
        const died = `${name} (pid ${p.pid}) exited (${p.exitDescription ?? 'unknown'})`;
        if (deaths.length > this.opts.maxRestarts) {
          const reason = `${died}, ${deaths.length} times within ${Math.round(this.opts.windowMs / 1000)} s; see ${p.logFile}`;
          this.log.error(`${reason}; stopping the dev stack`);
          this.giveUp(reason);
          return;
        }
        this.log.error(`${died}; restarting it (see ${p.logFile})`);
        try {
          const next = await restart();
          if (this.stopping) return;
          this.log.info(`${name} restarted (pid ${next.pid})`);
          arm(next);
        } catch (err) {
          const reason = `${died} and could not be started again: ${describeError(err)}`;
          this.log.error(`${reason}; stopping the dev stack`);
          this.giveUp(reason);
        }
      });
    };
    arm(proc);
  }

  /** The stack is stopping: services that exit now are not restarted. */
  stop(): void {
    this.stopping = true;
  }
}
