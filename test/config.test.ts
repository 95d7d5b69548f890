import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEV_API_TOKEN, loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

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
