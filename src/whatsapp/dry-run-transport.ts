/**
 * The transport for trying the system without WhatsApp: every "sent" text is
 * printed and recorded in `dry_run_messages`, so reconciliation after a crash
 * (`findSent`) behaves as it does against Evolution.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Queryable } from '../db/db.js';
import { erasedPhone } from '../privacy/erasure-key.js';
import { type Logger, maskPhone } from '../log.js';
import { phoneVariants, tryNormalizePhone } from './phone.js';
import type { ConnectionState, FindSentInput, NumberCheck, SendTextInput, SendTextResult, Transport } from './transport.js';

export interface DryRunTransportOptions {
  db: Queryable;
  log: Logger;
  clock: Clock;
  /** Where the human-readable line goes; by default an info log. */
  print?: (line: string) => void;
}

// Same allowance as the Evolution client: the claim time and the send time come from different moments.
const RECONCILE_SKEW_MS = 60_000;

// A send that was already on its way when its lead was erased is recorded scrubbed: under the
// erased lead's keyed hash ($5), without its text.
const INSERT_SQL = `INSERT INTO dry_run_messages (provider_message_id, number, text, at)
SELECT $1, CASE WHEN x.erased THEN $5::text ELSE $2 END, CASE WHEN x.erased THEN '' ELSE $3 END, $4::timestamptz
  FROM (SELECT EXISTS (SELECT 1 FROM leads WHERE phone = $5::text) AS erased) x`;

const FIND_SQL = `SELECT provider_message_id
  FROM dry_run_messages
 WHERE number = ANY($1::text[])
   AND btrim(text) = btrim($2::text)
   AND at >= $3::timestamptz
 ORDER BY at DESC
 LIMIT 1`;

export function makeDryRunTransport(options: DryRunTransportOptions): Transport {
  const { db, log, clock } = options;

  return {
    name: 'dry-run',

    async sendText({ number, text, delayMs }: SendTextInput): Promise<SendTextResult> {
      const providerMessageId = `DRYRUN${randomBytes(8).toString('hex').toUpperCase()}`;
      await db.query(INSERT_SQL, [providerMessageId, number, text, clock.now().toISOString(), erasedPhone(number)]);
      if (options.print) {
        options.print(`[dry-run] to ${maskPhone(number)} (${providerMessageId}, typing ${delayMs} ms): ${text}`);
      } else {
        log.info({ phone: number, providerMessageId, text }, 'dry-run: message not sent to WhatsApp');
      }
      return { providerMessageId };
    },

    async findSent({ number, text, since }: FindSentInput) {
      const from = new Date(since.getTime() - RECONCILE_SKEW_MS).toISOString();
      // Either spelling of a Brazilian mobile is the same lead.
      const spellings = [...new Set([number, ...phoneVariants(tryNormalizePhone(number) ?? number)])];
      const { rows } = await db.query<{ provider_message_id: string }>(FIND_SQL, [spellings, text, from]);
      return rows[0] ? { providerMessageId: rows[0].provider_message_id } : null;
    },

    async checkNumber(): Promise<NumberCheck> {
      return { exists: true };
    },

    async connectionState(): Promise<ConnectionState> {
      return 'open';
    },
  };
}
