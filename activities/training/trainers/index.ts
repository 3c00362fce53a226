import { commandTrainer } from './command';
import { gbdtTrainer } from './gbdt';
import { logregTrainer } from './logreg';
import type { AnyTrainer } from './types';

export * from './types';

export interface TrainerDeps {
  /** External commands by name (MLOPS_COMMAND_TRAINERS, the plugin's `commandTrainers`). */
  commandTrainers: Record<string, string[]>;
  /** Names of further worker variables a command trainer may see (MLOPS_TRAINER_ENV). */
  trainerEnv?: readonly string[];
}

/** The built-in trainers. A new one is a file beside these and one line here. */
const BUILTIN: Array<(deps: TrainerDeps) => AnyTrainer> = [
  () => gbdtTrainer,
  () => logregTrainer,
  (deps) => commandTrainer(deps.commandTrainers, deps.trainerEnv),
];

/** The trainers a worker offers, by name: the built-in ones and those its plugin options add. */
export class TrainerRegistry {
  private readonly byName = new Map<string, AnyTrainer>();

  constructor(deps: TrainerDeps, extra: ReadonlyArray<AnyTrainer> = []) {
    for (const make of BUILTIN) this.add(make(deps));
    for (const t of extra) {
      if (this.byName.has(t.name)) throw new TypeError(`trainer ${JSON.stringify(t.name)} is already registered (built-in trainers: ${BUILTIN.map((m) => m(deps).name).join(', ')})`);
      this.add(t);
    }
  }

  private add(t: AnyTrainer): void {
    this.byName.set(t.name, t);
  }

  get(name: string): AnyTrainer | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}
