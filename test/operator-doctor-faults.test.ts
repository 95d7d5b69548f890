/**
 * `followups doctor` against dependencies that are there but wrong, or not there:
 * a Redis replica, a Redis that wants a password, an Evolution API that does not answer.
 * Spawned as an operator runs it (helpers/operator-cli.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type OwnRedis, freePort, startOwnRedis } from './helpers/redis-server.js';
import { followups, startOperatorWorld, stopOperatorWorld } from './helpers/operator-cli.js';

before(async () => {
  await startOperatorWorld();
});
after(stopOperatorWorld);

describe('followups doctor, on broken dependencies', () => {
  let ownRedis: OwnRedis;
  before(async () => {
    ownRedis = await startOwnRedis();
  });
  after(async () => {
    await ownRedis?.stop();
  });
  it('fails the role check on a replica (it refuses writes)', async () => {
    const replica = await startOwnRedis();
    try {
      const admin = new (await import('ioredis')).Redis(replica.url);
      await admin.call('REPLICAOF', '127.0.0.1', String(await freePort()));
      admin.disconnect();
      const run = await followups(['doctor', '--json'], { REDIS_URL: replica.url });
      const role = run.json.checks.find((c: any) => c.name === 'redis.role');
      assert.equal(role.status, 'fail', JSON.stringify(role));
      assert.match(role.detail, /slave|replica/);
      assert.match(role.fix, /primary/);
      assert.equal(run.code, 1);
    } finally {
      await replica.stop();
    }
  });

  it("names Redis's refusal when REDIS_URL has no password or the wrong one", async () => {
    const admin = new (await import('ioredis')).Redis(ownRedis.url);
    await admin.config('SET', 'requirepass', 'the-right-password');
    admin.disconnect();
    const run = await followups(['doctor', '--json'], { REDIS_URL: ownRedis.url });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const auth = run.json.checks.find((c: any) => c.name === 'redis.auth');
    assert.equal(auth.status, 'fail');
    assert.match(auth.detail, /NOAUTH/);
    assert.match(auth.fix, /REDIS_URL/);
  });

  it('exits 3 when a dependency does not answer (Evolution down)', async () => {
    const run = await followups(['doctor', '--json'], { EVOLUTION_API_URL: `http://127.0.0.1:${await freePort()}` });
    assert.equal(run.code, 3, run.stdout + run.stderr);
    const connection = run.json.checks.find((c: any) => c.name === 'evolution.connection');
    assert.equal(connection.status, 'fail');
    assert.equal(connection.unreachable, true);
  });
});
