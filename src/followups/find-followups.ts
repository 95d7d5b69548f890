/** Reading follow-ups: one with its events, or a filtered page, newest first. */
import type { Queryable } from '../db/db.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { parseInput } from '../validation.js';
import { normalizePhone } from '../whatsapp/phone.js';
import { type FollowupEventRow, type FollowupRow } from './followup.js';
import { listFollowupsSchema } from './followup-schemas.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertFollowupId(id: string, field = 'id'): string {
  if (!UUID.test(id)) throw new ValidationError(`${field}: must be a follow-up id (uuid)`, field);
  return id.toLowerCase();
}

export async function getFollowup(
  db: Queryable,
  id: string,
): Promise<{ followup: FollowupRow & { phone: string }; events: FollowupEventRow[] }> {
  assertFollowupId(id);
  const { rows } = await db.query<FollowupRow & { phone: string }>(
    'SELECT f.*, l.phone FROM follow_ups f JOIN leads l ON l.id = f.lead_id WHERE f.id = $1::uuid',
    [id],
  );
  if (!rows[0]) throw new NotFoundError(`follow-up ${id} not found`);
  const events = await db.query<FollowupEventRow>(
    'SELECT * FROM follow_up_events WHERE follow_up_id = $1::uuid ORDER BY id',
    [id],
  );
  return { followup: rows[0], events: events.rows };
}


// The cursor carries created_at to the microsecond, as PostgreSQL formats it: a JS Date
// keeps only milliseconds, and rows written with SQL's now() that differ in the
// microseconds would be skipped between pages.
const CURSOR_AT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

function encodeCursor(row: { cursor_at: string; id: string }): string {
  return Buffer.from(`${row.cursor_at}|${row.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!id || !UUID.test(id) || !at || !CURSOR_AT.test(at) || Number.isNaN(new Date(at).getTime())) {
    throw new ValidationError('cursor: is not a cursor returned by this API', 'cursor');
  }
  return { createdAt: at, id };
}

export async function listFollowups(
  db: Queryable,
  rawQuery: unknown,
): Promise<{ items: Array<FollowupRow & { phone: string }>; nextCursor: string | null }> {
  const query = parseInput(listFollowupsSchema, rawQuery);
  const phone = query.phone !== undefined ? normalizePhone(query.phone, 'phone') : null;
  const cursor = query.cursor ? decodeCursor(query.cursor) : null;
  const { rows } = await db.query<FollowupRow & { phone: string; cursor_at: string }>(
    `SELECT f.*, l.phone,
            to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
       FROM follow_ups f JOIN leads l ON l.id = f.lead_id
      WHERE ($1::text IS NULL OR f.status = $1::text)
        AND ($2::text IS NULL OR l.phone = $2::text)
        AND ($3::text IS NULL OR f.campaign = $3::text)
        AND ($4::timestamptz IS NULL OR (f.created_at, f.id) < ($4::timestamptz, $5::uuid))
      ORDER BY f.created_at DESC, f.id DESC
      LIMIT $6::int`,
    [query.status ?? null, phone, query.campaign ?? null, cursor?.createdAt ?? null, cursor?.id ?? null, query.limit + 1],
  );
  const page = rows.slice(0, query.limit);
  const nextCursor = rows.length > query.limit ? encodeCursor(page[page.length - 1]!) : null;
  const items = page.map(({ cursor_at: _, ...row }) => row);
  return { items, nextCursor };
}
