import { HttpError } from '../../infra/http';

/** A request the protocol refuses (400 unless said otherwise); gRPC maps its status to a code. */
export class BadRequest extends HttpError {
  constructor(message: string, status = 400) {
    super(message, status);
    this.name = 'BadRequest';
  }
}
