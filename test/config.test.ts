import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEV_API_TOKEN, loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { TYPING_MAX_MS, typingDelayMs } from '../src/time/typing-delay.js';

describe('configuration', () => {
  test('the embedded default needs nothing: PGlite, direct mode, dry-run, development token', () => {
    const config = loadConfig({});
    assert.equal(config.database.url, undefined);
    assert.equal(config.database.dataDir, './.followups-data');
    assert.equal(config.redis.connection, undefined);
    assert.equal(config.evolution, undefined);
    assert.equal(config.apiToken, DEV_API_TOKEN);
    assert.equal(config.port, 3000);
    assert.equal(config.sending.timeZone, 'America/Recife');
  });

  test('the send budget is derived from the longest typing delay, which bounds the jittered delay', () => {
    const longText = 'x'.repeat(2_000);
    assert.equal(typingDelayMs(longText, () => 0.999_999_9), TYPING_MAX_MS);
    assert.ok(typingDelayMs(longText, () => 0) < TYPING_MAX_MS);
    assert.equal(loadConfig({}).sendBudgetMs, 30_000 + TYPING_MAX_MS + 3_000);
    assert.equal(loadConfig({ TYPING_DELAY_ENABLED: 'false' }).sendBudgetMs, 30_000 + 3_000);
    // The lease must outlast the whole budget: 30 s + 9.6 s + 3 s does not fit in 42 s.
    assert.throws(() => loadConfig({ LEASE_SECONDS: '42' }), (e: unknown) => e instanceof ConfigError && /LEASE_SECONDS/.test(e.problems.join('\n')));
    assert.equal(loadConfig({ LEASE_SECONDS: '43' }).leaseMs, 43_000);
  });

  test('lists every problem at once, each naming its variable', () => {
    try {
      loadConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://nope',
        EVOLUTION_API_URL: 'https://evo.example.com',
        BUSINESS_TIMEZONE: 'Mars/Olympus',
        LOG_LEVEL: 'loud',
      });
      assert.fail('should have thrown');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      const text = error.problems.join('\n');
      for (const name of ['PORT', 'DATABASE_URL', 'BUSINESS_TIMEZONE', 'LOG_LEVEL']) assert.match(text, new RegExp(name));
      assert.ok(error.problems.length >= 4, text);
    }
  });

  test('cross-field rules: Evolution needs key and instance; PostgreSQL needs a real token', () => {
    assert.throws(
      () => loadConfig({ EVOLUTION_API_URL: 'https://evo.example.com', DATABASE_URL: 'postgresql://x@localhost/db' }),
      (e: unknown) =>
        e instanceof ConfigError &&
        ['EVOLUTION_API_KEY', 'EVOLUTION_INSTANCE_NAME', 'FOLLOWUPS_API_TOKEN'].every((v) => e.problems.some((p) => p.startsWith(v))),
    );
  });

  test('the embedded default listens on loopback only; with DATABASE_URL on every interface unless HOST says otherwise', () => {
    assert.equal(loadConfig({}).host, '127.0.0.1');
    assert.equal(loadConfig({ DATABASE_URL: 'postgresql://x@localhost/db', FOLLOWUPS_API_TOKEN: 'a-real-token-of-24-chars!', ERASURE_KEY: 'k'.repeat(32) }).host, '0.0.0.0');
    assert.equal(loadConfig({ HOST: '::1' }).host, '::1');
  });

  test('refuses the public development token with a real transport, an LLM or a non-loopback HOST', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ EVOLUTION_API_URL: 'https://evo.example.com', EVOLUTION_API_KEY: 'k', EVOLUTION_INSTANCE_NAME: 'nautico' }, /EVOLUTION_API_URL is set/],
      [{ LLM_BASE_URL: 'https://api.openai.com/v1', LLM_MODEL: 'gpt-4o-mini', LLM_API_KEY: 'sk-x' }, /an LLM is configured/],
      [{ LLM_API_KEY: 'sk-x' }, /an LLM is configured/],
      [{ HOST: '0.0.0.0' }, /HOST 0\.0\.0\.0 is not a loopback address/],
      [{ HOST: '192.168.0.10' }, /HOST 192\.168\.0\.10 is not a loopback address/],
    ];
    for (const [env, reason] of cases) {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('FOLLOWUPS_API_TOKEN: required because') && reason.test(p)),
        JSON.stringify(env),
      );
      // The same setting with a real token starts.
      assert.equal(loadConfig({ ...env, FOLLOWUPS_API_TOKEN: 'a-real-token-of-24-chars!' }).apiTokenIsDefault, false);
    }
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2']) assert.equal(loadConfig({ HOST: host }).apiTokenIsDefault, true, host);
  });

  test('outside the embedded default every token and secret has at least 24 characters', () => {
    const env = {
      DATABASE_URL: 'postgresql://x@localhost/db',
      FOLLOWUPS_API_TOKEN: 'only-23-characters-long',
      WEBHOOK_SECRET: 'short-secret-123',
      WEBHOOK_JWT_KEY: 'short-jwt-key-123',
      METRICS_TOKEN: 'short-metrics-1',
    };
    assert.throws(
      () => loadConfig(env),
      (e: unknown) =>
        e instanceof ConfigError &&
        ['FOLLOWUPS_API_TOKEN', 'WEBHOOK_SECRET', 'WEBHOOK_JWT_KEY', 'METRICS_TOKEN'].every((v) =>
          e.problems.some((p) => p.startsWith(`${v}: must be at least 24 characters`)),
        ),
    );
    // On the embedded default a short one is still fine (it guards a loopback-only dry run).
    assert.equal(loadConfig({ FOLLOWUPS_API_TOKEN: 'short-but-8' }).apiToken, 'short-but-8');
  });

  test('PostgreSQL needs an ERASURE_KEY of at least 32 characters; the embedded default makes its own', () => {
    const base = { DATABASE_URL: 'postgresql://x@localhost/db', FOLLOWUPS_API_TOKEN: 'a-real-token-of-24-chars!' };
    assert.throws(() => loadConfig(base), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('ERASURE_KEY: required')));
    assert.throws(
      () => loadConfig({ ...base, ERASURE_KEY: 'too-short-a-key' }),
      (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.startsWith('ERASURE_KEY: must be at least 32')) && !e.message.includes('too-short-a-key'),
    );
    assert.equal(loadConfig({ ...base, ERASURE_KEY: 'k'.repeat(32) }).erasureKey, 'k'.repeat(32));
    assert.equal(loadConfig({}).erasureKey, undefined);
  });

  test('treats empty variables as unset', () => {
    assert.equal(loadConfig({ REDIS_URL: '', EVOLUTION_API_URL: '  ' }).redis.connection, undefined);
  });

  test('never echoes a secret in its errors', () => {
    try {
      loadConfig({ FOLLOWUPS_API_TOKEN: 'short', WEBHOOK_SECRET: 'tiny' });
      assert.fail('should have thrown');
    } catch (error) {
      const text = (error as Error).message;
      assert.match(text, /FOLLOWUPS_API_TOKEN/);
      assert.ok(!/\bshort\b/.test(text));
      assert.ok(!/\btiny\b/.test(text));
    }
  });
});

