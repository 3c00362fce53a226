import { DefaultFailureConverter } from '@temporalio/common';

/**
 * With encryption on, failure messages and stack traces travel as an encoded payload (sealed by
 * the codec like every other) instead of plain text in the history: an error that quotes a spec
 * or a URI leaks nothing. Loaded by path (`failureConverterPath`) in workers' sandboxes and clients.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
