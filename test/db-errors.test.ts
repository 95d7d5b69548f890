import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readDbError } from '../src/db/db-errors.js';

const err = (code: string | undefined, message = 'x') => Object.assign(new Error(message), code ? { code } : {});
const flags = (error: unknown) => {
  const { code: _code, ...rest } = readDbError(error);
  return Object.entries(rest).filter(([, v]) => v).map(([k]) => k).sort();
};

describe('readDbError: what a database driver error means', () => {
  test('a refused login, from PostgreSQL or a pooler, and not any other protocol error', () => {
    assert.deepEqual(flags(err('28P01')), ['auth']);
    assert.deepEqual(flags(err('28000')), ['auth']);
    assert.deepEqual(flags(err('08P01', 'password authentication failed for user "x"')), ['auth', 'unreachable']);
    assert.deepEqual(flags(err('08P01', 'no such user')), ['auth', 'unreachable']);
    assert.deepEqual(flags(err('08P01', 'server conn crashed?')), ['unreachable']);
  });

  test('unreachable: connection SQLSTATEs, shutdown, too many connections, socket codes and the pool\'s own messages', () => {
    for (const code of ['08006', '08001', '57P01', '57P02', '57P03', '53300', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']) {
      assert.ok(readDbError(err(code)).unreachable, code);
    }
    assert.ok(readDbError(new Error('Connection terminated unexpectedly')).unreachable);
    assert.ok(readDbError(new Error('terminating connection due to administrator command')).unreachable);
    assert.equal(readDbError(err('57P04')).unreachable, false);
    assert.equal(readDbError(err('42601', 'syntax error')).unreachable, false);
  });

  test('timeouts: the server\'s statement timeout and the client\'s, which is also a lost connection', () => {
    assert.deepEqual(flags(err('57014', 'canceling statement due to statement timeout')), ['timeout']);
    assert.deepEqual(flags(new Error('Query read timeout')), ['timeout', 'unreachable']);
    assert.deepEqual(flags(new Error('timeout exceeded when trying to connect')), ['timeout', 'unreachable']);
  });

  test('deadlocks and serialisation failures are to be retried; unique violations and missing tables are named', () => {
    assert.deepEqual(flags(err('40P01')), ['retry']);
    assert.deepEqual(flags(err('40001')), ['retry']);
    assert.deepEqual(flags(err('23505')), ['uniqueViolation']);
    assert.deepEqual(flags(err('42P01')), ['undefinedTable']);
    assert.equal(readDbError(err('23505')).code, '23505');
  });

  test('anything else means nothing in particular', () => {
    for (const value of [undefined, null, 'Connection terminated', 42, {}, new Error('boom'), { code: 7 }]) {
      assert.deepEqual(flags(value), [], String(value));
      assert.equal(readDbError(value).code, undefined);
    }
  });
});