describe('Redis topologies in the configuration', () => {
  test('REDIS_SENTINELS with REDIS_SENTINEL_NAME and the passwords', () => {
    const { connection } = loadConfig({
      REDIS_SENTINELS: '10.0.0.1:26379, 10.0.0.2:26380,[::1]:26381',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      REDIS_PASSWORD: 'data-secret',
    }).redis;
    assert.deepEqual(connection, {
      mode: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      sentinelPassword: 'sentinel-secret',
      username: undefined,
      password: 'data-secret',
    });
  });

  test('the redis+sentinel:// URL form', () => {
    const { connection } = loadConfig({ REDIS_URL: 'redis+sentinel://app:p%40ss@10.0.0.1:26379,10.0.0.2:26379/mymaster/2' }).redis;
    assert.deepEqual(connection, {
      mode: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
      ],
      name: 'mymaster',
      username: 'app',
      password: 'p@ss',
      db: 2,
      sentinelPassword: undefined,
    });
  });

  test('REDIS_CLUSTER_NODES, with the default {followups} prefix', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379' });
    assert.equal(config.redis.connection?.mode, 'cluster');
    assert.equal(config.redis.prefix, '{followups}');
  });

  test('names what is wrong: two topologies at once, a sentinel list without a name, a malformed node, a prefix without a hash tag', () => {
    const problemsOf = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    assert.match(problemsOf({ REDIS_URL: 'redis://h:6379', REDIS_CLUSTER_NODES: 'h:7000' }).join(), /REDIS_URL: set only one of/);
    assert.match(problemsOf({ REDIS_SENTINELS: 'h:26379' }).join(), /REDIS_SENTINEL_NAME: required/);
    assert.match(problemsOf({ REDIS_CLUSTER_NODES: 'h:7000,nope' }).join(), /REDIS_CLUSTER_NODES: must be host:port/);
    assert.match(problemsOf({ REDIS_CLUSTER_NODES: 'h:7000', QUEUE_PREFIX: 'followups' }).join(), /QUEUE_PREFIX: must contain a Redis Cluster hash tag/);
    assert.match(problemsOf({ REDIS_CLUSTER_NODES: 'h:7000', QUEUE_PREFIX: '{}x' }).join(), /QUEUE_PREFIX/);
    assert.match(problemsOf({ REDIS_URL: 'redis://h:6379', REDIS_PASSWORD: 'secret-pass' }).join(), /put the user and password in the URL/);
    assert.ok(!problemsOf({ REDIS_URL: 'redis://h:6379', REDIS_PASSWORD: 'secret-pass' }).join().includes('secret-pass'), 'never echoes a secret');
  });
});
