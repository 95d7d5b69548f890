/** `followups pause` / `followups resume` (the operator's pause, README "Dashboard"), as an operator runs them: the real CLI in a child process. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { followups, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';
import type { TestDatabase } from './helpers/db.js';

describe('followups pause / resume', () => {
  let testDb: TestDatabase;
  before(async () => {
    ({ testDb } = await startOperatorWorld());
  });
  after(stopOperatorWorld);

  test('pause, pause again, resume, resume again; a bad campaign names the argument', async () => {
    const paused = await followups(['pause', '--reason', 'revisão do texto', '--who', 'ana', '--json']);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(paused.json.created, true);
    assert.equal(paused.json.pause.who, 'ana');
    const again = await followups(['pause', '--reason', 'outra']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already paused/);
    const { rows } = await testDb.db.query<{ n: number }>('SELECT count(*)::int AS n FROM sending_pauses WHERE resumed_at IS NULL');
    assert.equal(rows[0]!.n, 1);

    const bad = await followups(['pause', '--reason', 'x', '--campaign', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^campaign: unknown campaign 'nope'/m);
    const campaign = await followups(['pause', '--reason', 'preço', '--campaign', 'nautico']);
    assert.equal(campaign.code, 0, campaign.stderr);
    assert.match(campaign.stdout, /paused campaign nautico/);

    const resumed = await followups(['resume', '--reason', 'ok']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /resumed all sending/);
    const notPaused = await followups(['resume', '--json']);
    assert.equal(notPaused.code, 1);
    assert.equal(notPaused.json.error.code, 'not_paused');
    const rest = await testDb.db.query<{ scope: string; campaign: string }>('SELECT scope, campaign FROM sending_pauses WHERE resumed_at IS NULL');
    assert.deepEqual(rest.rows, [{ scope: 'campaign', campaign: 'nautico' }]);
  });
});
