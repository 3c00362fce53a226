// Entry of the training worker thread. A worker thread gets no TypeScript loader from jest's
// transform, so it registers tsx itself before loading the trainer.
require('tsx/cjs/api').register();
require('./thread.ts');
