// Real servers: starting Temporal, bundling workflows and a training run take seconds, not ms.
jest.setTimeout(180_000);
