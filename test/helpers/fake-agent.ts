/**
 * A fake agent for the forwarded events (AGENT_WEBHOOK_URL): a real HTTP server on
 * 127.0.0.1 that records every POST (headers and the raw body, as signed) and answers
 * as told — 200 by default, a queued status, or never (a timeout). `down()` closes
 * the port (connection refused) and `up()` opens the same port again.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeAgentAnswer = { status: number } | { hang: true };

export interface AgentDelivery {
  headers: IncomingHttpHeaders;
  /** The raw body, exactly as received. */
  body: string;
  event: { id: string; type: string; occurredAt: string; lead: { id: string; phone: string; name: string | null }; data: Record<string, unknown> };
  status: number | 'hang';
  at: number;
}

export interface FakeAgent {
  url: string;
  /** Every request, answered or not, in arrival order. */
  deliveries: AgentDelivery[];
  /** Only the requests answered 2xx: what the agent "got". */
  accepted(): AgentDelivery[];
  /** The next answers, to any event. */
  answer(...answers: FakeAgentAnswer[]): void;
  /** The next answers to the events of one lead (by phone); they come before the general ones. */
  answerFor(phone: string, ...answers: FakeAgentAnswer[]): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeAgent(): Promise<FakeAgent> {
  const deliveries: AgentDelivery[] = [];
  const queue: FakeAgentAnswer[] = [];
  const queues = new Map<string, FakeAgentAnswer[]>();
  const hanging = new Set<ServerResponse>();
  let server: Server | null = null;
  let port = 0;

  const listen = async () => {
    const s = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let event: AgentDelivery['event'];
        try {
          event = JSON.parse(body);
        } catch {
          event = { id: '', type: '', occurredAt: '', lead: { id: '', phone: '', name: null }, data: {} };
        }
        const answer = queues.get(event.lead?.phone)?.shift() ?? queue.shift() ?? { status: 200 };
        deliveries.push({ headers: req.headers, body, event, status: 'hang' in answer ? 'hang' : answer.status, at: Date.now() });
        if ('hang' in answer) {
          hanging.add(res);
          return;
        }
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };

  const shut = async () => {
    const s = server;
    server = null;
    if (!s) return;
    for (const res of hanging) res.destroy();
    hanging.clear();
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    url: `http://127.0.0.1:${port}/events`,
    deliveries,
    accepted: () => deliveries.filter((d) => typeof d.status === 'number' && d.status >= 200 && d.status < 300),
    answer: (...answers) => void queue.push(...answers),
    answerFor: (phone, ...answers) => void queues.set(phone, [...(queues.get(phone) ?? []), ...answers]),
    down: shut,
    up: listen,
    close: shut,
  };
}
