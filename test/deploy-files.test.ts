/**
 * The deployment files agree with the code: `.env.example` documents every setting of
 * src/config.ts (nothing missing, nothing stale, defaults as the schema has them), and
 * docker-compose.yml uses it, checks /health/ready, and gives every role time to shut down.
 * Docker cannot run here: the compose file is checked as data.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_KEYS, loadConfig } from '../src/config.js';

/** Settings docker-compose.yml itself reads from .env (not the service's). */
const COMPOSE_ONLY_KEYS = ['POSTGRES_PASSWORD'];

interface EnvLine {
  key: string;
  value: string;
  commented: boolean;
}

function readEnvExample(): EnvLine[] {
  return readFileSync('.env.example', 'utf8')
    .split('\n')
    .map((line) => /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ key: m[2]!, value: m[3]!, commented: m[1] !== undefined }));
}

describe('.env.example', () => {
  const lines = readEnvExample();
  const keys = lines.map((l) => l.key);

  test('documents every setting of the config schema, once', () => {
    assert.deepEqual(CONFIG_KEYS.filter((k) => !keys.includes(k)), [], 'missing from .env.example');
    assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [], 'documented twice');
  });

  test('documents nothing the service does not read (compose-only settings aside)', () => {
    assert.deepEqual(keys.filter((k) => !CONFIG_KEYS.includes(k) && !COMPOSE_ONLY_KEYS.includes(k)), [], 'stale in .env.example');
    const compose = readFileSync('docker-compose.yml', 'utf8');
    for (const key of COMPOSE_ONLY_KEYS) assert.match(compose, new RegExp(`\\$\\{${key}\\b`), `docker-compose.yml uses ${key}`);
  });

  test('shows each commented default as the schema has it', () => {
    const defaults = Object.fromEntries(lines.filter((l) => l.commented && l.value !== '').map((l) => [l.key, l.value]));
    assert.deepEqual(loadConfig(defaults), loadConfig({}));
  });

  test('is a valid configuration once the secrets are filled in', () => {
    const env = Object.fromEntries(lines.filter((l) => !l.commented).map((l) => [l.key, l.value]));
    const config = loadConfig({
      ...env,
      FOLLOWUPS_API_TOKEN: 'a-long-random-token-0123456789',
      WEBHOOK_SECRET: 'another-long-secret-0123456789',
      ERASURE_KEY: 'an-erasure-key-of-at-least-32-characters',
      DATABASE_URL: 'postgresql://followups:followups@postgres:5432/followups',
      EVOLUTION_API_URL: 'https://evo.example.com',
      EVOLUTION_API_KEY: 'evolution-key',
    });
    assert.equal(config.evolution?.instance, 'nautico');
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
    services: Record<string, {
      image?: string;
      command?: string[];
      env_file?: string[] | string;
      environment?: Record<string, string>;
      stop_grace_period?: string;
      healthcheck?: { test?: string[]; disable?: boolean };
      depends_on?: Record<string, { condition: string }>;
    }>;
  };
  const roles = Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('nautico-followups'));
  const seconds = (d: string) => {
    const m = /^(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(d);
    assert.ok(m && d, `a duration like 30s or 1m30s: ${d}`);
    return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
  };

  test('runs every role of the image: migrate once, then api, relay and worker', () => {
    assert.deepEqual(roles.map(([name, s]) => [name, s.command?.[0]]).sort(), [['api', 'api'], ['migrate', 'migrate'], ['relay', 'relay'], ['worker', 'worker']]);
    for (const [name, service] of roles.filter(([n]) => n !== 'migrate')) {
      assert.deepEqual(service.depends_on?.migrate, { condition: 'service_completed_successfully' }, `${name} waits for migrate`);
      assert.ok(service.command?.includes('--no-migrate'), `${name} leaves migrations to migrate`);
    }
  });

  test('gives every role its settings from .env (cp .env.example .env)', () => {
    for (const [name, service] of roles) {
      assert.deepEqual([service.env_file].flat(), ['.env'], `${name} reads .env`);
      for (const key of Object.keys(service.environment ?? {})) assert.ok(CONFIG_KEYS.includes(key), `${name} sets ${key}, a real setting`);
    }
  });

  test('checks the api with /health/ready, and turns the image healthcheck off where there is no API', () => {
    for (const [name, service] of roles) {
      if (name === 'api') {
        assert.equal(service.healthcheck?.test?.[0], 'CMD');
        assert.match(service.healthcheck!.test!.join(' '), /\/health\/ready/);
      } else {
        assert.equal(service.healthcheck?.disable, true, `${name} has no HTTP server to check`);
      }
    }
  });

  test('gives every role a stop grace period longer than SHUTDOWN_TIMEOUT_MS plus the 5 s the CLI adds before it gives up', () => {
    const shutdownMs = loadConfig({}).shutdownTimeoutMs;
    const documented = readEnvExample().find((l) => l.key === 'SHUTDOWN_TIMEOUT_MS');
    assert.equal(Number(documented?.value), shutdownMs);
    for (const [name, service] of roles) {
      assert.ok(service.stop_grace_period, `${name} has a stop_grace_period`);
      assert.ok(seconds(service.stop_grace_period) * 1000 > shutdownMs + 5_000, `${name}: ${service.stop_grace_period} > ${shutdownMs} ms + 5 s`);
    }
  });
});
