/**
 * How fastify logs requests. Its defaults log each request twice at info with the
 * raw URL, which can carry a phone number (`?phone=...`). Here: one line per
 * request at debug, naming the route pattern, never headers (no Authorization).
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

export class RequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const fields = {
      method: request.method,
      route: request.routeOptions.url ?? '(no route)',
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (error) request.log.debug({ ...fields, err: error }, 'request errored');
    else request.log.debug(fields, 'request completed');
  }
}
