/**
 * Structured logs (pino). One child logger per role and per follow-up; phone
 * numbers are masked wherever they appear under a `phone` key, and secrets are
 * redacted by path so a stray config object never leaks a key.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

/** `5581999998888` → `5581*****8888`: enough to tell leads apart, not enough to dial. */
export function maskPhone(phone: string | null | undefined): string {
  if (!phone) return '';
  const digits = String(phone);
  if (digits.length <= 8) return '*'.repeat(digits.length);
  return `${digits.slice(0, 4)}${'*'.repeat(digits.length - 8)}${digits.slice(-4)}`;
}

const SECRET_PATHS = [
  'apiKey', '*.apiKey', 'apiToken', '*.apiToken', 'token', '*.token', 'secret', '*.secret', 'jwtKey', '*.jwtKey',
  'password', '*.password', 'authorization', '*.authorization', 'req.headers.authorization', 'req.headers.apikey',
  'req.headers["x-webhook-secret"]', 'headers.apikey', 'headers.authorization',
];

export function createLogger(options: { level: string; pretty?: boolean; destination?: pino.DestinationStream }): Logger {
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { service: 'nautico-followups' },
    // Phones are masked by the redaction too, because pino applies it to child bindings
    // (`log.child({ phone })`), which the `log` formatter never sees.
    redact: {
      paths: [...SECRET_PATHS, 'phone', '*.phone'],
      censor: (value, path) => (path[path.length - 1] === 'phone' ? maskPhone(value == null ? '' : String(value)) : '[redacted]'),
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  if (options.pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino(base);
}
