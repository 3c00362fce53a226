// Entry of a GBDT helper thread when we run from the TypeScript sources (jest, tsx): a worker
// thread gets no TypeScript loader, so it registers tsx before loading the helper.
// The compiled package starts gbdt-worker.js directly (see gbdt-pool.ts).
require('tsx/cjs/api').register();
require('./gbdt-worker.ts');
