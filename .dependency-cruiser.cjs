/**
 * The architecture of src/, as rules that dependency-cruiser checks on every `npm test`
 * (test/architecture.test.ts; by hand: `npx depcruise src`). README.md#architecture says
 * the same in prose.
 *
 * src/ is layered. Each layer may import the layers below it, never one above it, and
 * nothing may go round in a circle (neither two modules nor two folders). Type-only
 * imports count: a type is as much a dependency for a reader as a function is.
 * A new file belongs to the layer of its folder; a new top-level folder must be
 * placed in one layer below (a module outside every layer fails `in-a-layer`).
 */

/** Top to bottom. `path` is a regular expression on the module's path. */
const LAYERS = [
  {
    name: 'entry',
    // The processes: the command line, starting and stopping the roles (api, relay,
    // worker), the frame each operator command runs in.
    path: '^src/(cli|roles|run-operator-command)\\.ts$',
  },
  {
    name: 'app',
    // What a role runs. The API: http/ (routes), with the dashboard and the agent's
    // MCP server and tools it serves. The relay (due rows onto the queue, or sends them
    // itself in direct mode) and the worker (claims and sends one follow-up).
    // Sideways imports among http, relay and worker go only to named shared modules
    // (rule `app-sideways`).
    path: '^src/(http|dashboard|agent|relay|worker)/',
  },
  {
    name: 'wiring',
    // The composition root: createContext builds every service once from the
    // configuration; Context is what the apps are handed, with the process's
    // role-health (each turn of the relay and the worker, for /health/ready).
    path: '^src/(context|role-health)\\.ts$',
  },
  {
    name: 'features',
    // What the service does, one folder each: campaigns (definitions, enrollment, CSV
    // import), compose (the text: template or model), webhooks (Evolution's events),
    // leads (inbound, outbound, stop, erase, send as the agent), numbers (the WhatsApp
    // numbers' states), forwarding (events to the agent), operator (the operator's
    // commands and checks). They may import each other, but no two folders both ways.
    // (leads/sql/ is core, below.)
    path: '^src/(?!leads/sql/)(campaigns|compose|webhooks|leads|numbers|forwarding|operator)/',
  },
  {
    name: 'core',
    // The rules of the domain: followups (the record of a follow-up and its lead, its
    // states and transitions, scheduling, the sending gate; followups/sql/ and
    // leads/sql/ hold the statements on their tables), policy (when a message may go
    // out: window, caps, pace, number checks), claims (what a text may claim).
    path: '^src/(followups|policy|claims)/|^src/leads/sql/',
  },
  {
    name: 'adapters',
    // The outside world: db (PostgreSQL, PGlite, migrations), queue (Redis, BullMQ),
    // whatsapp (Evolution API, the dry run, phone numbers).
    path: '^src/(db|queue|whatsapp)/',
  },
  {
    name: 'leaves',
    // Used everywhere, importing nothing of ours above: time (wall clock in a time zone,
    // the typing delay), privacy (the erasure key), errors, log, config (with
    // database-url: which pooler a DATABASE_URL points at), clock, metrics, validation
    // (zod input parsing), micro-batch (group-commit batching), area-codes (Brazil's
    // area codes and their zones), timeout.
    path: '^src/(time|privacy)/|^src/(errors|log|config|database-url|clock|metrics|validation|micro-batch|area-codes|timeout)\\.ts$',
  },
];

/** The package's client (`nautico-followups/client`): its own code and zod-only schema modules. */
const CLIENT = '^src/client/';
/**
 * What the client may import: the schema modules (zod only) and the plain types and
 * functions they need. Each of them imports nothing but zod, node: built-ins and each
 * other (rule `contract-stays-plain`), so the client never pulls the service in.
 */
const CONTRACT =
  '^src/(agent/tool-schemas|forwarding/(agent-events|webhook-signature|outbox-schemas)|campaigns/enrollment-schemas|followups/(followup-schemas|followup|lead-view)|leads/(lead-schemas|send-message-schema))\\.ts$';
/** What a contract module may import besides other contract modules: pure leaves. */
const CONTRACT_LEAVES = '^src/time/zoned-time\\.ts$';

const above = (index) =>
  LAYERS.slice(0, index)
    .map((l) => l.path)
    .join('|');

const upward = LAYERS.slice(1).map((layer, i) => ({
  name: `no-upward-from-${layer.name}`,
  comment: `${layer.name} imports only the layers below it (not ${LAYERS.slice(0, i + 1)
    .map((l) => l.name)
    .join(', ')}).`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: above(i + 1) },
}));

/**
 * Shared by the apps, so importable sideways: the reconcile-or-fail step of a send
 * (the worker's executor after an ambiguous send, the relay's lease sweeper).
 */
const APP_SHARED = '^src/worker/reconcile-send\\.ts$';
const APPS = [
  { name: 'http', path: '^src/(http|dashboard|agent)/' },
  { name: 'relay', path: '^src/relay/' },
  { name: 'worker', path: '^src/worker/' },
];
const sideways = APPS.map((app) => ({
  name: `app-sideways-from-${app.name}`,
  comment: `The apps (http with dashboard and agent, relay, worker) are one level: ${app.name} imports another only through a named shared module (${APP_SHARED}).`,
  severity: 'error',
  from: { path: app.path },
  to: {
    path: APPS.filter((a) => a !== app)
      .map((a) => a.path)
      .join('|'),
    pathNot: APP_SHARED,
  },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No module reaches itself through its imports.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      comment:
        'No two folders below the apps import each other, directly or through others (e.g. campaigns and compose). ' +
        'The API app (http, dashboard, agent) is one unit: its folders may, modules still may not (no-circular).',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/(campaigns|compose|webhooks|leads|numbers|forwarding|operator|followups|policy|claims|db|queue|whatsapp|time|privacy)(/|$)' },
      to: { circular: true },
    },
    ...upward,
    ...sideways,
    {
      name: 'in-a-layer',
      comment: 'Every module of src/ belongs to one layer (or is the client): place a new folder in LAYERS.',
      severity: 'error',
      from: { path: '^src/', pathNot: `${LAYERS.map((l) => l.path).join('|')}|${CLIENT}` },
      to: {},
    },
    {
      name: 'in-a-layer-imported',
      comment: 'The same for a module that imports nothing of ours but is imported.',
      severity: 'error',
      from: {},
      to: { path: '^src/', pathNot: `${LAYERS.map((l) => l.path).join('|')}|${CLIENT}` },
    },
    {
      name: 'client-isolation',
      comment: 'The client imports its own code and the contract modules only (zod schemas, plain types).',
      severity: 'error',
      from: { path: CLIENT },
      to: { path: '^src/', pathNot: `${CLIENT}|${CONTRACT}` },
    },
    {
      name: 'contract-stays-plain',
      comment: 'A contract module (what the client imports) imports nothing of ours but other contract modules.',
      severity: 'error',
      from: { path: CONTRACT },
      to: { path: '^src/', pathNot: `${CONTRACT}|${CONTRACT_LEAVES}` },
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports is dead code (entry points and assets excepted).',
      severity: 'error',
      from: {
        orphan: true,
        path: '^src/',
        pathNot: ['^src/cli\\.ts$', '^src/client/index\\.ts$', '\\.d\\.ts$', '\\.(json|md|sql)$'],
      },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import resolves.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'not-to-dev-dep',
      comment: 'src/ ships: it imports no devDependency (tests, bench and scripts may).',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too (see above).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
};
