// Entry of the training worker thread when we run from the TypeScript sources (jest, tsx): a
// worker thread gets no TypeScript loader, so it registers tsx before loading the trainer.
// The compiled package starts thread.js directly (see thread-runner.ts).
require('tsx/cjs/api').register();
require('./thread.ts');
